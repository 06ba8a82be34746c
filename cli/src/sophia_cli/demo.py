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
    # The demo always runs on the embedded warehouse and the embedded vector store, whatever Snowflake or
    # Pinecone settings exist; it opens the write and memory gates for its own server only.
    env = {
        "SOPHIA_DUCKDB_PATH": str(path),
        "SOPHIA_VECTOR_BACKEND": "embedded",
        "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE": "1",
        "SOPHIA_MEMORY_ALLOW_WRITE": "1",
    }
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
        await _semantic_demo(client)
    await _ai_demo()
    await _infra_demo(settings)
    print('\nTry it yourself:  uv run sophia call bi warehouse_query \'{"sql": "SELECT * FROM CRM.ACCOUNTS"}\'')
    return 0


DEMO_INDEX = "demo-transcripts"
DEMO_TAG = "sophia-demo"


async def _semantic_demo(client) -> None:  # type: ignore[no-untyped-def]
    """Sentiment, search by meaning and memory, all on this machine (no keys, no network)."""
    _banner("Sentiment of the slipped deals' calls (cortex_text; VADER on the embedded warehouse)")
    await _show(
        client,
        "cortex_text",
        {
            "function": "sentiment",
            "sql": "SELECT T.CALL_ID, D.NAME AS DEAL, D.SLIP_REASON, T.TRANSCRIPT FROM CALLS.TRANSCRIPTS T "
            "JOIN CRM.DEALS D ON D.DEAL_ID = T.DEAL_ID WHERE D.SLIP_REASON IS NOT NULL ORDER BY T.CALL_ID",
            "text_column": "TRANSCRIPT",
            "max_rows": 8,
        },
    )
    _banner("Find calls by meaning (local MiniLM embeddings, exact search)")
    described = await client.call_tool("vector_describe_index", {"name": DEMO_INDEX})
    if described.is_error:
        await _show(client, "vector_create_index", {"name": DEMO_INDEX})
    await _show(
        client,
        "vector_load_from_warehouse",
        {
            "index": DEMO_INDEX,
            "sql": "SELECT T.CALL_ID, T.TRANSCRIPT, T.DEAL_ID, D.STAGE FROM CALLS.TRANSCRIPTS T "
            "JOIN CRM.DEALS D ON D.DEAL_ID = T.DEAL_ID",
            "id_column": "CALL_ID",
            "text_column": "TRANSCRIPT",
            "metadata_columns": ["DEAL_ID", "STAGE"],
        },
    )
    await _show(
        client, "vector_search", {"index": DEMO_INDEX, "text": "the customer pushes back on our pricing", "top_k": 3}
    )
    _banner("Remember and recall (long-term memory, its own gate)")
    await client.call_tool("memory_forget", {"tags": [DEMO_TAG], "confirm": True})  # the demo's earlier notes
    await _show(
        client,
        "memory_remember",
        {
            "text": "Q3 numbers exclude the EMEA reseller deals; finance restates them in January.",
            "tags": ["finance", "emea", DEMO_TAG],
            "source": "sophia demo",
        },
    )
    await _show(
        client,
        "memory_remember",
        {"text": "Deals over 200k need a security review before proposal.", "tags": ["policy", DEMO_TAG]},
    )
    await _show(client, "memory_recall", {"query": "what did we decide about the EMEA numbers?", "top_k": 2})


async def _ai_demo() -> None:
    """The AI server with no keys: what works offline, and what an LLM call asks for."""
    entry = find_server("ai-intelligence")
    _banner(f"Starting {entry.mcp_name} over stdio (no gateway, no keys)")
    async with connect(entry, {"SOPHIA_PORTKEY_BASE_URL": "", "PORTKEY_API_KEY": ""}) as client:
        await _show(
            client,
            "llm_estimate",
            {"prompt": "Summarise why the Q4 deals slipped, from the call transcripts.", "output_tokens": 400},
        )
        await _show(client, "llm_models", {"min_context": 128000, "max_input_price": 1.0})
        await _show(client, "llm_embed", {"texts": ["pricing pushback", "the customer wants a discount"]})
        result = await client.call_tool("llm_chat", {"prompt": "Which deals slipped?"})
        print('$ llm_chat {"prompt": "Which deals slipped?"}')
        print(("needs a gateway: " if result.is_error else "") + result_text(result))
        await _show(client, "llm_usage", {})


