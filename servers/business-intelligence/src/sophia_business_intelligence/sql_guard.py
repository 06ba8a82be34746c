"""The SQL statement policy of the business-intelligence server: the one place that decides what runs.

`check_read_only` guards the read tool (warehouse_query), `check_write` the gated write tool
(warehouse_execute). SQL is read with sqlglot in the Snowflake dialect; for the embedded DuckDB
warehouse the statement is also translated to DuckDB (`duckdb_sql`) and the translation is checked
again, because that text is what DuckDB runs. Anything the guard cannot read with certainty is
refused, never guessed at.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from sophia_shared.errors import PolicyError

from .names import WAREHOUSE_EXECUTE, WAREHOUSE_QUERY

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.tokens import Token

__all__ = [
    "EMBEDDED_TABLE_FUNCTIONS",
    "READ_ONLY_SYSTEM_FUNCTIONS",
    "READ_TOOL",
    "WRITE_TOOL",
    "CheckedStatement",
    "check_read_only",
    "check_write",
    "duckdb_sql",
    "require_checked",
]

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

# Table functions the embedded warehouse may call in FROM: pure generators and catalog readers. Every
# other DuckDB table function is refused (file readers, scanners, query(), logging, external resources).
EMBEDDED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "explode",  # sqlglot's name for Snowflake FLATTEN
        "flatten",
        "generator",  # Snowflake GENERATOR, translated to range()
        "split_to_table",
        "json_each",
        "json_tree",
        "duckdb_tables",
        "duckdb_columns",
        "duckdb_views",
        "duckdb_schemas",
        "duckdb_constraints",
        "duckdb_indexes",
        "duckdb_types",
        "duckdb_sequences",
        "duckdb_functions",
        "duckdb_keywords",
        "pragma_table_info",
    }
)

# Functions refused anywhere in an embedded statement: they read files, run SQL from strings, change the
# engine or reveal its settings and secrets.
EMBEDDED_DENIED_FUNCTIONS = frozenset(
    {
        "getenv",
        "current_setting",
        "setseed",
        "write_log",
        "glob",
        "sniff_csv",
        "query",
        "query_table",
        "json_execute_serialized_sql",
        "checkpoint",
        "force_checkpoint",
        "load_extension",
        "install_extension",
        "set_variable",
        "enable_logging",
        "disable_logging",
        "truncate_duckdb_logs",
        "enable_profiling",
        "disable_profiling",
        "duckdb_secrets",
        "which_secret",
        "duckdb_settings",
        "duckdb_databases",
        "duckdb_extensions",
        "summary",
    }
)
EMBEDDED_DENIED_PREFIXES = (
    "read_",
    "parquet_",
    "iceberg_",
    "delta_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "odbc_",
    "ducklake_",
    "st_read",
    "python_",
    "pandas_",
    "arrow_",
    "register_",
    "deregister_",
    "create_external",
    "destroy_external",
    "http_",
)
EMBEDDED_DENIED_SUFFIXES = ("_scan", "_attach", "_execute")

# Characters that make a table name a file path, a glob or a URL to DuckDB's replacement scans.
_FILE_NAME_CHARS = frozenset("./\\:*?~")

_WRITE_OBJECT_KINDS = frozenset({"TABLE", "VIEW", "SCHEMA", "DATABASE"})
_COMMENT_KINDS = frozenset({"TABLE", "VIEW", "COLUMN", "SCHEMA", "DATABASE", "MATERIALIZED VIEW"})

_POLICY_REFUSAL = (
    "an ALTER that adds, changes or removes a masking, row access or other policy is not allowed: it "
    "changes data protection"
)
_SESSION = "it changes the session"
_TRANSACTION = "it controls transactions, which the server manages (each call is its own transaction)"
_ENGINE = "it changes the embedded engine or touches local files"
_SCRIPT = "it is a Snowflake Scripting block, which runs several statements the guard cannot check"

# First word(s) of statements refused in every tool, with the reason the caller sees.
_REFUSED_LEADING: dict[str, tuple[str, str]] = {
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
_SECURITY_OBJECTS = frozenset(
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
_CODE_OBJECTS = frozenset(
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
_CREATE_MODIFIERS = frozenset(
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


DIALECTS = ("snowflake", "duckdb")
_GUARD = object()  # only this module can make a CheckedStatement


@dataclass(frozen=True)
class CheckedStatement:
    """A statement the guard accepted: the only thing a `Warehouse` runs.

    Made only by `check_read_only` / `check_write`; a backend calls `require_checked` first, so SQL
    that did not pass the guard (or was checked for another dialect or purpose) cannot run.
    """

    source: str  # the one statement as the user wrote it, trimmed, trailing semicolons removed
    sql: str  # the text the backend runs, in `dialect` (the DuckDB translation on the embedded warehouse)
    dialect: str  # "snowflake" or "duckdb"
    statement_type: str  # upper-case, e.g. "SELECT", "WITH", "SHOW", "INSERT", "CREATE TABLE"
    write: bool  # checked for the write tool (DDL/DML) rather than the read tool
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _GUARD:
            raise TypeError("a CheckedStatement is made only by sql_guard.check_read_only / check_write")


def check_read_only(sql: str, *, dialect: str) -> CheckedStatement:
    """Accept exactly one read-only query (SELECT/WITH/VALUES, SHOW, DESCRIBE, EXPLAIN <query>)."""
    return _checked(sql, write=False, dialect=dialect)


def check_write(sql: str, *, dialect: str) -> CheckedStatement:
    """Accept exactly one DDL/DML statement on tables, views, schemas or databases."""
    return _checked(sql, write=True, dialect=dialect)


def require_checked(statement: object, *, dialect: str, write: bool) -> CheckedStatement:
    """What a backend calls before running anything: the guard's statement, for this dialect and purpose."""
    if not isinstance(statement, CheckedStatement) or statement._token is not _GUARD:
        raise TypeError("backends run only statements checked by sql_guard")
    if statement.dialect != dialect:
        raise TypeError(f"statement checked for {statement.dialect}, not {dialect}")
    if statement.write != write:
        raise TypeError("a statement checked for reading cannot be run as a write, nor the reverse")
    return statement


