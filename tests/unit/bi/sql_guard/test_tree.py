"""Walking the tree: writes hidden in reads, acting functions, locks and sequences."""

from __future__ import annotations

import pytest

from sophia_business_intelligence.sql_guard import (
    READ_ONLY_SYSTEM_FUNCTIONS,
    check_read_only,
    check_write,
)
from tests.unit.bi.sql_guard.refusals import refused_read, refused_write

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
    assert check_write("INSERT INTO t (id) SELECT seq.NEXTVAL", dialect="snowflake").statement_type == "INSERT"


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
    assert check_read_only(f"SELECT {name}('x')", dialect="snowflake").write is False


def test_system_function_refusal_names_the_function_and_the_allowed_ones() -> None:
    message = refused_read("SELECT SYSTEM$CANCEL_ALL_QUERIES(1)").message
    assert "SYSTEM$CANCEL_ALL_QUERIES is not allowed" in message
    assert "SYSTEM$TYPEOF" in message


def test_write_refuses_acting_system_function_inside_insert() -> None:
    assert "SYSTEM$CANCEL_ALL_QUERIES" in refused_write("INSERT INTO t SELECT SYSTEM$CANCEL_ALL_QUERIES()").message
