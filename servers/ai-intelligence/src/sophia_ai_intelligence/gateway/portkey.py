"""`Gateway` over the `portkey-ai` SDK: Portkey's cloud or a self-hosted gateway, the routing in x-portkey-config.

`AsyncPortkey` builds the Portkey headers and its OpenAI-compatible client; we call that client with
`max_retries=0`, because the gateway already retries each target per the config (the SDK's own
default, 1, would replay the whole cascade after the gateway has given up, doubling cost and delay).
The SDK is imported on first use (about 0.9 s).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, SophiaError
from sophia_shared.redaction import redact
from sophia_shared.settings import Settings

from ..settings import PROVIDER_KEYS
from .base import ChatRequest, ChatResult, EmbedResult, OnDelta, RoutingPlan
from .config import Routing, load_routing

if TYPE_CHECKING:
    from portkey_ai._vendor.openai import AsyncOpenAI

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOUD_BASE_URL = "https://api.portkey.ai/v1"
START_GATEWAY_HINT = (
    "start the open-source gateway with `npx @portkey-ai/gateway --port=8787 --headless` and set "
    "SOPHIA_PORTKEY_BASE_URL=http://127.0.0.1:8787/v1, or unset it to use Portkey's cloud with PORTKEY_API_KEY"
)


def gateway_base_url(settings: Settings) -> tuple[str, bool]:
    """(base URL ending in /v1, is self-hosted) from SOPHIA_PORTKEY_BASE_URL, else Portkey's cloud."""
    url = (settings.get("SOPHIA_PORTKEY_BASE_URL") or "").strip().rstrip("/")
    if not url:
        return CLOUD_BASE_URL, False
    if urlsplit(url).path in ("", "/"):
        url += "/v1"  # the gateway serves its API under /v1
    return url, True


