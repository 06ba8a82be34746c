"""The shared HTTP client against a real local server: retries, Retry-After, timeouts, auth refresh."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from sophia_shared.errors import AuthError, BackendError, InputError
from sophia_shared.http import (
    ATTEMPTS_EXTENSION,
    RetryPolicy,
    make_client,
    make_sync_client,
    raise_for_vendor,
    retry_after_seconds,
    send_with_auth_refresh,
)
from sophia_shared.settings import Settings, SourceValues

FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ScriptedServer:
    """A real HTTP/1.1 server on 127.0.0.1; each path answers from a script, the last reply repeating."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self.auth_replies: dict[str, Reply] = {}  # Authorization value → reply, for /secure
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                owner.seen.append(Seen(self.command, path, dict(self.headers), body, time.monotonic()))
                if path == "/secure":
                    reply = owner.auth_replies.get(self.headers.get("Authorization", ""), Reply(401))
                else:
                    script = owner.scripts.get(path, [Reply()])
                    reply = script.pop(0) if len(script) > 1 else script[0]
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    def hits(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- retries ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_retries_503_twice_then_succeeds(server: ScriptedServer) -> None:
    server.scripts["/flaky"] = [Reply(503), Reply(503), Reply(200, b'{"n": 3}')]
    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await client.get("/flaky")
    assert response.status_code == 200
    assert response.json() == {"n": 3}
    assert response.extensions[ATTEMPTS_EXTENSION] == 3
    assert len(server.hits("/flaky")) == 3


@pytest.mark.anyio
async def test_retries_stop_at_max_attempts_and_return_last_response(server: ScriptedServer) -> None:
    server.scripts["/down"] = [Reply(502)]
    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await client.get("/down")
    assert response.status_code == 502
    assert len(server.hits("/down")) == FAST.max_attempts


@pytest.mark.anyio
async def test_client_errors_are_not_retried(server: ScriptedServer) -> None:
    server.scripts["/bad"] = [Reply(400, b'{"message": "query is required"}')]
    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await client.get("/bad")
    assert response.status_code == 400
    assert len(server.hits("/bad")) == 1


@pytest.mark.anyio
async def test_429_retry_after_seconds_is_honoured(server: ScriptedServer) -> None:
    server.scripts["/limited"] = [Reply(429, headers={"Retry-After": "1"}), Reply(200)]
    # A large backoff base proves the wait came from Retry-After, not from backoff.
    policy = RetryPolicy(base_delay=5.0, max_delay=5.0, jitter=False)
    async with make_client(base_url=server.url, retry=policy) as client:
        response = await client.get("/limited")
    first, second = server.hits("/limited")
    assert response.status_code == 200
    assert 0.95 <= second.at - first.at < 2.0


@pytest.mark.anyio
async def test_retry_after_beyond_cap_fails_fast_with_clear_error(server: ScriptedServer) -> None:
    server.scripts["/limited"] = [Reply(429, headers={"Retry-After": "120"}), Reply(200)]
    started = time.monotonic()
    async with make_client(base_url=server.url, retry=RetryPolicy(max_retry_after=30)) as client:
        response = await client.get("/limited")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 429
    assert len(server.hits("/limited")) == 1
    with pytest.raises(BackendError, match=r"rate limited.*retry after 120 s"):
        raise_for_vendor(response, "Tavily", key_variable="TAVILY_API_KEY")


@pytest.mark.anyio
async def test_post_is_not_retried_on_503(server: ScriptedServer) -> None:
    server.scripts["/launch"] = [Reply(503), Reply(200)]
    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await client.post("/launch", json={"region": "us-east-1"})
    assert response.status_code == 503
    assert len(server.hits("/launch")) == 1


@pytest.mark.anyio
async def test_post_marked_retryable_is_retried_with_same_body(server: ScriptedServer) -> None:
    server.scripts["/search"] = [Reply(503), Reply(500), Reply(200)]
    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await client.post("/search", json={"query": "fintech"}, extensions={"sophia_retry": True})
    assert response.status_code == 200
    bodies = [hit.body for hit in server.hits("/search")]
    assert bodies == [b'{"query":"fintech"}'] * 3


@pytest.mark.anyio
async def test_get_marked_not_retryable_is_sent_once(server: ScriptedServer) -> None:
    server.scripts["/once"] = [Reply(503), Reply(200)]
    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await client.get("/once", extensions={"sophia_retry": False})
    assert response.status_code == 503
    assert len(server.hits("/once")) == 1


@pytest.mark.anyio
async def test_connection_refused_is_retried_then_backend_error(caplog: pytest.LogCaptureFixture) -> None:
    url = closed_port_url()
    caplog.set_level(logging.INFO, logger="sophia_shared.http")
    async with make_client(base_url=url, retry=FAST) as client:
        with pytest.raises(BackendError, match=r"Could not get an answer from 127\.0\.0\.1.*after 3 attempts"):
            # A POST too: the connection never opened, so the vendor never saw it.
            await client.post("/instances?api_key=sk-query-secret", json={})
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2
    assert "sk-query-secret" not in caplog.text


@pytest.mark.anyio
async def test_read_timeout_is_bounded_and_retried_for_get(server: ScriptedServer) -> None:
    server.scripts["/slow"] = [Reply(200, delay=0.6)]
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)
    started = time.monotonic()
    async with make_client(base_url=server.url, retry=policy, timeout=httpx.Timeout(0.15)) as client:
        with pytest.raises(BackendError, match=r"read timed out after 0\.15 s") as err:
            await client.get("/slow")
    assert time.monotonic() - started < 0.55
    assert len(server.hits("/slow")) == 2
    assert "try again later" in err.value.agent_message()


