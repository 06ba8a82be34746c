"""The BI server driven the way a user's MCP client drives it: spawned, over stdio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sophia_business_intelligence.demo_data import DEMO_QUERIES, load_demo_dataset
from sophia_cli.client import connect, result_text
from sophia_cli.servers import find_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BI = find_server("bi")
SECRET = "sk-live-7f3a9c2e4b1d8f6a0c5e"


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    load_demo_dataset(path)
    return path


def _env(path: Path, **extra: str) -> dict[str, str]:
    return {"SOPHIA_DUCKDB_PATH": str(path), **extra}


async def test_lists_and_describes_the_demo_tables(warehouse: Path) -> None:
    async with connect(BI, _env(warehouse)) as client:
        tables = await client.call_tool("warehouse_list_tables", {})
        described = await client.call_tool("warehouse_describe_table", {"table": "crm.deals"})
    names = {(t["schema_name"], t["name"]) for t in tables.structured_content["items"]}
    assert {("CRM", "DEALS"), ("CALLS", "TRANSCRIPTS"), ("TEAM", "MESSAGES"), ("CRM", "ACCOUNTS")} <= names
    columns = [c["name"] for c in described.structured_content["items"]]
    assert columns[:3] == ["DEAL_ID", "ACCOUNT_ID", "NAME"]
    assert "EXPECTED_CLOSE_DATE" in result_text(described)


async def test_snowflake_sql_runs_on_the_embedded_warehouse(warehouse: Path) -> None:
    async with connect(BI, _env(warehouse)) as client:
        for title, sql in DEMO_QUERIES:
            result = await client.call_tool("warehouse_query", {"sql": sql})
            assert not result.is_error, (title, result_text(result))
            assert result.structured_content["row_count"] > 0, title
        slipped = await client.call_tool("warehouse_query", {"sql": DEMO_QUERIES[1][1]})
    rows = slipped.structured_content["rows"]
    cols = [c["name"] for c in slipped.structured_content["columns"]]
    days = cols.index("DAYS_SLIPPED")
    assert all(row[days] > 0 for row in rows)
    amount = rows[0][cols.index("AMOUNT")]
    assert isinstance(amount, str) and "." in amount  # Decimal travels as an exact string


async def test_paging_walks_every_row_once(warehouse: Path) -> None:
    seen: list[int] = []
    cursor = ""
    pages = 0
    async with connect(BI, _env(warehouse)) as client:
        while True:
            args: dict[str, Any] = {"sql": "SELECT DEAL_ID FROM CRM.DEALS ORDER BY DEAL_ID", "max_rows": 7}
            if cursor:
                args["cursor"] = cursor
            page = (await client.call_tool("warehouse_query", args)).structured_content
            seen += [row[0] for row in page["rows"]]
            pages += 1
            if not page["truncated"]:
                break
            cursor = page["next_cursor"]
        foreign = await client.call_tool("warehouse_query", {"sql": "SELECT 1", "cursor": cursor or "abc"})
    assert seen == list(range(1, 61))
    assert pages == 9
    assert foreign.is_error


async def test_guard_and_lockdown_refuse_over_the_wire(warehouse: Path, tmp_path: Path) -> None:
    secret_file = tmp_path / "passwords.csv"
    secret_file.write_text("user,password\nroot,hunter2\n")
    attempts = [
        "DELETE FROM CRM.DEALS",
        "SELECT 1; DROP TABLE CRM.DEALS",
        f"SELECT * FROM read_csv('{secret_file}')",
        f"SELECT * FROM '{secret_file}'",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
        "SET threads = 1",
    ]
    async with connect(BI, _env(warehouse)) as client:
        for sql in attempts:
            result = await client.call_tool("warehouse_query", {"sql": sql})
            assert result.is_error, sql
            assert "hunter2" not in result_text(result)
        count = await client.call_tool("warehouse_query", {"sql": "SELECT COUNT(*) AS N FROM CRM.DEALS"})
    assert count.structured_content["rows"] == [[60]]


async def test_write_tool_only_behind_the_gate(warehouse: Path) -> None:
    async with connect(BI, _env(warehouse)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert "warehouse_execute" not in names
    async with connect(BI, _env(warehouse, SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE="1")) as client:
        made = await client.call_tool("warehouse_execute", {"sql": "CREATE TABLE CRM.NOTES (ID INT, BODY VARCHAR)"})
        added = await client.call_tool(
            "warehouse_execute",
            {"sql": "INSERT INTO CRM.NOTES VALUES (?, ?)", "params": [1, "it's; DROP TABLE x"]},
        )
        two = await client.call_tool("warehouse_execute", {"sql": "DELETE FROM CRM.NOTES; DROP TABLE CRM.DEALS"})
        back = await client.call_tool("warehouse_query", {"sql": "SELECT BODY FROM CRM.NOTES"})
    assert not made.is_error and not added.is_error, result_text(made) + result_text(added)
    assert added.structured_content["rows_affected"] == 1
    assert two.is_error
    assert back.structured_content["rows"] == [["it's; DROP TABLE x"]]


async def test_no_configured_secret_leaks_in_results_errors_or_logs(warehouse: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    env = _env(warehouse, TAVILY_API_KEY=SECRET, SOPHIA_LOG_LEVEL="DEBUG")
    with log_path.open("w") as errlog:
        async with connect(BI, env, quiet=False, errlog=errlog) as client:
            echoed = await client.call_tool("warehouse_query", {"sql": f"SELECT '{SECRET}' AS LEAK"})
            bound = await client.call_tool("warehouse_query", {"sql": "SELECT ? AS LEAK", "params": [SECRET]})
            failed = await client.call_tool("warehouse_query", {"sql": f'SELECT * FROM "{SECRET}"'})
    everything = json.dumps([r.model_dump(mode="json") for r in (echoed, bound, failed)]) + log_path.read_text()
    assert failed.is_error
    assert SECRET not in everything
    assert "[REDACTED]" in result_text(echoed)
    assert echoed.structured_content["rows"] == [["[REDACTED]"]]


async def test_twenty_parallel_first_calls_all_answer_and_the_server_stays_healthy(warehouse: Path) -> None:
    """Agents open with several calls at once; the first ones must not race the server's lazy imports."""
    import anyio

    results: list[Any] = []
    async with connect(BI, _env(warehouse)) as client:

        async def call(i: int) -> None:
            if i % 4 == 0:
                results.append(await client.call_tool("warehouse_describe_table", {"table": "CRM.DEALS"}))
            else:
                results.append(
                    await client.call_tool("warehouse_query", {"sql": f"SELECT {i} AS I, COUNT(*) FROM crm.deals"})
                )

        async with anyio.create_task_group() as group:
            for i in range(20):
                group.start_soon(call, i)
        later = await client.call_tool("warehouse_query", {"sql": "SELECT 1 AS ONE"})
    errors = [result_text(r) for r in results if r.is_error]
    assert not errors, errors[:3]
    assert len(results) == 20
    assert not later.is_error and later.structured_content["rows"] == [[1]]
