"""What each tool accepts: statement types, EXPLAIN, Snowflake commands and the write shapes."""

from __future__ import annotations

import random

import duckdb
import pytest

from sophia_business_intelligence.sql_guard import (
    check_read_only,
    check_write,
    duckdb_sql,
)
from sophia_shared.errors import PolicyError
from tests.unit.bi.sql_guard.refusals import refused_read, refused_write

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
    checked = check_read_only(sql, dialect="snowflake")
    assert checked.write is False
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
    assert check_read_only(sql, dialect="duckdb").write is False


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
    checked = check_read_only(sql, dialect="snowflake")
    assert (checked.source, checked.sql, checked.statement_type, checked.write) == (sql, sql, statement_type, False)


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
    assert check_read_only(sql, dialect="snowflake").sql == kept


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
    assert check_read_only(sql, dialect="snowflake").statement_type == "EXPLAIN"


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
    checked = check_write(sql, dialect="snowflake")
    assert checked.statement_type == statement_type
    assert checked.write
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
    assert check_write(sql, dialect="duckdb").statement_type == statement_type


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
            checked = check_read_only(sql, dialect="snowflake")
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


def test_refusal_is_a_policy_error_with_what_why_and_hint() -> None:
    error = refused_read("DELETE FROM t")
    assert error.kind == "refused"
    assert error.message.startswith("SQL refused: ")
    assert "DELETE" in error.message
    assert "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE=1" in error.hint
