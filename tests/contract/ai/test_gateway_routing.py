"""Routing through the real open-source Portkey gateway in front of local OpenAI/Anthropic/OpenRouter providers."""

from __future__ import annotations

# The fixtures are imported from tests/fakes/portkey_gateway.py, so their parameters shadow the imports.
# ruff: noqa: F811
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from sophia_ai_intelligence.gateway.base import ChatMessage, ChatRequest, ChatResult
from sophia_ai_intelligence.gateway.portkey import PortkeyGateway
from sophia_ai_intelligence.settings import SETTINGS
from sophia_shared.errors import AuthError, BackendError
from sophia_shared.settings import Settings
from tests.fakes.portkey_gateway import (  # noqa: F401 (fixtures)
    PROVIDER_TEST_KEYS,
    LocalProviders,
    RunningGateway,
    local_providers,
    portkey_gateway,
    providers,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

HELLO = ChatRequest(messages=(ChatMessage("user", "hello"),), model="", max_tokens=50)


def gateway_for(
    gateway: RunningGateway,
    providers: LocalProviders,
    tmp_path: Path,
    *,
    without: tuple[str, ...] = (),
    retry_attempts: int = 0,
    **env: str,
) -> PortkeyGateway:
    values = {"SOPHIA_PORTKEY_BASE_URL": gateway.base_url, **PROVIDER_TEST_KEYS, **env}
    for name in without:
        values.pop(name)
    settings = Settings(environ=values, cwd=tmp_path, specs=SETTINGS)
    return PortkeyGateway(settings, custom_hosts=providers.urls, retry_attempts=retry_attempts)


def leaf(providers: LocalProviders, provider: str, **extra: Any) -> dict[str, Any]:
    from sophia_ai_intelligence.gateway.config import gateway_custom_host
    from sophia_ai_intelligence.settings import PROVIDER_KEYS

    key = PROVIDER_TEST_KEYS[PROVIDER_KEYS[provider]]
    host = gateway_custom_host(provider, providers.urls[provider])
    return {"provider": provider, "api_key": key, "custom_host": host, **extra}


def json_config(config: dict[str, Any]) -> str:
    return json.dumps(config)


async def test_load_balance_splits_calls_40_30_30(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    # 800 calls: each share's standard deviation is at most 1.73 points, so ±6 points is over 3.4 σ
    # (a false failure about once in 1000 runs); concurrency hides the per-call round trips.
    calls = 800
    gateway = gateway_for(portkey_gateway, providers, tmp_path)
    answered: Counter[str] = Counter()
    limiter = anyio.CapacityLimiter(16)

    async def one() -> None:
        async with limiter:
            result = await gateway.chat(HELLO)
            answered[result.provider] += 1

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for _ in range(calls):
            group.start_soon(one)
    took = time.monotonic() - started
    await gateway.close()
    print(f"{calls} calls in {took:.1f} s ({calls / took:.0f}/s); split {dict(answered)}")
    assert sum(answered.values()) == calls
    assert providers.counts() == dict(answered)  # each answer came from the provider named
    for provider, expected in {"openai": 40, "anthropic": 30, "openrouter": 30}.items():
        share = 100 * answered[provider] / calls
        spread = 100 * math.sqrt(expected / 100 * (1 - expected / 100) / calls)
        assert abs(share - expected) <= 6, (provider, share, spread)


async def test_default_answer_names_provider_model_and_usage(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    gateway = gateway_for(portkey_gateway, providers, tmp_path)
    results: list[ChatResult] = [await gateway.chat(HELLO) for _ in range(12)]
    await gateway.close()
    models = {
        "openai": "gpt-4o-mini",
        "anthropic": "claude-3-5-haiku-latest",
        "openrouter": "meta-llama/llama-3.1-70b-instruct",
    }
    for result in results:
        assert result.text == f"{result.provider} says: hello"
        assert result.model == models[result.provider]
        assert result.input_tokens is not None and result.output_tokens == 3
        assert result.fallbacks == () and result.retries == 0
        assert result.trace_id


@pytest.mark.parametrize("status", [503, 429])
async def test_fallback_answers_from_next_target_when_first_fails(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path, status: int
) -> None:
    config = {"strategy": {"mode": "fallback"}, "targets": [leaf(providers, "openai"), leaf(providers, "anthropic")]}
    gateway = gateway_for(portkey_gateway, providers, tmp_path, PORTKEY_CONFIG=json_config(config))
    providers.openai.fail_next(1, status)
    result = await gateway.chat(HELLO)
    await gateway.close()
    assert (result.provider, result.fallbacks) == ("anthropic", ("openai",))
    assert result.text == "anthropic says: hello"
    assert providers.counts() == {"openai": 1, "anthropic": 1, "openrouter": 0}


async def test_default_cascade_falls_back_when_a_provider_is_down(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    gateway = gateway_for(portkey_gateway, providers, tmp_path)
    providers.openai.fail_next(100, 503)
    results = [await gateway.chat(HELLO) for _ in range(20)]
    await gateway.close()
    assert all(r.provider in ("anthropic", "openrouter") for r in results)
    # A call that the balancer gave to OpenAI's cascade says OpenAI failed before Anthropic answered.
    via_openai = [r for r in results if r.fallbacks]
    assert via_openai and all(r.fallbacks == ("openai",) and r.provider == "anthropic" for r in via_openai)
    # OpenRouter's cascade starts with OpenRouter, so only OpenAI's own cascade reached OpenAI.
    assert providers.openai.completions == len(via_openai)


async def test_retries_back_off_exponentially_and_are_counted(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    config = {**leaf(providers, "openai"), "retry": {"attempts": 3, "on_status_codes": [429, 500, 502, 503, 504]}}
    gateway = gateway_for(portkey_gateway, providers, tmp_path, PORTKEY_CONFIG=json_config(config))
    providers.openai.fail_next(2, 503)
    result = await gateway.chat(HELLO)
    await gateway.close()
    assert result.retries == 2
    assert result.provider == "openai" and result.text == "openai says: hello"
    arrivals = [c.at for c in providers.openai.calls]
    assert len(arrivals) == 3
    first, second = arrivals[1] - arrivals[0], arrivals[2] - arrivals[1]
    assert first >= 0.9 and second >= 1.6 * first  # the gateway waits 1 s, then 2 s


async def test_provider_that_times_out_falls_back(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [leaf(providers, "openai", request_timeout=400), leaf(providers, "openrouter")],
    }
    gateway = gateway_for(portkey_gateway, providers, tmp_path, PORTKEY_CONFIG=json_config(config))
    providers.openai.slow_next(1, 3.0)
    started = time.monotonic()
    result = await gateway.chat(HELLO)
    await gateway.close()
    assert (result.provider, result.fallbacks) == ("openrouter", ("openai",))
    assert time.monotonic() - started < 2.5


async def test_our_timeout_names_its_setting(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    gateway = gateway_for(
        portkey_gateway,
        providers,
        tmp_path,
        PORTKEY_CONFIG=json_config(leaf(providers, "openai")),
        SOPHIA_AI_REQUEST_TIMEOUT_SECONDS="1",
    )
    providers.openai.slow_next(1, 3.0)
    with pytest.raises(BackendError, match="SOPHIA_AI_REQUEST_TIMEOUT_SECONDS"):
        await gateway.chat(HELLO)
    await gateway.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_malformed_provider_response_is_a_clear_error(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path, provider: str
) -> None:
    gateway = gateway_for(portkey_gateway, providers, tmp_path, PORTKEY_CONFIG=json_config(leaf(providers, provider)))
    getattr(providers, provider).malformed_next(1)
    with pytest.raises(BackendError) as caught:
        await gateway.chat(HELLO)
    await gateway.close()
    assert provider in caught.value.message
    assert not isinstance(caught.value, AuthError)


async def test_all_targets_failing_lists_what_was_tried(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [leaf(providers, "openai"), leaf(providers, "openrouter"), leaf(providers, "anthropic")],
    }
    gateway = gateway_for(portkey_gateway, providers, tmp_path, PORTKEY_CONFIG=json_config(config))
    providers.openai.fail_next(1, 503)
    providers.openrouter.fail_next(1, 502)
    providers.anthropic.fail_next(1, 529)
    with pytest.raises(BackendError) as caught:
        await gateway.chat(HELLO)
    await gateway.close()
    message = caught.value.message
    assert "Tried openai, openrouter, anthropic in that order" in message
    assert "anthropic answered HTTP 529" in message


async def test_missing_provider_key_leaves_that_target_out(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    gateway = gateway_for(portkey_gateway, providers, tmp_path, without=("ANTHROPIC_API_KEY",))
    providers.anthropic.fail_next(0)
    plan = gateway.routing()
    results = [await gateway.chat(HELLO) for _ in range(30)]
    await gateway.close()
    assert plan.left_out == ("anthropic",)
    assert {r.provider for r in results} <= {"openai", "openrouter"}
    assert providers.anthropic.completions == 0


async def test_provider_rejecting_its_key_names_the_key_to_check(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    gateway = gateway_for(
        portkey_gateway,
        providers,
        tmp_path,
        without=("OPENAI_API_KEY", "OPENROUTER_API_KEY"),
        ANTHROPIC_API_KEY="sk-ant-rotated-9999",
    )
    with pytest.raises(AuthError) as caught:
        await gateway.chat(HELLO)
    await gateway.close()
    assert "anthropic" in caught.value.message and "ANTHROPIC_API_KEY" in caught.value.hint
    assert "sk-ant-rotated-9999" not in caught.value.agent_message()