def _checked(sql: str, *, write: bool, dialect: str) -> CheckedStatement:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    embedded = dialect == "duckdb"
    checked = _guarded(sql, write=write, embedded=embedded)
    run = duckdb_sql(checked.sql) if embedded else checked.sql
    return CheckedStatement(checked.sql, run, dialect, checked.statement_type, write, _GUARD)


@dataclass(frozen=True)
class _Accepted:
    sql: str
    statement_type: str


def duckdb_sql(sql: str) -> str:
    """The DuckDB text the embedded warehouse should run for an already-checked Snowflake statement.

    Comments are dropped (DuckDB nests block comments, Snowflake does not) and unsupported constructs
    raise instead of being silently rewritten; the guard checked exactly this text. EXPLAIN keeps
    ANALYZE and drops Snowflake's USING clause.
    """
    text, tokens = _single_statement(sql)
    if tokens[0].text.upper() == "EXPLAIN":
        analyze, i = _explain_parts(tokens)
        inner = _to_duckdb(_parse_one(text[tokens[i].start :], "snowflake"))
        return f"EXPLAIN ANALYZE {inner}" if analyze else f"EXPLAIN {inner}"
    return _to_duckdb(_parse_one(text, "snowflake"))


# --- the pipeline ---------------------------------------------------------------------------------


def _guarded(sql: str, *, write: bool, embedded: bool) -> _Accepted:
    try:
        return _check(sql, write=write, embedded=embedded)
    except RecursionError:
        _refuse("the statement is nested too deeply to be checked", PARSE_HINT)


def _check(sql: str, *, write: bool, embedded: bool) -> _Accepted:
    text, tokens = _single_statement(sql)
    words = _leading_words(tokens)
    if words[:1] == ["EXPLAIN"]:
        return _check_explain(text, tokens, write=write, embedded=embedded)
    _refuse_by_leading_words(words, tokens, write=write)
    tree = _parse_one(text, "snowflake")
    statement_type, _ = _classify(tree, tokens, write=write, embedded=embedded)
    if embedded:
        _check_duckdb_translation(tree, write=write, original=statement_type)
    return _Accepted(sql=text, statement_type=statement_type)


def _refuse(why: str, hint: str) -> NoReturn:
    raise PolicyError(f"SQL refused: {why}.", hint=hint)


def _tool(write: bool) -> str:
    return WRITE_TOOL if write else READ_TOOL


# --- reading the text: one statement, nothing hidden ----------------------------------------------


@functools.cache
def _tokenizer_class(dialect: str) -> Any:
    from sqlglot.dialects.dialect import Dialect

    class StatementTokenizer(Dialect.get_or_raise(dialect).tokenizer_class):  # type: ignore[misc,name-defined]
        # sqlglot swallows the text after EXPLAIN/CALL/... as one raw string; tokenize all of it so
        # every semicolon and comment is seen.
        COMMANDS: ClassVar[set[Any]] = set()

    return StatementTokenizer


def _tokenize(sql: str, dialect: str = "snowflake") -> list[Token]:
    from sqlglot.errors import TokenError

    try:
        return list(_tokenizer_class(dialect)(dialect=dialect).tokenize(sql))
    except TokenError as exc:
        _refuse(
            f"the SQL could not be read ({_first_line(exc)}); an unterminated string, quoted name or "
            "comment could hide another statement",
            PARSE_HINT,
        )