@pytest.mark.anyio
async def test_post_read_timeout_is_not_repeated(server: ScriptedServer) -> None:
    server.scripts["/slow"] = [Reply(200, delay=0.5)]
    async with make_client(base_url=server.url, retry=FAST, timeout=httpx.Timeout(0.1)) as client:
        with pytest.raises(BackendError, match="after 1 attempt:"):
            await client.post("/slow", json={"launch": True})
    assert len(server.hits("/slow")) == 1


def test_retry_logs_omit_query_strings_and_headers(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    server.scripts["/v1/search"] = [Reply(503), Reply(200)]
    caplog.set_level(logging.INFO, logger="sophia_shared.http")
    with make_sync_client(base_url=server.url, retry=FAST, headers={"X-Api-Key": "hdr-secret-1"}) as client:
        response = client.get("/v1/search", params={"api_key": "qs-secret-2"})
    assert response.status_code == 200
    assert "GET 127.0.0.1/v1/search → HTTP 503; retry 2/3" in caplog.text
    assert "qs-secret-2" not in caplog.text
    assert "hdr-secret-1" not in caplog.text


# -- client defaults -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_client_sends_user_agent_and_fresh_auth_headers(server: ScriptedServer) -> None:
    keys = iter(["key-one", "key-two"])
    async with make_client(
        base_url=server.url, auth_header_provider=lambda: {"Authorization": f"Bearer {next(keys)}"}
    ) as client:
        await client.get("/a")
        await client.get("/b")
    first, second = server.seen
    assert first.headers["User-Agent"] == "sophia-mcp/0.1"
    assert [first.headers["Authorization"], second.headers["Authorization"]] == [
        "Bearer key-one",
        "Bearer key-two",
    ]


def test_default_timeouts_are_short_to_connect_and_bounded_to_read() -> None:
    client = make_client()
    assert client.timeout.connect == 5.0
    assert client.timeout.read == 30.0


def test_sync_client_retries_too(server: ScriptedServer) -> None:
    server.scripts["/flaky"] = [Reply(504), Reply(200)]
    with make_sync_client(base_url=server.url, retry=FAST) as client:
        response = client.get("/flaky")
    assert response.status_code == 200
    assert len(server.hits("/flaky")) == 2


# -- policy details --------------------------------------------------------------------------------


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    exact = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=False)
    assert [exact.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(base_delay=0.5, max_delay=3.0)
    samples = [jittered.backoff(3) for _ in range(200)]
    assert all(0.0 <= s <= 2.0 for s in samples)
    assert len(set(samples)) > 100


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Mon, 05 Jan 2026 12:00:42 GMT", now=now) == 42.0
    assert retry_after_seconds("Mon, 05 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.anyio
async def test_retry_after_http_date_beyond_cap_fails_fast(server: ScriptedServer) -> None:
    later = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), usegmt=True)
    server.scripts["/dated"] = [Reply(503, headers={"Retry-After": later}), Reply(200)]
    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await client.get("/dated")
    assert response.status_code == 503
    assert len(server.hits("/dated")) == 1


# -- raise_for_vendor ------------------------------------------------------------------------------


def vendor_response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request(
        "POST",
        "https://api.tavily.com/search?api_key=tvly-query-secret",
        headers={"Authorization": "Bearer tvly-header-secret"},
    )
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_success_passes_through() -> None:
    response = vendor_response(200, {"results": []})
    assert raise_for_vendor(response, "Tavily", key_variable="TAVILY_API_KEY") is response


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_name_the_variable_to_rotate(status: int) -> None:
    with pytest.raises(AuthError) as err:
        raise_for_vendor(vendor_response(status, {"error": "Invalid API key"}), "Tavily", key_variable="TAVILY_API_KEY")
    text = err.value.agent_message()
    assert f"Tavily rejected the credentials (HTTP {status} on POST /search): Invalid API key" in text
    assert "rotate TAVILY_API_KEY" in text
    assert "secret" not in text


