"""Reading the text: one statement, no hidden characters or comments, nesting limits."""

from __future__ import annotations

import pytest
import sqlglot

from sophia_business_intelligence.sql_guard import (
    check_read_only,
)
from tests.unit.bi.sql_guard.refusals import refused_read, refused_write

# --- one statement only ---------------------------------------------------------------------------

MULTI_STATEMENT = [
    "SELECT 1; DROP TABLE t",
    "SELECT 1;DROP TABLE t",
    "SELECT 1 ; ; DELETE FROM t",
    "SELECT 1;\nDELETE FROM t",
    "SELECT 1 -- comment\n; DROP TABLE t",
    "SELECT 1 /* comment */; DROP TABLE t",
    "SELECT 'a'; SELECT 'b'",
    "SELECT '--'; DROP TABLE t",
    "SELECT '/*'; DROP TABLE t; SELECT '*/'",
    "SELECT $$a$$; DROP TABLE t",
    "SELECT 'a\\\\'; DROP TABLE t; --'",
    'SELECT "a;b"; DROP TABLE t',
    "SHOW TABLES; DROP TABLE t",
    "SHOW GRANTS TO ROLE x; DROP TABLE t",
    "DESCRIBE TABLE t; DROP TABLE t",
    "EXPLAIN SELECT 1; DROP TABLE t",
    "EXPLAIN ANALYZE SELECT 1; DELETE FROM t",
    "WITH x AS (SELECT 1) SELECT * FROM x; TRUNCATE TABLE t",
    "BEGIN SELECT 1; END",
    "DECLARE x INT; BEGIN RETURN 1; END",
    "SELECT 1; CALL p()",
    "SELECT 1; USE ROLE ACCOUNTADMIN",
    "SELECT 1 // comment\n; DROP TABLE t",
]


@pytest.mark.parametrize("sql", MULTI_STATEMENT)
def test_read_rejects_second_statement(sql: str) -> None:
    error = refused_read(sql)
    assert "statements" in error.message
    assert "one statement per call" in error.hint


@pytest.mark.parametrize("sql", ["INSERT INTO t VALUES (1); DROP TABLE u", "DELETE FROM t; DELETE FROM u"])
def test_write_rejects_second_statement(sql: str) -> None:
    assert "2 statements" in refused_write(sql).message


def test_second_statement_error_says_how_many_and_what_to_do() -> None:
    error = refused_read("SELECT 1; SELECT 2; DROP TABLE t")
    assert "3 statements" in error.message
    assert "split the script" in error.agent_message()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 ->> DELETE FROM t",  # sqlglot alone reads this as JSON extraction inside one SELECT
        "SHOW GRANTS ->> DELETE FROM t",
        "SHOW TABLES ->> SELECT * FROM $1",
        "SELECT * FROM t WHERE a = 1 ->> DROP TABLE t",
    ],
)
def test_read_rejects_statements_chained_with_the_flow_operator(sql: str) -> None:
    assert "flow operator" in refused_read(sql).message


def test_sqlglot_alone_would_read_a_flow_chain_as_one_select() -> None:
    (tree,) = sqlglot.parse("SELECT 1 ->> DELETE FROM t", read="snowflake")
    assert isinstance(tree, sqlglot.exp.Select)


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW GRANTS ON TABLE t || x",
        "SHOW GRANTS ON TABLE t; DELETE FROM t",
        "SHOW GRANTS TO ROLE r -> x",
    ],
)
def test_read_refuses_show_commands_with_operators(sql: str) -> None:
    refused_read(sql)


@pytest.mark.parametrize("sql", ["", "   ", ";", ";;;", "-- only a comment", "/* only a comment */", "\n;\n"])
def test_read_rejects_empty_input(sql: str) -> None:
    assert "no SQL statement" in refused_read(sql).message


# --- comment, quote and character tricks ----------------------------------------------------------

UNREADABLE = [
    "SELECT 'abc",
    'SELECT "abc',
    "SELECT $$abc",
    "SELECT 1 /* unterminated",
    "SELECT 'a\\'; DROP TABLE t",  # backslash escapes the quote in Snowflake: the string never ends
    "SELECT 1；DROP TABLE t",  # a full-width semicolon is not a separator
    "SELECT $tag$ x $tag$",
    "SELECT * FROM t WHERE a = %s",  # client-side formatting placeholders are not SQL
    "\ufeffSELECT 1",
    "SELECT 1 1 1",
    "SELECT SYSTEM $CANCEL_QUERY('x')",
    "SELECT (DELETE FROM t RETURNING 1)",
]


@pytest.mark.parametrize("sql", UNREADABLE)
def test_read_refuses_sql_it_cannot_parse(sql: str) -> None:
    message = refused_read(sql).message
    assert "could not be" in message or "statements" in message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 /* /* */, '*/ ; DROP TABLE t; --'",  # DuckDB nests comments: the DROP would run
        "SELECT 1 /* a /* b */",
        "SELECT 1 -- */ DROP TABLE t",
        "SELECT 1 // x */ y",
        "/* /* */ SELECT 1",
    ],
)
def test_read_refuses_nested_comment_markers(sql: str) -> None:
    assert "'/*' or '*/'" in refused_read(sql).message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1\x00",
        "SELECT 'a\x00b'",
        "SELECT 1 -- x\x0b; DROP TABLE t",
        "SELECT 1 -- x\x0c; DROP TABLE t",
        "SELECT 1 -- x\x85; DROP TABLE t",
        "SELECT 1 -- x\u2028; DROP TABLE t",
        "SELECT 1 -- x\u2029; DROP TABLE t",
        "SELECT 1 AS a --\r, $$\n, SYSTEM$CANCEL_ALL_QUERIES() --$$",
        "SELECT 1 -- x\r, 2",
        "SELECT\x1b1",
    ],
)
def test_read_refuses_control_characters_engines_disagree_on(sql: str) -> None:
    assert "ends a comment" in refused_read(sql).message


@pytest.mark.parametrize("sql", ["SELECT\u00a01", "SELECT 1\u3000FROM t", "SELECT 1 \u2003-- x"])
def test_read_refuses_unicode_spaces_outside_strings(sql: str) -> None:
    assert "Unicode space" in refused_read(sql).message


def test_read_accepts_unicode_inside_strings() -> None:
    assert check_read_only("SELECT 'caf\u00e9\u00a0\u2014 ok' AS s", dialect="snowflake").write is False


def test_read_accepts_crlf_line_breaks_after_comments() -> None:
    assert check_read_only("-- note\r\nSELECT 1 --x\r\n, 2", dialect="snowflake").write is False


def test_deeply_nested_sql_is_refused_not_crashing() -> None:
    assert "nested too deeply" in refused_read("SELECT " + "(" * 3000 + "1" + ")" * 3000).message


def test_oversized_sql_is_refused() -> None:
    assert "characters long" in refused_read("SELECT 1 " + " " * 300_000).message


def test_non_text_is_refused() -> None:
    assert "expected SQL text" in refused_read(b"SELECT 1").message  # type: ignore[arg-type]