def _single_statement(sql: str) -> tuple[str, list[Token]]:
    """The one statement's text and tokens; refuses 0 or 2+ statements and ambiguous characters."""
    if not isinstance(sql, str):
        _refuse(f"expected SQL text, got {type(sql).__name__}", PARSE_HINT)
    if len(sql) > MAX_SQL_CHARS:
        _refuse(
            f"the SQL is {len(sql):,} characters long (limit {MAX_SQL_CHARS:,})",
            "shorten the statement; pass data as bound parameters instead of inline literals",
        )
    _refuse_ambiguous_characters(sql)
    tokens = _tokenize(sql)
    _check_between_tokens(sql, tokens)

    from sqlglot.tokens import TokenType

    segments: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            segments.append([])
        else:
            segments[-1].append(token)
    statements = [segment for segment in segments if segment]
    if any(token.token_type == TokenType.DARROW for token in tokens):
        # sqlglot reads `->>` as JSON extraction (so `SELECT 1 ->> DELETE FROM t` parses as one SELECT);
        # Snowflake reads it as the flow operator, which runs the next statement.
        _refuse(
            "the SQL uses ->>, which Snowflake reads as the flow operator that chains another statement",
            ONE_STATEMENT_HINT,
        )
    if not statements:
        _refuse("no SQL statement was given (only whitespace, comments or semicolons)", PARSE_HINT)
    if len(statements) > 1:
        _refuse(
            f"the SQL contains {len(statements)} statements separated by semicolons; exactly one "
            "statement is allowed per call",
            ONE_STATEMENT_HINT,
        )
    statement = statements[0]
    first = tokens.index(statement[0])
    start = tokens[first - 1].end + 1 if first else 0
    # Cut right after the last token: a trailing `--` comment would swallow anything appended later.
    text = sql[start : statement[-1].end + 1].strip()
    return text, _tokenize(text)


# Control characters, Unicode line/paragraph separators and a CR not followed by LF: engines disagree on
# whether they end a `--` comment, so what the guard reads as a comment might run as code.
_AMBIGUOUS_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")


def _refuse_ambiguous_characters(sql: str) -> None:
    match = _AMBIGUOUS_CHARACTER.search(sql)
    if match:
        char = match.group()
        names = {"\0": "the NUL character", "\r": "a carriage return without a line feed"}
        name = names.get(char) or f"the control character U+{ord(char):04X}"
        _refuse(
            f"the SQL contains {name} at position {match.start()}; SQL engines disagree on whether it ends a comment",
            "remove control characters (use plain line breaks); pass data values as bound parameters",
        )


def _check_between_tokens(sql: str, tokens: list[Token]) -> None:
    """Between tokens there may only be plain whitespace and comments that every engine reads alike."""
    position = 0
    for token in tokens:
        _check_gap(sql[position : token.start], position)
        position = token.end + 1
    _check_gap(sql[position:], position)


def _check_gap(gap: str, offset: int) -> None:
    i = 0
    while i < len(gap):
        char = gap[i]
        if char in " \t\n\r":
            i += 1
        elif gap.startswith(("--", "//"), i):
            end = min((j for j in (gap.find("\n", i), gap.find("\r", i)) if j != -1), default=len(gap))
            _check_comment(gap[i + 2 : end])
            i = end
        elif gap.startswith("/*", i):
            end = gap.find("*/", i + 2)
            if end == -1:
                _refuse("a block comment is not closed", PARSE_HINT)
            _check_comment(gap[i + 2 : end])
            i = end + 2
        elif char.isspace():
            _refuse(
                f"the SQL contains the Unicode space U+{ord(char):04X} outside a string at position "
                f"{offset + i}; engines disagree on whether it separates words",
                "replace it with an ordinary space",
            )
        else:
            _refuse(f"the text {gap[i : i + 20]!r} at position {offset + i} could not be read as SQL", PARSE_HINT)


def _check_comment(body: str) -> None:
    if "/*" in body or "*/" in body:
        _refuse(
            "a comment contains '/*' or '*/'; DuckDB and PostgreSQL nest block comments while Snowflake "
            "does not, so engines would disagree on where the comment ends",
            "remove the nested comment markers from the comment",
        )


def _parse_one(text: str, dialect: str) -> exp.Expr:
    import sqlglot
    from sqlglot import exp

    try:
        trees = sqlglot.parse(text, read=dialect)
    except RecursionError:
        raise
    except Exception as exc:  # ParseError, TokenError, and sqlglot's own internal errors
        shown = {"snowflake": "Snowflake", "duckdb": "DuckDB"}.get(dialect, dialect)
        _refuse(f"the SQL could not be parsed as {shown} SQL ({_first_line(exc)})", PARSE_HINT)
    statements = [tree for tree in trees if tree is not None and not isinstance(tree, exp.Semicolon)]
    if len(statements) != 1:
        _refuse(f"the SQL parses as {len(statements)} statements; exactly one is allowed", ONE_STATEMENT_HINT)
    return statements[0]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def _words(tokens: list[Token]) -> list[str]:
    """Upper-case keywords and names; quoted names and literals become "" so they never match a keyword."""
    from sqlglot.tokens import TokenType

    quoted = {TokenType.IDENTIFIER, TokenType.STRING, TokenType.RAW_STRING, TokenType.NATIONAL_STRING}
    return ["" if token.token_type in quoted else token.text.upper() for token in tokens]


