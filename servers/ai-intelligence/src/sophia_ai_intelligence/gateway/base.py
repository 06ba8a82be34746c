"""What the AI tools need from a gateway; no MCP types. Async: the SDK's async client, no worker threads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    model: str  # "" → the routing config's or SOPHIA_AI_DEFAULT_MODEL
    max_tokens: int | None = None
    temperature: float | None = None
    json_output: bool = False
    trace_id: str = ""  # sent as x-portkey-trace-id


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str  # the model that answered, as the provider reports it
    provider: str  # the provider that answered ("openai", "anthropic", …; "" when unknown)
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: float
    fallbacks: tuple[str, ...] = ()  # targets tried and failed before the one that answered
    retries: int = 0  # x-portkey-retry-attempt-count
    finish_reason: str = ""
    trace_id: str = ""


@dataclass(frozen=True)
class EmbedResult:
    vectors: list[list[float]]
    model: str
    input_tokens: int | None = None


@dataclass(frozen=True)
class Target:
    """One routing target as the effective config has it (credentials never included)."""

    provider: str
    weight: float
    has_credentials: bool
    credential_source: str  # "OPENAI_API_KEY", "virtual key", "custom host", or "" when missing
    model: str = ""
    custom_host: str = ""


@dataclass(frozen=True)
class RoutingPlan:
    """The effective routing: what is sent as x-portkey-config (secrets masked) and what it means."""

    source: str  # "default", "PORTKEY_CONFIG (saved id)", "PORTKEY_CONFIG (JSON)"
    config: dict[str, Any]  # as sent, with every api_key / virtual_key masked
    strategy: str
    targets: tuple[Target, ...]
    left_out: tuple[str, ...] = ()  # providers dropped for want of credentials (weights re-normalised)
    notes: tuple[str, ...] = field(default=())


OnDelta = Callable[[str], Awaitable[None]]


class Gateway(Protocol):
    def describe(self) -> str:
        """One line: which gateway (cloud or the self-hosted URL) and which config (no secrets)."""
        ...

    def routing(self) -> RoutingPlan: ...

    async def chat(self, request: ChatRequest, *, on_delta: OnDelta | None = None) -> ChatResult:
        """One completion, streamed when `on_delta` is given; cancellation (anyio) stops the request."""
        ...

    async def embed(self, texts: Sequence[str], *, model: str) -> EmbedResult: ...

    async def list_models(self) -> list[str]:
        """Model ids the gateway/providers list, when reachable (empty when they list none)."""
        ...

    async def ping(self) -> str: ...

    async def close(self) -> None: ...
