"""The business-intelligence server's settings: declared here, nowhere else."""

from __future__ import annotations

from functools import partial

from sophia_shared.setting_specs import SettingSpec, declare

SERVER_KEY = "business_intelligence"  # names the write-gate variable and the ESC group

_spec = partial(declare, SERVER_KEY)


SETTINGS: tuple[SettingSpec, ...] = (
    _spec("SOPHIA_DUCKDB_PATH", "Embedded DuckDB warehouse file (default <data dir>/warehouse.duckdb)."),
    _spec(
        "SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS",
        "Embedded warehouse statement timeout, fetching included.",
        default="120",
    ),
    _spec(
        "SOPHIA_DUCKDB_MEMORY_LIMIT", "Memory the embedded warehouse may use (DuckDB size, e.g. 2GB).", default="2GB"
    ),
    _spec(
        "SOPHIA_DUCKDB_MAX_TEMP_SIZE",
        "Disk the embedded warehouse may spill to (DuckDB size, e.g. 4GB).",
        default="4GB",
    ),
    _spec("SOPHIA_DUCKDB_THREADS", "Threads the embedded warehouse may use.", default="2"),
    _spec("SNOWFLAKE_ACCOUNT", "Snowflake account identifier (orgname-account)."),
    _spec("SNOWFLAKE_USER", "Snowflake user name."),
    _spec("SNOWFLAKE_PASSWORD", "Snowflake password (password auth).", secret=True),
    _spec("SNOWFLAKE_TOKEN", "Snowflake programmatic access token (PAT).", secret=True),
    _spec("SNOWFLAKE_PRIVATE_KEY_FILE", "PEM private key for key-pair auth."),
    _spec("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "Passphrase of the PEM key.", secret=True),
    _spec("SNOWFLAKE_CONNECTION_NAME", "A connection name from ~/.snowflake/connections.toml."),
    _spec("SNOWFLAKE_ROLE", "Role to use."),
    _spec("SNOWFLAKE_WAREHOUSE", "Virtual warehouse to run queries on."),
    _spec("SNOWFLAKE_DATABASE", "Default database."),
    _spec("SNOWFLAKE_SCHEMA", "Default schema."),
    _spec("SNOWFLAKE_HOST", "Override host (private link, tests)."),
    _spec("SNOWFLAKE_PORT", "Override port (tests)."),
    _spec("SNOWFLAKE_PROTOCOL", "https (default) or http (tests)."),
    _spec("SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS", "Statement timeout set on every session.", default="120"),
    _spec("SNOWFLAKE_QUERY_TAG", "QUERY_TAG set on every session.", default="sophia-mcp"),
    _spec("PINECONE_API_KEY", "Pinecone API key; when set, vector indexes live on Pinecone.", secret=True),
    _spec(
        "PINECONE_ENVIRONMENT",
        "Accepted for older configs and ignored: the Pinecone SDK 10.x finds each index's host itself.",
    ),
    _spec("PINECONE_CONTROLLER_HOST", "Override the Pinecone control-plane URL (private endpoints, tests)."),
    _spec(
        "SOPHIA_VECTOR_BACKEND",
        "Where vector indexes live: auto (Pinecone when PINECONE_API_KEY is set, else embedded), embedded or pinecone.",
        default="auto",
    ),
    _spec("SOPHIA_CORTEX_MODEL", "Default model for Cortex COMPLETE.", default="llama3.1-8b"),
    _spec(
        "SOPHIA_CORTEX_FUNCTIONS",
        "Cortex SQL function family: ai (AI_COMPLETE, AI_SENTIMENT, …) or legacy (SNOWFLAKE.CORTEX.*).",
        default="ai",
    ),
    _spec("SOPHIA_MEMORY_TABLE", "Where long-term memory lives in the warehouse.", default="AI_MEMORY.MEMORIES"),
)

# Vendor prefixes this server reads, so test fixtures can clear a developer's exports by prefix.
ENV_PREFIXES: tuple[str, ...] = ("SNOWFLAKE_", "SOPHIA_DUCKDB_", "PINECONE_")
