"""The policy tables a security reviewer reads: hints, refused statements, object kinds, allowed SYSTEM$ calls."""

from __future__ import annotations

from typing import NoReturn

from sophia_shared.errors import PolicyError

from ..names import (
    WAREHOUSE_DESCRIBE_TABLE,
    WAREHOUSE_EXECUTE,
    WAREHOUSE_LIST_SCHEMAS,
    WAREHOUSE_LIST_TABLES,
    WAREHOUSE_QUERY,
)

MAX_SQL_CHARS = 200_000
# The tools that call this guard, named in refusals so the caller can act.
READ_TOOL = WAREHOUSE_QUERY
WRITE_TOOL = WAREHOUSE_EXECUTE

READ_HINT = (
    f"use {READ_TOOL} for reads (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN); writes need "
    f"SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE=1 and the {WRITE_TOOL} tool"
)
WRITE_HINT = (
    f"{WRITE_TOOL} runs exactly one CREATE/ALTER/DROP/TRUNCATE of a TABLE, VIEW, SCHEMA or DATABASE, "
    f"or one INSERT, UPDATE, DELETE, MERGE or COMMENT ON; use {READ_TOOL} for reads"
)
ONE_STATEMENT_HINT = "send one statement per call: split the script and call the tool once per statement"
PARSE_HINT = (
    "check that it is valid Snowflake SQL with every quote and comment closed; the guard refuses what it cannot parse"
)
SESSION_HINT = (
    "the server fixes the session (database, schema, warehouse, role, timeout, query tag) from its "
    "configuration; fully qualify names (db.schema.table) instead of changing the session"
)
EMBEDDED_HINT = (
    "the embedded warehouse only queries tables already in its database file; reading local files, "
    "other databases, extensions or the environment is not allowed"
)

# SYSTEM$ functions that only read. Every other SYSTEM$ function is refused: many act (cancel queries,
# abort sessions, send email or notifications, change tasks/pipes) or reveal secrets.
READ_ONLY_SYSTEM_FUNCTIONS = frozenset(
    {
        "SYSTEM$TYPEOF",
        "SYSTEM$CLUSTERING_INFORMATION",
        "SYSTEM$CLUSTERING_DEPTH",
        "SYSTEM$CLUSTERING_RATIO",
        "SYSTEM$EXPLAIN_PLAN_JSON",
        "SYSTEM$EXPLAIN_JSON_TO_TEXT",
        "SYSTEM$GET_TAG",
        "SYSTEM$STREAM_HAS_DATA",
        "SYSTEM$PIPE_STATUS",
    }
)

WRITE_OBJECT_KINDS = frozenset({"TABLE", "VIEW", "SCHEMA", "DATABASE"})
COMMENT_KINDS = frozenset({"TABLE", "VIEW", "COLUMN", "SCHEMA", "DATABASE", "MATERIALIZED VIEW"})

POLICY_REFUSAL = (
    "an ALTER that adds, changes or removes a masking, row access or other policy is not allowed: it "
    "changes data protection"
)
_SESSION = "it changes the session"
_TRANSACTION = "it controls transactions, which the server manages (each call is its own transaction)"
_ENGINE = "it changes the embedded engine or touches local files"
_SCRIPT = "it is a Snowflake Scripting block, which runs several statements the guard cannot check"