def _leading_words(tokens: list[Token], count: int = 4) -> list[str]:
    return _words(tokens[:count])


# --- what kind of statement it is -----------------------------------------------------------------


def _refuse_by_leading_words(words: list[str], tokens: list[Token], *, write: bool) -> None:
    for size in (2, 1):
        key = " ".join(words[:size])
        if key in _REFUSED_LEADING:
            why, hint = _REFUSED_LEADING[key]
            _refuse(f"{key} is not allowed in {_tool(write)}: {why}", hint)
    if words[:1] == ["ALTER"] and write:
        return  # ALTER SCHEMA/DATABASE are read precisely below
    if words[:1] in (["CREATE"], ["ALTER"], ["DROP"], ["COMMENT"]):
        kind = _object_kind_from_words(words, tokens)
        _refuse_object_kind("COMMENT ON" if words[0] == "COMMENT" else words[0], kind, write=write)


def _object_kind_from_words(words: list[str], tokens: list[Token]) -> str:
    rest = _words(tokens[1:8])
    if words[:1] == ["COMMENT"]:
        rest = rest[rest.index("ON") + 1 :] if "ON" in rest else rest
    rest = [word for word in rest if word not in _CREATE_MODIFIERS]
    for size in (3, 2, 1):
        candidate = " ".join(rest[:size])
        if candidate in _SECURITY_OBJECTS or candidate in _CODE_OBJECTS:
            return candidate
    return rest[0] if rest else ""


def _refuse_object_kind(verb: str, kind: str, *, write: bool) -> None:
    """Refuse CREATE/ALTER/DROP/COMMENT of objects outside tables, views, schemas and databases."""
    if kind in _SECURITY_OBJECTS or kind.endswith(("INTEGRATION", "POLICY", "SECRET", "ROLE")):
        _refuse(
            f"{verb} {kind} is not allowed in {_tool(write)}: it administers accounts, privileges, "
            "secrets or network access",
            f"ask an administrator; {WRITE_TOOL} only changes tables, views, schemas and databases",
        )
    if kind in _CODE_OBJECTS:
        _refuse(
            f"{verb} {kind} is not allowed in {_tool(write)}: it defines code, schedules, stages or compute "
            "that the guard cannot check",
            WRITE_HINT,
        )


def _classify(tree: exp.Expr, tokens: list[Token], *, write: bool, embedded: bool) -> tuple[str, bool]:
    """The statement type and whether it is a query; refuses anything the tool does not accept."""
    from sqlglot import exp

    query_type = _query_type(tree)
    if query_type is None and isinstance(tree, exp.Show):
        query_type = "SHOW"
    if query_type is None and isinstance(tree, exp.Describe):
        query_type = "DESCRIBE"
    if query_type is None and isinstance(tree, exp.Command) and str(tree.this).upper() == "SHOW":
        if embedded:
            _refuse(
                f"SHOW {_command_words(tree)} is only available on Snowflake, not in the embedded DuckDB warehouse",
                "query information_schema, or use the list/describe tools",
            )
        _check_show_command(tokens)
        query_type = "SHOW"  # Snowflake SHOW only ever reads metadata; sqlglot knows few of its forms
    if query_type is not None:
        if write and tree.find(exp.Into):
            _refuse("SELECT ... INTO creates a table", f"use CREATE TABLE ... AS SELECT in {WRITE_TOOL}")
        if write:
            _refuse(f"{WRITE_TOOL} only runs DDL/DML, and this is a {query_type} query", f"use {READ_TOOL}")
        _check_tree(tree, write=False, embedded=embedded)
        return query_type, True

    if not write:
        _refuse(
            f"{READ_TOOL} only runs read-only queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) and this is "
            f"{_article(_describe(tree, tokens))}",
            READ_HINT,
        )
    statement_type = _write_type(tree, tokens)
    _check_tree(tree, write=True, embedded=embedded)
    return statement_type, False


_SHOW_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _check_show_command(tokens: list[Token]) -> None:
    """A SHOW that sqlglot only reads as a Command: names, literals, LIKE/IN/LIMIT words, nothing else."""
    from sqlglot.tokens import TokenType

    literal_types = {TokenType.STRING, TokenType.IDENTIFIER, TokenType.NUMBER, TokenType.RAW_STRING}
    for token in tokens:
        if token.token_type in literal_types or token.text in {".", ",", "(", ")", "=", "*"}:
            continue
        if not _SHOW_WORD.fullmatch(token.text):
            _refuse(f"{token.text!r} has no place in a SHOW command", READ_HINT)


