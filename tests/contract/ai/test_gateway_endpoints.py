"""Embeddings, model listing and the gateway's own failures, through the real open-source Portkey gateway."""

from __future__ import annotations

# The fixtures are imported from tests/fakes/portkey_gateway.py, so their parameters shadow the imports.
# ruff: noqa: F811
import json
from pathlib import Path

import pytest

from sophia_ai_intelligence.gateway.base import ChatMessage, ChatRequest
from sophia_ai_intelligence.gateway.portkey import PortkeyGateway
from sophia_ai_intelligence.settings import SETTINGS
from sophia_shared.errors import BackendError, InputError
from sophia_shared.settings import Settings
from tests.fakes.llm_providers import OpenAICompatible, fake_vector, serve_provider
from tests.fakes.net import closed_port_url
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

HELLO = ChatRequest(messages=(ChatMessage("user", "hello"),), model="", max_tokens=50)


def default_gateway(gateway_url: str, providers: LocalProviders, tmp_path: Path, **env: str) -> PortkeyGateway:
    values = {"SOPHIA_PORTKEY_BASE_URL": gateway_url, **PROVIDER_TEST_KEYS, **env}
    settings = Settings(environ=values, cwd=tmp_path, specs=SETTINGS)
    return PortkeyGateway(settings, custom_hosts=providers.urls, retry_attempts=0)


async def test_embeddings_go_only_to_a_provider_that_embeds(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    if not streams_through():  # the same @hono/node-server defect breaks passed-through JSON answers
        pytest.fail("this install resolves @hono/node-server >= 1.14; see test_gateway_streaming.CANNOT_STREAM")
    gateway = default_gateway(portkey_gateway.base_url, providers, tmp_path)
    result = await gateway.embed(["alpha", "beta"], model="text-embedding-3-small")
    await gateway.close()
    assert result.vectors == [fake_vector("alpha"), fake_vector("beta")]
    assert result.model == "text-embedding-3-small" and result.input_tokens == 2
    assert [c.path for c in providers.openai.calls] == ["/v1/embeddings"]
    assert providers.openai.calls[0].json["encoding_format"] == "float"


async def test_list_models_never_fails_and_lists_when_the_gateway_can(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    gateway = default_gateway(portkey_gateway.base_url, providers, tmp_path)
    models = await gateway.list_models()
    await gateway.close()
    if streams_through():  # the same @hono/node-server defect breaks GET /v1/models
        # OpenRouter's listing is best effort: with a custom host the gateway asks <host>/models (no /v1).
        assert {"gpt-4o-mini", "claude-3-5-haiku-latest"} <= set(models)
    else:
        assert models == []


async def test_ping_reports_the_self_hosted_gateway(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    gateway = default_gateway(portkey_gateway.base_url, providers, tmp_path)
    line = await gateway.ping()
    await gateway.close()
    assert f"self-hosted gateway {portkey_gateway.base_url}" in line and "HTTP 200" in line


async def test_unreachable_gateway_names_the_setting_and_how_to_start_one(
    providers: LocalProviders, tmp_path: Path
) -> None:
    gateway = default_gateway(closed_port_url() + "/v1", providers, tmp_path)
    with pytest.raises(BackendError) as caught:
        await gateway.chat(HELLO)
    await gateway.close()
    assert "SOPHIA_PORTKEY_BASE_URL" in caught.value.message
    assert "npx @portkey-ai/gateway" in caught.value.hint


async def test_config_the_gateway_refuses_is_an_input_error_with_its_message(
    portkey_gateway: RunningGateway, providers: LocalProviders, tmp_path: Path
) -> None:
    # Valid for the docs' schema, refused by the gateway's own validator: its message comes through.
    config = {
        "provider": "openai",
        "api_key": PROVIDER_TEST_KEYS["OPENAI_API_KEY"],
        "strategy": {"mode": "single"},
        "targets": "not-a-list",
    }
    values = {"SOPHIA_PORTKEY_BASE_URL": portkey_gateway.base_url, "PORTKEY_CONFIG": "pc-unknown-1"}
    gateway = PortkeyGateway(Settings(environ=values, cwd=tmp_path, specs=SETTINGS))
    with pytest.raises(InputError) as caught:
        await gateway.chat(HELLO)
    await gateway.close()
    assert "HTTP 400" in caught.value.message
    assert config  # the saved id above is what the open-source gateway cannot resolve


async def test_saved_config_id_travels_as_the_config_header(tmp_path: Path) -> None:
    # A stand-in for Portkey's cloud records what the SDK sends.
    cloud = OpenAICompatible("cloud")
    with serve_provider(cloud) as url:
        values = {"SOPHIA_PORTKEY_BASE_URL": url, "PORTKEY_CONFIG": "pc-sophia-7f3a", "PORTKEY_API_KEY": "pk-live-4242"}
        gateway = PortkeyGateway(Settings(environ=values, cwd=tmp_path, specs=SETTINGS))
        result = await gateway.chat(HELLO)
        await gateway.close()
    sent = cloud.calls[-1].headers
    assert sent["x-portkey-config"] == "pc-sophia-7f3a"
    assert sent["x-portkey-api-key"] == "pk-live-4242"
    assert result.text == "cloud says: hello" and result.provider == ""
    assert json.loads(cloud.calls[-1].body)["model"] == "gpt-4o-mini"