class PortkeyGateway:
    """LLM calls through a Portkey gateway with the official SDK; the routing comes from settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        custom_hosts: dict[str, str] | None = None,
        retry_attempts: int | None = None,
        target_timeout_ms: int | None = None,
    ) -> None:
        self._settings = settings
        self._routing_options: dict[str, Any] = {"custom_hosts": custom_hosts, "target_timeout_ms": target_timeout_ms}
        if retry_attempts is not None:
            self._routing_options["retry_attempts"] = retry_attempts
        self._base_url, self._self_hosted = gateway_base_url(settings)
        self._timeout = settings.get_float("SOPHIA_AI_REQUEST_TIMEOUT_SECONDS", minimum=1)
        self._routing: Routing = load_routing(settings, **self._routing_options)
        self._client: AsyncOpenAI | None = None
        self._portkey: Any = None

    # -- description ------------------------------------------------------------------------------

    def describe(self) -> str:
        where = f"self-hosted gateway {self._base_url}" if self._self_hosted else "Portkey cloud"
        plan = self._routing.plan
        providers = ", ".join(f"{t.provider} {t.weight:g}" for t in plan.targets if t.has_credentials) or "saved"
        return f"Portkey ({where}); routing: {plan.source}, {plan.strategy} over {providers}"

    def routing(self) -> RoutingPlan:
        return self._routing.plan

    # -- calls --------------------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, *, on_delta: OnDelta | None = None) -> ChatResult:
        return await self._with_auth_refresh(lambda: self._chat_once(request, on_delta))

    async def embed(self, texts: Sequence[str], *, model: str) -> EmbedResult:
        return await self._with_auth_refresh(lambda: self._embed_once(list(texts), model))

    async def list_models(self) -> list[str]:
        client = self._openai()
        found: list[str] = []
        for config in self._model_configs():
            headers = self._headers(config, "")
            if isinstance(config, dict) and config.get("api_key"):
                # The gateway passes GET /models through with the caller's Authorization, not the config's key.
                headers["Authorization"] = f"Bearer {config['api_key']}"
            try:
                raw = await client.with_raw_response.models.list(extra_headers=headers)
                body = json.loads(raw.text)
            except Exception as exc:
                # Listing is best effort: many providers (and gateway versions) do not list models.
                log.info("Model listing through the gateway failed: %s", redact(str(exc))[:200])
                continue
            for item in body.get("data") or [] if isinstance(body, dict) else []:
                ident = item.get("id") if isinstance(item, dict) else None
                if isinstance(ident, str) and ident not in found:
                    found.append(ident)
        return found

    async def ping(self) -> str:
        import httpx

        client = self._openai()
        url = self._base_url.removesuffix("/v1") + "/" if self._self_hosted else self._base_url + "/models"
        started = time.monotonic()
        try:
            response = await client.get(url, cast_to=httpx.Response)
        except Exception as exc:
            raise self._translate(exc) from None
        took = (time.monotonic() - started) * 1000
        return f"{self.describe()}: answered HTTP {response.status_code} in {took:.0f} ms"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._portkey is not None:
            await self._portkey.close()
            self._portkey = None

    # -- internals ----------------------------------------------------------------------------------

    def _openai(self) -> AsyncOpenAI:
        if self._client is None:
            from portkey_ai import AsyncPortkey

            api_key = self._settings.get("PORTKEY_API_KEY") or None
            # The config travels per request (it differs for chat and embeddings), so none is set here.
            self._portkey = AsyncPortkey(base_url=self._base_url, api_key=api_key)
            self._client = self._portkey.openai_client.with_options(max_retries=0, timeout=self._timeout)
        return self._client

    def _headers(self, config: dict[str, Any] | str, trace_id: str) -> dict[str, str]:
        headers = {"x-portkey-config": config if isinstance(config, str) else json.dumps(config)}
        if trace_id:
            headers["x-portkey-trace-id"] = trace_id
        return headers

    def _model_configs(self) -> list[dict[str, Any] | str]:
        config = self._routing.config
        if isinstance(config, str) or not config.get("targets"):
            return [config]
        # A load-balanced GET lists one random provider; ask each target once instead.
        seen: dict[str, dict[str, Any]] = {}
        for node in _leaf_nodes(config):
            provider = str(node.get("provider", ""))
            if provider and provider not in seen:
                seen[provider] = {k: v for k, v in node.items() if k not in ("weight", "override_params")}
        return list(seen.values())

    async def _with_auth_refresh(self, action: Callable[[], Awaitable[T]]) -> T:
        try:
            return await action()
        except AuthError:
            # A rotated key: re-open ESC once, rebuild the routing (provider keys live in the config), retry.
            if not self._settings.refresh_esc():
                raise
            log.info("Credentials were rejected; re-opened Pulumi ESC and retrying once.")
            self._routing = load_routing(self._settings, **self._routing_options)
            await self.close()
            return await action()

    async def _chat_once(self, request: ChatRequest, on_delta: OnDelta | None) -> ChatResult:
        client = self._openai()
        trace_id = request.trace_id or uuid.uuid4().hex
        headers = self._headers(self._routing.chat_config(request.model), trace_id)
        params: dict[str, Any] = {
            "model": request.model or self._default_model(),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.json_output:
            params["response_format"] = {"type": "json_object"}
        started = time.monotonic()
        try:
            if on_delta is not None:
                try:
                    return await self._stream(client, params, headers, trace_id, on_delta, started)
                except _GatewayCannotStream:
                    log.warning(
                        "The gateway failed to stream (open-source gateway 1.15 with @hono/node-server >= 1.14); "
                        "answering without streaming."
                    )
                    result = await self._complete(client, params, headers, trace_id, started)
                    if result.text:
                        await on_delta(result.text)
                    return result
            return await self._complete(client, params, headers, trace_id, started)
        except SophiaError:
            raise
        except Exception as exc:
            raise self._translate(exc) from None

    async def _complete(
        self, client: AsyncOpenAI, params: dict[str, Any], headers: dict[str, str], trace_id: str, started: float
    ) -> ChatResult:
        raw = await client.with_raw_response.chat.completions.create(**params, extra_headers=headers)
        body = _json_body(raw.text, raw.headers, self._routing)
        choices = body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        usage = body.get("usage") or {}
        provider, fallbacks = self._answered_by(raw.headers)
        return ChatResult(
            text=str(message.get("content") or ""),
            model=str(body.get("model") or ""),
            provider=provider,
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            latency_ms=(time.monotonic() - started) * 1000,
            fallbacks=fallbacks,
            retries=_retries(raw.headers),
            finish_reason=str(choices[0].get("finish_reason") or ""),
            trace_id=raw.headers.get("x-portkey-trace-id") or trace_id,
        )

    async def _stream(
        self,
        client: AsyncOpenAI,
        params: dict[str, Any],
        headers: dict[str, str],
        trace_id: str,
        on_delta: OnDelta,
        started: float,
    ) -> ChatResult:
        from portkey_ai._vendor.openai import APIStatusError

        try:
            stream = await client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}, extra_headers=headers
            )
        except APIStatusError as exc:
            if exc.status_code == 500 and exc.response.headers.get("x-portkey-gateway-exception") == "true":
                raise _GatewayCannotStream from None
            raise
        parts: list[str] = []
        model = finish = ""
        input_tokens: int | None = None
        output_tokens: int | None = None
        # `async with` closes the HTTP stream on cancellation as well as at the end.
        async with stream:
            response_headers = stream.response.headers
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    input_tokens, output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                for choice in chunk.choices:
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        parts.append(text)
                        await on_delta(text)
        provider, fallbacks = self._answered_by(response_headers)
        return ChatResult(
            text="".join(parts),
            model=model,
            provider=provider,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=(time.monotonic() - started) * 1000,
            fallbacks=fallbacks,
            retries=_retries(response_headers),
            finish_reason=finish,
            trace_id=response_headers.get("x-portkey-trace-id") or trace_id,
        )

    async def _embed_once(self, texts: list[str], model: str) -> EmbedResult:
        config = self._routing.embedding_config
        if config is None:
            raise ConfigError(
                "None of the routed providers can make embeddings through the gateway.",
                hint="Set OPENAI_API_KEY (or TOGETHER_AI_API_KEY / HUGGINGFACE_API_TOKEN), or a PORTKEY_CONFIG "
                "whose targets can embed.",
            )
        client = self._openai()
        try:
            raw = await client.with_raw_response.embeddings.create(
                input=texts, model=model, encoding_format="float", extra_headers=self._headers(config, "")
            )
            body = _json_body(raw.text, raw.headers, self._routing)
        except SophiaError:
            raise
        except Exception as exc:
            raise self._translate(exc) from None
        rows = sorted(body.get("data") or [], key=lambda row: int(row.get("index", 0)))
        usage = body.get("usage") or {}
        return EmbedResult(
            vectors=[[float(x) for x in row.get("embedding") or []] for row in rows],
            model=str(body.get("model") or model),
            input_tokens=usage.get("prompt_tokens"),
        )

    def _default_model(self) -> str:
        return (self._settings.get("SOPHIA_AI_DEFAULT_MODEL") or "").strip() or "gpt-4o-mini"

    def _answered_by(self, headers: Any) -> tuple[str, tuple[str, ...]]:
        path_provider, fallbacks = self._routing.describe_path(headers.get("x-portkey-last-used-option-index", ""))
        # The gateway names the provider it used; without that (or a path we know), say nothing rather than guess.
        return headers.get("x-portkey-provider") or path_provider, fallbacks

    def _translate(self, exc: Exception) -> SophiaError:
        from portkey_ai._vendor.openai import APIConnectionError, APIStatusError, APITimeoutError

        if isinstance(exc, APITimeoutError):
            return BackendError(
                f"The LLM call did not finish within {self._timeout:g} s (SOPHIA_AI_REQUEST_TIMEOUT_SECONDS).",
                hint="Raise SOPHIA_AI_REQUEST_TIMEOUT_SECONDS, ask for fewer tokens, or route to a faster model.",
            )
        if isinstance(exc, APIConnectionError):
            if not self._self_hosted:
                return BackendError(
                    f"Portkey's cloud gateway ({self._base_url}) could not be reached.",
                    hint=f"Check the network, or {START_GATEWAY_HINT.split(', or unset')[0]}.",
                )
            return BackendError(
                f"The Portkey gateway at {self._base_url} (SOPHIA_PORTKEY_BASE_URL) could not be reached.",
                hint=f"Check that it is running: {START_GATEWAY_HINT}.",
            )
        if isinstance(exc, APIStatusError):
            return _status_error(exc.status_code, exc.response.text, exc.response.headers, self._routing)
        return BackendError(f"The LLM call through the gateway failed: {redact(str(exc))[:300]}")


class _GatewayCannotStream(Exception):
    """The gateway itself (not a provider) failed to open a stream."""


def _json_body(text: str, headers: Any, routing: Routing) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        provider = (
            headers.get("x-portkey-provider")
            or routing.describe_path(headers.get("x-portkey-last-used-option-index", ""))[0]
        )
        who = f"provider {provider}" if provider else "the provider"
        raise BackendError(
            f"{who.capitalize()} answered through the gateway with a malformed response (not a JSON object).",
            hint="Retry; if it persists, that provider's API or the custom host is not OpenAI-compatible.",
        )
    return body


def _retries(headers: Any) -> int:
    try:
        # -1 means the last target used up its retries; the call still answered, so report none.
        return max(int(headers.get("x-portkey-retry-attempt-count", "0")), 0)
    except ValueError:
        return 0


def _status_error(status: int, text: str, headers: Any, routing: Routing) -> SophiaError:
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    provider = ""
    message = text.strip()
    if isinstance(body, dict):
        provider = str(body.get("provider") or "")
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            message = str(error["message"])
        elif body.get("message"):
            message = str(body["message"])
        details = body.get("errors")
        if isinstance(details, list) and details:
            message += ": " + "; ".join(str(d) for d in details[:5])
    message = redact(message)[:500]
    if status in (401, 403):
        if provider:
            key = PROVIDER_KEYS.get(provider, f"the {provider} key")
            return AuthError(
                f"{provider} rejected its credentials through the gateway (HTTP {status}): {message}",
                hint=f"Check {key} (or {provider}'s entry in PORTKEY_VIRTUAL_KEYS).",
            )
        return AuthError(
            f"The Portkey gateway rejected the request (HTTP {status}): {message}",
            hint="Check PORTKEY_API_KEY (a Portkey API key with access to the config and virtual keys).",
        )
    if status == 400 or status == 422:
        source = f"{provider} refused the request" if provider else "The gateway refused the request or its config"
        return InputError(f"{source} (HTTP {status}): {message}")
    if status == 500 and headers.get("x-portkey-gateway-exception") == "true":
        reachable = sorted(set(routing.leaf_providers.values()) - {""})
        return BackendError(
            f"The gateway itself failed while handling the call ({message}); a provider's answer it could not "
            f"read (malformed JSON) is the usual cause. Providers this routing can reach: {', '.join(reachable)}.",
            hint="Retry; if it persists, check the gateway's log and that each custom host speaks the provider's API.",
        )
    answered, before = routing.describe_path(headers.get("x-portkey-last-used-option-index", ""))
    last = provider or headers.get("x-portkey-provider") or answered
    tried = [*before, last] if last else list(before)
    if status == 408:
        what = f"{last or 'The provider'} timed out inside the gateway (the config's request_timeout)"
    else:
        what = f"{last or 'The provider'} answered HTTP {status}"
    listing = f"Tried {', '.join(tried)} in that order; the last failed. " if len(tried) > 1 else ""
    return BackendError(
        f"Every routing target failed. {listing}{what}: {message}",
        hint="Retry later, add a provider key so the routing has another target, or check the providers' status.",
    )


def _leaf_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    children = node.get("targets")
    if not children:
        return [node]
    return [leaf for child in children for leaf in _leaf_nodes(child)]
