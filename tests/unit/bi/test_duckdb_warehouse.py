"""The embedded warehouse on its own: paging from one execution, timeouts, lockdown, honest errors."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sophia_business_intelligence.backends.base import CancelToken, RowPage
from sophia_business_intelligence.backends.duckdb import DATABASE_NAME, DuckDBConfig, DuckDBWarehouse
from sophia_business_intelligence.demo_data import load_demo_dataset
from sophia_business_intelligence.settings import SETTINGS
from sophia_business_intelligence.sql_guard import check_read_only
from sophia_business_intelligence.state import open_warehouse
from sophia_shared.errors import BackendError, CancelledByClient, ConfigError, InputError
from sophia_shared.settings import Settings, SourceValues


def _config(tmp_path: Path, path: Path, **env: str) -> DuckDBConfig:
    environ = {"SOPHIA_DUCKDB_PATH": str(path), "SOPHIA_DATA_DIR": str(tmp_path / "data")}
    environ |= {"SOPHIA_DOTENV": str(tmp_path / "no.env"), **env}
    return DuckDBConfig.from_settings(Settings(environ=environ, cwd=tmp_path, specs=SETTINGS))


def _query(
    warehouse: DuckDBWarehouse,
    sql: str,
    params: Sequence[Any] = (),
    *,
    offset: int = 0,
    max_rows: int = 100,
    handle: str = "",
    cancel: CancelToken | None = None,
) -> RowPage:
    statement = check_read_only(sql, dialect="duckdb")
    return warehouse.query(
        statement, params=params, offset=offset, max_rows=max_rows, handle=handle, cancel=cancel or CancelToken()
    )


@pytest.fixture
def grouped(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE EVENTS AS SELECT (i % 20000) AS K, i AS V FROM range(400000) t(i)")
    con.close()
    return path


@pytest.fixture
def sparse(tmp_path: Path) -> Path:
    """The report's shape: a cross join so large, and a filter so sparse, that rows trickle out."""
    path = tmp_path / "sparse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE T AS SELECT i AS I FROM range(200) r(i)")
    con.close()
    return path


SPARSE_SQL = "SELECT A.I FROM T A, T B, T C, T D WHERE HASH(A.I, B.I, C.I, D.I) % 100000000 = 0"


def _page_all(warehouse: DuckDBWarehouse, sql: str, size: int) -> tuple[list[tuple[int, int]], int]:
    rows: list[tuple[int, int]] = []
    offset, handle, pages = 0, "", 0
    while True:
        page = _query(warehouse, sql, offset=offset, max_rows=size, handle=handle)
        rows += [tuple(r) for r in page.rows]
        pages += 1
        if not page.has_more:
            return rows, pages
        offset, handle = offset + len(page.rows), page.handle


def test_paging_an_unordered_aggregate_neither_loses_nor_repeats_rows(grouped: Path) -> None:
    warehouse = DuckDBWarehouse(grouped)
    rows, pages = _page_all(warehouse, "SELECT K, SUM(V) AS S FROM EVENTS GROUP BY K", 1000)
    assert pages == 20
    assert len(rows) == 20000
    assert len({k for k, _ in rows}) == 20000
    warehouse.close()


def test_a_page_can_resume_short_of_what_was_fetched(grouped: Path) -> None:
    """The tool may keep fewer rows than the backend returned (byte cap): the next page starts there."""
    warehouse = DuckDBWarehouse(grouped)
    sql = "SELECT K FROM EVENTS GROUP BY K"
    first = _query(warehouse, sql, max_rows=100)
    second = _query(warehouse, sql, offset=60, max_rows=100, handle=first.handle)
    assert second.rows[:40] == first.rows[60:]
    warehouse.close()


def test_a_foreign_handle_reruns_instead_of_serving_another_result(grouped: Path) -> None:
    warehouse = DuckDBWarehouse(grouped)
    first = _query(warehouse, "SELECT K FROM EVENTS ORDER BY K", max_rows=5)
    other = _query(warehouse, "SELECT V FROM EVENTS ORDER BY V DESC", offset=5, max_rows=2, handle=first.handle)
    assert other.rows == [[399994], [399993]]
    warehouse.close()


def test_statement_timeout_stops_a_runaway_query(tmp_path: Path) -> None:
    config = _config(tmp_path, tmp_path / "wh.duckdb", SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS="0.5")
    warehouse = DuckDBWarehouse(config, writable=True)
    started = time.perf_counter()
    with pytest.raises(BackendError) as caught:
        _query(warehouse, "SELECT SUM(A.RANGE * B.RANGE) FROM RANGE(300000) A, RANGE(300000) B", max_rows=1)
    assert time.perf_counter() - started < 10
    assert "SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS" in caught.value.agent_message()
    warehouse.close()