def test_not_found_is_an_input_error() -> None:
    with pytest.raises(InputError, match="Lambda Cloud has no such resource"):
        raise_for_vendor(
            vendor_response(404, {"error": {"message": "instance not found"}}),
            "Lambda Cloud",
            key_variable="LAMBDA_API_KEY",
        )


def test_rate_limit_says_when_to_retry() -> None:
    response = vendor_response(429, {"message": "slow down"}, headers={"Retry-After": "7"})
    with pytest.raises(BackendError, match=r"rate limited the request .*retry after 7 s: slow down"):
        raise_for_vendor(response, "Tavily", key_variable="TAVILY_API_KEY")


def test_server_errors_are_vendor_outages_with_a_short_body_excerpt() -> None:
    response = vendor_response(503, "<html>" + "upstream unavailable " * 100 + "</html>")
    with pytest.raises(BackendError) as err:
        raise_for_vendor(response, "Pinecone", key_variable="PINECONE_API_KEY")
    assert not isinstance(err.value, AuthError)
    assert "vendor outage" in err.value.message
    assert "upstream unavailable" in err.value.message
    assert len(err.value.message) < 400
    assert "header-secret" not in err.value.agent_message()
    assert "query-secret" not in err.value.agent_message()


def test_validation_errors_are_input_errors() -> None:
    with pytest.raises(InputError, match=r"refused the request as invalid.*max_results must be"):
        raise_for_vendor(
            vendor_response(422, {"detail": "max_results must be <= 20"}),
            "Tavily",
            key_variable="TAVILY_API_KEY",
        )


# -- 401/403 → re-open ESC once --------------------------------------------------------------------


def esc_settings(tmp_path: Path, keys: list[str]) -> tuple[Settings, list[int]]:
    """Settings whose ESC environment hands out `keys` in turn, one per opening."""
    openings: list[int] = []

    def opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
        openings.append(1)
        key = keys[min(len(openings), len(keys)) - 1]
        return SourceValues(f"esc:{ref}", {"TAVILY_API_KEY": key}, secrets=frozenset({"TAVILY_API_KEY"}))

    environ = {
        "SOPHIA_ESC_ENV": "acme/sophia/dev",
        "PULUMI_ACCESS_TOKEN": "pul-test-token",
        "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"),
        "SOPHIA_DOTENV": str(tmp_path / "absent.env"),
    }
    return Settings(environ, cwd=tmp_path, esc_opener=opener), openings


@pytest.mark.anyio
async def test_auth_refresh_uses_rotated_key(server: ScriptedServer, tmp_path: Path) -> None:
    settings, openings = esc_settings(tmp_path, ["tvly-old-key", "tvly-new-key"])
    server.auth_replies["Bearer tvly-new-key"] = Reply(200, b'{"results": []}')

    def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {settings.require('TAVILY_API_KEY', 'web search')}"}

    async with make_client(base_url=server.url, auth_header_provider=auth, retry=FAST) as client:
        response = await send_with_auth_refresh(settings, lambda: client.get("/secure"))
    assert response.status_code == 200
    assert [hit.headers["Authorization"] for hit in server.hits("/secure")] == [
        "Bearer tvly-old-key",
        "Bearer tvly-new-key",
    ]
    assert len(openings) == 2


@pytest.mark.anyio
async def test_auth_refresh_retries_only_once(server: ScriptedServer, tmp_path: Path) -> None:
    settings, openings = esc_settings(tmp_path, ["tvly-bad-1", "tvly-bad-2", "tvly-bad-3"])
    calls = 0

    async def send() -> httpx.Response:
        nonlocal calls
        calls += 1
        key = settings.require("TAVILY_API_KEY", "web search")
        return await client.get("/secure", headers={"Authorization": f"Bearer {key}"})

    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await send_with_auth_refresh(settings, send)
    assert response.status_code == 401
    assert calls == 2
    assert len(openings) == 2
    with pytest.raises(AuthError) as err:
        raise_for_vendor(response, "Tavily", key_variable="TAVILY_API_KEY")
    assert "rotate TAVILY_API_KEY" in err.value.agent_message()


@pytest.mark.anyio
async def test_no_retry_when_esc_is_not_in_use(server: ScriptedServer, tmp_path: Path) -> None:
    settings = Settings({"TAVILY_API_KEY": "tvly-env-key", "SOPHIA_ESC_FILE": str(tmp_path / "x.yaml")}, cwd=tmp_path)
    calls = 0

    async def send() -> httpx.Response:
        nonlocal calls
        calls += 1
        return await client.get("/secure", headers={"Authorization": "Bearer tvly-env-key"})

    async with make_client(base_url=server.url, retry=FAST) as client:
        response = await send_with_auth_refresh(settings, send)
    assert response.status_code == 401
    assert calls == 1
