"""A Pulumi ESC API on 127.0.0.1, built from specs/pulumi-esc/swagger.yaml.

The real `pulumi-esc-sdk` talks to it over HTTP. It implements what opening and reading an
environment needs: `POST /api/esc/environments/{org}/{project}/{env}/open?duration=…` (returns an
`OpenEnvironment`) and `GET …/open/{openSessionID}` (returns the `Environment` evaluated when the
session was opened, as Pulumi Cloud does). It checks `Authorization: token <tok>` (401 for an
unknown token, 403 for a forbidden one), answers 404 for unknown environments and sessions, and
counts opens so a test can rotate a value and watch a re-open pick it up.

Environments come from plain dicts (`put_environment`, with `Secret(...)` for secret values) or as
raw `Environment` JSON (`put_raw_environment`), e.g. the `eval` objects of Pulumi's own fixtures
(`eval_fixtures()`). `write_fake_esc_cli` puts a stand-in `esc` command on disk for CLI fallback tests.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.specs import spec_path

VALID_TOKEN = "pul-fake-0123456789abcdef"
# Any prefix before /api/esc is accepted, so a self-hosted backend URL with a path can be tested.
_ROUTE = re.compile(
    r"^(?P<prefix>.*)/api/esc/environments/(?P<org>[^/]+)/(?P<project>[^/]+)/(?P<env>[^/]+)"
    r"/open(?:/(?P<session>[^/]+))?$"
)
# The `duration` parameter's pattern in swagger.yaml.
_DURATION = re.compile(r"^(\d*\.\d+|\d+)(ns|us|µs|ms|s|m|h)?(\d*\.\d+|\d+)?(ns|us|µs|ms|s|m|h)?$")


@dataclass(frozen=True)
class Secret:
    """Marks a value as `fn::secret` in `put_environment`."""

    value: Any


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()  # a value ESC could not resolve yet (`unknown: true`)


def esc_value(obj: Any, *, secret: bool = False) -> dict[str, Any]:
    """A plain Python value as an ESC `Value` (every level carries `trace`, as the SDK requires)."""
    if isinstance(obj, Secret):
        return esc_value(obj.value, secret=True)
    inner: Any
    if obj is UNKNOWN:
        out: dict[str, Any] = {"value": None, "unknown": True, "trace": {}}
    else:
        # ESC marks every element of a secret object or array secret too (see fixture secret-objects).
        if isinstance(obj, Mapping):
            inner = {str(k): esc_value(v, secret=secret) for k, v in obj.items()}
        elif isinstance(obj, list | tuple):
            inner = [esc_value(v, secret=secret) for v in obj]
        else:
            inner = obj
        out = {"value": inner, "trace": {}}
    if secret:
        out["secret"] = True
    return out


def environment_from_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """An `Environment` (swagger) whose properties are `values`."""
    return {"properties": {key: esc_value(value) for key, value in values.items()}}


def eval_fixtures() -> dict[str, dict[str, Any]]:
    """Pulumi's eval fixtures (`expected.json` by case name) that have an `eval` object."""
    cases: dict[str, dict[str, Any]] = {}
    for expected in sorted(spec_path("pulumi-esc", "esc-eval-fixtures").glob("*/expected.json")):
        data = json.loads(expected.read_text(encoding="utf-8"))
        if data.get("eval") is not None:
            cases[expected.parent.name] = data
    return cases


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class FakeEscServer:
    """State of the fake ESC API; start it with `run_fake_esc()`."""

    tokens: set[str] = field(default_factory=lambda: {VALID_TOKEN})
    forbidden_tokens: set[str] = field(default_factory=set)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    opens: dict[str, int] = field(default_factory=dict)
    sessions: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    fail_status: int | None = None  # answer every API call with this status (e.g. 500)
    delay_seconds: float = 0.0  # wait this long before answering (timeout tests)
    url: str = ""  # http://127.0.0.1:<port>, the Pulumi backend URL to use
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def put_environment(self, ref: str, values: Mapping[str, Any]) -> None:
        """Define (or rotate) `org/project/env` from plain values; `Secret(...)` marks secrets."""
        self.put_raw_environment(ref, environment_from_values(values))

    def put_raw_environment(self, ref: str, environment: Mapping[str, Any]) -> None:
        with self._lock:
            self.environments[ref] = copy.deepcopy(dict(environment))

    def open_count(self, ref: str) -> int:
        with self._lock:
            return self.opens.get(ref, 0)

    # -- request handling ----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        with self._lock:
            self.requests.append(RecordedRequest(method, parts.path, query, authorization))
        if self.delay_seconds:
            self._stopping.wait(self.delay_seconds)
        if self.fail_status is not None:
            return self.fail_status, _error(self.fail_status, "Injected failure")
        match = _ROUTE.match(parts.path)
        if match is None:
            return 404, _error(404, "Not Found")
        token = (authorization or "").removeprefix("token ")
        if not (authorization or "").startswith("token ") or token not in self.tokens | self.forbidden_tokens:
            return 401, _error(401, "Unauthorized: No credentials provided or are invalid.")
        if token in self.forbidden_tokens:
            return 403, _error(403, "Forbidden")
        ref = f"{match['org']}/{match['project']}/{match['env']}"
        session = match["session"]
        if session is None and method == "POST":
            return self._open(ref, query)
        if session is not None and method == "GET":
            with self._lock:
                found = self.sessions.get(session)
            if found is None or found[0] != ref:
                return 404, _error(404, f"open session {session} not found")
            return 200, found[1]
        return 405, _error(405, "Method Not Allowed")

    def _open(self, ref: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        duration = query.get("duration", ["1h"])[0]
        if not _DURATION.match(duration):
            return 400, {"diagnostics": [{"summary": f"invalid duration {duration!r}"}]}
        with self._lock:
            environment = self.environments.get(ref)
            if environment is None:
                return 404, _error(404, f"Environment '{ref}' not found")
            self.opens[ref] = self.opens.get(ref, 0) + 1
            session = uuid.uuid4().hex
            # A session is a snapshot: a rotation after it was opened shows only in a new session.
            self.sessions[session] = (ref, copy.deepcopy(environment))
        return 200, {"id": session}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"message": message, "code": code}


