"""The embedded DuckDB sandbox: engine commands, files, catalog views, and what real DuckDB would run."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot

from sophia_business_intelligence.sql_guard import (
    EMBEDDED_TABLE_FUNCTIONS,
    check_read_only,
    duckdb_sql,
)
from sophia_shared.errors import PolicyError
from tests.unit.bi.sql_guard.refusals import refused_read, refused_write

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
    refused_read(sql, dialect="duckdb")


@pytest.mark.parametrize("sql", DUCKDB_COMMANDS)
def test_embedded_write_refuses_duckdb_command(sql: str) -> None:
    refused_write(sql, dialect="duckdb")


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
    message = refused_read(sql, dialect="duckdb").message
    # glob('x') is refused earlier: sqlglot's Snowflake parser reads GLOB as an operator and fails.
    assert any(why in message for why in ("embedded", "DuckDB", "could not be parsed"))


def test_embedded_refuses_read_csv() -> None:
    error = refused_read("SELECT * FROM read_csv('/etc/passwd')", dialect="duckdb")
    assert "read_csv() is not allowed in the embedded DuckDB warehouse" in error.message
    assert "reads local files" in error.message
    assert "tables already in its database" in error.hint


def test_embedded_refuses_string_as_table_and_says_duckdb_would_read_the_file() -> None:
    assert "as a file" in refused_read("SELECT * FROM '/etc/passwd'", dialect="duckdb").message


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
    refused_read(sql, dialect="duckdb")


@pytest.mark.parametrize("sql", [*FILE_READS[:10], "SELECT getenv('HOME')", "SELECT * FROM '/etc/passwd'"])
def test_file_functions_are_only_refused_for_the_embedded_warehouse(sql: str) -> None:
    # On Snowflake these names are ordinary identifiers or missing functions, not file access.
    assert check_read_only(sql, dialect="snowflake").write is False


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
    refused_write(sql, dialect="duckdb")


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
                check_read_only(sql, dialect="duckdb")
            except PolicyError:
                continue
            accepted.append(name)
    assert set(accepted) <= EMBEDDED_TABLE_FUNCTIONS
    assert "range" in accepted


def test_embedded_refuses_snowflake_show_forms_duckdb_lacks() -> None:
    assert "only available on Snowflake" in refused_read("SHOW GRANTS ON TABLE t", dialect="duckdb").message


def test_embedded_refuses_what_cannot_be_translated_faithfully() -> None:
    # sqlglot would silently drop TO_CHAR's format for DuckDB; a number format has no faithful translation.
    error = refused_read("SELECT TO_CHAR(amount, '999,999.00') FROM deals", dialect="duckdb")
    assert "number format '999,999.00' is not translated" in error.message
    assert "ROUND" in error.hint


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
    refused_read(sql, dialect="duckdb")


def test_duckdb_runs_the_hidden_statement_after_a_nested_comment() -> None:
    con = duckdb.connect()
    sql = "SELECT 1 /* /* */, '*/ ; CREATE TABLE pwned AS SELECT 1; --'"
    con.execute(sql)
    assert con.execute("SELECT COUNT(*) FROM pwned").fetchone() == (1,)
    refused_read(sql, dialect="duckdb")
    # sqlglot alone reads it as one harmless SELECT: only the guard's comment rule catches it.
    assert len(sqlglot.parse(sql, read="snowflake")) == 1


def test_duckdb_runs_every_statement_of_a_script() -> None:
    con = duckdb.connect()
    con.execute("SELECT 1; CREATE TABLE pwned AS SELECT 1")
    assert con.execute("SELECT COUNT(*) FROM pwned").fetchone() == (1,)
    refused_read("SELECT 1; CREATE TABLE pwned AS SELECT 1", dialect="duckdb")


def test_duckdb_runs_dml_inside_a_cte_and_explain_analyze() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS a FROM range(5)")
    con.execute("WITH x AS (DELETE FROM t WHERE a = 0 RETURNING *) SELECT * FROM x")
    con.execute("EXPLAIN ANALYZE DELETE FROM t WHERE a = 1")
    assert con.execute("SELECT COUNT(*) FROM t").fetchone() == (3,)
    refused_read("WITH x AS (DELETE FROM t WHERE a = 0 RETURNING *) SELECT * FROM x", dialect="duckdb")
    refused_read("EXPLAIN ANALYZE DELETE FROM t WHERE a = 1", dialect="duckdb")


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
    assert (
        check_read_only(sql, dialect="snowflake").write is False
    )  # harmless on Snowflake: the DELETE is inside a string there
    assert "DuckDB would read this EXPLAIN ANALYZE differently" in refused_read(sql, dialect="duckdb").message
    con.execute("INSERT INTO t VALUES (1), (2)")
    con.execute(duckdb_sql(sql))  # the guard's translation re-quotes the string: nothing is deleted
    assert con.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)


def test_duckdb_sequence_nextval_consumes_values() -> None:
    con = duckdb.connect()
    con.execute("CREATE SEQUENCE s")
    assert con.execute("SELECT nextval('s')").fetchone() == (1,)
    assert con.execute("SELECT nextval('s')").fetchone() == (2,)
    refused_read("SELECT nextval('s')", dialect="duckdb")


def test_default_transpile_turns_select_into_into_create_table(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    con.execute(sqlglot.transpile("SELECT * INTO t2 FROM t", read="snowflake", write="duckdb")[0])
    assert con.execute("SELECT COUNT(*) FROM t2").fetchone() == (1,)
    refused_read("SELECT * INTO t2 FROM t", dialect="duckdb")


def test_duckdb_attaches_and_writes_files_the_guard_refuses(tmp_path: Path) -> None:
    con = duckdb.connect()
    other = (tmp_path / "other.db").as_posix()
    out = (tmp_path / "out.csv").as_posix()
    statements = [f"ATTACH '{other}' AS other", f"COPY (SELECT 1 AS a) TO '{out}'", "SET threads = 1"]
    for sql in statements:
        con.execute(sql)
        refused_read(sql, dialect="duckdb")
        refused_write(sql, dialect="duckdb")
    assert Path(other).exists()
    assert Path(out).exists()


# --- the DuckDB translation and module hygiene ----------------------------------------------------


def test_duckdb_sql_drops_comments_and_translates() -> None:
    translated = duckdb_sql("-- note\nSELECT IFF(a > 1, 'x', 'y') /* c */ FROM t;")
    assert translated == "SELECT CASE WHEN a > 1 THEN 'x' ELSE 'y' END AS \"IFF(A > 1, 'X', 'Y')\" FROM t"


def test_duckdb_sql_keeps_explain_analyze_around_the_translated_query() -> None:
    assert duckdb_sql("EXPLAIN ANALYZE SELECT DATEADD(day, 1, d) FROM t") == (
        'EXPLAIN ANALYZE SELECT d + INTERVAL 1 DAY AS "DATEADD(DAY, 1, D)" FROM t'
    )


@pytest.mark.parametrize(
    "sql",
    ["EXPLAIN SELECT 'it\\'s'", "EXPLAIN SELECT 1 // note\n, 2", "EXPLAIN ANALYZE SELECT 'a\\'; DROP TABLE t; --'"],
)
def test_embedded_explain_refuses_text_duckdb_would_split_differently(sql: str) -> None:
    assert check_read_only(sql, dialect="snowflake").write is False
    assert "differently from Snowflake" in refused_read(sql, dialect="duckdb").message


def test_duckdb_sql_refuses_a_script() -> None:
    with pytest.raises(PolicyError):
        duckdb_sql("SELECT 1; DROP TABLE t")