def _query_type(tree: exp.Expr) -> str | None:
    from sqlglot import exp

    node = tree
    while isinstance(node, exp.Subquery):
        node = node.this
    if isinstance(node, (exp.Select, exp.SetOperation)):
        return "WITH" if _has_with(node) else "SELECT"
    if isinstance(node, exp.Values):
        return "VALUES"
    return None


def _has_with(node: exp.Expr) -> bool:
    return bool(node.args.get("with_") or node.args.get("with"))


def _describe(tree: exp.Expr, tokens: list[Token]) -> str:
    """A short upper-case name for a statement, e.g. 'DELETE', 'CREATE TABLE', 'MERGE'."""
    from sqlglot import exp

    if isinstance(tree, exp.Command):
        return f"{str(tree.this).upper()} {_command_words(tree)}".strip()
    if isinstance(tree, (exp.Create, exp.Drop, exp.Alter)):
        kind = str(tree.args.get("kind") or "").upper()
        verb = type(tree).__name__.upper()  # CREATE, DROP or ALTER
        return f"{verb} {kind}".strip()
    if isinstance(tree, exp.TruncateTable):
        return "TRUNCATE TABLE"
    if isinstance(tree, exp.MultitableInserts):
        return "INSERT"
    words = _words(tokens[:1])
    return words[0] if words and words[0] else type(tree).__name__.upper()


def _article(name: str) -> str:
    return f"an {name} statement" if name[:1] in "AEIOU" else f"a {name} statement"


def _command_words(tree: exp.Command, count: int = 1) -> str:
    expression = tree.args.get("expression")
    text = expression if isinstance(expression, str) else getattr(expression, "name", "")
    return " ".join(text.split()[:count]).upper()


def _write_type(tree: exp.Expr, tokens: list[Token]) -> str:
    """The statement type of an accepted write; refuses every other statement."""
    from sqlglot import exp

    if isinstance(tree, (exp.Insert, exp.MultitableInserts)):
        return "INSERT"
    if isinstance(tree, exp.Update):
        return "UPDATE"
    if isinstance(tree, exp.Delete):
        return "DELETE"
    if isinstance(tree, exp.Merge):
        return "MERGE"
    if isinstance(tree, exp.TruncateTable):
        return "TRUNCATE TABLE"
    if isinstance(tree, (exp.Create, exp.Drop, exp.Alter)):
        return _object_write_type(tree)
    if isinstance(tree, exp.Comment):
        kind = str(tree.args.get("kind") or "").upper()
        if kind not in _COMMENT_KINDS:
            _refuse(f"COMMENT ON {kind} is not allowed: only tables, views, columns, schemas and databases", WRITE_HINT)
        return "COMMENT"
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "ALTER":
        return _alter_schema_or_database(tokens)
    name = _describe(tree, tokens)
    if isinstance(tree, exp.Command):
        _refuse(
            f"{name} is not a statement the guard can read (sqlglot only sees it as an opaque command), so "
            "its effect cannot be checked",
            WRITE_HINT,
        )
    _refuse(f"{name} is not among the statements {WRITE_TOOL} runs", WRITE_HINT)


def _object_write_type(tree: exp.Expr) -> str:
    from sqlglot import exp

    verb = type(tree).__name__.upper()  # CREATE, DROP or ALTER
    kind = str(tree.args.get("kind") or "").upper()
    if kind not in _WRITE_OBJECT_KINDS:
        _refuse_object_kind(verb, kind, write=True)
        _refuse(
            f"{verb} {kind or 'of this object'} is not allowed: only tables, views, schemas and databases", WRITE_HINT
        )
    properties = tree.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.ExternalProperty):
            _refuse(f"{verb} EXTERNAL {kind} is not allowed: it reads files from a stage or cloud storage", WRITE_HINT)
        if isinstance(prop, exp.DynamicProperty):
            _refuse(f"{verb} DYNAMIC {kind} is not allowed: it schedules recurring warehouse compute", WRITE_HINT)
    if isinstance(tree, exp.Alter) and kind not in ("TABLE", "VIEW"):
        _refuse(f"ALTER {kind} is not allowed in this form", WRITE_HINT)
    if isinstance(tree, exp.Alter) and "POLICY" in tree.sql(dialect="snowflake").upper().split():
        _refuse(_POLICY_REFUSAL, "ask an administrator to change policies")
    return f"{verb} {kind}"


