"""`sophia demo`: load the demo dataset, start the BI server over stdio, and query it for real."""

from __future__ import annotations

import json
import time

from sophia_shared.settings import Settings

from .client import connect, result_text
from .servers import find_server


def _banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)))


async def _show(client, tool: str, arguments: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = await client.call_tool(tool, arguments)
    elapsed = (time.perf_counter() - started) * 1000
    print(f"$ {tool} {json.dumps(arguments)[:200]}   ({elapsed:.0f} ms)")
    print(result_text(result))
    if result.is_error:
        raise SystemExit(f"demo: {tool} failed")


async def run_demo(*, force: bool = False) -> int:
    from sophia_business_intelligence.backends.duckdb import duckdb_path
    from sophia_business_intelligence.backends.snowflake import snowflake_configured
    from sophia_business_intelligence.demo_data import DEMO_QUERIES, load_demo_dataset

    settings = Settings()
    path = duckdb_path(settings)
    counts = load_demo_dataset(path, force=force)
    _banner("Demo dataset")
    print(f"Wrote {', '.join(f'{n} {k}' for k, n in counts.items())} into {path}")
    # The demo always runs on the embedded warehouse, whatever Snowflake settings exist.
    env = {"SOPHIA_DUCKDB_PATH": str(path)}
    if snowflake_configured(settings):
        print("(Snowflake is configured; the demo still uses the embedded warehouse.)")
        env |= {"SNOWFLAKE_ACCOUNT": "", "SNOWFLAKE_CONNECTION_NAME": ""}

    entry = find_server("business-intelligence")
    _banner(f"Starting {entry.mcp_name} over stdio")
    started = time.perf_counter()
    async with connect(entry, env) as client:
        tools = (await client.list_tools()).tools
        print(
            f"initialize + tools/list in {(time.perf_counter() - started) * 1000:.0f} ms: "
            + ", ".join(t.name for t in tools)
        )
        _banner("What is in the warehouse")
        await _show(client, "warehouse_list_tables", {})
        await _show(client, "warehouse_describe_table", {"table": "CRM.DEALS"})
        for title, sql in DEMO_QUERIES:
            _banner(title)
            await _show(client, "warehouse_query", {"sql": sql, "max_rows": 20})
        _banner("The guard at work")
        result = await client.call_tool("warehouse_query", {"sql": "DELETE FROM CRM.DEALS; SELECT 1"})
        print('$ warehouse_query {"sql": "DELETE FROM CRM.DEALS; SELECT 1"}')
        print(("refused: " if result.is_error else "UNEXPECTEDLY ACCEPTED: ") + result_text(result))
        if not result.is_error:
            return 1
    print('\nTry it yourself:  uv run sophia call bi warehouse_query \'{"sql": "SELECT * FROM CRM.ACCOUNTS"}\'')
    return 0
