"""The SQL statement policy of the business-intelligence server: the one place that decides what runs.

`check_read_only` guards the read tool (warehouse_query), `check_write` the gated write tool
(warehouse_execute). SQL is read with sqlglot in the Snowflake dialect; for the embedded DuckDB
warehouse the statement is also translated to DuckDB and the translation is checked again, because
that text is what DuckDB runs. Anything the guard cannot read with certainty is refused, never
guessed at. The rule tables are in `rules.py`, the DuckDB sandbox in `embedded.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sophia_shared.errors import PolicyError

from .embedded import (
    EMBEDDED_TABLE_FUNCTIONS,
    duckdb_translation,
    refuse_if_duckdb_reads_it_differently,
)
from .lexing import leading_words, numbered_placeholders, parse_one, refuse_nesting, single_statement
from .loading import sqlglot_session
from .rules import MAX_SQL_CHARS, READ_HINT, READ_ONLY_SYSTEM_FUNCTIONS, READ_TOOL, WRITE_TOOL, refuse
from .statements import classify, explain_parts, refuse_by_leading_words
from .translation import translate
from .tree import check_tree

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.tokens import Token

__all__ = [
    "EMBEDDED_TABLE_FUNCTIONS",
    "MAX_SQL_CHARS",
    "READ_ONLY_SYSTEM_FUNCTIONS",
    "READ_TOOL",
    "WRITE_TOOL",
    "CheckedStatement",
    "check_read_only",
    "check_write",
    "duckdb_sql",
    "require_checked",
]

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


def duckdb_sql(sql: str) -> str:
    """The DuckDB text the embedded warehouse runs for an already-checked Snowflake statement.

    Comments are dropped (DuckDB nests block comments, Snowflake does not); what cannot be translated
    faithfully raises `PolicyError`. EXPLAIN keeps ANALYZE and drops Snowflake's USING clause.
    """
    with sqlglot_session():
        try:
            text, tokens = single_statement(sql)
            if tokens[0].text.upper() == "EXPLAIN":
                analyze, i = explain_parts(tokens)
                inner, inner_tokens = single_statement(text[tokens[i].start :])
                return _explained(analyze, translate(_parse(inner, inner_tokens), inner, inner_tokens))
            return translate(_parse(text, tokens), text, tokens)
        except RecursionError:
            refuse_nesting()


# --- the pipeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accepted:
    sql: str
    statement_type: str
    duckdb: str  # the checked DuckDB translation; "" when checking for Snowflake


def _checked(sql: str, *, write: bool, dialect: str) -> CheckedStatement:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    embedded = dialect == "duckdb"
    with sqlglot_session():
        try:
            accepted = _check(sql, write=write, embedded=embedded)
        except RecursionError:
            refuse_nesting()
    run = accepted.duckdb if embedded else accepted.sql
    return CheckedStatement(accepted.sql, run, dialect, accepted.statement_type, write, _GUARD)


def _check(sql: str, *, write: bool, embedded: bool) -> _Accepted:
    text, tokens = single_statement(sql)
    said = leading_words(tokens)
    if said[:1] == ["EXPLAIN"]:
        return _check_explain(text, tokens, write=write, embedded=embedded)
    refuse_by_leading_words(said, tokens, write=write)
    tree = _parse(text, tokens)
    statement_type = classify(tree, tokens, write=write, embedded=embedded)
    check_tree(tree, write=write, embedded=embedded)
    if not embedded:
        return _Accepted(text, statement_type, "")
    duckdb_text, translated = duckdb_translation(tree, text, tokens, write=write, statement_type=statement_type)
    check_tree(translated, write=write, embedded=True)
    return _Accepted(text, statement_type, duckdb_text)


def _parse(text: str, tokens: list[Token]) -> exp.Expr:
    return parse_one(numbered_placeholders(text, tokens), "snowflake")


def _explained(analyze: bool, inner: str) -> str:
    return f"EXPLAIN ANALYZE {inner}" if analyze else f"EXPLAIN {inner}"


def _check_explain(text: str, tokens: list[Token], *, write: bool, embedded: bool) -> _Accepted:
    """EXPLAIN is judged by what it wraps: only a read-only query (DuckDB's EXPLAIN ANALYZE runs it)."""
    if write:
        refuse(f"{WRITE_TOOL} only runs DDL/DML, and EXPLAIN is a query", f"use {READ_TOOL}")
    analyze, i = explain_parts(tokens)
    label = "EXPLAIN ANALYZE" if analyze else "EXPLAIN"
    if embedded:
        refuse_if_duckdb_reads_it_differently(text, tokens, label)
    because = " because it executes the statement" if analyze else ""
    try:
        inner = _check(text[tokens[i].start :], write=False, embedded=embedded)
    except PolicyError as exc:
        inner_why = exc.message.removeprefix("SQL refused: ").rstrip(".")
        refuse(
            f"{label} is only allowed around a read-only query{because}, and the explained statement was "
            f"refused: {inner_why}",
            exc.hint or READ_HINT,
        )
    if inner.statement_type in ("SHOW", "DESCRIBE", "EXPLAIN"):
        refuse(f"{label} only explains queries (SELECT, WITH, VALUES), not {inner.statement_type}", READ_HINT)
    return _Accepted(text, "EXPLAIN", _explained(analyze, inner.duckdb) if embedded else "")
