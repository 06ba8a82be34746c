"""The BI server over stdio with Snowflake settings: the real connector against fakesnow's server."""

from __future__ import annotations

import time

import pytest

from sophia_cli.client import connect, result_text
from sophia_cli.servers import find_server
from tests.fakes.snowflake_server import FakeSnowflakeServer, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BI = find_server("bi")


async def test_snowflake_backend_end_to_end(fake_snowflake: FakeSnowflakeServer) -> None:
    env = fake_snowflake.settings_env(
        SNOWFLAKE_DATABASE="E2E_DB", SNOWFLAKE_SCHEMA="PUBLIC", SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE="1"
    )
    fake_snowflake.clear()
    async with connect(BI, env) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert not fake_snowflake.logins(), "listing tools must not log in"
        assert {"warehouse_query", "warehouse_execute"} <= names
        made = await client.call_tool(
            "warehouse_execute", {"sql": "CREATE TABLE PUBLIC.PIPELINE (ID INT, OWNER VARCHAR, AMOUNT NUMBER(12,2))"}
        )
        assert not made.is_error, result_text(made)
        for index in range(1, 26):
            added = await client.call_tool(
                "warehouse_execute",
                {"sql": "INSERT INTO PUBLIC.PIPELINE VALUES (?, ?, ?)", "params": [index, f"owner-{index % 3}", index]},
            )
            assert not added.is_error, result_text(added)
        seen: list[int] = []
        args: dict[str, object] = {"sql": "SELECT ID FROM PUBLIC.PIPELINE ORDER BY ID", "max_rows": 10}
        while True:
            page = (await client.call_tool("warehouse_query", args)).structured_content
            seen += [int(row[0]) for row in page["rows"]]
            if not page["truncated"]:
                break
            args["cursor"] = page["next_cursor"]
        described = await client.call_tool("warehouse_describe_table", {"table": "PUBLIC.PIPELINE"})
        refused = await client.call_tool("warehouse_query", {"sql": "SELECT 1; DROP TABLE PUBLIC.PIPELINE"})
    assert seen == list(range(1, 26))
    assert not described.is_error, result_text(described)
    assert [c["name"] for c in described.structured_content["items"]] == ["ID", "OWNER", "AMOUNT"]
    assert refused.is_error
    login = fake_snowflake.logins()[0]
    params = login.get("SESSION_PARAMETERS", {})
    assert params.get("MULTI_STATEMENT_COUNT") == 1
    assert params.get("QUERY_TAG") == "sophia-mcp"
    assert "STATEMENT_TIMEOUT_IN_SECONDS" in params
    assert all("DROP TABLE" not in sql for sql in fake_snowflake.sql_texts())


async def test_unreachable_snowflake_still_lists_tools_then_explains() -> None:
    env = {
        "SNOWFLAKE_ACCOUNT": "acme-prod",
        "SNOWFLAKE_USER": "ANALYST",
        "SNOWFLAKE_PASSWORD": "not-a-real-pass-123",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(free_port()),
        "SNOWFLAKE_PROTOCOL": "http",
    }
    started = time.perf_counter()
    async with connect(BI, env) as client:
        tools = (await client.list_tools()).tools
        listed = time.perf_counter() - started
        failed = await client.call_tool("warehouse_list_databases", {})
    assert tools and listed < 10
    assert failed.is_error
    text = result_text(failed)
    assert "SNOWFLAKE_ACCOUNT" in text
    assert "not-a-real-pass-123" not in text