def _alter_schema_or_database(tokens: list[Token]) -> str:
    """ALTER SCHEMA/DATABASE, which sqlglot only reads as a Command: accept a few exact token shapes."""
    from sqlglot.tokens import TokenType

    words = _words(tokens)
    kind = words[1] if len(words) > 1 else ""
    if kind not in ("SCHEMA", "DATABASE"):
        _refuse_object_kind("ALTER", _object_kind_from_words(words, tokens), write=True)
        if "POLICY" in words:
            _refuse(_POLICY_REFUSAL, "ask an administrator to change policies")
        if kind in _WRITE_OBJECT_KINDS:
            _refuse(
                f"this ALTER {kind} form is not one the guard can read (sqlglot only sees an opaque command), "
                "so its effect cannot be checked",
                WRITE_HINT,
            )
        _refuse(f"ALTER {kind} is not allowed: only tables, views, schemas and databases can be altered", WRITE_HINT)
    i = 2
    if words[i : i + 2] == ["IF", "EXISTS"]:
        i += 2
    i = _skip_name(tokens, i)
    action = words[i : i + 2]
    name_types = (TokenType.VAR, TokenType.IDENTIFIER)
    if action in (["RENAME", "TO"], ["SWAP", "WITH"]):
        end = _skip_name(tokens, i + 2)
        if end == len(tokens) and end > i + 2 and tokens[i + 2].token_type in name_types:
            return f"ALTER {kind}"
    elif action == ["SET", "COMMENT"]:
        rest = tokens[i + 2 :]
        if len(rest) == 2 and rest[0].token_type == TokenType.EQ and rest[1].token_type == TokenType.STRING:
            return f"ALTER {kind}"
    elif action == ["UNSET", "COMMENT"] and len(tokens) == i + 2:
        return f"ALTER {kind}"
    _refuse(
        f"this ALTER {kind} form is not allowed: only RENAME TO, SWAP WITH and SET/UNSET COMMENT are "
        "(replication, sharing, failover and parameter changes administer the account)",
        "ask an administrator for other ALTER SCHEMA/DATABASE changes",
    )


def _skip_name(tokens: list[Token], i: int) -> int:
    """Index after a dotted object name starting at `i` (identifiers and unreserved words)."""
    from sqlglot.tokens import TokenType

    if i >= len(tokens) or tokens[i].token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
        return i
    i += 1
    while i + 1 < len(tokens) and tokens[i].token_type == TokenType.DOT:
        if tokens[i + 1].token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
            break
        i += 2
    return i


def _explain_parts(tokens: list[Token]) -> tuple[bool, int]:
    """For EXPLAIN [ANALYZE] [USING TEXT|JSON|TABULAR] <statement>: (analyze?, index of the statement)."""
    words = _words(tokens)
    i = 1
    analyze = words[i : i + 1] in (["ANALYZE"], ["ANALYSE"])
    i += analyze
    if words[i : i + 1] == ["USING"]:
        if words[i + 1 : i + 2] not in (["TEXT"], ["JSON"], ["TABULAR"]):
            _refuse("EXPLAIN USING takes TEXT, JSON or TABULAR", PARSE_HINT)
        i += 2
    if i >= len(tokens):
        _refuse("EXPLAIN needs a query to explain", PARSE_HINT)
    if words[i] == "EXPLAIN":
        _refuse("EXPLAIN of an EXPLAIN is not allowed", PARSE_HINT)
    return analyze, i


def _refuse_if_duckdb_reads_it_differently(text: str, tokens: list[Token], label: str) -> None:
    """sqlglot passes EXPLAIN through as raw text: DuckDB must split it into the very same tokens.

    Otherwise a Snowflake string like 'a\\' ... ' (backslash escape) or a // comment hides code that
    DuckDB would run, e.g. a DELETE in a CTE. `duckdb_sql` translates the query instead; this guards
    backends that do not use it.
    """
    from sqlglot.errors import TokenError

    spans = [(token.start, token.end) for token in tokens]
    try:
        duckdb_spans = [
            (token.start, token.end) for token in _tokenizer_class("duckdb")(dialect="duckdb").tokenize(text)
        ]
    except TokenError:
        duckdb_spans = []
    if duckdb_spans != spans:
        _refuse(
            f"DuckDB would read this {label} differently from Snowflake (backslash escapes in strings, "
            "// comments or $ quoting), so what it runs could differ from what was checked",
            "write strings with doubled quotes ('it''s') and comments with -- or /* */",
        )


