"""SnowflakeWarehouse queries, writes, paging, metadata and cancellation: the real connector on fakesnow.

What fakesnow cannot do, and how it is covered here:
- its abort-request is a no-op and a statement cannot time out: cancellation is checked by the
  abort request reaching the server (matching request id and SQL) and by the call ending in
  CancelledByClient; the timeout message is checked on the connector's own error class.
Logins, credentials and configuration are in test_snowflake_login.py.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from sophia_business_intelligence.backends.base import CancelToken, WriteOutcome
from sophia_business_intelligence.backends.snowflake import SnowflakeWarehouse, quote_identifier, stored_name
from sophia_business_intelligence.backends.snowflake_errors import STATEMENT_HINT, translate_error
from sophia_business_intelligence.names import WAREHOUSE_DESCRIBE_TABLE, WAREHOUSE_LIST_DATABASES
from sophia_business_intelligence.server import SPEC
from sophia_business_intelligence.settings import SETTINGS
from sophia_business_intelligence.sql_guard import check_read_only, check_write
from sophia_shared.errors import BackendError, CancelledByClient, InputError, PolicyError
from sophia_shared.settings import Settings
from tests.fakes.snowflake_server import QUERY_PATH, FakeSnowflakeServer

# A statement fakesnow (DuckDB) needs about a second for: long enough to cancel mid-flight.
SLOW_SQL = "SELECT COUNT(*) FROM range(14000) a, range(14000) b WHERE (a.range * b.range) % 7 = 3"
NASTY = "we\"ird'; DROP TABLE t; --"
# fakesnow itself fails on a single quote inside an identifier (its catalogue bookkeeping formats
# names into SQL), so the round trip through the server uses this one.
NASTY_TABLE = 'we"ird; DROP TABLE t; --'
# A lower-case snake_case word in agent-facing text is a tool name, or a mistake.
TOOL_LIKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")

# fakesnow's own DuckDB result conversion warns on every result; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")


@pytest.fixture
def warehouse(snowflake_server: FakeSnowflakeServer) -> Iterator[SnowflakeWarehouse]:
    # The gate is on: these tests create their own tables through execute_write.
    environ = {**snowflake_server.settings_env(), "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE": "1"}
    wh = SnowflakeWarehouse(Settings(environ=environ, specs=SETTINGS))
    yield wh
    wh.close()


def test_a_write_is_refused_by_the_warehouse_itself_without_the_gate(snowflake_server: FakeSnowflakeServer) -> None:
    wh = SnowflakeWarehouse(Settings(environ=snowflake_server.settings_env(), specs=SETTINGS))
    before = len(snowflake_server.requests)
    try:
        with pytest.raises(PolicyError, match="SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"):
            wh.execute_write(check_write("CREATE DATABASE NOPE", dialect="snowflake"), params=[], cancel=CancelToken())
    finally:
        wh.close()
    assert len(snowflake_server.requests) == before  # nothing reached Snowflake, not even a login


@pytest.fixture
def database(warehouse: SnowflakeWarehouse) -> str:
    """A fresh database with schema S, table T (7 rows) and view V; fakesnow's catalogue is shared."""
    name = f"SOPHIA_{uuid.uuid4().hex[:10].upper()}"
    write(warehouse, f"CREATE DATABASE {name}")
    write(warehouse, f"CREATE SCHEMA {name}.S")
    write(
        warehouse,
        f"CREATE TABLE {name}.S.T (ID INT NOT NULL, NAME VARCHAR, AMOUNT NUMBER(10,2), RATIO FLOAT, "
        "OK BOOLEAN, DAY DATE, SEEN_AT TIMESTAMP_NTZ)",
    )
    write(warehouse, f"CREATE VIEW {name}.S.V AS SELECT ID, NAME FROM {name}.S.T")
    values = ", ".join("(?, ?)" for _ in range(7))
    params = [v for i in range(7) for v in (i, f"name-{i}")]
    outcome = write(warehouse, f"INSERT INTO {name}.S.T (ID, NAME) VALUES {values}", params)
    assert outcome.rows_affected == 7
    return name


def write(wh: SnowflakeWarehouse, sql: str, params: list[Any] | None = None, cancel: CancelToken | None = None) -> Any:
    statement = check_write(sql, dialect="snowflake")
    return wh.execute_write(statement, params=params or [], cancel=cancel or CancelToken())