def _handler_for(state: FakeEscServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, body = state.handle(self.command, self.path, self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@contextlib.contextmanager
def run_fake_esc(state: FakeEscServer | None = None) -> Iterator[FakeEscServer]:
    """Start a `FakeEscServer` on a random port in a thread; stop it on exit."""
    server = state or FakeEscServer()
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(server))
    http.daemon_threads = True
    host, port = http.server_address[:2]
    server.url = f"http://{host!s}:{port}"
    # A short poll interval: shutdown() waits up to one interval, on every test that uses the fake.
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._stopping.set()  # wakes a handler that is sleeping in `delay_seconds`
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)


def iter_values(node: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every ESC `Value` object inside a `Value` (itself included), with a readable path."""
    if not isinstance(node, Mapping):
        return
    yield path, node
    inner = node.get("value")
    if isinstance(inner, list):
        for index, item in enumerate(inner):
            yield from iter_values(item, f"{path}[{index}]")
    elif isinstance(inner, Mapping):
        for key, item in inner.items():
            yield from iter_values(item, f"{path}.{key}")


def write_fake_esc_cli(
    bin_dir: Path, *, stdout: str = "", stderr: str = "", exit_code: int = 0, sleep_seconds: float = 0.0
) -> Path:
    """Write an `esc` command into `bin_dir` that prints fixed output and logs each call.

    Returns the log: one JSON line per call with argv, PULUMI_ACCESS_TOKEN and PULUMI_BACKEND_URL.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "esc-calls.jsonl"
    script = bin_dir / "esc"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv[1:],\n"
        "        'token': os.environ.get('PULUMI_ACCESS_TOKEN'),\n"
        "        'backend': os.environ.get('PULUMI_BACKEND_URL')}) + '\\n')\n"
        f"time.sleep({sleep_seconds!r})\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code!r})\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return log


def cli_calls(log: Path) -> list[dict[str, Any]]:
    """The calls a `write_fake_esc_cli` command has logged."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