def _check_explain(text: str, tokens: list[Token], *, write: bool, embedded: bool) -> _Accepted:
    """EXPLAIN is judged by what it wraps: only a read-only query (DuckDB's EXPLAIN ANALYZE runs it)."""
    if write:
        _refuse(f"{WRITE_TOOL} only runs DDL/DML, and EXPLAIN is a query", f"use {READ_TOOL}")
    analyze, i = _explain_parts(tokens)
    label = "EXPLAIN ANALYZE" if analyze else "EXPLAIN"
    if embedded:
        _refuse_if_duckdb_reads_it_differently(text, tokens, label)
    because = " because it executes the statement" if analyze else ""
    try:
        inner = _check(text[tokens[i].start :], write=False, embedded=embedded)
    except PolicyError as exc:
        inner_why = exc.message.removeprefix("SQL refused: ").rstrip(".")
        _refuse(
            f"{label} is only allowed around a read-only query{because}, and the explained statement was "
            f"refused: {inner_why}",
            exc.hint or READ_HINT,
        )
    if inner.statement_type in ("SHOW", "DESCRIBE", "EXPLAIN"):
        _refuse(f"{label} only explains queries (SELECT, WITH, VALUES), not {inner.statement_type}", READ_HINT)
    return _Accepted(sql=text, statement_type="EXPLAIN")


# --- walking the tree -----------------------------------------------------------------------------


@functools.cache
def _statement_nodes() -> tuple[type, ...]:
    from sqlglot import exp

    # fmt: off
    names = (
        "Insert", "Update", "Delete", "Merge", "MultitableInserts", "Create", "Drop", "Alter",
        "TruncateTable", "Command", "Copy", "Put", "Get", "ListStage", "Use", "Set", "Transaction",
        "Commit", "Rollback", "Grant", "Revoke", "Pragma", "Comment", "Attach", "Detach", "Install",
        "Export", "Undrop", "Analyze", "Refresh", "Cache", "Uncache", "LoadData", "Kill", "Execute",
        "Declare", "Summarize",
    )
    # fmt: on
    return tuple(cls for name in names if isinstance(cls := getattr(exp, name, None), type))


def _check_tree(tree: exp.Expr, *, write: bool, embedded: bool) -> None:
    """Refuse statements nested inside the statement, acting functions and (embedded) file access."""
    from sqlglot import exp

    statement_nodes = _statement_nodes()
    for node in tree.walk():
        if node is not tree and isinstance(node, statement_nodes) and not _is_part_of_root(node, tree):
            _refuse(
                f"the statement contains a nested {_describe(node, [])} "
                f"({node.sql(dialect='snowflake')[:80]!r}); only the top-level statement may change anything",
                WRITE_HINT if write else READ_HINT,
            )
        if isinstance(node, exp.Into):
            _refuse(
                "SELECT ... INTO creates a table",
                f"use CREATE TABLE ... AS SELECT in {WRITE_TOOL}" if write else READ_HINT,
            )
        if isinstance(node, exp.Lock) and not write:
            _refuse("SELECT ... FOR UPDATE/FOR SHARE takes row locks that block other sessions", READ_HINT)
        if isinstance(node, exp.Func):
            _check_function(node, write=write, embedded=embedded)
        if isinstance(node, exp.Column) and not write and node.name.upper() == "NEXTVAL":
            _refuse(
                f"{node.sql(dialect='snowflake')} takes the next value of a sequence, which consumes it",
                f"use sequences in {WRITE_TOOL} statements (e.g. INSERT ... seq.NEXTVAL) instead",
            )
        if embedded and isinstance(node, exp.Table):
            _check_embedded_table(node)
        if embedded and isinstance(node, exp.TableFromRows) and not isinstance(node.this, exp.Func):
            _refuse(
                f"TABLE({node.this.sql(dialect='snowflake')[:60]}) is not allowed in the embedded DuckDB "
                "warehouse: the guard cannot tell which table or file it names",
                EMBEDDED_HINT,
            )


def _is_part_of_root(node: exp.Expr, root: exp.Expr) -> bool:
    """MERGE's WHEN actions, INSERT ALL's branches and ALTER's actions belong to the statement itself."""
    from sqlglot import exp

    parent = node.parent
    if isinstance(root, exp.Merge):
        return isinstance(parent, exp.When)
    if isinstance(root, exp.MultitableInserts):
        return isinstance(node, exp.Insert) and (parent is root or isinstance(parent, exp.ConditionalInsert))
    if isinstance(root, exp.Alter):
        return parent is root and node.arg_key == "actions" and isinstance(node, (exp.Drop, exp.Alter))
    return False


def _function_names(node: exp.Func) -> set[str]:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        names = {node.name}
    elif isinstance(node, exp.DynamicIdentifier):
        names = set()
    else:
        names = {*type(node).sql_names(), node.key}
    return {name.lower() for name in names if name}