def page(
    wh: SnowflakeWarehouse,
    sql: str,
    *,
    params: Any = (),
    offset: int = 0,
    max_rows: int = 100,
    handle: str = "",
    cancel: CancelToken | None = None,
) -> Any:
    statement = check_read_only(sql, dialect="snowflake")
    return wh.query(
        statement, params=list(params), offset=offset, max_rows=max_rows, handle=handle, cancel=cancel or CancelToken()
    )


def query_request_ids(server: FakeSnowflakeServer, sql: str) -> list[str]:
    return [
        parse_qs(r.query)["requestId"][0]
        for r in list(server.requests)
        if r.path == QUERY_PATH and r.body.get("sqlText") == sql
    ]


# -- only guard-checked statements run ---------------------------------------------------------


def test_query_and_write_refuse_raw_sql_strings(
    warehouse: SnowflakeWarehouse, snowflake_server: FakeSnowflakeServer
) -> None:
    with pytest.raises(TypeError, match="checked by sql_guard"):
        warehouse.query("SELECT 1", params=[], offset=0, max_rows=1, handle="", cancel=CancelToken())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="checked by sql_guard"):
        warehouse.execute_write("CREATE DATABASE RAW_STRING", params=[], cancel=CancelToken())  # type: ignore[arg-type]
    assert snowflake_server.requests == []


def test_statements_checked_for_duckdb_or_the_other_purpose_are_refused(
    warehouse: SnowflakeWarehouse, snowflake_server: FakeSnowflakeServer
) -> None:
    with pytest.raises(TypeError, match="duckdb"):
        warehouse.query(
            check_read_only("SELECT 1", dialect="duckdb"),
            params=[],
            offset=0,
            max_rows=1,
            handle="",
            cancel=CancelToken(),
        )
    with pytest.raises(TypeError, match="duckdb"):
        warehouse.execute_write(check_write("CREATE SCHEMA X", dialect="duckdb"), params=[], cancel=CancelToken())
    with pytest.raises(TypeError, match="reading"):
        warehouse.execute_write(check_read_only("SELECT 1", dialect="snowflake"), params=[], cancel=CancelToken())
    assert snowflake_server.requests == []


# -- queries, writes, paging -------------------------------------------------------------------


def test_an_expired_session_logs_in_again_and_the_call_succeeds(
    warehouse: SnowflakeWarehouse, snowflake_server: FakeSnowflakeServer, database: str
) -> None:
    snowflake_server.clear()
    snowflake_server.expire_sessions()
    assert page(warehouse, f"SELECT COUNT(*) FROM {database}.S.T").rows == [[7]]
    assert len(snowflake_server.logins()) == 1
    snowflake_server.expire_sessions()
    assert write(warehouse, f"DELETE FROM {database}.S.T WHERE ID = ?", [6]).rows_affected == 1
    assert len(snowflake_server.logins()) == 2


def test_query_pages_through_three_pages_resuming_the_stored_result(
    warehouse: SnowflakeWarehouse, snowflake_server: FakeSnowflakeServer, database: str
) -> None:
    sql = f"SELECT ID, NAME FROM {database}.S.T WHERE ID >= ? ORDER BY ID"
    first = page(warehouse, sql, params=[0], max_rows=3)
    assert [r[0] for r in first.rows] == [0, 1, 2] and first.has_more
    assert first.handle

    snowflake_server.clear()
    second = page(warehouse, sql, params=[0], offset=3, max_rows=3, handle=first.handle)
    third = page(warehouse, sql, params=[0], offset=6, max_rows=3, handle=first.handle)
    assert [r[0] for r in second.rows] == [3, 4, 5] and second.has_more
    assert third.rows == [[6, "name-6"]] and not third.has_more
    assert [c.name for c in third.columns] == ["ID", "NAME"]
    # Pages 2 and 3 read the stored result: the statement itself never ran again.
    assert sql not in snowflake_server.sql_texts()
    assert snowflake_server.sql_texts() == [f"select * from table(result_scan('{first.handle}'))"] * 2


