"""fakesnow's Snowflake-protocol server on 127.0.0.1, with a recorder in front of it.

The real `snowflake-connector-python` talks to it over HTTP, so tests exercise the connector's own
login, binding, result and abort code. The recorder keeps what the connector sends (login bodies,
SQL text, bindings, abort requests) so tests can check the wire, and can reject logins whose
password is not the expected one, as Snowflake does (fakesnow itself accepts any credentials).
It also runs one session's statements one at a time: Snowflake accepts concurrent statements in a
session, but fakesnow shares one DuckDB cursor per session and breaks when they overlap.

Use `run_fake_snowflake()` as a context manager, the session-scoped `fake_snowflake` fixture, or
`snowflake_server` for that server with its request log emptied for the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOGIN_PATH = "/session/v1/login-request"
QUERY_PATH = "/queries/v1/query-request"
ABORT_PATH = "/queries/v1/abort-request"
# Snowflake's answer to a wrong password: HTTP 200, success false, GS code 390100.
_REJECTED_LOGIN = {
    "data": {"nextAction": None, "authnMethod": "PASSWORD"},
    "code": "390100",
    "message": "Incorrect username or password was specified.",
    "success": False,
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    body: dict[str, Any]


@dataclass
class FakeSnowflakeServer:
    """A running fakesnow server and what the connector has sent to it."""

    host: str
    port: int
    requests: list[RecordedRequest] = field(default_factory=list)
    accepted_password: str | None = None  # None: accept any password, like fakesnow
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def settings_env(self, **overrides: str) -> dict[str, str]:
        """SNOWFLAKE_* variables that point `Settings` at this server (password auth)."""
        env = {
            "SNOWFLAKE_ACCOUNT": "fakesnow",
            "SNOWFLAKE_USER": "fake",
            "SNOWFLAKE_PASSWORD": "snow-password",
            "SNOWFLAKE_HOST": self.host,
            "SNOWFLAKE_PORT": str(self.port),
            "SNOWFLAKE_PROTOCOL": "http",
        }
        env.update(overrides)
        return {k: v for k, v in env.items() if v != ""}

    def logins(self) -> list[dict[str, Any]]:
        """The `data` block of every login request (LOGIN_NAME, PASSWORD, SESSION_PARAMETERS, …)."""
        return [r.body.get("data", {}) for r in self._snapshot() if r.path == LOGIN_PATH]

    def statements(self) -> list[dict[str, Any]]:
        """The body of every query request (sqlText, bindings, parameters, …)."""
        return [r.body for r in self._snapshot() if r.path == QUERY_PATH]

    def sql_texts(self) -> list[str]:
        return [str(b.get("sqlText", "")) for b in self.statements()]

    def aborts(self) -> list[dict[str, Any]]:
        return [r.body for r in self._snapshot() if r.path.endswith("abort-request")]

    def expire_sessions(self) -> None:
        """Forget every session, as Snowflake does when a session expires: the next call gets a 401."""
        import fakesnow.server as fakesnow_server

        fakesnow_server.sessions.clear()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    @contextlib.contextmanager
    def only_password(self, password: str) -> Iterator[None]:
        """While inside, logins with any other password are rejected with Snowflake's 390100."""
        previous, self.accepted_password = self.accepted_password, password
        try:
            yield
        finally:
            self.accepted_password = previous

    def _snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


class _Recorder:
    """ASGI middleware: records each request's JSON body, then replays it to fakesnow."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], server: FakeSnowflakeServer):
        self.app = app
        self.server = server
        self._session_locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = b""
        more = True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        decoded = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" and raw else raw
        try:
            body = json.loads(decoded) if decoded else {}
        except ValueError:
            body = {}
        path = scope["path"]
        self.server._record(RecordedRequest(scope["method"], path, scope.get("query_string", b"").decode(), body))
        if path == LOGIN_PATH and self._rejects(body):
            await _send_json(send, _REJECTED_LOGIN)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        if path != QUERY_PATH:
            await self.app(scope, replay, send)
            return
        lock = self._session_locks.setdefault(headers.get("authorization", ""), asyncio.Lock())
        async with lock:
            await self.app(scope, replay, send)

    def _rejects(self, body: dict[str, Any]) -> bool:
        expected = self.server.accepted_password
        return expected is not None and body.get("data", {}).get("PASSWORD") != expected


async def _send_json(send: Send, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def run_fake_snowflake(host: str = "127.0.0.1", port: int = 0) -> Iterator[FakeSnowflakeServer]:
    """Start fakesnow's server (in-memory, shared across sessions) in a thread; stop it on exit."""
    import uvicorn
    from fakesnow.server import app  # `fakesnow.server` the attribute is a function of the same name

    server = FakeSnowflakeServer(host=host, port=port or free_port(host))
    config = uvicorn.Config(
        _Recorder(app, server),
        host=host,
        port=server.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    uv_server = uvicorn.Server(config)
    thread = threading.Thread(target=uv_server.run, name="fakesnow-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv_server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"fakesnow server did not start on {host}:{server.port}")
        time.sleep(0.02)
    try:
        yield server
    finally:
        uv_server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def fake_snowflake() -> Iterator[FakeSnowflakeServer]:
    """A fakesnow server for the whole session; tests use their own database names."""
    with run_fake_snowflake() as server:
        yield server


@pytest.fixture
def snowflake_server(fake_snowflake: FakeSnowflakeServer) -> FakeSnowflakeServer:
    """The session's server with its request log emptied, so a test sees only its own traffic."""
    fake_snowflake.clear()
    return fake_snowflake
