"""Streaming through the real open-source Portkey gateway: deltas in order, the full text, usage, cancellation."""

from __future__ import annotations

# The fixtures are imported from tests/fakes/portkey_gateway.py, so their parameters shadow the imports.
# ruff: noqa: F811
import json
import time
from pathlib import Path

import anyio
import pytest

from sophia_ai_intelligence.gateway.base import ChatMessage, ChatRequest
from sophia_ai_intelligence.gateway.config import gateway_custom_host
from sophia_ai_intelligence.gateway.portkey import PortkeyGateway
from sophia_ai_intelligence.settings import PROVIDER_KEYS, SETTINGS
from sophia_shared.settings import Settings
from tests.fakes.portkey_gateway import (  # noqa: F401 (fixtures)
    PROVIDER_TEST_KEYS,
    LocalProviders,
    RunningGateway,
    local_providers,
    portkey_gateway,
    providers,
    streams_through,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

QUESTION = ChatRequest(messages=(ChatMessage("user", "one two three four five"),), model="", max_tokens=50)
CANNOT_STREAM = (
    "this install resolves @hono/node-server >= 1.14, with which the gateway's stream path fails (HTTP 500); "
    'package.json needs "overrides": {"@portkey-ai/gateway": {"@hono/node-server": "1.13.8"}}'
)


def single(gateway: RunningGateway, providers: LocalProviders, tmp_path: Path, provider: str) -> PortkeyGateway:
    key = PROVIDER_TEST_KEYS[PROVIDER_KEYS[provider]]
    config = {
        "provider": provider,
        "api_key": key,
        "custom_host": gateway_custom_host(provider, providers.urls[provider]),
    }
    values = {"SOPHIA_PORTKEY_BASE_URL": gateway.base_url, "PORTKEY_CONFIG": json.dumps(config)}
    return PortkeyGateway(Settings(environ=values, cwd=tmp_path, specs=SETTINGS))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_streaming_always_delivers_the_full_text(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path, provider: str
) -> None:
    gateway = single(portkey_gateway, providers, tmp_path, provider)
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    result = await gateway.chat(QUESTION, on_delta=on_delta)
    await gateway.close()
    assert result.text == f"{provider} says: one two three four five"
    assert "".join(deltas) == result.text
    assert result.provider == provider
    assert result.output_tokens == 7


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_streaming_delivers_deltas_in_order_with_usage(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path, provider: str
) -> None:
    if not streams_through():
        pytest.fail(CANNOT_STREAM)
    gateway = single(portkey_gateway, providers, tmp_path, provider)
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    result = await gateway.chat(QUESTION, on_delta=on_delta)
    await gateway.close()
    assert deltas == [f"{provider} ", "says: ", "one ", "two ", "three ", "four ", "five"]
    assert result.input_tokens is not None and result.output_tokens == 7
    assert result.finish_reason in ("stop", "end_turn")
    body = getattr(providers, provider).calls[-1].json
    assert body["stream"] is True


async def test_cancelling_a_stream_stops_it_promptly(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    if not streams_through():
        pytest.fail(CANNOT_STREAM)
    providers.openai.stream_gap = 0.3  # about 3 s for the whole answer
    gateway = single(portkey_gateway, providers, tmp_path, "openai")
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    started = time.monotonic()
    with anyio.move_on_after(0.8):
        await gateway.chat(QUESTION, on_delta=on_delta)
    took = time.monotonic() - started
    await gateway.close()
    assert took < 1.5
    assert 0 < len(deltas) < 7
