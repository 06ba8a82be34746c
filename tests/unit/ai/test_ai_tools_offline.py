"""What the AI server does with no keys and no network: the offline tools work, the LLM tools say what to set."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from sophia_ai_intelligence.server import SPEC
from sophia_shared.server import build_server
from sophia_shared.settings import Settings

pytestmark = pytest.mark.anyio


def _settings(tmp_path: Path, **extra: str) -> Settings:
    return Settings(environ={"SOPHIA_DATA_DIR": str(tmp_path), **extra}, cwd=tmp_path, specs=SPEC.all_settings())


async def test_llm_tools_name_the_variables_to_set_and_offline_tools_answer(tmp_path: Path) -> None:
    async with Client(build_server(SPEC, _settings(tmp_path))) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        chat = await client.call_tool("llm_chat", {"prompt": "hello"})
        compared = await client.call_tool("llm_compare", {"prompt": "hello", "models": ["gpt-4o-mini", "gpt-4o"]})
        estimate = await client.call_tool(
            "llm_estimate", {"prompt": "Summarise the quarter", "models": ["gpt-4o-mini", "nope-1"]}
        )
        models = await client.call_tool("llm_models", {"min_context": 128000, "capability": "chat"})
        usage = await client.call_tool("llm_usage", {"period": "7d"})
        routing = await client.call_tool("llm_routing", {})
        embedded = await client.call_tool("llm_embed", {"texts": ["pricing pushback", "budget freeze"]})
        stats = await client.call_tool("llm_cache_stats", {})
    assert "llm_cache_clear" not in names and len(names) == 8
    assert chat.is_error
    for variable in ("SOPHIA_PORTKEY_BASE_URL", "PORTKEY_API_KEY", "OPENAI_API_KEY", "SOPHIA_AI_CUSTOM_HOST"):
        assert variable in chat.content[0].text
    rows = compared.structured_content["results"]
    assert [r["ok"] for r in rows] == [False, False] and "SOPHIA_PORTKEY_BASE_URL" in rows[0]["error"]
    for result in (estimate, models, usage, routing, embedded, stats):
        assert not result.is_error, result.content[0].text
    priced = {e["model"]: e for e in estimate.structured_content["items"]}
    assert priced["gpt-4o-mini"]["cost_usd"] > 0 and priced["nope-1"]["cost_usd"] == -1
    assert "approximation" in priced["gpt-4o-mini"]["method"]
    windows = [m["context_window"] for m in models.structured_content["items"]]
    assert windows and min(windows) >= 128000
    prices = [m["input_per_1m_usd"] for m in models.structured_content["items"] if m["input_per_1m_usd"] >= 0]
    assert prices == sorted(prices)
    assert usage.structured_content["total"]["calls"] == 0 and usage.structured_content["budget_usd"] == 1000
    assert "No LLM provider has credentials" in routing.structured_content["problem"]
    assert embedded.structured_content["dimension"] == 384 and embedded.structured_content["count"] == 2


async def test_routing_leaves_out_providers_without_keys_and_never_shows_a_key(tmp_path: Path) -> None:
    key = "sk-test-openai-0123456789abcdef"
    settings = _settings(tmp_path, OPENAI_API_KEY=key, SOPHIA_PORTKEY_BASE_URL="http://127.0.0.1:9/v1")
    async with Client(build_server(SPEC, settings)) as client:
        routing = await client.call_tool("llm_routing", {"candidate_config": {"strategy": {"mode": "nonsense"}}})
    plan = routing.structured_content
    assert [t["provider"] for t in plan["targets"] if t["has_credentials"]] == ["openai"]
    assert set(plan["left_out"]) >= {"anthropic", "openrouter"}
    assert plan["candidate_valid"] is False and "nonsense" in plan["candidate_error"]
    assert key not in routing.content[0].text and key not in str(plan)


async def test_clearing_the_cache_needs_the_write_gate(tmp_path: Path) -> None:
    gate = {"SOPHIA_AI_INTELLIGENCE_ALLOW_WRITE": "1"}
    async with Client(build_server(SPEC, _settings(tmp_path, **gate))) as client:
        cleared = await client.call_tool("llm_cache_clear", {})
    assert not cleared.is_error and cleared.structured_content["removed"] == 0
