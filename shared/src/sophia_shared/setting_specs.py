"""Every setting the suite reads, with who uses it and whether it is a secret.

`sophia doctor`, the README's configuration table and the redactor all work from this list.
ESC's grouped layout maps a key `some-key` in group `business_intelligence` to `SOME_KEY`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SettingSpec:
    name: str
    group: str  # "core" or the ESC group / server it belongs to
    secret: bool
    description: str
    default: str = ""


_CORE = [
    SettingSpec("SOPHIA_ESC_ENV", "core", False, "Pulumi ESC environment to read settings from: org/project/env."),
    SettingSpec("PULUMI_ACCESS_TOKEN", "core", True, "Pulumi access token used to open SOPHIA_ESC_ENV."),
    SettingSpec(
        "PULUMI_BACKEND_URL",
        "core",
        False,
        "Pulumi Cloud API base as the Pulumi CLI uses it (default https://api.pulumi.com).",
    ),
    SettingSpec("SOPHIA_ESC_FILE", "core", False, "Local ESC-format YAML file (default ~/.config/sophia/esc.yaml)."),
    SettingSpec("SOPHIA_DOTENV", "core", False, "Path of the .env file to read (default ./.env)."),
    SettingSpec("SOPHIA_DATA_DIR", "core", False, "Where Sophia keeps local data (default ~/.local/share/sophia)."),
    SettingSpec("SOPHIA_LOG_LEVEL", "core", False, "Log level for stderr logging.", "INFO"),
]

_BI = [
    SettingSpec(
        "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE",
        "business_intelligence",
        False,
        "Set to 1 to register the write tool (DDL/DML).",
        "0",
    ),
    SettingSpec(
        "SOPHIA_DUCKDB_PATH",
        "business_intelligence",
        False,
        "Embedded DuckDB warehouse file (default <data dir>/warehouse.duckdb).",
    ),
    SettingSpec(
        "SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS",
        "business_intelligence",
        False,
        "Embedded warehouse statement timeout.",
        "120",
    ),
    SettingSpec("SNOWFLAKE_ACCOUNT", "business_intelligence", False, "Snowflake account identifier (orgname-account)."),
    SettingSpec("SNOWFLAKE_USER", "business_intelligence", False, "Snowflake user name."),
    SettingSpec("SNOWFLAKE_PASSWORD", "business_intelligence", True, "Snowflake password (password auth)."),
    SettingSpec("SNOWFLAKE_TOKEN", "business_intelligence", True, "Snowflake programmatic access token (PAT)."),
    SettingSpec("SNOWFLAKE_PRIVATE_KEY_FILE", "business_intelligence", False, "PEM private key for key-pair auth."),
    SettingSpec("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "business_intelligence", True, "Passphrase of the PEM key."),
    SettingSpec(
        "SNOWFLAKE_CONNECTION_NAME",
        "business_intelligence",
        False,
        "A connection name from ~/.snowflake/connections.toml.",
    ),
    SettingSpec("SNOWFLAKE_ROLE", "business_intelligence", False, "Role to use."),
    SettingSpec("SNOWFLAKE_WAREHOUSE", "business_intelligence", False, "Virtual warehouse to run queries on."),
    SettingSpec("SNOWFLAKE_DATABASE", "business_intelligence", False, "Default database."),
    SettingSpec("SNOWFLAKE_SCHEMA", "business_intelligence", False, "Default schema."),
    SettingSpec("SNOWFLAKE_HOST", "business_intelligence", False, "Override host (private link, tests)."),
    SettingSpec("SNOWFLAKE_PORT", "business_intelligence", False, "Override port (tests)."),
    SettingSpec("SNOWFLAKE_PROTOCOL", "business_intelligence", False, "https (default) or http (tests)."),
    SettingSpec(
        "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS",
        "business_intelligence",
        False,
        "Statement timeout set on every session.",
        "120",
    ),
    SettingSpec("SNOWFLAKE_QUERY_TAG", "business_intelligence", False, "QUERY_TAG set on every session.", "sophia-mcp"),
    SettingSpec("PINECONE_API_KEY", "business_intelligence", True, "Pinecone API key (vector indexes)."),
]

_AI = [
    SettingSpec("PORTKEY_API_KEY", "ai_intelligence", True, "Portkey API key."),
    SettingSpec("OPENROUTER_API_KEY", "ai_intelligence", True, "OpenRouter API key."),
    SettingSpec("ARIZE_API_KEY", "ai_intelligence", True, "Arize API key (tracing)."),
]

_DATA = [
    SettingSpec("TAVILY_API_KEY", "data_intelligence", True, "Tavily API key (web search)."),
    SettingSpec("ZENROWS_API_KEY", "data_intelligence", True, "ZenRows API key (scraping)."),
    SettingSpec("APIFY_API_TOKEN", "data_intelligence", True, "Apify API token (actor runs)."),
]

_INFRA = [
    SettingSpec("LAMBDA_API_KEY", "infrastructure", True, "Lambda Cloud API key."),
    SettingSpec("DOCKER_TOKEN", "infrastructure", True, "Docker Hub token."),
]

SETTINGS: dict[str, SettingSpec] = {s.name: s for s in [*_CORE, *_BI, *_AI, *_DATA, *_INFRA]}

ESC_GROUPS = ("ai_intelligence", "data_intelligence", "infrastructure", "business_intelligence")

# Words that mark a variable as secret even when the catalogue does not know it.
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL")


def is_secret_name(name: str) -> bool:
    spec = SETTINGS.get(name)
    if spec is not None:
        return spec.secret
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS) and not upper.endswith(("_FILE", "_PATH"))