def test_statement_timeout_also_bounds_fetching_a_streamed_result(tmp_path: Path, sparse: Path) -> None:
    """DuckDB returns from execute() at once for this query; the scan happens while rows are fetched."""
    warehouse = DuckDBWarehouse(_config(tmp_path, sparse, SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS="1.5"))
    started = time.perf_counter()
    with pytest.raises(BackendError) as caught:
        _query(warehouse, SPARSE_SQL, max_rows=100)  # unbounded, the scan takes tens of seconds
    elapsed = time.perf_counter() - started
    assert "longer than 1.5 s" in caught.value.message
    assert elapsed < 6, f"stopped only after {elapsed:.1f} s"
    warehouse.close()


def test_a_page_served_from_a_kept_open_result_has_its_own_deadline(tmp_path: Path, grouped: Path) -> None:
    warehouse = DuckDBWarehouse(_config(tmp_path, grouped, SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS="1"))
    sql = "SELECT K FROM EVENTS GROUP BY K"
    first = _query(warehouse, sql, max_rows=10)
    time.sleep(1.5)  # longer than the budget: an old timer must not stop the next page
    second = _query(warehouse, sql, offset=10, max_rows=10, handle=first.handle)
    assert len(second.rows) == 10 and second.handle == first.handle
    warehouse.close()


def test_cancel_token_interrupts_a_streamed_fetch(tmp_path: Path, sparse: Path) -> None:
    warehouse = DuckDBWarehouse(sparse)
    token = CancelToken()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            _query(warehouse, SPARSE_SQL, cancel=token)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    token.cancel()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome and isinstance(outcome[0], CancelledByClient)
    warehouse.close()


def test_close_while_a_query_runs_interrupts_it_and_raises_nothing(tmp_path: Path, sparse: Path) -> None:
    warehouse = DuckDBWarehouse(sparse)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            _query(warehouse, SPARSE_SQL)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    started = time.perf_counter()
    warehouse.close()  # must not raise "connection is busy"
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert time.perf_counter() - started < 5
    assert outcome and isinstance(outcome[0], BackendError)
    assert "shutting down" in outcome[0].message


def test_missing_warehouse_says_how_to_make_one_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "wh.duckdb"
    with pytest.raises(ConfigError) as caught:
        DuckDBWarehouse(path).list_databases()
    assert "sophia demo" in caught.value.agent_message()
    assert not path.exists()


def test_a_text_file_is_reported_as_not_a_duckdb_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(ConfigError) as caught:
        DuckDBWarehouse(path).list_databases()
    assert f"{path} is not a DuckDB database file" in caught.value.message


def test_a_sqlite_file_is_reported_as_not_a_duckdb_database_not_as_a_bug(tmp_path: Path) -> None:
    path = tmp_path / "sqlite.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE T (A INTEGER)")
    con.close()
    with pytest.raises(ConfigError) as caught:
        DuckDBWarehouse(path).list_databases()
    assert "is not a DuckDB database file (it is a SQLite database)" in caught.value.message
    assert "SOPHIA_DUCKDB_PATH" in caught.value.agent_message()