def test_a_handle_issued_for_other_sql_or_params_or_a_forged_one_reruns_the_statement(
    warehouse: SnowflakeWarehouse, snowflake_server: FakeSnowflakeServer, database: str
) -> None:
    sql = f"SELECT ID FROM {database}.S.T WHERE ID >= ? ORDER BY ID"
    other_sql = page(warehouse, f"SELECT NAME FROM {database}.S.T ORDER BY ID", max_rows=2)
    other_params = page(warehouse, sql, params=[1], max_rows=2)
    for handle in (other_sql.handle, other_params.handle, "x')); DROP TABLE t; --", str(uuid.uuid4())):
        snowflake_server.clear()
        result = page(warehouse, sql, params=[0], offset=2, max_rows=2, handle=handle)
        assert result.rows == [[2], [3]]
        assert snowflake_server.sql_texts() == [sql]


def test_an_offset_past_the_end_gives_an_empty_last_page(warehouse: SnowflakeWarehouse, database: str) -> None:
    result = page(warehouse, f"SELECT ID FROM {database}.S.T ORDER BY ID", offset=50, max_rows=3)
    assert result.rows == [] and not result.has_more


def test_bound_values_travel_as_data_never_as_sql(
    warehouse: SnowflakeWarehouse, snowflake_server: FakeSnowflakeServer, database: str
) -> None:
    evil = "O'Brien'; DROP TABLE T; --"
    outcome = write(warehouse, f"INSERT INTO {database}.S.T (ID, NAME) VALUES (?, ?)", [100, evil])
    assert outcome == WriteOutcome(rows_affected=1)

    result = page(warehouse, f"SELECT ID, NAME FROM {database}.S.T WHERE NAME = ?", params=[evil])
    assert result.rows == [[100, evil]]
    statement = snowflake_server.statements()[-1]
    assert evil not in statement["sqlText"]
    assert statement["bindings"]["1"] == {"type": "TEXT", "value": evil}
    assert page(warehouse, f"SELECT COUNT(*) FROM {database}.S.T").rows == [[8]]


def test_query_reports_column_types_from_the_result_metadata(warehouse: SnowflakeWarehouse, database: str) -> None:
    result = page(warehouse, f"SELECT ID, NAME, AMOUNT, RATIO, OK, DAY, SEEN_AT FROM {database}.S.T", max_rows=1)
    assert [(c.name, c.type) for c in result.columns] == [
        ("ID", "NUMBER(38,0)"),
        ("NAME", "TEXT"),
        ("AMOUNT", "NUMBER(10,2)"),
        ("RATIO", "FLOAT"),
        ("OK", "BOOLEAN"),
        ("DAY", "DATE"),
        ("SEEN_AT", "TIMESTAMP_NTZ"),
    ]


def test_writes_report_affected_rows_for_dml_and_none_for_ddl(warehouse: SnowflakeWarehouse, database: str) -> None:
    updated = write(warehouse, f"UPDATE {database}.S.T SET NAME = ? WHERE ID < ?", ["renamed", 3])
    assert updated == WriteOutcome(rows_affected=3)
    created = write(warehouse, f"CREATE TABLE {database}.S.EMPTY (X INT)")
    assert created == WriteOutcome(rows_affected=None)


def test_sql_errors_come_back_as_input_errors_with_snowflakes_message(
    warehouse: SnowflakeWarehouse, database: str
) -> None:
    with pytest.raises(InputError, match="does not exist") as caught:
        page(warehouse, f"SELECT * FROM {database}.S.MISSING")
    assert WAREHOUSE_DESCRIBE_TABLE in caught.value.hint


def test_hints_name_only_registered_tools(warehouse: SnowflakeWarehouse, database: str) -> None:
    registered = {tool.name for tool in SPEC.tools}
    with pytest.raises(InputError) as bad_sql:
        page(warehouse, f"SELECT * FROM {database}.S.MISSING")
    with pytest.raises(InputError) as bad_database:
        warehouse.list_schemas(f"{database}_MISSING")
    assert WAREHOUSE_LIST_DATABASES in bad_database.value.hint
    for hint in (bad_sql.value.hint, bad_database.value.hint, STATEMENT_HINT):
        named = set(TOOL_LIKE.findall(hint))
        assert named and named <= registered, hint


# -- metadata ----------------------------------------------------------------------------------


def test_lists_databases_schemas_tables_and_views(warehouse: SnowflakeWarehouse, database: str) -> None:
    assert database in warehouse.list_databases()
    assert warehouse.list_schemas(database.lower()) == ["S"]
    tables = warehouse.list_tables(database.lower(), "s")
    assert [(t.database, t.schema, t.name, t.kind) for t in tables] == [
        (database, "S", "T", "TABLE"),
        (database, "S", "V", "VIEW"),
    ]
    assert tables[0].row_count == 7
    assert tables[1].row_count is None


