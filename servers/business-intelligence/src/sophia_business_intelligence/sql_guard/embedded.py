"""The embedded DuckDB sandbox: what a statement may touch there, and the check of its DuckDB translation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sophia_shared.errors import PolicyError

from .lexing import parse_one, tokenizer_class
from .rules import CATALOG_HINT, EMBEDDED_HINT, READ_HINT, TRANSLATE_HINT, refuse
from .statements import query_type, write_type
from .translation import resolve_identifier, translate

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.tokens import Token

# Table functions the embedded warehouse may call in FROM: pure generators and catalog readers. Every
# other DuckDB table function is refused (file readers, scanners, query(), logging, external resources).
EMBEDDED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "explode",  # sqlglot's name for Snowflake FLATTEN, which the translation turns into UNNEST
        "flatten",
        "generator",  # Snowflake GENERATOR, translated to range()
        "split_to_table",  # translated to UNNEST
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

# Catalog views (read without parentheses) that reveal settings, file paths, secrets or logs; the table
# functions of the same names are refused above.
EMBEDDED_DENIED_CATALOG_VIEWS = frozenset(
    {
        "pg_settings",
        "pragma_database_list",
        "duckdb_databases",
        "duckdb_settings",
        "duckdb_secrets",
        "duckdb_extensions",
        "duckdb_logs",
        "duckdb_log_contexts",
        "duckdb_memory",
        "duckdb_temporary_files",
        "duckdb_variables",
        "duckdb_external_file_cache",
    }
)
# The Snowflake table functions the embedded warehouse translates, named in refusals (not DuckDB's names).
SNOWFLAKE_TABLE_FUNCTIONS = ("FLATTEN", "SPLIT_TO_TABLE", "GENERATOR")


def check_embedded_function(node: exp.Func, names: set[str]) -> None:
    """Functions that reach files, other databases or the engine; table functions outside the allow-list."""
    from sqlglot import exp

    if isinstance(node, exp.DynamicIdentifier):
        return  # IDENTIFIER('schema.table') as a table name: judged by check_embedded_table
    for name in names:
        if (
            name in EMBEDDED_DENIED_FUNCTIONS
            or name.startswith(EMBEDDED_DENIED_PREFIXES)
            or name.endswith(EMBEDDED_DENIED_SUFFIXES)
        ):
            refuse(
                f"{name}() is not allowed in the embedded DuckDB warehouse: it reads local files or other "
                "databases, runs SQL from text, changes the engine or reveals its settings",
                EMBEDDED_HINT,
            )
    if _in_table_position(node) and not names & EMBEDDED_TABLE_FUNCTIONS:
        shown = sorted(names)[0].upper() if names else node.sql(dialect="snowflake")[:40]
        refuse(
            f"the table function {shown}() is not available in the embedded DuckDB warehouse; of Snowflake's "
            f"table functions it translates {', '.join(SNOWFLAKE_TABLE_FUNCTIONS)}",
            f"{TRANSLATE_HINT}; for the catalog, {CATALOG_HINT}",
        )


def _in_table_position(node: exp.Expr) -> bool:
    from sqlglot import exp

    child, parent = node, node.parent
    while isinstance(parent, exp.Dot):
        child, parent = parent, parent.parent
    return isinstance(parent, (exp.Table, exp.TableFromRows, exp.From, exp.Join, exp.Lateral)) and (
        child.arg_key == "this"
    )


def check_embedded_table(table: exp.Table) -> None:
    """DuckDB reads a file when a table name is a string or looks like a path (replacement scans)."""
    from sqlglot import exp

    name = table.args.get("this")
    if isinstance(name, exp.Identifier) and name.name.lower() in EMBEDDED_DENIED_CATALOG_VIEWS:
        refuse(
            f"the catalog view {name.name} is not allowed in the embedded DuckDB warehouse: it reveals the "
            "engine's settings, file paths or logs",
            CATALOG_HINT,
        )
    if isinstance(name, exp.DynamicIdentifier) and not name.expressions:
        check_embedded_table(resolve_identifier(name))
        return
    for key in ("this", "db", "catalog"):
        part = table.args.get(key)
        if part is None or (isinstance(part, exp.Func) and not isinstance(part, exp.DynamicIdentifier)):
            continue  # table functions are judged by check_embedded_function
        if isinstance(part, exp.DynamicIdentifier):
            part = part.this
        if isinstance(part, exp.Identifier):
            if any(char in _FILE_NAME_CHARS for char in part.name):
                refuse(
                    f"the table name {part.name!r} looks like a file path or URL; DuckDB would read that file",
                    EMBEDDED_HINT,
                )
            continue
        shown = part.sql(dialect="snowflake")[:60]
        reason = (
            "DuckDB reads a quoted string used as a table as a file"
            if isinstance(part, exp.Literal)
            else "the guard cannot tell which table or file it names"
        )
        refuse(f"{shown} is not allowed as a table in the embedded DuckDB warehouse: {reason}", EMBEDDED_HINT)


def refuse_if_duckdb_reads_it_differently(text: str, tokens: list[Token], label: str) -> None:
    """sqlglot passes EXPLAIN through as raw text: DuckDB must split it into the very same tokens.

    Otherwise a Snowflake string like 'a\\' ... ' (backslash escape) or a // comment hides code that
    DuckDB would run, e.g. a DELETE in a CTE. The embedded pipeline translates the query instead; this
    guards backends that do not.
    """
    from sqlglot.errors import TokenError

    spans = [(token.start, token.end) for token in tokens]
    try:
        duckdb_spans = [
            (token.start, token.end) for token in tokenizer_class("duckdb")(dialect="duckdb").tokenize(text)
        ]
    except TokenError:
        duckdb_spans = []
    if duckdb_spans != spans:
        refuse(
            f"DuckDB would read this {label} differently from Snowflake (backslash escapes in strings, "
            "// comments or $ quoting), so what it runs could differ from what was checked",
            "write strings with doubled quotes ('it''s') and comments with -- or /* */",
        )


def duckdb_translation(
    tree: exp.Expr, text: str, tokens: list[Token], *, write: bool, statement_type: str
) -> tuple[str, exp.Expr]:
    """The DuckDB text the embedded warehouse will run and its tree as DuckDB's dialect reads it.

    The caller walks that tree with the same checks as the Snowflake one: it is what actually runs.
    """
    from sqlglot import exp

    duckdb_text = translate(tree, text, tokens)
    try:
        translated = parse_one(duckdb_text, "duckdb")
    except PolicyError as exc:
        why = exc.message.removeprefix("SQL refused: ").rstrip(".")
        refuse(
            f"its DuckDB translation could not be read back ({why}); this is a gap in the translation", TRANSLATE_HINT
        )
    if isinstance(translated, exp.Command):
        refuse(
            f"the DuckDB translation is an opaque {str(translated.this).upper()} command the guard cannot "
            "read, so it cannot run in the embedded warehouse",
            TRANSLATE_HINT,
        )
    kind = query_type(translated)
    if statement_type == "SHOW" and kind is None and not isinstance(translated, exp.Show):
        refuse("this SHOW is only available on Snowflake, not in the embedded DuckDB warehouse", CATALOG_HINT)
    elif statement_type == "DESCRIBE" and not isinstance(translated, exp.Describe):
        refuse("the DuckDB translation of this DESCRIBE is not a DESCRIBE", CATALOG_HINT)
    elif statement_type not in ("SHOW", "DESCRIBE") and (kind is not None) == write:
        refuse(f"the DuckDB translation of this {statement_type} statement is a different kind of statement", READ_HINT)
    elif write:
        write_type(translated, [])
    return duckdb_text, translated
