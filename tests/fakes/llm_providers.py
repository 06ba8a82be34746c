"""Local LLM providers for gateway tests: an OpenAI-compatible API and an Anthropic-compatible API.

Shaped after the vendors' public API references (no machine-readable spec is copied here):
OpenAI `POST /v1/chat/completions` (JSON, or SSE `chat.completion.chunk` events ending in
`data: [DONE]`, with a usage chunk when `stream_options.include_usage`), `POST /v1/embeddings`,
`GET /v1/models`, errors as `{"error": {"message", "type", "param", "code"}}`; Anthropic
`POST /v1/messages` (JSON, or SSE `message_start` … `message_stop`), `GET /v1/models`, errors as
`{"type": "error", "error": {"type", "message"}}`. Both use `VendorApp`'s fault switches
(`fail_next`, `slow_next`, `malformed_next`) and its call record; `api_key` makes every request
without that key (Bearer for OpenAI, `x-api-key` for Anthropic) answer 401.
Answers say who answered: `"<name> says: <last user message>"`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio

from tests.fakes.vendor_app import Call, Receive, Reply, Scope, Send, VendorApp, serve

CHAT_PATH = "/v1/chat/completions"
MESSAGES_PATH = "/v1/messages"
EMBEDDING_DIMENSION = 8


@dataclass
class SseReply(Reply):
    """A `text/event-stream` answer sent one event at a time, `gap` seconds apart."""

    events: list[bytes] = field(default_factory=list)
    gap: float = 0.0


class _LlmApp(VendorApp):
    def __init__(self, name: str, *, api_key: str | None, models: list[str], chunk_words: int) -> None:
        super().__init__()
        self.name = name
        self.api_key = api_key
        self.models = models
        self.chunk_words = chunk_words  # words per streamed delta
        self.stream_gap = 0.0  # seconds between streamed events

    @property
    def completions(self) -> int:
        """How many chat requests reached this provider (faults included)."""
        return sum(1 for c in self.calls if c.path in (CHAT_PATH, MESSAGES_PATH))

    def reset(self) -> None:
        """Forget calls and pending faults (for a provider shared between tests)."""
        self.calls.clear()
        self._faults.clear()
        self._rejected_keys.clear()
        self.stream_gap = 0.0

    def answer_text(self, call: Call) -> str:
        body = call.json or {}
        messages = [m for m in body.get("messages", []) if m.get("role") == "user"]
        last = messages[-1]["content"] if messages else ""
        if isinstance(last, list):  # content blocks
            last = " ".join(str(b.get("text", "")) for b in last if isinstance(b, dict))
        return f"{self.name} says: {last}"

    def pieces(self, text: str) -> list[str]:
        words = text.split(" ")
        size = max(self.chunk_words, 1)
        return [
            " ".join(words[i : i + size]) + (" " if i + size < len(words) else "") for i in range(0, len(words), size)
        ]

    def key_presented(self, call: Call) -> str:
        raise NotImplementedError

    async def _answer(self, call: Call) -> Reply:
        if self.api_key is not None and self.key_presented(call) != self.api_key:
            return self.error_reply(401, "invalid_api_key", "Incorrect API key provided.")
        return await super()._answer(call)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        call = await self._record(scope, receive)
        reply = await self._answer(call)
        if not isinstance(reply, SseReply):
            await self._send_whole(reply, send)
            return
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in reply.events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if reply.gap:
                await anyio.sleep(reply.gap)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_whole(self, reply: Reply, send: Send) -> None:
        body = reply.encoded()
        extra = {k.lower(): v for k, v in reply.headers.items()}
        headers = {"content-type": reply.content_type, **extra, "content-length": str(len(body))}
        start = {"type": "http.response.start", "status": reply.status}
        await send({**start, "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _sse(data: Any, event: str | None = None) -> bytes:
    prefix = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{prefix}data: {payload}\n\n".encode()


def _tokens(text: str) -> int:
    return max(len(text.split()), 1)


def fake_vector(text: str, dimension: int = EMBEDDING_DIMENSION) -> list[float]:
    """A deterministic unit-free vector per text (a test stand-in, not an embedding model)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 6) for b in digest[:dimension]]


