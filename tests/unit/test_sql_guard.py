"""The SQL guard: what warehouse_query and warehouse_execute accept, and the bypasses they refuse."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlglot

from sophia_business_intelligence.sql_guard import (
    EMBEDDED_TABLE_FUNCTIONS,
    READ_ONLY_SYSTEM_FUNCTIONS,
    CheckedStatement,
    check_read_only,
    check_write,
    duckdb_sql,
)
from sophia_shared.errors import PolicyError


def refused_read(sql: str, *, embedded: bool = False) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        check_read_only(sql, embedded=embedded)
    return caught.value


def refused_write(sql: str, *, embedded: bool = False) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        check_write(sql, embedded=embedded)
    return caught.value


# --- legitimate Snowflake analytics that warehouse_query must accept ------------------------------

ANALYTICS_QUERIES = [
    "SELECT region, SUM(amount) AS revenue FROM sales GROUP BY region ORDER BY revenue DESC LIMIT 10",
    "SELECT customer_id, SUM(amount) OVER (PARTITION BY customer_id ORDER BY order_date "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running_total FROM orders",
    "SELECT *, LAG(amount) OVER (PARTITION BY account_id ORDER BY closed_at) AS prev_amount FROM deals",
    "SELECT * FROM deals QUALIFY ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY updated_at DESC) = 1",
    "SELECT name FROM accounts WHERE name ILIKE '%fintech%'",
    "SELECT IFF(amount > 10000, 'large', 'small') AS bucket, COUNT(*) FROM deals GROUP BY 1",
    "SELECT DATEADD(day, -30, CURRENT_DATE()) AS since, DATEDIFF(day, created_at, closed_at) FROM deals",
    "SELECT DATE_TRUNC('month', closed_at) AS month, COUNT_IF(stage = 'won') AS won FROM deals GROUP BY 1",
    "SELECT t.id, f.value::string AS tag FROM tickets t, LATERAL FLATTEN(input => t.tags) f",
    "SELECT * FROM (SELECT region, quarter, amount FROM sales) "
    "PIVOT (SUM(amount) FOR quarter IN ('Q1', 'Q2', 'Q3', 'Q4'))",
    "SELECT * FROM monthly UNPIVOT (amount FOR month IN (jan, feb, mar))",
    "SELECT amount::NUMBER(10, 2), created_at::DATE, TRY_CAST(code AS INT) FROM deals",
    "SELECT payload:customer.name::string AS customer, payload:items[0].sku AS first_sku FROM events",
    'SELECT src:"quoted key"::varchar FROM raw_events',
    "WITH won AS (SELECT * FROM deals WHERE stage = 'won') SELECT COUNT(*) FROM won",
    "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
    "SELECT a.id, b.total FROM accounts a LEFT JOIN "
    "(SELECT account_id, SUM(amount) AS total FROM deals GROUP BY account_id) b ON a.id = b.account_id",
    "SELECT id FROM a UNION ALL SELECT id FROM b",
    "SELECT id FROM a MINUS SELECT id FROM b",
    "SELECT id FROM a INTERSECT SELECT id FROM b",
    "SELECT NVL(owner, 'unassigned'), COALESCE(region, 'n/a'), ZEROIFNULL(amount) FROM deals",
    "SELECT LISTAGG(name, ', ') WITHIN GROUP (ORDER BY name) FROM reps",
    "SELECT APPROX_COUNT_DISTINCT(user_id), MEDIAN(amount) FROM deals",
    "SELECT TO_CHAR(closed_at, 'YYYY-MM'), TO_DATE('2024-01-01') FROM deals",
    "SELECT * FROM deals WHERE closed_at BETWEEN '2024-01-01' AND '2024-03-31' AND stage IN ('won', 'lost')",
    "SELECT * FROM deals SAMPLE (10)",
    "SELECT * FROM deals AT(OFFSET => -3600)",
    "SELECT REGEXP_SUBSTR(email, '@(.*)$', 1, 1, 'e', 1) AS domain FROM contacts",
    "SELECT OBJECT_CONSTRUCT('a', 1), ARRAY_CONSTRUCT(1, 2, 3), PARSE_JSON('{\"a\": 1}')",
    "SELECT SNOWFLAKE.CORTEX.SENTIMENT(transcript) FROM calls",
    "SELECT SNOWFLAKE.CORTEX.COMPLETE('mistral-large', 'Summarise: ' || transcript) FROM calls LIMIT 5",
    "SELECT * FROM TABLE(RESULT_SCAN(LAST_QUERY_ID()))",
    "SELECT SEQ4(), UNIFORM(1, 10, RANDOM()) FROM TABLE(GENERATOR(ROWCOUNT => 10))",
    "SELECT * FROM analytics.public.deals WHERE owner = ?",
    "SELECT COUNT(*) FROM deals WHERE id = :1",
    'SELECT * FROM "Analytics"."Public"."Deals"',
    "SELECT SYSTEM$TYPEOF(payload) FROM events LIMIT 1",
    "SELECT SYSTEM$CLUSTERING_INFORMATION('analytics.public.deals')",
    "SELECT CURRENT_DATABASE(), CURRENT_SCHEMA(), CURRENT_USER(), CURRENT_ROLE()",
    "SELECT * FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'PUBLIC'",
    "SELECT * FROM deals MATCH_RECOGNIZE (PARTITION BY account_id ORDER BY ts "
    "MEASURES FIRST(ts) AS start_ts PATTERN (a b+) DEFINE b AS amount > PREV(amount))",
    "SELECT TOP 10 * FROM deals",
    "SELECT seq.CURRVAL",
    "SELECT 'it''s', 'back\\\\slash', $$dollar 'quoted' text; with a semicolon$$",
    "SELECT 'a;b' AS x, \"odd;name\" FROM t -- a comment with ; inside",
    "VALUES (1, 'a'), (2, 'b')",
    "(SELECT 1)",
    "FROM deals SELECT amount",
    "sElEcT 1",
    "select\n*\nfrom\nt",
    "SELECT\t1\r\nFROM t\r\n",
    "/* report: slipped deals */ SELECT * FROM deals WHERE close_date < CURRENT_DATE();",
    "-- quarterly revenue\nSELECT 1 AS x;",
    "SELECT 1; -- trailing note",
    "SELECT 1 // a Snowflake line comment",
    "SELECT 1;;",
]


@pytest.mark.parametrize("sql", ANALYTICS_QUERIES)
def test_read_accepts_snowflake_analytics_query(sql: str) -> None:
    checked = check_read_only(sql)
    assert checked.is_query
    assert checked.statement_type in {"SELECT", "WITH", "VALUES"}


EMBEDDED_ANALYTICS_QUERIES = [
    "SELECT region, SUM(amount) AS revenue FROM sales GROUP BY region ORDER BY revenue DESC LIMIT 10",
    "SELECT * FROM deals QUALIFY ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY updated_at DESC) = 1",
    "SELECT name FROM accounts WHERE name ILIKE '%fintech%'",
    "SELECT IFF(amount > 10000, 'large', 'small') AS bucket, COUNT(*) FROM deals GROUP BY 1",
    "SELECT DATEADD(day, -30, CURRENT_DATE()) AS since, DATEDIFF(day, created_at, closed_at) FROM deals",
    "SELECT payload:customer.name::string AS customer FROM events",
    "SELECT * FROM (SELECT region, quarter, amount FROM sales) PIVOT (SUM(amount) FOR quarter IN ('Q1', 'Q2'))",
    "WITH won AS (SELECT * FROM deals WHERE stage = 'won') SELECT COUNT(*) FROM won",
    "SELECT SEQ4() FROM TABLE(GENERATOR(ROWCOUNT => 10))",
    "SELECT * FROM range(10)",
    "SELECT * FROM unnest([1, 2, 3])",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM analytics.main.deals WHERE owner = ?",
    "SELECT 'a;b', $$x; y$$ FROM t",
    "SHOW TABLES",
    "DESCRIBE TABLE deals",
    "EXPLAIN SELECT * FROM deals",
    "EXPLAIN ANALYZE SELECT COUNT(*) FROM deals",
]


@pytest.mark.parametrize("sql", EMBEDDED_ANALYTICS_QUERIES)
def test_embedded_read_accepts_query_duckdb_can_run(sql: str) -> None:
    assert check_read_only(sql, embedded=True).is_query


@pytest.mark.parametrize(
    ("sql", "statement_type"),
    [
        ("SELECT 1", "SELECT"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
        ("SELECT 1 UNION SELECT 2", "SELECT"),
        ("VALUES (1)", "VALUES"),
        ("SHOW TABLES IN SCHEMA analytics.public", "SHOW"),
        ("SHOW GRANTS ON TABLE deals", "SHOW"),
        ("SHOW WAREHOUSES", "SHOW"),
        ("DESCRIBE TABLE deals", "DESCRIBE"),
        ("DESC VIEW v_deals", "DESCRIBE"),
        ("EXPLAIN SELECT 1", "EXPLAIN"),
        ("EXPLAIN USING TEXT SELECT 1", "EXPLAIN"),
        ("explain analyze select * from t", "EXPLAIN"),
    ],
)
def test_read_reports_statement_type(sql: str, statement_type: str) -> None:
    assert check_read_only(sql) == CheckedStatement(sql=sql, statement_type=statement_type, is_query=True)


@pytest.mark.parametrize(
    ("sql", "kept"),
    [
        ("  SELECT 1  ;  ", "SELECT 1"),
        ("SELECT 1;;", "SELECT 1"),
        (";SELECT 1", "SELECT 1"),
        ("SELECT 1; -- bye", "SELECT 1"),
        ("SELECT 1 /* ; DROP TABLE t */", "SELECT 1"),
        ("SELECT 1 -- trailing comment could swallow an appended LIMIT", "SELECT 1"),
        ("-- note\nSELECT /* keep */ 1;", "-- note\nSELECT /* keep */ 1"),
        ("SELECT 'x;y' FROM t -- ;", "SELECT 'x;y' FROM t"),
    ],
)
def test_read_returns_the_statement_without_trailing_semicolons_or_comments(sql: str, kept: str) -> None:
    assert check_read_only(sql).sql == kept


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
    assert check_read_only("SELECT 'caf\u00e9\u00a0\u2014 ok' AS s").is_query


def test_read_accepts_crlf_line_breaks_after_comments() -> None:
    assert check_read_only("-- note\r\nSELECT 1 --x\r\n, 2").is_query


def test_deeply_nested_sql_is_refused_not_crashing() -> None:
    assert "nested too deeply" in refused_read("SELECT " + "(" * 3000 + "1" + ")" * 3000).message


def test_oversized_sql_is_refused() -> None:
    assert "characters long" in refused_read("SELECT 1 " + " " * 300_000).message


def test_non_text_is_refused() -> None:
    assert "expected SQL text" in refused_read(b"SELECT 1").message  # type: ignore[arg-type]


# --- writes hidden in reads -----------------------------------------------------------------------

DML_AND_DDL_IN_READS = [
    "DELETE FROM t",
    "dElEtE fRoM t",
    "\n\t  DELETE\tFROM t  ",
    "/* harmless */ DELETE FROM t",
    "-- SELECT\nDELETE FROM t",
    "INSERT INTO t VALUES (1)",
    "INSERT OVERWRITE INTO t SELECT 1",
    "INSERT ALL INTO t VALUES (1) INTO u VALUES (2) SELECT 1",
    "UPDATE t SET a = 1",
    "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
    "TRUNCATE TABLE t",
    "DROP TABLE t",
    "drop table t",
    "CREATE TABLE t (a INT)",
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW v AS SELECT 1",
    "ALTER TABLE t ADD COLUMN c INT",
    "COMMENT ON TABLE t IS 'x'",
    "UNDROP TABLE t",
    "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
]


@pytest.mark.parametrize("sql", DML_AND_DDL_IN_READS)
def test_read_refuses_dml_and_ddl(sql: str) -> None:
    error = refused_read(sql)
    assert "warehouse_query" in error.message
    assert "warehouse_execute" in error.hint or "warehouse_execute" in error.message


@pytest.mark.parametrize(
    "sql",
    [
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
        "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x",
        "WITH a AS (SELECT 1), b AS (DELETE FROM t RETURNING *) SELECT * FROM a, b",
        "WITH x AS (SELECT * FROM (WITH y AS (DELETE FROM t RETURNING *) SELECT * FROM y)) SELECT * FROM x",
        "SELECT * FROM (WITH y AS (DELETE FROM t RETURNING *) SELECT * FROM y)",
        "SELECT 1 UNION ALL (WITH y AS (DELETE FROM t RETURNING 1) SELECT * FROM y)",
    ],
)
def test_read_refuses_dml_nested_in_a_query(sql: str) -> None:
    assert "nested" in refused_read(sql).message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * INTO t2 FROM t",
        "SELECT 1 AS x INTO y",
        "SELECT * FROM (SELECT * INTO t2 FROM t)",
        "WITH x AS (SELECT 1) SELECT * INTO t2 FROM x",
    ],
)
def test_read_refuses_select_into(sql: str) -> None:
    assert "SELECT ... INTO creates a table" in refused_read(sql).message


def test_write_refuses_select_into_and_points_to_ctas() -> None:
    error = refused_write("SELECT * INTO t2 FROM t")
    assert "CREATE TABLE ... AS SELECT" in error.hint


def test_read_refuses_locking_reads() -> None:
    assert "row locks" in refused_read("SELECT * FROM t FOR UPDATE").message


@pytest.mark.parametrize("sql", ["SELECT seq.NEXTVAL", "SELECT db.s.seq.nextval AS id", "SELECT NEXTVAL('s')"])
def test_read_refuses_sequence_nextval_because_it_consumes_a_value(sql: str) -> None:
    error = refused_read(sql)
    assert "sequence" in error.message


def test_write_may_use_sequence_nextval() -> None:
    assert check_write("INSERT INTO t (id) SELECT seq.NEXTVAL").statement_type == "INSERT"


# --- EXPLAIN --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN SELECT * FROM t",
        "EXPLAIN ANALYZE SELECT * FROM t",
        "EXPLAIN USING JSON SELECT 1",
        "EXPLAIN /* x */ ANALYZE /* y */ SELECT 1",
        "EXPLAIN ANALYZE WITH a AS (SELECT 1) SELECT * FROM a",
        "EXPLAIN ANALYZE VALUES (1)",
    ],
)
def test_read_accepts_explain_of_a_query(sql: str) -> None:
    assert check_read_only(sql).statement_type == "EXPLAIN"


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN DELETE FROM t",
        "EXPLAIN USING JSON DELETE FROM t",
        "EXPLAIN UPDATE t SET a = 1",
        "EXPLAIN CREATE TABLE t AS SELECT 1",
        "EXPLAIN WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        "EXPLAIN SELECT SYSTEM$CANCEL_QUERY('x')",
        "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
        "EXPLAIN ANALYZE COPY INTO t FROM @s",
        "EXPLAIN ANALYZE CALL p()",
        "EXPLAIN ANALYZE ATTACH 'x.db'",
        "EXPLAIN ANALYZE SHOW TABLES",
        "EXPLAIN EXPLAIN SELECT 1",
        "EXPLAIN",
        "EXPLAIN USING SOMETHING SELECT 1",
        "EXPLAIN (FORMAT JSON) SELECT 1",
    ],
)
def test_read_refuses_explain_of_anything_but_a_query(sql: str) -> None:
    assert "EXPLAIN" in refused_read(sql).message


def test_explain_analyze_of_delete_is_refused() -> None:
    message = refused_read("EXPLAIN ANALYZE DELETE FROM t").message
    assert "EXPLAIN ANALYZE" in message
    assert "executes the statement" in message
    assert "DELETE" in message


def test_write_refuses_explain() -> None:
    assert "use warehouse_query" in refused_write("EXPLAIN DELETE FROM t").hint


# --- Snowflake commands ---------------------------------------------------------------------------

SNOWFLAKE_COMMANDS = [
    ("USE DATABASE analytics", "session"),
    ("use role accountadmin", "session"),
    ("USE WAREHOUSE big", "session"),
    ("SET x = 1", "session"),
    ("SET (a, b) = (1, 2)", "session"),
    ("UNSET x", "session"),
    ("ALTER SESSION SET QUERY_TAG = 'x'", "session"),
    ("alter session set statement_timeout_in_seconds = 0", "session"),
    ("GRANT SELECT ON t TO ROLE r", "privileges"),
    ("GRANT ROLE accountadmin TO USER me", "privileges"),
    ("REVOKE SELECT ON t FROM ROLE r", "privileges"),
    ("BEGIN", "transactions"),
    ("BEGIN TRANSACTION", "transactions"),
    ("START TRANSACTION", "transactions"),
    ("COMMIT", "transactions"),
    ("ROLLBACK", "transactions"),
    ("CALL p()", "stored procedure"),
    ("CALL SYSTEM$CANCEL_ALL_QUERIES(1)", "stored procedure"),
    ("EXECUTE IMMEDIATE 'DROP TABLE t'", "dynamic SQL"),
    ("EXECUTE IMMEDIATE $$ BEGIN DROP TABLE t; END $$", "dynamic SQL"),
    ("EXECUTE TASK nightly", "dynamic SQL"),
    ("COPY INTO t FROM @stage", "files or stages"),
    ("COPY INTO @stage FROM t", "files or stages"),
    ("PUT file:///tmp/x.csv @stage", "uploads"),
    ("GET @stage file:///tmp/", "downloads"),
    ("LIST @stage", "stage files"),
    ("REMOVE @stage", "deletes files"),
    ("RM @stage/x.csv", "deletes files"),
    ("UNDROP TABLE t", "restoring"),
    ("DECLARE c CURSOR FOR SELECT 1", "Scripting"),
    ("WITH p AS PROCEDURE () RETURNS INT LANGUAGE SQL AS $$ BEGIN DELETE FROM t; END $$ CALL p()", "parsed"),
]


@pytest.mark.parametrize(("sql", "why"), SNOWFLAKE_COMMANDS)
def test_read_refuses_snowflake_command_and_says_why(sql: str, why: str) -> None:
    assert why in refused_read(sql).message


@pytest.mark.parametrize(("sql", "why"), SNOWFLAKE_COMMANDS)
def test_write_refuses_snowflake_command_and_says_why(sql: str, why: str) -> None:
    assert why in refused_write(sql).message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT SYSTEM$CANCEL_QUERY('01a2')",
        "SELECT SYSTEM$CANCEL_ALL_QUERIES(42)",
        "SELECT SYSTEM$ABORT_SESSION(42)",
        "SELECT SYSTEM$WAIT(10)",
        "select system$cancel_query('01a2')",
        "SELECT \"SYSTEM$CANCEL_QUERY\"('01a2')",
        "SELECT snowflake.system$abort_session(1)",
        "SELECT SYSTEM$SEND_EMAIL('integration', 'a@b.c', 'subject', 'body')",
        "SELECT SYSTEM$SHOW_OAUTH_CLIENT_SECRETS('integration')",
        "SELECT SYSTEM$TASK_DEPENDENTS_ENABLE('task')",
        "SELECT SYSTEM$PIPE_FORCE_RESUME('pipe')",
        "SELECT * FROM TABLE(SYSTEM$ANYTHING())",
        "SELECT a FROM t WHERE SYSTEM$CANCEL_QUERY('x') IS NOT NULL",
        "WITH x AS (SELECT SYSTEM$ABORT_SESSION(1) AS a) SELECT * FROM x",
        "SELECT IDENTIFIER('SYSTEM$CANCEL_QUERY')('x')",
    ],
)
def test_read_refuses_acting_system_functions(sql: str) -> None:
    message = refused_read(sql).message
    assert "SYSTEM$" in message or "IDENTIFIER" in message


@pytest.mark.parametrize("name", sorted(READ_ONLY_SYSTEM_FUNCTIONS))
def test_read_accepts_read_only_system_functions(name: str) -> None:
    assert check_read_only(f"SELECT {name}('x')").is_query


def test_system_function_refusal_names_the_function_and_the_allowed_ones() -> None:
    message = refused_read("SELECT SYSTEM$CANCEL_ALL_QUERIES(1)").message
    assert "SYSTEM$CANCEL_ALL_QUERIES is not allowed" in message
    assert "SYSTEM$TYPEOF" in message


def test_write_refuses_acting_system_function_inside_insert() -> None:
    assert "SYSTEM$CANCEL_ALL_QUERIES" in refused_write("INSERT INTO t SELECT SYSTEM$CANCEL_ALL_QUERIES()").message


# --- DuckDB commands ------------------------------------------------------------------------------

DUCKDB_COMMANDS = [
    "ATTACH 'other.db' AS other",
    "ATTACH DATABASE '/tmp/x.db'",
    "DETACH other",
    "INSTALL httpfs",
    "FORCE INSTALL httpfs",
    "LOAD httpfs",
    "UPDATE EXTENSIONS",
    "PRAGMA version",
    "PRAGMA enable_profiling",
    "EXPORT DATABASE '/tmp/dump'",
    "IMPORT DATABASE '/tmp/dump'",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    "SET threads = 1",
    "SET VARIABLE x = 1",
    "RESET threads",
    "CREATE SECRET s (TYPE s3, KEY_ID 'x')",
    "CREATE PERSISTENT SECRET s (TYPE s3)",
    "CREATE MACRO m(a) AS a",
    "COPY t TO '/tmp/out.csv'",
    "COPY (SELECT 1) TO '/tmp/out.parquet' (FORMAT parquet)",
    "CALL enable_logging()",
    "SUMMARIZE t",
    "PREPARE q AS SELECT 1",
    "DEALLOCATE q",
]


@pytest.mark.parametrize("sql", DUCKDB_COMMANDS)
def test_embedded_read_refuses_duckdb_command(sql: str) -> None:
    refused_read(sql, embedded=True)


@pytest.mark.parametrize("sql", DUCKDB_COMMANDS)
def test_embedded_write_refuses_duckdb_command(sql: str) -> None:
    refused_write(sql, embedded=True)


# --- the embedded warehouse: files, other databases, the engine -----------------------------------

FILE_READS = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM READ_CSV('/etc/passwd')",
    "SELECT * FROM \"read_csv\"('/etc/passwd')",
    "SELECT * FROM main.read_csv('/etc/passwd')",
    "SELECT * FROM TABLE(read_csv('/etc/passwd'))",
    "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "SELECT * FROM parquet_scan('/tmp/x.parquet')",
    "SELECT * FROM parquet_metadata('/tmp/x.parquet')",
    "SELECT * FROM parquet_schema('/tmp/x.parquet')",
    "SELECT * FROM read_json('/tmp/x.json')",
    "SELECT * FROM read_json_auto('/tmp/x.json')",
    "SELECT * FROM read_json_objects('/tmp/x.json')",
    "SELECT * FROM read_ndjson('/tmp/x.json')",
    "SELECT * FROM read_ndjson_auto('/tmp/x.json')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM read_duckdb('/tmp/other.db')",
    "SELECT * FROM read_xlsx('/tmp/x.xlsx')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM iceberg_scan('s3://bucket/table')",
    "SELECT * FROM iceberg_metadata('s3://bucket/table')",
    "SELECT * FROM delta_scan('s3://bucket/table')",
    "SELECT * FROM sqlite_scan('/tmp/x.sqlite', 't')",
    "SELECT * FROM postgres_scan('host=db', 'public', 't')",
    "SELECT * FROM mysql_scan('host=db', 't')",
    "SELECT * FROM st_read('/tmp/x.shp')",
    "SELECT * FROM query('SELECT 42')",
    "SELECT * FROM query_table('t')",
    "SELECT * FROM t JOIN read_csv('/etc/passwd') ON TRUE",
    "SELECT * FROM t, LATERAL read_csv(t.path)",
    "SELECT (SELECT COUNT(*) FROM read_text('/etc/hostname'))",
    "SELECT * FROM t WHERE a IN (SELECT a FROM read_csv('/tmp/x.csv'))",
    "WITH f AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM f",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM '/tmp/*.csv'",
    "SELECT * FROM 'https://example.com/data.csv'",
    'SELECT * FROM "/tmp/data.csv"',
    'SELECT * FROM "data.parquet"',
    'SELECT * FROM main."x.csv"',
    'SELECT * FROM "s3://bucket/x.parquet"',
    "SELECT * FROM IDENTIFIER('/tmp/data.csv')",
    "SELECT * FROM TABLE('/tmp/data.csv')",
    "SELECT * FROM @stage/file.csv",
    "DESCRIBE SELECT * FROM read_csv('/etc/passwd')",
]


@pytest.mark.parametrize("sql", FILE_READS)
def test_embedded_refuses_file_reads(sql: str) -> None:
    message = refused_read(sql, embedded=True).message
    # glob('x') is refused earlier: sqlglot's Snowflake parser reads GLOB as an operator and fails.
    assert any(why in message for why in ("embedded", "DuckDB", "could not be parsed"))


def test_embedded_refuses_read_csv() -> None:
    error = refused_read("SELECT * FROM read_csv('/etc/passwd')", embedded=True)
    assert "read_csv() is not allowed in the embedded DuckDB warehouse" in error.message
    assert "reads local files" in error.message
    assert "tables already in its database" in error.hint


def test_embedded_refuses_string_as_table_and_says_duckdb_would_read_the_file() -> None:
    assert "as a file" in refused_read("SELECT * FROM '/etc/passwd'", embedded=True).message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT getenv('HOME')",
        "SELECT current_setting('s3_secret_access_key')",
        "SELECT setseed(0.5)",
        "SELECT setval('s', 10)",
        "SELECT write_log('x')",
        "SELECT 'HOME'.getenv()",
        "SELECT * FROM duckdb_secrets()",
        "SELECT * FROM which_secret('s3://x', 's3')",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM duckdb_extensions()",
        "SELECT * FROM checkpoint()",
        "SELECT * FROM force_checkpoint()",
        "SELECT * FROM enable_logging()",
        "SELECT * FROM truncate_duckdb_logs()",
        "SELECT * FROM json_execute_serialized_sql('{}')",
        "SELECT * FROM register_external_resource('x')",
        "SELECT load_extension('httpfs')",
        "SELECT * FROM duckdb_temporary_files()",
    ],
)
def test_embedded_refuses_functions_that_change_or_reveal_the_engine(sql: str) -> None:
    refused_read(sql, embedded=True)


@pytest.mark.parametrize("sql", [*FILE_READS[:10], "SELECT getenv('HOME')", "SELECT * FROM '/etc/passwd'"])
def test_file_functions_are_only_refused_for_the_embedded_warehouse(sql: str) -> None:
    # On Snowflake these names are ordinary identifiers or missing functions, not file access.
    assert check_read_only(sql).is_query


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t AS SELECT * FROM read_csv('/etc/passwd')",
        "CREATE VIEW v AS SELECT * FROM read_text('/etc/hostname')",
        "INSERT INTO t SELECT * FROM '/etc/passwd'",
        'INSERT INTO t SELECT * FROM "/tmp/data.csv"',
        "UPDATE t SET a = (SELECT content FROM read_text('/etc/hostname'))",
        "DELETE FROM t WHERE a IN (SELECT a FROM read_csv('/tmp/x.csv'))",
        "MERGE INTO t USING read_csv('/tmp/x.csv') s ON t.a = s.a WHEN MATCHED THEN DELETE",
        "CREATE TABLE t (a VARCHAR DEFAULT getenv('HOME'))",
    ],
)
def test_embedded_write_refuses_file_reads(sql: str) -> None:
    refused_write(sql, embedded=True)


def test_embedded_allows_only_listed_table_functions_of_duckdb() -> None:
    # Every table function this DuckDB build has, used in FROM, is refused unless allow-listed.
    con = duckdb.connect()
    names = {
        row[0]
        for row in con.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_type IN ('table', 'table_macro')"
        ).fetchall()
    }
    assert {"read_csv", "query", "glob", "read_text"} <= names
    accepted = []
    for name in sorted(names):
        for sql in (f"SELECT * FROM {name}()", f'SELECT * FROM "{name}"()', f"SELECT * FROM t, LATERAL {name}(t.a)"):
            try:
                check_read_only(sql, embedded=True)
            except PolicyError:
                continue
            accepted.append(name)
    assert set(accepted) <= EMBEDDED_TABLE_FUNCTIONS
    assert "range" in accepted


def test_embedded_refuses_snowflake_show_forms_duckdb_lacks() -> None:
    assert "only available on Snowflake" in refused_read("SHOW GRANTS ON TABLE t", embedded=True).message


def test_embedded_refuses_what_cannot_be_translated_faithfully() -> None:
    # sqlglot would silently drop TO_CHAR's format for DuckDB; the guard refuses instead of guessing.
    error = refused_read("SELECT TO_CHAR(closed_at, 'YYYY-MM') FROM deals", embedded=True)
    assert "translated to DuckDB" in error.message


# --- real DuckDB: the guard, not the engine, is what stops these ----------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    csv = tmp_path / "secrets.csv"
    csv.write_text("user,token\nroot,hunter2\n")
    text = tmp_path / "hostname.txt"
    text.write_text("prod-db-1\n")
    return {"csv": csv.as_posix(), "txt": text.as_posix(), "dir": tmp_path.as_posix()}


ENGINE_BYPASSES = [
    "SELECT * FROM read_csv('{csv}')",
    "SELECT * FROM read_csv_auto('{csv}')",
    "SELECT * FROM read_text('{txt}')",
    "SELECT * FROM read_blob('{txt}')",
    "SELECT * FROM sniff_csv('{csv}')",
    "SELECT * FROM glob('{dir}/*.csv')",
    "SELECT * FROM '{csv}'",
    "SELECT * FROM '{dir}/*.csv'",
    'SELECT * FROM "{csv}"',
    "SELECT * FROM query('SELECT 42')",
    "DESCRIBE SELECT * FROM read_csv('{csv}')",
]


@pytest.mark.parametrize("template", ENGINE_BYPASSES)
def test_duckdb_would_run_the_file_read_the_guard_refuses(template: str, files: dict[str, str]) -> None:
    sql = template.format(**files)
    rows = duckdb.connect().execute(sql).fetchall()
    assert rows  # DuckDB on its own reads the file (or runs the SQL text)
    refused_read(sql, embedded=True)


def test_duckdb_runs_the_hidden_statement_after_a_nested_comment() -> None:
    con = duckdb.connect()
    sql = "SELECT 1 /* /* */, '*/ ; CREATE TABLE pwned AS SELECT 1; --'"
    con.execute(sql)
    assert con.execute("SELECT COUNT(*) FROM pwned").fetchone() == (1,)
    refused_read(sql, embedded=True)
    # sqlglot alone reads it as one harmless SELECT: only the guard's comment rule catches it.
    assert len(sqlglot.parse(sql, read="snowflake")) == 1


def test_duckdb_runs_every_statement_of_a_script() -> None:
    con = duckdb.connect()
    con.execute("SELECT 1; CREATE TABLE pwned AS SELECT 1")
    assert con.execute("SELECT COUNT(*) FROM pwned").fetchone() == (1,)
    refused_read("SELECT 1; CREATE TABLE pwned AS SELECT 1", embedded=True)


def test_duckdb_runs_dml_inside_a_cte_and_explain_analyze() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS a FROM range(5)")
    con.execute("WITH x AS (DELETE FROM t WHERE a = 0 RETURNING *) SELECT * FROM x")
    con.execute("EXPLAIN ANALYZE DELETE FROM t WHERE a = 1")
    assert con.execute("SELECT COUNT(*) FROM t").fetchone() == (3,)
    refused_read("WITH x AS (DELETE FROM t WHERE a = 0 RETURNING *) SELECT * FROM x", embedded=True)
    refused_read("EXPLAIN ANALYZE DELETE FROM t WHERE a = 1", embedded=True)


def test_duckdb_runs_a_delete_hidden_in_a_snowflake_string_of_a_passed_through_explain() -> None:
    # Snowflake reads 'x\' ... --' as one string; DuckDB ends the string at the backslash. sqlglot passes
    # EXPLAIN through as raw text, so a naive transpile hands DuckDB a DELETE in a CTE.
    sql = (
        "EXPLAIN ANALYZE WITH d AS (SELECT 'x\\' AS a), e AS (DELETE FROM t RETURNING *) "
        "SELECT * FROM e --') SELECT * FROM d"
    )
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS a FROM range(5)")
    con.execute(sqlglot.transpile(sql, read="snowflake", write="duckdb")[0])
    assert con.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    assert check_read_only(sql).is_query  # harmless on Snowflake: the DELETE is inside a string there
    assert "DuckDB would read this EXPLAIN ANALYZE differently" in refused_read(sql, embedded=True).message
    con.execute("INSERT INTO t VALUES (1), (2)")
    con.execute(duckdb_sql(sql))  # the guard's translation re-quotes the string: nothing is deleted
    assert con.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)


def test_duckdb_sequence_nextval_consumes_values() -> None:
    con = duckdb.connect()
    con.execute("CREATE SEQUENCE s")
    assert con.execute("SELECT nextval('s')").fetchone() == (1,)
    assert con.execute("SELECT nextval('s')").fetchone() == (2,)
    refused_read("SELECT nextval('s')", embedded=True)


def test_default_transpile_turns_select_into_into_create_table(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    con.execute(sqlglot.transpile("SELECT * INTO t2 FROM t", read="snowflake", write="duckdb")[0])
    assert con.execute("SELECT COUNT(*) FROM t2").fetchone() == (1,)
    refused_read("SELECT * INTO t2 FROM t", embedded=True)


def test_duckdb_attaches_and_writes_files_the_guard_refuses(tmp_path: Path) -> None:
    con = duckdb.connect()
    other = (tmp_path / "other.db").as_posix()
    out = (tmp_path / "out.csv").as_posix()
    statements = [f"ATTACH '{other}' AS other", f"COPY (SELECT 1 AS a) TO '{out}'", "SET threads = 1"]
    for sql in statements:
        con.execute(sql)
        refused_read(sql, embedded=True)
        refused_write(sql, embedded=True)
    assert Path(other).exists()
    assert Path(out).exists()


# --- check_write ----------------------------------------------------------------------------------

WRITES = [
    ("INSERT INTO t VALUES (1)", "INSERT"),
    ("INSERT INTO t (a, b) SELECT a, b FROM u WHERE c = ?", "INSERT"),
    ("INSERT OVERWRITE INTO t SELECT 1", "INSERT"),
    ("INSERT ALL INTO t VALUES (1) INTO u VALUES (2) SELECT 1", "INSERT"),
    ("WITH x AS (SELECT 1 AS a) INSERT INTO t SELECT * FROM x", "INSERT"),
    ("UPDATE t SET a = 1 WHERE b = 2", "UPDATE"),
    ("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", "UPDATE"),
    ("DELETE FROM t WHERE a = 1", "DELETE"),
    ("DELETE FROM t USING u WHERE t.id = u.id", "DELETE"),
    (
        "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET t.b = s.b "
        "WHEN MATCHED AND s.gone THEN DELETE WHEN NOT MATCHED THEN INSERT (a, b) VALUES (s.a, s.b)",
        "MERGE",
    ),
    ("CREATE TABLE t (a INT, b VARCHAR)", "CREATE TABLE"),
    ("CREATE OR REPLACE TABLE t AS SELECT * FROM u", "CREATE TABLE"),
    ("CREATE TEMPORARY TABLE t (a INT)", "CREATE TABLE"),
    ("CREATE TRANSIENT TABLE t (a INT)", "CREATE TABLE"),
    ("CREATE TABLE t CLONE u", "CREATE TABLE"),
    ("CREATE TABLE IF NOT EXISTS t (a INT DEFAULT seq.NEXTVAL)", "CREATE TABLE"),
    ("CREATE VIEW v AS SELECT 1 AS a", "CREATE VIEW"),
    ("CREATE OR REPLACE SECURE VIEW v AS SELECT 1 AS a", "CREATE VIEW"),
    ("CREATE MATERIALIZED VIEW v AS SELECT 1 AS a", "CREATE VIEW"),
    ("CREATE SCHEMA IF NOT EXISTS s", "CREATE SCHEMA"),
    ("CREATE DATABASE d", "CREATE DATABASE"),
    ("ALTER TABLE t ADD COLUMN c INT", "ALTER TABLE"),
    ("ALTER TABLE t DROP COLUMN c", "ALTER TABLE"),
    ("ALTER TABLE t RENAME TO u", "ALTER TABLE"),
    ("ALTER TABLE t SWAP WITH u", "ALTER TABLE"),
    ("ALTER VIEW v RENAME TO w", "ALTER VIEW"),
    ("ALTER SCHEMA s RENAME TO s2", "ALTER SCHEMA"),
    ("ALTER SCHEMA IF EXISTS db.s SWAP WITH db.s2", "ALTER SCHEMA"),
    ("ALTER DATABASE d RENAME TO d2", "ALTER DATABASE"),
    ("ALTER SCHEMA s SET COMMENT = 'marts'", "ALTER SCHEMA"),
    ("ALTER DATABASE d UNSET COMMENT", "ALTER DATABASE"),
    ("DROP TABLE IF EXISTS t", "DROP TABLE"),
    ("DROP VIEW v", "DROP VIEW"),
    ("DROP MATERIALIZED VIEW v", "DROP VIEW"),
    ("DROP SCHEMA s", "DROP SCHEMA"),
    ("DROP DATABASE d", "DROP DATABASE"),
    ("TRUNCATE TABLE t", "TRUNCATE TABLE"),
    ("TRUNCATE t", "TRUNCATE TABLE"),
    ("COMMENT ON TABLE t IS 'x'", "COMMENT"),
    ("COMMENT ON COLUMN t.a IS 'x'", "COMMENT"),
    ("delete from t;", "DELETE"),
]


@pytest.mark.parametrize(("sql", "statement_type"), WRITES)
def test_write_accepts_ddl_and_dml(sql: str, statement_type: str) -> None:
    checked = check_write(sql)
    assert checked.statement_type == statement_type
    assert not checked.is_query
    assert checked.sql == sql.rstrip(";")


@pytest.mark.parametrize(
    ("sql", "statement_type"),
    [
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("UPDATE t SET a = 1 WHERE b = 2", "UPDATE"),
        ("DELETE FROM t WHERE a = 1", "DELETE"),
        ("CREATE TABLE t (a INT)", "CREATE TABLE"),
        ("CREATE OR REPLACE TABLE t AS SELECT * FROM u", "CREATE TABLE"),
        ("CREATE VIEW v AS SELECT 1 AS a", "CREATE VIEW"),
        ("DROP TABLE t", "DROP TABLE"),
        ("ALTER TABLE t ADD COLUMN c INT", "ALTER TABLE"),
        ("COMMENT ON TABLE t IS 'x'", "COMMENT"),
    ],
)
def test_embedded_write_accepts_ddl_and_dml(sql: str, statement_type: str) -> None:
    assert check_write(sql, embedded=True).statement_type == statement_type


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SHOW TABLES",
        "DESCRIBE TABLE t",
        "VALUES (1)",
        "EXPLAIN SELECT 1",
    ],
)
def test_write_reports_queries_as_refused(sql: str) -> None:
    error = refused_write(sql)
    assert "warehouse_execute only runs DDL/DML" in error.message
    assert "warehouse_query" in error.hint


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("CREATE USER u", "administers"),
        ("CREATE ROLE r", "administers"),
        ("DROP USER u", "administers"),
        ("DROP ROLE r", "administers"),
        ("ALTER USER u SET PASSWORD = 'x'", "administers"),
        ("ALTER ACCOUNT SET x = 1", "administers"),
        ("CREATE SECRET s (TYPE s3)", "administers"),
        ("CREATE STORAGE INTEGRATION i TYPE = EXTERNAL_STAGE", "administers"),
        ("CREATE API INTEGRATION i", "administers"),
        ("CREATE EXTERNAL ACCESS INTEGRATION e", "administers"),
        ("CREATE NETWORK RULE r", "administers"),
        ("CREATE SHARE s", "administers"),
        ("COMMENT ON USER u IS 'x'", "administers"),
        ("CREATE STAGE s", "code"),
        ("DROP STAGE s", "code"),
        ("CREATE FUNCTION f() RETURNS INT AS '1'", "code"),
        (
            "CREATE FUNCTION f() RETURNS INT LANGUAGE PYTHON RUNTIME_VERSION = '3.11' HANDLER = 'h' "
            "AS $$def h(): return 1$$",
            "code",
        ),
        ("CREATE EXTERNAL FUNCTION f() RETURNS INT API_INTEGRATION = i AS 'https://x'", "code"),
        ("CREATE PROCEDURE p() RETURNS INT LANGUAGE SQL AS $$ BEGIN DROP TABLE t; END $$", "code"),
        ("CREATE OR REPLACE PROCEDURE p() RETURNS INT LANGUAGE SQL AS $$ BEGIN RETURN 1; END $$", "code"),
        ("CREATE TASK t AS SELECT 1", "code"),
        ("CREATE PIPE p AS COPY INTO t FROM @s", "code"),
        ("CREATE STREAM s ON TABLE t", "code"),
        ("CREATE WAREHOUSE w", "code"),
        ("ALTER WAREHOUSE w SET WAREHOUSE_SIZE = 'X6LARGE'", "code"),
        ("ALTER TASK t RESUME", "code"),
        ("CREATE SEQUENCE s", "code"),
        ("CREATE EXTERNAL TABLE t LOCATION = @s", "code"),
        ("CREATE DYNAMIC TABLE d TARGET_LAG = '1 minute' WAREHOUSE = w AS SELECT 1", "code"),
        ("ALTER TABLE t DROP ROW ACCESS POLICY p", "data protection"),
        ("ALTER TABLE t MODIFY COLUMN c UNSET MASKING POLICY", "data protection"),
        ("ALTER TABLE t ADD ROW ACCESS POLICY p ON (a)", "data protection"),
        ("ALTER DATABASE d ENABLE REPLICATION TO ACCOUNTS org.acct", "administer the account"),
        ("ALTER SCHEMA s SET DATA_RETENTION_TIME_IN_DAYS = 0", "administer the account"),
        ("ALTER DATABASE d RENAME TO d2 EXTRA", "administer the account"),
        ("CREATE HYBRID TABLE t (a INT PRIMARY KEY)", "opaque command"),
        ("INSERT INTO t WITH x AS (DELETE FROM u RETURNING *) SELECT * FROM x", "nested DELETE"),
        ("CREATE TABLE t AS WITH x AS (DELETE FROM u RETURNING *) SELECT * FROM x", "nested DELETE"),
        ("CREATE VIEW v AS SELECT * INTO t2 FROM u", "INTO"),
    ],
)
def test_write_refuses_security_code_and_hidden_statements(sql: str, why: str) -> None:
    assert why in refused_write(sql).message


def test_accepted_sql_is_one_statement_to_duckdbs_own_parser() -> None:
    # Seeded fuzz over quote, comment and separator fragments: whatever the guard accepts, DuckDB's
    # lexer also sees as exactly one statement (raw text and the embedded translation alike).
    fragments = [
        " ", "\n", "\r\n", "\t", ";", "'", '"', "$$", "--", "//", "/*", "*/", "\\", "''", "x", ",", "(",
        ")", "$", "DROP TABLE t", "DELETE FROM t", "FROM t", "/* c */", "-- c\n", "'a;b'", "$$;$$", '"a;b"',
        "->>", "->", "#", "`",
    ]  # fmt: skip
    rng = random.Random(7)
    con = duckdb.connect()
    accepted = 0
    for _ in range(1500):
        sql = "SELECT 1 " + "".join(rng.choice(fragments) for _ in range(rng.randint(1, 8)))
        try:
            checked = check_read_only(sql)
        except PolicyError:
            continue
        accepted += 1
        try:
            statements = con.extract_statements(checked.sql)
        except duckdb.Error:
            continue  # Snowflake-only syntax DuckDB cannot parse at all
        assert len(statements) == 1, sql
        try:
            translated = duckdb_sql(sql)
        except PolicyError:
            continue
        assert len(con.extract_statements(translated)) == 1, sql
    assert accepted > 100


# --- the DuckDB translation and module hygiene ----------------------------------------------------


def test_duckdb_sql_drops_comments_and_translates() -> None:
    translated = duckdb_sql("-- note\nSELECT IFF(a > 1, 'x', 'y') /* c */ FROM t;")
    assert translated == "SELECT CASE WHEN a > 1 THEN 'x' ELSE 'y' END FROM t"


def test_duckdb_sql_keeps_explain_analyze_around_the_translated_query() -> None:
    assert duckdb_sql("EXPLAIN ANALYZE SELECT DATEADD(day, 1, d) FROM t") == (
        "EXPLAIN ANALYZE SELECT d + INTERVAL 1 DAY FROM t"
    )


@pytest.mark.parametrize(
    "sql",
    ["EXPLAIN SELECT 'it\\'s'", "EXPLAIN SELECT 1 // note\n, 2", "EXPLAIN ANALYZE SELECT 'a\\'; DROP TABLE t; --'"],
)
def test_embedded_explain_refuses_text_duckdb_would_split_differently(sql: str) -> None:
    assert check_read_only(sql).is_query
    assert "differently from Snowflake" in refused_read(sql, embedded=True).message


def test_duckdb_sql_refuses_a_script() -> None:
    with pytest.raises(PolicyError):
        duckdb_sql("SELECT 1; DROP TABLE t")


def test_guard_module_imports_sqlglot_lazily() -> None:
    code = "import sys, sophia_business_intelligence.sql_guard; print('sqlglot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_refusal_is_a_policy_error_with_what_why_and_hint() -> None:
    error = refused_read("DELETE FROM t")
    assert error.kind == "refused"
    assert error.message.startswith("SQL refused: ")
    assert "DELETE" in error.message
    assert "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE=1" in error.hint
