"""Open a Pulumi ESC environment: the official SDK first, the `esc` CLI as a fallback.

The environment is opened for SESSION_DURATION and its values are cached by the caller until
shortly before the session ends, so no value outlives its session.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .esc_document import EscDocument, document_from_json, document_from_properties, source_values
from .redaction import MASK, MIN_SECRET_LENGTH
from .setting_specs import is_secret_name
from .sources import SourceValues

log = logging.getLogger(__name__)

DEFAULT_BACKEND_URL = "https://api.pulumi.com"
SESSION_DURATION = "2h"
SESSION_SECONDS = 2 * 3600
# Re-open this long before ESC ends the session, so no value outlives its session.
EXPIRY_MARGIN_SECONDS = 300
# Bounds one whole open (both requests, or the CLI run): settings must never hang a server.
TIMEOUT_SECONDS = 10.0

_ORG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,38}[A-Za-z0-9]$")  # swagger's orgName pattern
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_REF_HINT = (
    "Set SOPHIA_ESC_ENV to org/project/env (or the legacy org/env, which means project `default`); "
    "`esc env ls` lists the environments your token can open."
)


# -- references and URLs -----------------------------------------------------------------------


@dataclass(frozen=True)
class EscRef:
    org: str
    project: str
    env: str

    def __str__(self) -> str:
        return f"{self.org}/{self.project}/{self.env}"


def parse_ref(ref: str) -> EscRef:
    """`org/project/env`, or legacy `org/env` (project `default`)."""
    parts = ref.strip().split("/")
    if len(parts) == 2:
        parts = [parts[0], "default", parts[1]]
    if (
        len(parts) == 3
        and _ORG.match(parts[0])
        and all(_NAME.match(part) and part not in {".", ".."} for part in parts[1:])
    ):
        return EscRef(*parts)
    raise ConfigError(f"SOPHIA_ESC_ENV={ref!r} is not a Pulumi ESC environment reference.", hint=_REF_HINT)


def backend_base_url(backend_url: str | None) -> str:
    """The Pulumi Cloud API base, as the Pulumi CLI reads PULUMI_BACKEND_URL (default api.pulumi.com)."""
    base = (backend_url or DEFAULT_BACKEND_URL).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(
            f"PULUMI_BACKEND_URL={base!r} is not a Pulumi Cloud API URL, so Pulumi ESC cannot be opened.",
            hint=(
                "ESC needs Pulumi Cloud: unset PULUMI_BACKEND_URL (https://api.pulumi.com) or set it to "
                "your self-hosted Pulumi Cloud API URL. Self-managed state backends (file://, s3://, …) "
                "have no ESC; use the local ESC-format file (SOPHIA_ESC_FILE) instead."
            ),
        )
    return base


# -- opening an environment --------------------------------------------------------------------


class _SdkUnavailable(Exception):
    """The SDK could not get an answer from ESC (not an answer such as 401 or 404)."""


@dataclass(frozen=True)
class OpenedEnvironment:
    document: EscDocument
    expires_at: float  # when to re-open: shortly before ESC ends the session
    via_cli: bool  # `esc open` prints no secret flags


def open_environment(ref: str, *, token: str, backend_url: str | None) -> OpenedEnvironment:
    """Open `ref` with the Pulumi ESC SDK for SESSION_DURATION; fall back to the `esc` CLI on PATH.

    The CLI is tried only when the SDK got no answer (not importable, network, 5xx, malformed
    reply): a 401/403/404/400 is ESC's answer, and the CLI would get the same one.
    """
    target = parse_ref(ref)
    base = backend_base_url(backend_url)
    started = time.time()
    try:
        document = _open_with_sdk(target, token, base)
        return OpenedEnvironment(document, started + SESSION_SECONDS - EXPIRY_MARGIN_SECONDS, via_cli=False)
    except _SdkUnavailable as exc:
        sdk_reason = _scrub(str(exc), token)
    cli = shutil.which("esc")
    if cli is None:
        raise _unreachable(base, sdk_reason)
    log.info("The Pulumi ESC SDK could not open %s (%s); trying the esc CLI.", ref, sdk_reason)
    document = _open_with_cli(cli, target, token, base, sdk_reason)
    return OpenedEnvironment(document, started + SESSION_SECONDS - EXPIRY_MARGIN_SECONDS, via_cli=True)


def open_esc_environment(ref: str, *, token: str, backend_url: str | None, groups: Iterable[str]) -> SourceValues:
    """The settings ESC environment `ref` offers (its `environmentVariables` and `groups`), labelled `esc:<ref>`."""
    opened = open_environment(ref, token=token, backend_url=backend_url)
    # Without ESC's secret flags (CLI), secrecy comes from the variable's name.
    by_name = (lambda name, _path: is_secret_name(name)) if opened.via_cli else None
    return source_values(f"esc:{ref}", opened.document, groups=groups, expires_at=opened.expires_at, is_secret=by_name)


def _open_with_sdk(ref: EscRef, token: str, base: str) -> EscDocument:
    esc, urllib3, client = _sdk_client(token, base)
    deadline = time.monotonic() + TIMEOUT_SECONDS

    def remaining() -> float:
        return max(0.1, deadline - time.monotonic())

    # The raw ("without preload") calls skip the SDK's model parsing: its Environment model rejects
    # real payloads (an `exprs` accessor with an index but no key, a Range without `environment`),
    # and only the properties are needed here.
    try:
        opened = _json_body(
            client.esc_api.open_environment_without_preload_content(
                ref.org, ref.project, ref.env, duration=SESSION_DURATION, _request_timeout=remaining()
            ),
            ref,
            base,
        )
        session = opened.get("id")
        if not isinstance(session, str) or not session:
            raise _SdkUnavailable("ESC answered the open without a session id")
        environment = _json_body(
            client.esc_api.read_open_environment_without_preload_content(
                ref.org, ref.project, ref.env, session, _request_timeout=remaining()
            ),
            ref,
            base,
        )
        return document_from_properties(environment.get("properties"))
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _SdkUnavailable(_network_reason(exc)) from None
    except esc.ApiException as exc:  # raised for TLS errors, with status 0
        raise _SdkUnavailable(f"request failed ({exc.reason})") from None
    except ValueError as exc:  # includes pydantic's ValidationError
        raise _SdkUnavailable(f"unexpected answer from ESC ({exc})") from None


def _sdk_client(token: str, base: str) -> tuple[Any, Any, Any]:
    """The SDK module, urllib3 and an `EscClient` for `base` (raises _SdkUnavailable if not importable)."""
    try:
        import pulumi_esc_sdk as esc  # ~0.4 s to import, so only when ESC is configured
        import urllib3
    except ImportError as exc:
        raise _SdkUnavailable(f"pulumi-esc-sdk is not importable ({exc.name})") from None

    api_url = base + "/api/esc"
    config = esc.Configuration(host=api_url, access_token=token)
    # Our deadline bounds each call; urllib3's default three retries would multiply it. (The SDK
    # declares `retries = None`, hence the ignore.)
    config.retries = urllib3.Retry(connect=0, read=0, status=0, other=0, redirect=3)  # type: ignore[assignment]
    client = esc.EscClient(config)
    # EscClient rewrites the host to <scheme>://<netloc>/api/esc, dropping the path of a self-hosted
    # backend URL; the configuration is read on every request, so put the full URL back.
    config.host = api_url
    return esc, urllib3, client


def _json_body(response: Any, ref: EscRef, base: str) -> dict[str, Any]:
    """Status → our errors; 200 → its JSON object."""
    try:
        status, body = response.status, response.data
    finally:
        response.release_conn()
    if status in {401, 403}:
        raise _token_rejected(ref, status)
    if status == 404:
        raise ConfigError(
            f"Pulumi ESC environment {ref} was not found at {base}.",
            hint=f"Check SOPHIA_ESC_ENV and that the token's user is a member of `{ref.org}`. {_REF_HINT}",
        )
    if status == 400:
        raise ConfigError(
            f"Pulumi ESC could not open {ref}: {_diagnostics(body)}.",
            hint=f"Fix the environment's definition (`esc env get {ref}` shows it), then retry.",
        )
    if status != 200:
        raise _SdkUnavailable(f"ESC answered HTTP {status}")
    try:
        data = json.loads(body)
    except ValueError:
        raise _SdkUnavailable("ESC answered with something that is not JSON") from None
    if not isinstance(data, dict):
        raise _SdkUnavailable("ESC answered with JSON that is not an object")
    return data


def _diagnostics(body: bytes) -> str:
    try:
        data = json.loads(body)
        summaries = [d.get("summary", "") for d in data.get("diagnostics") or []]
        return "; ".join(s for s in summaries if s)[:300] or str(data.get("message") or "bad request")
    except (ValueError, AttributeError):
        return "bad request"


def _network_reason(exc: BaseException) -> str:
    """A short reason for a connection failure (urllib3's text is long and names internals)."""
    import urllib3

    reason: BaseException = getattr(exc, "reason", None) or exc
    # NewConnectionError subclasses ConnectTimeoutError in urllib3, so it is checked first.
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "the host name could not be resolved"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        text = str(reason)
        return text.split("Failed to establish a new connection: ", 1)[-1][:200]
    if isinstance(reason, urllib3.exceptions.TimeoutError | TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:g} s"
    return str(reason)[:200] or type(reason).__name__


def _open_with_cli(cli: str, ref: EscRef, token: str, base: str, sdk_reason: str) -> EscDocument:
    env = {**os.environ, "PULUMI_ACCESS_TOKEN": token, "PULUMI_BACKEND_URL": base}
    try:
        done = subprocess.run(
            [cli, "open", str(ref), "--format", "json", "--lifetime", SESSION_DURATION],
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _unreachable(base, f"{sdk_reason}; `esc open` gave no answer within {TIMEOUT_SECONDS:g} s") from None
    except OSError as exc:
        raise _unreachable(base, f"{sdk_reason}; `esc` could not run ({exc.strerror})") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        detail = _scrub(lines[-1] if lines else f"exit status {done.returncode}", token)[:300]
        lowered = detail.lower()
        if any(word in lowered for word in ("401", "403", "unauthorized", "forbidden")):
            raise _token_rejected(ref, None)
        if "404" in lowered or "not found" in lowered:
            raise ConfigError(f"Pulumi ESC environment {ref} was not found ({detail}).", hint=_REF_HINT)
        raise _unreachable(base, f"{sdk_reason}; `esc open` failed: {detail}")
    try:
        data = json.loads(done.stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _unreachable(base, f"{sdk_reason}; `esc open --format json` did not print a JSON object")
    return document_from_json(data)


def _token_rejected(ref: EscRef, status: int | None) -> ConfigError:
    code = f" (HTTP {status})" if status else ""
    return ConfigError(
        f"Pulumi ESC rejected the access token when opening {ref}{code}.",
        hint=(
            "Set PULUMI_ACCESS_TOKEN to a valid Pulumi access token whose user may open this "
            "environment (Pulumi Cloud → Personal access tokens)."
        ),
    )


def _unreachable(base: str, reason: str) -> ConfigError:
    return ConfigError(
        f"Pulumi ESC unreachable at {base}: {reason}.",
        hint=(
            "Check the network and PULUMI_BACKEND_URL; until ESC answers, settings come from the "
            "environment, the local ESC-format file and .env. `sophia doctor` shows what is found where."
        ),
    )


def _scrub(text: str, token: str) -> str:
    # The token must never reach a message, even if a library or the CLI echoes it. (Below the
    # redactor's minimum length a "token" is no real token, and replacing it would garble words.)
    return text.replace(token, MASK) if len(token) >= MIN_SECRET_LENGTH else text


# -- reading and writing an environment's definition (`sophia secrets export`) -----------------


@dataclass(frozen=True)
class EnvironmentDefinition:
    """An environment's YAML definition as ESC stores it, and the ETag of that revision."""

    text: str
    etag: str | None


class ConcurrentEditError(ConfigError):
    """The environment changed between reading its definition and writing it back."""


def read_definition(ref: str, *, token: str, backend_url: str | None) -> EnvironmentDefinition | None:
    """The definition of `ref` (GET, YAML) with its ETag; None when the environment does not exist."""
    target, base = parse_ref(ref), backend_base_url(backend_url)
    response = _definition_call(
        token,
        base,
        lambda client, timeout: client.esc_api.get_environment_without_preload_content(
            target.org, target.project, target.env, _request_timeout=timeout
        ),
    )
    status, body, headers = response
    if status == 404:
        return None
    _definition_status(status, body, target, base, "read")
    return EnvironmentDefinition(body.decode("utf-8", errors="replace"), headers.get("ETag") or None)


def create_environment(ref: str, *, token: str, backend_url: str | None) -> None:
    """Create the empty environment `ref` (POST /environments/{org}: project and name)."""
    target, base = parse_ref(ref), backend_base_url(backend_url)

    def create(client: Any, timeout: float) -> Any:
        from pulumi_esc_sdk.models.create_environment import CreateEnvironment

        body = CreateEnvironment(project=target.project, name=target.env)
        return client.esc_api.create_environment_without_preload_content(target.org, body, _request_timeout=timeout)

    status, body, _ = _definition_call(token, base, create)
    if status == 409:
        raise ConcurrentEditError(
            f"Pulumi ESC environment {target} was created by someone else meanwhile; nothing was written.",
            hint="Run the command again: it will merge into the new environment.",
        )
    _definition_status(status, body, target, base, "create")


def update_definition(ref: str, text: str, *, etag: str | None, token: str, backend_url: str | None) -> None:
    """Replace the definition of `ref` (PATCH, YAML), only if it is still at `etag` (If-Match)."""
    target, base = parse_ref(ref), backend_base_url(backend_url)
    headers = {"If-Match": etag} if etag else {}
    status, body, _ = _definition_call(
        token,
        base,
        lambda client, timeout: client.esc_api.update_environment_yaml_without_preload_content(
            target.org,
            target.project,
            target.env,
            text,
            _content_type="application/x-yaml",
            _headers=headers,
            _request_timeout=timeout,
        ),
    )
    if status in {409, 412}:
        raise ConcurrentEditError(
            f"Pulumi ESC environment {target} was changed by someone else since it was read "
            f"(HTTP {status}); nothing was written.",
            hint="Run the command again: it reads the new revision, merges into it and shows the diff.",
        )
    _definition_status(status, body, target, base, "update")


def _definition_call(token: str, base: str, call: Any) -> tuple[int, bytes, dict[str, str]]:
    """Run one raw SDK call; its status, body and headers. No CLI fallback: these calls write."""
    try:
        esc, urllib3, client = _sdk_client(token, base)
    except _SdkUnavailable as exc:
        raise _unreachable(base, str(exc)) from None
    try:
        response = call(client, TIMEOUT_SECONDS)
        try:
            return int(response.status), bytes(response.data or b""), dict(response.headers)
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _unreachable(base, _network_reason(exc)) from None
    except esc.ApiException as exc:
        raise _unreachable(base, _scrub(f"request failed ({exc.reason})", token)) from None


def _definition_status(status: int, body: bytes, ref: EscRef, base: str, action: str) -> None:
    if status in {200, 204}:
        return
    if status in {401, 403}:
        raise _token_rejected(ref, status)
    if status == 404:
        raise ConfigError(
            f"Pulumi ESC could not {action} {ref}: organization or project not found at {base} (HTTP 404).",
            hint=f"Check the reference and that the token's user is a member of `{ref.org}`. {_REF_HINT}",
        )
    if status == 400:
        raise ConfigError(
            f"Pulumi ESC refused to {action} {ref}: {_diagnostics(body)}.",
            hint=f"Fix the definition (`esc env get {ref}` shows it), then retry.",
        )
    raise _unreachable(base, f"ESC answered HTTP {status} to {action} {ref}")
