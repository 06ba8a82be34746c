"""The embedded warehouse on its own: paging from one execution, timeouts, lockdown, honest errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.duckdb import DuckDBWarehouse
from sophia_business_intelligence.demo_data import load_demo_dataset
from sophia_business_intelligence.state import open_warehouse
from sophia_shared.errors import BackendError, ConfigError, InputError
from sophia_shared.settings import Settings, SourceValues


@pytest.fixture
def grouped(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE EVENTS AS SELECT (i % 20000) AS K, i AS V FROM range(400000) t(i)")
    con.close()
    return path


def _page_all(warehouse: DuckDBWarehouse, sql: str, size: int) -> tuple[list[tuple[int, int]], int]:
    rows: list[tuple[int, int]] = []
    offset, handle, pages = 0, "", 0
    while True:
        page = warehouse.query(sql, params=[], offset=offset, max_rows=size, handle=handle, cancel=CancelToken())
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
    first = warehouse.query(sql, params=[], offset=0, max_rows=100, handle="", cancel=CancelToken())
    second = warehouse.query(sql, params=[], offset=60, max_rows=100, handle=first.handle, cancel=CancelToken())
    assert second.rows[:40] == first.rows[60:]
    warehouse.close()


def test_a_foreign_handle_reruns_instead_of_serving_another_result(grouped: Path) -> None:
    warehouse = DuckDBWarehouse(grouped)
    first = warehouse.query(
        "SELECT K FROM EVENTS ORDER BY K", params=[], offset=0, max_rows=5, handle="", cancel=CancelToken()
    )
    other = warehouse.query(
        "SELECT V FROM EVENTS ORDER BY V DESC",
        params=[],
        offset=5,
        max_rows=2,
        handle=first.handle,
        cancel=CancelToken(),
    )
    assert other.rows == [[399994], [399993]]
    warehouse.close()


def test_statement_timeout_stops_a_runaway_query(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb", writable=True, statement_timeout=0.5)
    started = time.perf_counter()
    with pytest.raises(BackendError) as caught:
        warehouse.query(
            "SELECT SUM(A.RANGE * B.RANGE) FROM RANGE(300000) A, RANGE(300000) B",
            params=[],
            offset=0,
            max_rows=1,
            handle="",
            cancel=CancelToken(),
        )
    assert time.perf_counter() - started < 10
    assert "SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS" in caught.value.agent_message()
    warehouse.close()


def test_missing_warehouse_says_how_to_make_one_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "wh.duckdb"
    with pytest.raises(ConfigError) as caught:
        DuckDBWarehouse(path).list_databases()
    assert "sophia demo" in caught.value.agent_message()
    assert not path.exists()


def test_a_file_that_is_not_duckdb_gets_the_right_hint(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(BackendError) as caught:
        DuckDBWarehouse(path).list_databases()
    assert "not a DuckDB database" in caught.value.agent_message()


def test_parameter_count_mismatch_explains_params(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb", writable=True)
    with pytest.raises(InputError) as caught:
        warehouse.query("SELECT ? + ?", params=[1], offset=0, max_rows=1, handle="", cancel=CancelToken())
    assert "placeholder" in caught.value.agent_message()
    warehouse.close()


def test_read_only_connection_cannot_read_files_even_without_the_guard(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    load_demo_dataset(path)
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n42\n")
    warehouse = DuckDBWarehouse(path)
    cur = warehouse._cursor()
    for sql in (
        f"SELECT * FROM read_csv('{secret}')",
        f"ATTACH '{tmp_path / 'x.duckdb'}'",
        "SET threads = 1",
        "INSERT INTO CRM.ACCOUNTS VALUES (99, 'x', 'y', 'z', 1)",
        "INSTALL httpfs",
    ):
        with pytest.raises(duckdb.Error):
            cur.execute(sql)
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
