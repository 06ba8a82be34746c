"""The AI server's tools over MCP, through the real open-source gateway in front of local providers:
chat with cost and cache, compare with one failing model, usage and savings from the ledger, budget."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from sophia_ai_intelligence.gateway.base import Gateway
from sophia_ai_intelligence.gateway.portkey import PortkeyGateway
from sophia_ai_intelligence.server import SPEC
from sophia_ai_intelligence.state import AIState
from sophia_shared.server import build_server
from sophia_shared.settings import Settings
from tests.fakes.portkey_gateway import PROVIDER_TEST_KEYS, LocalProviders, RunningGateway

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
# Only OpenAI has a key: its streams report token usage, so costs are known and calls deterministic.
OPENAI_ONLY = dict.fromkeys(
    ("ANTHROPIC_API_KEY", "OPENROUTER_API_KEY", "TOGETHER_AI_API_KEY", "HUGGINGFACE_API_TOKEN"), ""
)


class LocalAIState(AIState):
    """The server's state with the gateway's targets pointed at the local test providers."""

    def __init__(self, settings: Settings, custom_hosts: dict[str, str]) -> None:
        super().__init__(settings)
        self.custom_hosts = custom_hosts

    def gateway(self) -> Gateway:
        with self._lock:
            if self._gateway is None:
                self._gateway = PortkeyGateway(self.settings, custom_hosts=self.custom_hosts, retry_attempts=0)
            return self._gateway


def _server(gateway: RunningGateway, providers: LocalProviders, tmp_path: Path, **env: str) -> Any:
    environ = {
        "SOPHIA_PORTKEY_BASE_URL": gateway.base_url,
        "SOPHIA_DATA_DIR": str(tmp_path),
        **PROVIDER_TEST_KEYS,
        **env,
    }
    settings = Settings(environ=environ, cwd=tmp_path, specs=SPEC.all_settings())

    def make_state(s: Settings) -> LocalAIState:
        return LocalAIState(s, providers.urls)

    return build_server(dataclasses.replace(SPEC, make_state=make_state), settings)


async def test_chat_answers_with_cost_and_the_second_identical_call_is_a_cache_hit(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    async with Client(_server(portkey_gateway, providers, tmp_path, **OPENAI_ONLY)) as client:
        args = {"prompt": "Summarise the pipeline", "model": "gpt-4o-mini"}
        first = await client.call_tool("llm_chat", args)
        reached = [p.completions for p in (providers.openai, providers.anthropic, providers.openrouter)]
        second = await client.call_tool("llm_chat", args)
        assert reached == [p.completions for p in (providers.openai, providers.anthropic, providers.openrouter)]
        usage = await client.call_tool("llm_usage", {"group_by": "model"})
    assert not first.is_error, first.content[0].text
    one, two = first.structured_content, second.structured_content
    assert one["text"].endswith("says: Summarise the pipeline")
    assert one["cache"]["status"] == "miss" and two["cache"]["status"] == "hit"
    assert two["text"] == one["text"] and two["cost_usd"] == 0
    assert one["cost_usd"] > 0 and one["input_tokens"] > 0  # gpt-4o-mini is in the price table
    assert one["trace_id"] and one["routing"] == "default"
    total = usage.structured_content["total"]
    assert total["calls"] == 2 and total["cache_hit_rate"] == 0.5
    assert abs(total["cost_usd"] - one["cost_usd"]) < 1e-9


async def test_compare_reports_each_model_and_one_failure_never_fails_the_rest(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    providers.anthropic.fail_next(20, status=500)
    env = {"PORTKEY_CONFIG": ""}  # the default routing: anthropic falls back to the others
    async with Client(_server(portkey_gateway, providers, tmp_path, **env)) as client:
        compared = await client.call_tool(
            "llm_compare", {"prompt": "Name a colour", "models": ["gpt-4o-mini", "claude-3-5-haiku-latest"]}
        )
    assert not compared.is_error, compared.content[0].text
    rows = {r["model"]: r for r in compared.structured_content["results"]}
    assert set(rows) == {"gpt-4o-mini", "claude-3-5-haiku-latest"}
    assert rows["gpt-4o-mini"]["ok"] and rows["gpt-4o-mini"]["latency_ms"] > 0
    assert "model | answered by | latency ms" in compared.content[0].text


async def test_the_hard_stop_refuses_calls_once_the_budget_is_spent(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    env = {"SOPHIA_AI_MONTHLY_BUDGET_USD": "0.0000001", "SOPHIA_AI_BUDGET_HARD_STOP": "1", **OPENAI_ONLY}

    def reached() -> int:
        return providers.openai.completions + providers.openrouter.completions + providers.anthropic.completions

    async with Client(_server(portkey_gateway, providers, tmp_path, **env)) as client:
        first = await client.call_tool("llm_chat", {"prompt": "one", "model": "gpt-4o-mini", "cache": "off"})
        after_first = reached()
        second = await client.call_tool("llm_chat", {"prompt": "two", "model": "gpt-4o-mini", "cache": "off"})
    assert not first.is_error
    assert "Budget alert (100%)" in first.content[0].text
    assert second.is_error and "monthly budget is spent" in second.content[0].text
    assert after_first >= 1 and reached() == after_first  # the refused call never left the server


async def test_chat_streams_progress_and_routing_shows_the_plan_without_keys(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    seen: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with Client(_server(portkey_gateway, providers, tmp_path)) as client:
        answer = await client.call_tool(
            "llm_chat", {"prompt": "count to five", "model": "gpt-4o-mini"}, progress_callback=progress
        )
        routing = await client.call_tool("llm_routing", {})
    assert not answer.is_error
    assert "".join(seen) == answer.structured_content["text"] and len(seen) > 1
    plan = routing.structured_content
    assert {t["provider"] for t in plan["targets"]} >= {"openai", "anthropic", "openrouter"}
    assert [t["weight"] for t in plan["targets"][:3]] == [40, 30, 30]
    for key in PROVIDER_TEST_KEYS.values():
        assert key not in routing.content[0].text and key not in str(plan)
