"""warehouse_query through the in-process MCP client: caps, clipping and the cursor contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from sophia_business_intelligence.demo_data import load_demo_dataset
from sophia_business_intelligence.server import SPEC
from sophia_shared.server import build_server
from sophia_shared.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    load_demo_dataset(tmp_path / "wh.duckdb")
    return Settings(environ={"SOPHIA_DUCKDB_PATH": str(tmp_path / "wh.duckdb")}, specs=SPEC.all_settings())


async def test_one_huge_value_is_clipped_and_said_so(server_settings: Settings) -> None:
    async with Client(build_server(SPEC, server_settings)) as client:
        result = await client.call_tool("warehouse_query", {"sql": "SELECT REPEAT('x', 3000000) AS BIG"})
    payload = result.structured_content
    assert payload["clipped_cells"] == 1
    assert len(json.dumps(payload)) < 50_000
    assert payload["rows"][0][0].endswith("…[clipped 2,980,000 chars]")
    assert "clipped" in result.content[0].text


async def test_byte_cap_pages_wide_rows_without_losing_any(server_settings: Settings) -> None:
    sql = "SELECT DEAL_ID, REPEAT(NAME, 200) AS WIDE FROM CRM.DEALS ORDER BY DEAL_ID"
    seen: list[int] = []
    pages = 0
    async with Client(build_server(SPEC, server_settings)) as client:
        args: dict[str, object] = {"sql": sql, "max_rows": 1000}
        while True:
            page = (await client.call_tool("warehouse_query", args)).structured_content
            assert len(json.dumps(page["rows"])) <= 210_000
            seen += [row[0] for row in page["rows"]]
            pages += 1
            if not page["truncated"]:
                break
            args["cursor"] = page["next_cursor"]
    assert seen == list(range(1, 61))
    assert pages > 1  # ~6 KB a row: the byte cap, not max_rows, cut the pages


async def test_a_cursor_only_continues_the_request_it_came_from(server_settings: Settings) -> None:
    async with Client(build_server(SPEC, server_settings)) as client:
        first = await client.call_tool("warehouse_query", {"sql": "SELECT * FROM CRM.DEALS", "max_rows": 5})
        cursor = first.structured_content["next_cursor"]
        other = await client.call_tool("warehouse_query", {"sql": "SELECT * FROM CRM.ACCOUNTS", "cursor": cursor})
        forged = await client.call_tool("warehouse_query", {"sql": "SELECT * FROM CRM.DEALS", "cursor": "zzz"})
    assert other.is_error and "different request" in other.content[0].text
    assert forged.is_error and "not one this server issued" in forged.content[0].text


async def test_the_text_shows_long_values_whole_and_lists_as_json(server_settings: Settings) -> None:
    sql = "SELECT TRANSCRIPT, ['a', NULL] AS L, 'x|y' AS \"a|b\" FROM CALLS.TRANSCRIPTS WHERE CALL_ID = 2"
    async with Client(build_server(SPEC, server_settings)) as client:
        result = await client.call_tool("warehouse_query", {"sql": sql})
    assert not result.is_error, result.content[0].text
    transcript = result.structured_content["rows"][0][0]
    text = result.content[0].text
    assert len(transcript) >= 200  # the old text cut cells at 80 characters
    assert transcript.replace("\n", "\\n").replace("|", "\\|") in text  # nothing cut from the text
    assert '["a", null]' in text
    assert "a\\|b" in text and "x\\|y" in text


async def test_a_page_served_by_a_new_server_says_it_came_from_a_rerun(server_settings: Settings) -> None:
    args = {"sql": "SELECT DEAL_ID FROM CRM.DEALS ORDER BY 1", "max_rows": 3}
    async with Client(build_server(SPEC, server_settings)) as client:
        first = (await client.call_tool("warehouse_query", args)).structured_content
        held = (await client.call_tool("warehouse_query", {**args, "cursor": first["next_cursor"]})).structured_content
    async with Client(build_server(SPEC, server_settings)) as fresh:  # as every `sophia call` is
        again = await fresh.call_tool("warehouse_query", {**args, "cursor": first["next_cursor"]})
    assert held["rows"] == [[4], [5], [6]] and held["rerun"] is False
    assert again.structured_content["rows"] == [[4], [5], [6]] and again.structured_content["rerun"] is True
    assert "running the query again" in again.content[0].text
