"""Which gateway the settings describe: a self-hosted Portkey gateway or Portkey's cloud."""

from __future__ import annotations

from sophia_shared.errors import NotConfigured
from sophia_shared.settings import Settings

from ..settings import PROVIDER_KEYS
from .base import Gateway


def open_gateway(settings: Settings) -> Gateway:
    """The configured gateway; ConfigError naming what to set when there is none (nothing is contacted here)."""
    from .portkey import PortkeyGateway

    if not (settings.get("SOPHIA_PORTKEY_BASE_URL") or settings.get("PORTKEY_API_KEY")):
        raise no_gateway_error()
    return PortkeyGateway(settings)


def no_gateway_error() -> NotConfigured:
    keys = ", ".join(PROVIDER_KEYS.values())
    return NotConfigured(
        "No LLM gateway is configured: every LLM call goes through a Portkey gateway.",
        hint=(
            "Set PORTKEY_API_KEY for Portkey's cloud, or SOPHIA_PORTKEY_BASE_URL for a self-hosted gateway (e.g. "
            "`npx @portkey-ai/gateway --port=8787 --headless`, then SOPHIA_PORTKEY_BASE_URL=http://127.0.0.1:8787/v1); "
            f"plus a provider key ({keys}) or PORTKEY_VIRTUAL_KEYS. To reach a local OpenAI-compatible server "
            "(Ollama, vLLM) run the self-hosted gateway and set SOPHIA_AI_CUSTOM_HOST=http://127.0.0.1:11434/v1 "
            "(with SOPHIA_AI_DEFAULT_MODEL naming one of its models)."
        ),
    )
