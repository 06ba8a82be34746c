"""A Pulumi ESC API on 127.0.0.1, built from specs/pulumi-esc/swagger.yaml.

The real `pulumi-esc-sdk` talks to it over HTTP. It implements what opening and reading an
environment needs: `POST /api/esc/environments/{org}/{project}/{env}/open?duration=…` (returns an
`OpenEnvironment`) and `GET …/open/{openSessionID}` (returns the `Environment` evaluated when the
session was opened, as Pulumi Cloud does). It checks `Authorization: token <tok>` (401 for an
unknown token, 403 for a forbidden one), answers 404 for unknown environments and sessions, and
counts opens so a test can rotate a value and watch a re-open pick it up.

It also keeps each environment's definition (YAML) with revisions, as `sophia secrets export`
needs: `POST /environments/{org}` (CreateEnvironment: 204, 409 if it exists), `GET|HEAD|PATCH|DELETE
/environments/{org}/{project}/{env}` (GetEnvironment returns the YAML and an `ETag`; PATCH takes
YAML, honours `If-Match` with 409 Conflict on a stale ETag, answers 400 with diagnostics for YAML
that is not a mapping, and re-evaluates literals and `fn::secret` for later opens), `GET …/versions`
(EnvironmentRevision list, newest first) and `GET …/versions/{version}` (that revision's YAML).

Environments come from plain dicts (`put_environment`, with `Secret(...)` for secret values) or as
raw `Environment` JSON (`put_raw_environment`), e.g. the `eval` objects of Pulumi's own fixtures
(`eval_fixtures()`). `write_fake_esc_cli` puts a stand-in `esc` command on disk for CLI fallback tests.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import hashlib
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

import jsonschema
import yaml

from tests.fakes.specs import spec_path

VALID_TOKEN = "pul-fake-0123456789abcdef"
# Any prefix before /api/esc is accepted, so a self-hosted backend URL with a path can be tested.
_ROUTE = re.compile(
    r"^(?P<prefix>.*)/api/esc/environments/(?P<org>[^/]+)/(?P<project>[^/]+)/(?P<env>[^/]+)"
    r"/open(?:/(?P<session>[^/]+))?$"
)
_ORG_ROUTE = re.compile(r"^(?P<prefix>.*)/api/esc/environments/(?P<org>[^/]+)$")
_ENV_ROUTE = re.compile(
    r"^(?P<prefix>.*)/api/esc/environments/(?P<org>[^/]+)/(?P<project>[^/]+)/(?P<env>[^/]+)"
    r"(?P<versions>/versions(?:/(?P<version>[^/]+))?)?$"
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
    if_match: str | None = None
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    """What the fake answers: a status, a JSON (or YAML text) body and extra headers."""

    status: int
    body: Any = None  # JSON-able, or str for application/x-yaml
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Revision:
    number: int
    definition: str  # YAML text
    created: str
    creator: str = "fake-user"


def definition_from_values(values: Mapping[str, Any]) -> str:
    """A YAML definition whose `values` are `values`; `Secret(...)` becomes `fn::secret`."""

    def plain(obj: Any) -> Any:
        if isinstance(obj, Secret):
            return {"fn::secret": plain(obj.value)}
        if isinstance(obj, Mapping):
            return {str(k): plain(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [plain(v) for v in obj]
        return None if obj is UNKNOWN else obj

    return yaml.safe_dump({"values": plain(values)}, sort_keys=False)


def values_from_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate what the fake understands of a definition: literals and `fn::secret: literal`.

    Imports, interpolation and other functions stay as they are written (the fake is no evaluator).
    """

    def evaluate(node: Any) -> Any:
        if isinstance(node, Mapping):
            if list(node) == ["fn::secret"] and not isinstance(node["fn::secret"], Mapping | list):
                return Secret(node["fn::secret"])
            return {str(k): evaluate(v) for k, v in node.items()}
        if isinstance(node, list):
            return [evaluate(v) for v in node]
        return node

    values = definition.get("values") or {}
    return evaluate(values) if isinstance(values, Mapping) else {}


