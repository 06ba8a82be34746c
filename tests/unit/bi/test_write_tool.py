"""`warehouse_execute`'s logic, called directly: the statement runs, and both gates hold."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.duckdb import DuckDBWarehouse
from sophia_business_intelligence.settings import SETTINGS
from sophia_business_intelligence.sql_guard import check_write
from sophia_business_intelligence.tools.write import execute_statement
from sophia_shared.errors import PolicyError
from sophia_shared.settings import Settings

GATE = "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"


def _settings(path: Path, gate: str) -> Settings:
    return Settings(environ={"SOPHIA_DUCKDB_PATH": str(path), GATE: gate}, specs=SETTINGS)


def test_a_write_runs_and_reports_the_rows_it_changed(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "wh.duckdb", "1")
    wh = DuckDBWarehouse.from_settings(settings, writable=True)
    try:
        created = execute_statement(wh, CancelToken(), settings, sql="CREATE TABLE T (ID INT, NAME TEXT)", params=[])
        inserted = execute_statement(
            wh, CancelToken(), settings, sql="INSERT INTO T VALUES (?, ?), (?, ?)", params=[1, "a", 2, "b"]
        )
    finally:
        wh.close()
    assert created.statement_type == "CREATE TABLE"
    assert inserted.statement_type == "INSERT" and inserted.rows_affected == 2
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM T").fetchone() == (2,)


def test_the_tool_logic_refuses_without_the_gate_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE T (ID INT)")
    settings = _settings(path, "0")
    wh = DuckDBWarehouse.from_settings(settings, writable=True)  # even if the file were writable
    try:
        with pytest.raises(PolicyError, match=GATE):
            execute_statement(wh, CancelToken(), settings, sql="DROP TABLE T", params=[])
    finally:
        wh.close()
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'T'").fetchone() == (1,)


def test_a_read_only_warehouse_refuses_a_checked_write_itself(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE T (ID INT)")
    wh = DuckDBWarehouse.from_settings(_settings(path, "1"), writable=False)
    try:
        with pytest.raises(PolicyError, match="read-only"):
            wh.execute_write(check_write("DELETE FROM T", dialect="duckdb"), params=[], cancel=CancelToken())
    finally:
        wh.close()