class OpenAICompatible(_LlmApp):
    """OpenAI's chat completions, embeddings and models API (also stands in for OpenRouter, vLLM, Ollama)."""

    def __init__(
        self, name: str = "openai", *, api_key: str | None = None, models: list[str] | None = None, chunk_words: int = 1
    ) -> None:
        super().__init__(
            name, api_key=api_key, models=models or ["gpt-4o-mini", "text-embedding-3-small"], chunk_words=chunk_words
        )
        self.route("POST", CHAT_PATH, self._chat)
        self.route("POST", "/v1/embeddings", self._embeddings)
        self.route("GET", "/v1/models", self._models)

    def key_presented(self, call: Call) -> str:
        return call.headers.get("authorization", "").removeprefix("Bearer ")

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
        if 400 <= status < 500 and status not in (401, 429):
            kind = "invalid_request_error"
        return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})

    def _chat(self, call: Call) -> Reply:
        body = call.json or {}
        model = str(body.get("model") or self.models[0])
        text = self.answer_text(call)
        created = int(time.time())
        ident = f"chatcmpl-{self.name}-{len(self.calls)}"
        usage = {"prompt_tokens": 7, "completion_tokens": _tokens(text), "total_tokens": 7 + _tokens(text)}
        if not body.get("stream"):
            return Reply(
                200,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                },
            )
        base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
        events = [_sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
        for piece in self.pieces(text):
            events.append(_sse({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
        events.append(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(_sse({**base, "choices": [], "usage": usage}))
        events.append(_sse("[DONE]"))
        return SseReply(events=events, gap=self.stream_gap)

    def _embeddings(self, call: Call) -> Reply:
        body = call.json or {}
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        data = [{"object": "embedding", "index": i, "embedding": fake_vector(str(t))} for i, t in enumerate(texts)]
        tokens = sum(_tokens(str(t)) for t in texts)
        model = str(body.get("model") or "text-embedding-3-small")
        return Reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _models(self, call: Call) -> Reply:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": self.name} for m in self.models]
        return Reply(200, {"object": "list", "data": data})


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class AnthropicCompatible(_LlmApp):
    """Anthropic's Messages API (`POST /v1/messages`, streaming too) and `GET /v1/models`."""

    def __init__(
        self,
        name: str = "anthropic",
        *,
        api_key: str | None = None,
        models: list[str] | None = None,
        chunk_words: int = 1,
    ) -> None:
        super().__init__(name, api_key=api_key, models=models or ["claude-3-5-haiku-latest"], chunk_words=chunk_words)
        self.route("POST", MESSAGES_PATH, self._messages)
        self.route("GET", "/v1/models", self._models)

    def key_presented(self, call: Call) -> str:
        return call.headers.get("x-api-key", "")

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        return Reply(status, {"type": "error", "error": {"type": kind, "message": message}})

    def _messages(self, call: Call) -> Reply:
        body = call.json or {}
        if not body.get("max_tokens"):
            return self.error_reply(400, "", "max_tokens: Field required")
        model = str(body.get("model") or self.models[0])
        text = self.answer_text(call)
        ident = f"msg_{self.name}_{len(self.calls)}"
        if not body.get("stream"):
            return Reply(
                200,
                {
                    "id": ident,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 9, "output_tokens": _tokens(text)},
                },
            )
        start = {
            "type": "message_start",
            "message": {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 9, "output_tokens": 1},
            },
        }
        events = [
            _sse(start, "message_start"),
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            ),
            _sse({"type": "ping"}, "ping"),
        ]
        for piece in self.pieces(text):
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            events.append(_sse(delta, "content_block_delta"))
        events += [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": _tokens(text)},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return SseReply(events=events, gap=self.stream_gap)

    def _models(self, call: Call) -> Reply:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2024-10-22T00:00:00Z"} for m in self.models
        ]
        return Reply(200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})


@contextlib.contextmanager
def serve_provider(app: _LlmApp) -> Iterator[str]:
    """Serve `app` on 127.0.0.1; yields the base URL a gateway's `custom_host` takes (ends in /v1)."""
    with serve(app) as url:
        yield f"{url}/v1"