def test_parameter_count_mismatch_explains_params(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb", writable=True)
    with pytest.raises(InputError) as caught:
        _query(warehouse, "SELECT ? + ?", [1])
    assert "placeholder" in caught.value.agent_message()
    warehouse.close()


def test_translated_lambdas_run(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb", writable=True)
    assert _query(warehouse, "SELECT list_transform([1, 2], y -> y + 1) AS L").rows == [[[2, 3]]]
    joined = _query(warehouse, "SELECT ARRAY_TO_STRING(ARRAY_CONSTRUCT('a', NULL, 'b'), ', ') AS S")
    assert joined.rows == [["a, , b"]]
    warehouse.close()


def test_the_database_is_named_warehouse_whatever_the_file_is_called(tmp_path: Path) -> None:
    path = tmp_path / "renamed-copy.duckdb"
    load_demo_dataset(path)
    warehouse = DuckDBWarehouse(path)
    assert warehouse.list_databases() == [DATABASE_NAME]
    assert warehouse.default_database() == DATABASE_NAME
    assert _query(warehouse, "SELECT COUNT(*) AS N FROM WAREHOUSE.CRM.DEALS").rows == [[60]]
    warehouse.close()


def test_resource_limits_come_from_the_config_and_cannot_be_changed(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    load_demo_dataset(path)
    config = _config(
        tmp_path,
        path,
        SOPHIA_DUCKDB_MEMORY_LIMIT="1GiB",
        SOPHIA_DUCKDB_MAX_TEMP_SIZE="3GiB",
        SOPHIA_DUCKDB_THREADS="1",
    )
    warehouse = DuckDBWarehouse(config)
    cur = warehouse._cursor()
    names = ("memory_limit", "max_temp_directory_size", "threads", "temp_directory", "lambda_syntax")
    settings = {name: str(cur.execute("SELECT current_setting(?)", [name]).fetchone()[0]) for name in names}
    assert settings == {
        "memory_limit": "1.0 GiB",
        "max_temp_directory_size": "3.0 GiB",
        "threads": "1",
        "temp_directory": str(config.temp_directory),
        "lambda_syntax": "ENABLE_SINGLE_ARROW",
    }
    assert config.temp_directory.is_relative_to(tmp_path / "data")
    for sql in ("SET memory_limit = '64GB'", "SET max_temp_directory_size = '1TB'", "RESET threads"):
        with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
            cur.execute(sql)
    cur.close()
    warehouse.close()


def test_read_only_connection_cannot_read_files_even_without_the_guard(tmp_path: Path) -> None:
    """Each statement works on an unlocked connection, so each refusal proves one lockdown setting."""
    path = tmp_path / "wh.duckdb"
    load_demo_dataset(path)
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n42\n")
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    warehouse = DuckDBWarehouse(path)
    cur = warehouse._cursor()
    refusals: list[tuple[str, type[duckdb.Error], str]] = [
        (f"SELECT * FROM read_csv('{secret}')", duckdb.PermissionException, "disabled by configuration"),
        (f"ATTACH '{other}' AS OTHER", duckdb.PermissionException, "disabled by configuration"),
        ("INSTALL httpfs", duckdb.PermissionException, "disabled by configuration"),
        ("LOAD httpfs", duckdb.PermissionException, "disabled through configuration"),
        ("SET threads = 1", duckdb.InvalidInputException, "configuration has been locked"),
        ("INSERT INTO CRM.ACCOUNTS VALUES (99, 'x', 'y', 'z', 1)", duckdb.InvalidInputException, "read-only"),
    ]
    for sql, error, words in refusals:
        with pytest.raises(error, match=words):
            cur.execute(sql)
    cur.close()
    warehouse.close()


def test_errors_sent_to_the_agent_do_not_show_the_users_directories(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    load_demo_dataset(path)
    warehouse = DuckDBWarehouse(path)
    with pytest.raises(InputError) as caught:
        _query(warehouse, "SELECT * FROM CRM.NO_SUCH_TABLE")
    assert str(tmp_path) not in caught.value.agent_message()
    warehouse.close()


def test_demo_loader_leaves_a_users_own_tables_alone(tmp_path: Path) -> None:
    path = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA CRM; CREATE TABLE CRM.DEALS (ID INT); INSERT INTO CRM.DEALS VALUES (7)")
    con.close()
    with pytest.raises(InputError) as caught:
        load_demo_dataset(path)
    assert "CRM.DEALS" in caught.value.message and "--force" in caught.value.agent_message()
    con = duckdb.connect(str(path))
    assert con.execute("SELECT * FROM CRM.DEALS").fetchall() == [(7,)]
    con.close()
    assert load_demo_dataset(path, force=True)["deals"] == 60
    assert load_demo_dataset(path)["deals"] == 60  # its own tables it may replace again


def test_an_unopenable_esc_does_not_silently_fall_back_to_duckdb(tmp_path: Path) -> None:
    calls = threading.Event()

    def broken(ref: str, token: str, url: str | None) -> SourceValues:
        calls.set()
        raise ConfigError("Pulumi ESC unreachable at http://127.0.0.1:9")

    settings = Settings(
        environ={
            "SOPHIA_ESC_ENV": "acme/sophia/prod",
            "PULUMI_ACCESS_TOKEN": "pul-abcdef123456",
            "SOPHIA_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
        },
        esc_opener=broken,
    )
    with pytest.raises(ConfigError) as caught:
        open_warehouse(settings, writable=False)
    assert calls.is_set()
    assert "acme/sophia/prod" in caught.value.message
    assert "unset SOPHIA_ESC_ENV" in caught.value.agent_message()


def test_esc_configured_without_a_token_refuses_instead_of_answering_from_duckdb(tmp_path: Path) -> None:
    opened = threading.Event()

    def opener(ref: str, token: str, url: str | None) -> SourceValues:
        opened.set()
        return SourceValues(f"esc:{ref}", {})

    for token in ("", None):
        environ = {"SOPHIA_ESC_ENV": "acme/sophia/prod", "SOPHIA_DUCKDB_PATH": str(tmp_path / "wh.duckdb")}
        if token is not None:
            environ["PULUMI_ACCESS_TOKEN"] = token
        with pytest.raises(ConfigError) as caught:
            open_warehouse(Settings(environ=environ, esc_opener=opener), writable=False)
        assert "PULUMI_ACCESS_TOKEN is not set" in caught.value.agent_message()
        assert caught.value.agent_message().count("What to do:") == 1
    assert not opened.is_set()