def _check_function(node: exp.Func, *, write: bool, embedded: bool) -> None:
    from sqlglot import exp

    if isinstance(node, exp.DynamicIdentifier) and node.expressions:
        _refuse("IDENTIFIER(...) used as a function name hides which function runs", "call the function by its name")
    names = _function_names(node)
    for name in names:
        if "system$" in name and name.upper() not in READ_ONLY_SYSTEM_FUNCTIONS:
            _refuse(
                f"{name.upper()} is not allowed: SYSTEM$ functions can cancel queries, abort sessions, send "
                "notifications or change account state; only these read-only ones are allowed: "
                + ", ".join(sorted(READ_ONLY_SYSTEM_FUNCTIONS)),
                "cancel or abort queries from Snowflake's UI or an administrator session",
            )
        if not write and name in ("nextval", "setval"):
            _refuse(f"{name.upper()}() changes a sequence", READ_HINT)
    if not embedded:
        return
    for name in names:
        if (
            name in EMBEDDED_DENIED_FUNCTIONS
            or name.startswith(EMBEDDED_DENIED_PREFIXES)
            or name.endswith(EMBEDDED_DENIED_SUFFIXES)
        ):
            _refuse(
                f"{name}() is not allowed in the embedded DuckDB warehouse: it reads local files or other "
                "databases, runs SQL from text, changes the engine or reveals its settings",
                EMBEDDED_HINT,
            )
    if _in_table_position(node) and not names & EMBEDDED_TABLE_FUNCTIONS:
        shown = sorted(names)[0] if names else node.sql(dialect="duckdb")[:40]
        _refuse(
            f"the table function {shown}() is not allowed in the embedded DuckDB warehouse; only "
            + ", ".join(sorted(EMBEDDED_TABLE_FUNCTIONS))
            + " are",
            EMBEDDED_HINT,
        )


def _in_table_position(node: exp.Expr) -> bool:
    from sqlglot import exp

    child, parent = node, node.parent
    while isinstance(parent, exp.Dot):
        child, parent = parent, parent.parent
    return isinstance(parent, (exp.Table, exp.TableFromRows, exp.From, exp.Join, exp.Lateral)) and (
        child.arg_key == "this"
    )


def _check_embedded_table(table: exp.Table) -> None:
    """DuckDB reads a file when a table name is a string or looks like a path (replacement scans)."""
    from sqlglot import exp

    for key in ("this", "db", "catalog"):
        part = table.args.get(key)
        if part is None or (isinstance(part, exp.Func) and not isinstance(part, exp.DynamicIdentifier)):
            continue  # table functions are judged by _check_function
        if isinstance(part, exp.DynamicIdentifier):
            part = part.this
        if isinstance(part, exp.Identifier):
            name = part.name
            if any(char in _FILE_NAME_CHARS for char in name):
                _refuse(
                    f"the table name {name!r} looks like a file path or URL; DuckDB would read that file",
                    EMBEDDED_HINT,
                )
            continue
        shown = part.sql(dialect="snowflake")[:60]
        reason = (
            "DuckDB reads a quoted string used as a table as a file"
            if isinstance(part, exp.Literal)
            else ("the guard cannot tell which table or file it names")
        )
        _refuse(f"{shown} is not allowed as a table in the embedded DuckDB warehouse: {reason}", EMBEDDED_HINT)


# --- the embedded translation ---------------------------------------------------------------------


def _to_duckdb(tree: exp.Expr) -> str:
    from sqlglot.errors import ErrorLevel

    try:
        return tree.sql(dialect="duckdb", comments=False, unsupported_level=ErrorLevel.RAISE)
    except RecursionError:
        raise
    except Exception as exc:
        _refuse(
            f"the statement cannot be translated to DuckDB for the embedded warehouse ({_first_line(exc)})",
            "rewrite it without Snowflake-only features, or run it on Snowflake",
        )


def _check_duckdb_translation(tree: exp.Expr, *, write: bool, original: str) -> None:
    """Check the DuckDB text the embedded warehouse will run, as DuckDB's dialect reads it."""
    from sqlglot import exp

    text = _to_duckdb(tree.copy())
    try:
        translated = _parse_one(text, "duckdb")
    except PolicyError as exc:
        why = exc.message.removeprefix("SQL refused: ").rstrip(".")
        _refuse(
            f"the DuckDB translation of the statement could not be checked: {why}",
            "rewrite it without Snowflake-only features, or run it on Snowflake",
        )
    if original == "SHOW" and not isinstance(translated, exp.Show):
        _refuse(
            "this SHOW is only available on Snowflake, not in the embedded DuckDB warehouse",
            "query information_schema, or use the list/describe tools",
        )
    if isinstance(translated, exp.Command):
        _refuse(
            f"the DuckDB translation is an opaque {str(translated.this).upper()} command the guard cannot "
            "read, so it cannot run in the embedded warehouse",
            "rewrite it without Snowflake-only features, or run it on Snowflake",
        )
    query_type = _query_type(translated)
    if original in ("SHOW", "DESCRIBE"):
        if not isinstance(translated, (exp.Show, exp.Describe)):
            _refuse(f"the DuckDB translation of this {original} is not a {original}", READ_HINT)
    elif (query_type is not None) == write:
        _refuse(f"the DuckDB translation of this {original} statement is a different kind of statement", READ_HINT)
    elif write:
        _write_type(translated, [])
    _check_tree(translated, write=write, embedded=True)