DEMO_STACK = "demo"  # the stack `sophia-demo` of the sophia-ai project


async def _infra_demo(settings: Settings) -> None:
    """The suite's own sophia-ai stack on the embedded local backend: preview, up, scale data 3 → 5 with the diff,
    outputs, destroy; then the Lambda launch dry run when a key is set."""
    from sophia_infrastructure.pulumi.cli import INSTALL_HINT, find_cli
    from sophia_shared.errors import SophiaError

    try:
        find_cli(settings)
    except SophiaError:
        print(f"\n(Infrastructure demo skipped: the Pulumi CLI was not found. {INSTALL_HINT})")
        return
    entry = find_server("infrastructure")
    _banner(f"Starting {entry.mcp_name} over stdio (embedded local Pulumi backend)")
    # The demo always uses the embedded file:// backend, whatever Pulumi Cloud settings exist.
    env = {"SOPHIA_INFRASTRUCTURE_ALLOW_WRITE": "1", "PULUMI_BACKEND_URL": "", "PULUMI_ACCESS_TOKEN": ""}
    async with connect(entry, env) as client:
        stack: dict[str, object] = {"stack": DEMO_STACK}
        _banner("Preview the sophia-ai stack (changes nothing)")
        first = await client.call_tool("stack_preview", stack)
        print(f"$ stack_preview {json.dumps(stack)}")
        print(result_text(first))
        if first.is_error:
            print("(Infrastructure demo stopped: the suite's program cannot run here; see the message above.)")
            return
        _banner("Apply it (stack_up)")
        await _show(client, "stack_up", stack)
        _banner("Scale the data workload from 3 to 5 replicas: the diff, then apply")
        scale: dict[str, object] = {"workload": "data", "replicas": 5, **stack}
        await _show(client, "stack_scale", scale)
        await _show(client, "stack_scale", {**scale, "dry_run": False})
        _banner("Outputs and history")
        await _show(client, "stack_outputs", stack)
        await _show(client, "stack_history", {**stack, "limit": 5})
        _banner("Destroy it (confirm = the stack name)")
        await _show(client, "stack_destroy", {**stack, "confirm": f"sophia-{DEMO_STACK}", "remove_stack": True})
    if settings.get("LAMBDA_API_KEY") or settings.get("LAMBDA_LABS_API_KEY"):
        await _lambda_dry_run(entry)


async def _lambda_dry_run(entry) -> None:  # type: ignore[no-untyped-def]
    """The cheapest GPU with capacity, and what launching it would cost: a dry run, nothing is launched."""
    _banner("Lambda Cloud: the cheapest GPU with capacity, and a launch dry run")
    async with connect(entry, {"SOPHIA_INFRASTRUCTURE_ALLOW_WRITE": "1"}) as client:
        types = await client.call_tool("gpu_types", {})
        print("$ gpu_types {}")
        print(result_text(types).splitlines()[0] if not types.is_error else result_text(types))
        offers = [t for t in (types.structured_content or {}).get("items", []) if t.get("regions_with_capacity")]
        keys = await client.call_tool("gpu_account", {"kind": "ssh_keys"})
        names = [k.get("name", "") for k in (keys.structured_content or {}).get("items", [])]
        if types.is_error or not offers or not names:
            print("(No type with capacity or no SSH key in the account: the launch dry run is skipped.)")
            return
        cheapest = offers[0]
        await _show(
            client,
            "gpu_launch",
            {
                "instance_type": cheapest["name"],
                "region": cheapest["regions_with_capacity"][0],
                "ssh_key": names[0],
                "lease_hours": 2,
                "dry_run": True,
            },
        )
