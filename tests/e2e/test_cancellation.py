"""MCP cancellation reaches the running statement: the warehouse stops working, not just waiting."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import duckdb
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.duckdb import DuckDBWarehouse
from sophia_business_intelligence.server import SPEC
from sophia_business_intelligence.sql_guard import check_read_only
from sophia_shared.errors import CancelledByClient
from sophia_shared.server import build_server
from sophia_shared.settings import Settings

SLOW_SQL = "SELECT SUM(A.RANGE * B.RANGE) AS X FROM RANGE(200000) A, RANGE(200000) B"


def _cpu_seconds_over(wall: float) -> float:
    before = time.process_time()
    time.sleep(wall)
    return time.process_time() - before


def test_cancel_token_interrupts_a_running_duckdb_query(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb", writable=True)
    token = CancelToken()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            statement = check_read_only(SLOW_SQL, dialect="duckdb")
            warehouse.query(statement, params=[], offset=0, max_rows=1, handle="", cancel=token)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    started = time.perf_counter()
    token.cancel()
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert time.perf_counter() - started < 10
    assert outcome and isinstance(outcome[0], CancelledByClient)
    assert "cancelled" in outcome[0].message
    warehouse.close()


@pytest.mark.anyio
async def test_client_timeout_cancels_the_statement_in_the_server(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "wh.duckdb")).close()  # an empty warehouse file
    settings = Settings(environ={"SOPHIA_DUCKDB_PATH": str(tmp_path / "wh.duckdb")})
    async with Client(build_server(SPEC, settings)) as client:
        started = time.perf_counter()
        with pytest.raises(MCPError):  # the client gives up and sends notifications/cancelled
            await client.call_tool("warehouse_query", {"sql": SLOW_SQL}, read_timeout_seconds=1.0)
        assert time.perf_counter() - started < 5
        await anyio.sleep(0.5)
        # Had the statement kept running, DuckDB would burn ~2 cores here.
        busy = await anyio.to_thread.run_sync(_cpu_seconds_over, 1.5)
        assert busy < 0.6, f"the query still runs: {busy:.2f} CPU s in 1.5 s"
        quick = await client.call_tool("warehouse_query", {"sql": "SELECT 1 AS ONE"})
        assert quick.structured_content["rows"] == [[1]]