def test_describe_table_lists_columns_in_order_with_types_and_nullability(
    warehouse: SnowflakeWarehouse, database: str
) -> None:
    columns = warehouse.describe_table(database, "S", "t")
    assert [(c.name, c.type, c.nullable) for c in columns] == [
        ("ID", "NUMBER(38,0)", False),
        ("NAME", "TEXT", True),
        ("AMOUNT", "NUMBER(10,2)", True),
        ("RATIO", "FLOAT", True),
        ("OK", "BOOLEAN", True),
        ("DAY", "DATE", True),
        ("SEEN_AT", "TIMESTAMP_NTZ", True),
    ]
    assert warehouse.describe_table(database, "S", "NO_SUCH_TABLE") == []


def test_default_database_is_the_configured_one(snowflake_server: FakeSnowflakeServer) -> None:
    env = snowflake_server.settings_env(SNOWFLAKE_DATABASE="ANALYTICS")
    assert SnowflakeWarehouse(Settings(environ=env, specs=SETTINGS)).default_database() == "ANALYTICS"
    assert snowflake_server.logins() == []


def test_identifier_quoting_survives_nasty_names() -> None:
    assert quote_identifier(NASTY) == '"we""ird\'; DROP TABLE t; --"'
    assert quote_identifier("sales") == '"sales"'
    assert stored_name("sales") == "SALES"
    assert stored_name('"sales"') == "sales"
    assert stored_name('"a""b"') == 'a"b'
    assert stored_name("my table") == "my table"
    for bad in ("", "   ", "a\x00b", "x" * 256):
        with pytest.raises(InputError):
            quote_identifier(bad)
    with pytest.raises(InputError, match="unescaped"):
        stored_name('"a"b"')


def test_metadata_calls_treat_nasty_names_as_names(warehouse: SnowflakeWarehouse, database: str) -> None:
    write(warehouse, f'CREATE TABLE {database}.S.{quote_identifier(NASTY_TABLE)} ("Mixed Col" INT)')
    assert NASTY_TABLE in [t.name for t in warehouse.list_tables(database, "S")]
    assert [c.name for c in warehouse.describe_table(database, "S", NASTY_TABLE)] == ["Mixed Col"]
    assert warehouse.list_tables(database, NASTY) == []
    with pytest.raises(InputError, match="does not exist"):
        warehouse.list_schemas(f'{database}" ; DROP DATABASE {database}; --')
    assert warehouse.list_schemas(database) == ["S"]


# -- cancellation and timeouts -----------------------------------------------------------------


def test_cancel_from_another_thread_aborts_the_running_statement(
    snowflake_server: FakeSnowflakeServer, database: str
) -> None:
    env = snowflake_server.settings_env(SNOWFLAKE_DATABASE=database, SNOWFLAKE_SCHEMA="S")
    warehouse = SnowflakeWarehouse(Settings(environ=env, specs=SETTINGS))
    warehouse.ping()
    token = CancelToken()
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(page(warehouse, SLOW_SQL, max_rows=10, cancel=token))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not query_request_ids(snowflake_server, SLOW_SQL):
        assert time.monotonic() < deadline, "the slow statement never reached the server"
        time.sleep(0.01)
    token.cancel()
    worker.join(timeout=30)
    warehouse.close()

    assert isinstance(outcome[0], CancelledByClient)
    (abort,) = snowflake_server.aborts()
    assert abort["sqlText"] == SLOW_SQL
    assert abort["requestId"] == query_request_ids(snowflake_server, SLOW_SQL)[0]


def test_a_cancelled_token_stops_the_statement_before_it_is_sent(
    warehouse: SnowflakeWarehouse, snowflake_server: FakeSnowflakeServer
) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledByClient):
        write(warehouse, "CREATE DATABASE NEVER_CREATED", cancel=token)
    assert "CREATE DATABASE NEVER_CREATED" not in snowflake_server.sql_texts()


def test_statement_timeout_points_at_the_setting() -> None:
    from snowflake.connector.errors import ProgrammingError

    timeout = ProgrammingError(
        msg="Statement reached its statement or warehouse timeout of 45 second(s) and was canceled.",
        errno=630,
        sqlstate="57014",
    )
    error = translate_error(timeout, timeout_seconds=45)
    assert type(error) is BackendError
    assert "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS (45 s)" in error.hint
