"""A base for fake vendor APIs: a route table, a call recorder and fault switches, as a plain ASGI app.

A vendor fake (`tests/fakes/lambda_cloud.py`, …) builds a `VendorApp`, adds its routes and, if its
error envelope differs, overrides `error_reply`. Tests use it in process through
`httpx.ASGITransport(app)`, or on 127.0.0.1 with `serve(app)` when an SDK takes no transport, or
when a test needs real timeouts (`ASGITransport` applies none).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Call:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival
    params: dict[str, str] = field(default_factory=dict)  # from `{name}` parts of the route

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class Reply:
    """What a route (or a fault) answers; `json` is ignored when `body` is given."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is not None:
            return self.body
        return b"" if self.json is None and self.status == 204 else json.dumps(self.json).encode()


_CHUNK = 64 * 1024

# A route handler gets the call and returns a `Reply`, or anything JSON-able for a 200.
Handler = Callable[[Call], Any]


@dataclass
class _Fault:
    kind: str  # "status", "slow", "malformed", "huge"
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    size: int = 0


class VendorApp:
    """An ASGI vendor fake: routes like `"GET /v1/items/{id}"`, every call recorded, faults on demand."""

    def __init__(self, routes: dict[str, Handler] | None = None) -> None:
        self.calls: list[Call] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[_Fault] = []
        self._rejected_keys: set[str] = set()
        for spec, handler in (routes or {}).items():
            method, pattern = spec.split(" ", 1)
            self.route(method, pattern, handler)

    # -- set-up ----------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer `method pattern` with `handler`; `{name}` matches one path segment."""
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern))
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        """The vendor's error envelope; this default is Lambda Cloud's. Override per vendor."""
        return Reply(status, {"error": {"code": code, "message": message}})

    # -- fault switches: each applies to the next `n` responses, in the order they were set ------

    def fail_next(self, n: int = 1, status: int = 503, *, retry_after: str | None = None) -> None:
        """The next `n` responses are `status` (with `Retry-After` if given) in the vendor's envelope."""
        self._faults += [_Fault("status", status=status, retry_after=retry_after) for _ in range(n)]

    def slow_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """The next `n` responses wait `seconds` before answering normally (use `serve` for real timeouts)."""
        self._faults += [_Fault("slow", seconds=seconds) for _ in range(n)]

    def malformed_next(self, n: int = 1) -> None:
        """The next `n` responses are HTTP 200 `application/json` with a truncated JSON body."""
        self._faults += [_Fault("malformed") for _ in range(n)]

    def huge_next(self, n: int = 1, size: int = 5 * 2**20) -> None:
        """The next `n` responses are a valid JSON body of about `size` bytes, sent in chunks."""
        self._faults += [_Fault("huge", size=size) for _ in range(n)]

    def reject_key(self, key: str) -> None:
        """Answer 401 to every request carrying `key` (any header or query value) until the key changes."""
        self._rejected_keys.add(key)

    # -- what was seen ---------------------------------------------------------------------------

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan handling: uvicorn runs with lifespan="off"
        call = await self._record(scope, receive)
        reply = await self._answer(call)
        body = reply.encoded()
        extra = {k.lower(): v for k, v in reply.headers.items()}
        headers = {"content-type": reply.content_type, **extra, "content-length": str(len(body))}
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        # In chunks, as a real server streams a large body; a client may stop reading part-way.
        for start in range(0, max(len(body), 1), _CHUNK):
            more = start + _CHUNK < len(body)
            await send({"type": "http.response.body", "body": body[start : start + _CHUNK], "more_body": more})

    async def _record(self, scope: Scope, receive: Receive) -> Call:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        call = Call(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
            at=time.monotonic(),
        )
        self.calls.append(call)
        return call

    async def _answer(self, call: Call) -> Reply:
        carried = {*call.headers.values(), *call.query.values()}
        if any(key in value for key in self._rejected_keys for value in carried):
            return self.error_reply(401, "global/invalid-api-key", "API key was invalid, expired, or deleted.")
        fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            if fault.kind == "status":
                reply = self.error_reply(fault.status, f"fake/http-{fault.status}", f"Injected HTTP {fault.status}.")
                if fault.retry_after is not None:
                    reply.headers["Retry-After"] = fault.retry_after
                return reply
            if fault.kind == "malformed":
                return Reply(200, body=b'{"data": [{"id": "0920582c", "status": "act')
            if fault.kind == "huge":
                return Reply(200, body=b'{"data": "' + b"x" * max(fault.size - 12, 0) + b'"}')
            await anyio.sleep(fault.seconds)  # "slow": then answer normally
        return await self._route(call)

    async def _route(self, call: Call) -> Reply:
        known_path = False
        for method, pattern, handler in self._routes:
            match = pattern.match(call.path)
            if match is None:
                continue
            known_path = True
            if method != call.method:
                continue
            result = handler(dataclasses.replace(call, params=match.groupdict()))
            if inspect.isawaitable(result):
                result = await result
            return result if isinstance(result, Reply) else Reply(200, result)
        if known_path:
            return self.error_reply(405, "fake/method-not-allowed", f"{call.method} is not allowed on {call.path}.")
        return self.error_reply(404, "global/object-does-not-exist", f"No route for {call.method} {call.path}.")


@contextlib.contextmanager
def serve(app: Callable[..., Awaitable[None]], host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` with uvicorn on a free port in a thread; yields its base URL and stops it on exit."""
    import uvicorn

    # Bind here and hand the socket over, so no other process can take the port in between.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"fake-vendor-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"fake vendor server did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