@dataclass
class FakeEscServer:
    """State of the fake ESC API; start it with `run_fake_esc()`."""

    tokens: set[str] = field(default_factory=lambda: {VALID_TOKEN})
    forbidden_tokens: set[str] = field(default_factory=set)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    opens: dict[str, int] = field(default_factory=dict)
    sessions: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    revisions: dict[str, list[Revision]] = field(default_factory=dict)  # per ref, oldest first
    before_update: Any = None  # called with the ref just before a PATCH is applied (race tests)
    fail_status: int | None = None  # answer every API call with this status (e.g. 500)
    delay_seconds: float = 0.0  # wait this long before answering (timeout tests)
    url: str = ""  # http://127.0.0.1:<port>, the Pulumi backend URL to use
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def put_environment(self, ref: str, values: Mapping[str, Any]) -> None:
        """Define (or rotate) `org/project/env` from plain values; `Secret(...)` marks secrets."""
        self._store(ref, environment_from_values(values), definition_from_values(values))

    def put_raw_environment(self, ref: str, environment: Mapping[str, Any]) -> None:
        """An evaluated `Environment` as-is; its definition reads as `{}` (the fake cannot invert it)."""
        self._store(ref, environment, "{}\n")

    def _store(self, ref: str, environment: Mapping[str, Any], definition: str) -> None:
        with self._lock:
            self.environments[ref] = copy.deepcopy(dict(environment))
            history = self.revisions.setdefault(ref, [])
            created = dt.datetime.now(dt.UTC).isoformat()
            history.append(Revision(len(history) + 1, definition, created))

    def definition(self, ref: str) -> str | None:
        """The current YAML definition of `ref` (None if it does not exist)."""
        with self._lock:
            history = self.revisions.get(ref)
            return history[-1].definition if history and ref in self.environments else None

    def etag(self, ref: str) -> str:
        with self._lock:
            latest = self.revisions[ref][-1]
        digest = hashlib.sha256(f"{ref}\n{latest.number}\n{latest.definition}".encode()).hexdigest()[:20]
        return f'"{digest}"'

    def open_count(self, ref: str) -> int:
        with self._lock:
            return self.opens.get(ref, 0)

    # -- request handling ----------------------------------------------------------------------

    def handle(
        self,
        method: str,
        raw_path: str,
        authorization: str | None,
        *,
        if_match: str | None = None,
        body: bytes = b"",
    ) -> Answer:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        with self._lock:
            self.requests.append(RecordedRequest(method, parts.path, query, authorization, if_match, body))
        if self.delay_seconds:
            self._stopping.wait(self.delay_seconds)
        if self.fail_status is not None:
            return Answer(self.fail_status, _error(self.fail_status, "Injected failure"))
        match = _ROUTE.match(parts.path)
        definition_match = _ENV_ROUTE.match(parts.path) or _ORG_ROUTE.match(parts.path)
        if match is None and definition_match is None:
            return Answer(404, _error(404, "Not Found"))
        token = (authorization or "").removeprefix("token ")
        if not (authorization or "").startswith("token ") or token not in self.tokens | self.forbidden_tokens:
            return Answer(401, _error(401, "Unauthorized: No credentials provided or are invalid."))
        if token in self.forbidden_tokens:
            return Answer(403, _error(403, "Forbidden"))
        if match is None:
            assert definition_match is not None
            return self._definitions(method, definition_match.groupdict(), if_match, body)
        ref = f"{match['org']}/{match['project']}/{match['env']}"
        session = match["session"]
        if session is None and method == "POST":
            return self._open(ref, query)
        if session is not None and method == "GET":
            with self._lock:
                found = self.sessions.get(session)
            if found is None or found[0] != ref:
                return Answer(404, _error(404, f"open session {session} not found"))
            return Answer(200, found[1])
        return Answer(405, _error(405, "Method Not Allowed"))

    def _open(self, ref: str, query: dict[str, list[str]]) -> Answer:
        duration = query.get("duration", ["1h"])[0]
        if not _DURATION.match(duration):
            return Answer(400, {"diagnostics": [{"summary": f"invalid duration {duration!r}"}]})
        with self._lock:
            environment = self.environments.get(ref)
            if environment is None:
                return Answer(404, _error(404, f"Environment '{ref}' not found"))
            self.opens[ref] = self.opens.get(ref, 0) + 1
            session = uuid.uuid4().hex
            # A session is a snapshot: a rotation after it was opened shows only in a new session.
            self.sessions[session] = (ref, copy.deepcopy(environment))
        return Answer(200, {"id": session})

    # -- definitions ---------------------------------------------------------------------------

    def _definitions(self, method: str, route: dict[str, str | None], if_match: str | None, body: bytes) -> Answer:
        if route.get("project") is None:
            if method != "POST":
                return Answer(405, _error(405, "Method Not Allowed"))
            return self._create(str(route["org"]), body)
        ref = f"{route['org']}/{route['project']}/{route['env']}"
        if route.get("versions"):
            if method != "GET":
                return Answer(405, _error(405, "Method Not Allowed"))
            return self._versions(ref, route.get("version"))
        current = self.definition(ref)
        if current is None:
            return Answer(404, _error(404, f"Environment '{ref}' not found"))
        if method == "GET":
            return Answer(200, current, {"ETag": self.etag(ref)})
        if method == "HEAD":
            return Answer(200, None, {"ETag": self.etag(ref)})
        if method == "DELETE":
            with self._lock:
                self.environments.pop(ref, None)
                self.revisions.pop(ref, None)
            return Answer(204)
        if method == "PATCH":
            return self._update(ref, if_match, body)
        return Answer(405, _error(405, "Method Not Allowed"))

    def _create(self, org: str, body: bytes) -> Answer:
        try:
            request = json.loads(body or b"null")
            jsonschema.validate(request, _schema("CreateEnvironment"))
        except (ValueError, jsonschema.ValidationError) as exc:
            return Answer(400, _error(400, f"invalid CreateEnvironment body: {str(exc).splitlines()[0]}"))
        ref = f"{org}/{request['project']}/{request['name']}"
        if self.definition(ref) is not None:
            return Answer(409, _error(409, f"Environment '{ref}' already exists"))
        self._store(ref, {"properties": {}}, "{}\n")
        return Answer(204)

    def _update(self, ref: str, if_match: str | None, body: bytes) -> Answer:
        if self.before_update is not None:
            self.before_update(ref)
        if if_match is not None and if_match != "*" and if_match != self.etag(ref):
            return Answer(409, _error(409, "Conflict: the environment was modified since the ETag was issued"))
        try:
            text = body.decode("utf-8")
            parsed = yaml.safe_load(text)
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            return Answer(400, {"diagnostics": [{"summary": f"invalid YAML: {type(exc).__name__}"}]})
        if parsed is None:
            parsed = {}
        if not isinstance(parsed, dict):
            return Answer(400, {"diagnostics": [{"summary": "the environment definition must be a mapping"}]})
        if not isinstance(parsed.get("values", {}), dict | type(None)):
            return Answer(400, {"diagnostics": [{"summary": "values must be a mapping", "path": "values"}]})
        self._store(ref, environment_from_values(values_from_definition(parsed)), text)
        return Answer(200, {"diagnostics": []})

    def _versions(self, ref: str, version: str | None) -> Answer:
        with self._lock:
            history = list(self.revisions.get(ref) or []) if ref in self.environments else []
        if not history:
            return Answer(404, _error(404, f"Environment '{ref}' not found"))
        if version is None:
            listing = [
                {"number": r.number, "created": r.created, "creatorLogin": r.creator, "creatorName": r.creator}
                for r in reversed(history)
            ]
            return Answer(200, listing)
        wanted = len(history) if version == "latest" else int(version) if version.isdigit() else 0
        if not 1 <= wanted <= len(history):
            return Answer(404, _error(404, f"revision {version} not found"))
        return Answer(200, history[wanted - 1].definition)


@functools.cache
def esc_swagger() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(spec_path("pulumi-esc", "swagger.yaml").read_text(encoding="utf-8"))
    return spec


def _schema(name: str) -> dict[str, Any]:
    """A component schema from the swagger, with its `$ref`s resolvable."""
    spec = esc_swagger()
    return {**spec["components"]["schemas"][name], "components": spec["components"]}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"message": message, "code": code}


def _handler_for(state: FakeEscServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = state.handle(
                self.command,
                self.path,
                self.headers.get("Authorization"),
                if_match=self.headers.get("If-Match"),
                body=body,
            )
            if answer.body is None:
                data, content_type = b"", None
            elif isinstance(answer.body, str):
                data, content_type = answer.body.encode(), "application/x-yaml"
            else:
                data, content_type = json.dumps(answer.body).encode(), "application/json"
            self.send_response(answer.status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = _answer

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