# First word(s) of statements refused in every tool, with the reason the caller sees.
REFUSED_LEADING: dict[str, tuple[str, str]] = {
    "USE": (f"{_SESSION}'s current database, schema, warehouse or role", SESSION_HINT),
    "SET": (f"{_SESSION} variables or parameters", SESSION_HINT),
    "UNSET": (f"{_SESSION} variables or parameters", SESSION_HINT),
    "RESET": (f"{_SESSION} variables or parameters", SESSION_HINT),
    "ALTER SESSION": (f"{_SESSION} parameters", SESSION_HINT),
    "GRANT": ("it changes access privileges", "ask an administrator to change privileges"),
    "REVOKE": ("it changes access privileges", "ask an administrator to change privileges"),
    "BEGIN": (_TRANSACTION, ONE_STATEMENT_HINT),
    "START": (_TRANSACTION, ONE_STATEMENT_HINT),
    "COMMIT": (_TRANSACTION, ONE_STATEMENT_HINT),
    "ROLLBACK": (_TRANSACTION, ONE_STATEMENT_HINT),
    "ABORT": (_TRANSACTION, ONE_STATEMENT_HINT),
    "SAVEPOINT": (_TRANSACTION, ONE_STATEMENT_HINT),
    "RELEASE": (_TRANSACTION, ONE_STATEMENT_HINT),
    "END": (_TRANSACTION, ONE_STATEMENT_HINT),
    "DECLARE": (_SCRIPT, ONE_STATEMENT_HINT),
    "LET": (_SCRIPT, ONE_STATEMENT_HINT),
    "CALL": ("it runs a stored procedure or engine routine whose effects cannot be checked", WRITE_HINT),
    "EXECUTE": ("it runs dynamic SQL, a task or a prepared statement that cannot be checked", WRITE_HINT),
    "EXEC": ("it runs dynamic SQL, a task or a prepared statement that cannot be checked", WRITE_HINT),
    "PREPARE": ("it manages prepared statements; parameters are bound by the tool", WRITE_HINT),
    "DEALLOCATE": ("it manages prepared statements; parameters are bound by the tool", WRITE_HINT),
    "COPY": ("it moves data between tables and files or stages", WRITE_HINT),
    "PUT": ("it uploads local files to a stage", WRITE_HINT),
    "GET": ("it downloads staged files to the local machine", WRITE_HINT),
    "LIST": ("it lists stage files, which is not a query", READ_HINT),
    "LS": ("it lists stage files, which is not a query", READ_HINT),
    "REMOVE": ("it deletes files from a stage", WRITE_HINT),
    "RM": ("it deletes files from a stage", WRITE_HINT),
    "UNLOAD": ("it writes data to files", WRITE_HINT),
    "ATTACH": (f"{_ENGINE} (it opens another database file)", EMBEDDED_HINT),
    "DETACH": (f"{_ENGINE} (it closes an attached database)", EMBEDDED_HINT),
    "INSTALL": (f"{_ENGINE} (it installs an extension, downloading code)", EMBEDDED_HINT),
    "FORCE": (f"{_ENGINE} (it forces an extension install or a checkpoint)", EMBEDDED_HINT),
    "LOAD": (f"{_ENGINE} (it loads an extension or a file)", EMBEDDED_HINT),
    "UPDATE EXTENSIONS": (f"{_ENGINE} (it updates extensions, downloading code)", EMBEDDED_HINT),
    "PRAGMA": (f"{_ENGINE} (it reads or changes engine settings)", EMBEDDED_HINT),
    "EXPORT": (f"{_ENGINE} (it writes the database to local files)", EMBEDDED_HINT),
    "IMPORT": (f"{_ENGINE} (it loads a database from local files)", EMBEDDED_HINT),
    "CHECKPOINT": (f"{_ENGINE} (it forces the engine to write its files)", EMBEDDED_HINT),
    "VACUUM": ("it runs engine maintenance", EMBEDDED_HINT),
    "ANALYZE": ("it runs engine maintenance", EMBEDDED_HINT),
    "OPTIMIZE": ("it runs engine maintenance", EMBEDDED_HINT),
    "KILL": ("it cancels other sessions' work", SESSION_HINT),
    "LOCK": ("it takes locks other sessions wait on", WRITE_HINT),
    "UNLOCK": ("it releases locks", WRITE_HINT),
    "UNDROP": (f"restoring dropped objects is not among the statements {WRITE_TOOL} runs", WRITE_HINT),
}

# CREATE/ALTER/DROP/COMMENT of these objects administer the account, handle security or run code.
SECURITY_OBJECTS = frozenset(
    {
        "USER",
        "ROLE",
        "DATABASE ROLE",
        "APPLICATION ROLE",
        "SECRET",
        "PERSISTENT SECRET",
        "TEMPORARY SECRET",
        "INTEGRATION",
        "STORAGE INTEGRATION",
        "API INTEGRATION",
        "NOTIFICATION INTEGRATION",
        "SECURITY INTEGRATION",
        "EXTERNAL ACCESS INTEGRATION",
        "NETWORK RULE",
        "NETWORK POLICY",
        "PASSWORD POLICY",
        "SESSION POLICY",
        "MASKING POLICY",
        "ROW ACCESS POLICY",
        "AUTHENTICATION POLICY",
        "SHARE",
        "ACCOUNT",
        "CONNECTION",
        "REPLICATION GROUP",
        "FAILOVER GROUP",
    }
)
CODE_OBJECTS = frozenset(
    {
        "FUNCTION",
        "EXTERNAL FUNCTION",
        "PROCEDURE",
        "MACRO",
        "TABLE MACRO",
        "TASK",
        "PIPE",
        "STREAM",
        "ALERT",
        "SERVICE",
        "COMPUTE POOL",
        "STAGE",
        "EXTERNAL TABLE",
        "DYNAMIC TABLE",
        "WAREHOUSE",
        "SEQUENCE",
        "TYPE",
        "INDEX",
    }
)
# Words that may sit between CREATE and the object kind.
CREATE_MODIFIERS = frozenset(
    {
        "OR",
        "REPLACE",
        "IF",
        "NOT",
        "EXISTS",
        "TEMP",
        "TEMPORARY",
        "TRANSIENT",
        "VOLATILE",
        "LOCAL",
        "GLOBAL",
        "SECURE",
        "RECURSIVE",
        "MATERIALIZED",
        "PERSISTENT",
        "ICEBERG",
        "HYBRID",
        "EVENT",
        "UNIQUE",
    }
)


NESTING_HINT = (
    "flatten the statement: move inner parts into WITH (common table expressions) or CASE instead of "
    "nesting parentheses or function calls this deeply"
)
TRANSLATE_HINT = "rewrite it without that construct, or run it on a Snowflake warehouse"
CATALOG_HINT = (
    f"use {WAREHOUSE_LIST_SCHEMAS}, {WAREHOUSE_LIST_TABLES} or {WAREHOUSE_DESCRIBE_TABLE}, or query "
    "information_schema (tables, columns, schemata)"
)


def refuse(why: str, hint: str) -> NoReturn:
    raise PolicyError(f"SQL refused: {why}.", hint=hint)


def tool_name(write: bool) -> str:
    return WRITE_TOOL if write else READ_TOOL
