"""Pulumi ESC: open an environment (SDK first, `esc` CLI fallback) and read local ESC-format files.

Values reach settings two ways: the `environmentVariables` block (name → value as-is, wins on a
conflict) and the grouped layout (`business_intelligence: {snowflake-password: …}` → SNOWFLAKE_PASSWORD,
groups in `catalog.ESC_GROUPS`). A setting is one string: booleans become "true"/"false", numbers
their JSON text; objects, arrays, nulls and unknown (not yet resolvable) values are skipped, because
no setting takes structured data and a JSON-encoded object would only fail later, further away.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .setting_specs import is_secret_name

# TEMPORARY until the groups are threaded from Settings.esc_groups.
ESC_GROUPS = ("ai_intelligence", "data_intelligence", "infrastructure", "business_intelligence")
from .errors import ConfigError
from .redaction import MASK, MIN_SECRET_LENGTH
from .settings import SourceValues

if TYPE_CHECKING:
    import yaml

log = logging.getLogger(__name__)

DEFAULT_BACKEND_URL = "https://api.pulumi.com"
SESSION_DURATION = "2h"
SESSION_SECONDS = 2 * 3600
# Re-open this long before ESC ends the session, so no value outlives its session.
EXPIRY_MARGIN_SECONDS = 300
# Bounds one whole open (both requests, or the CLI run): settings must never hang a server.
TIMEOUT_SECONDS = 10.0
UNKNOWN_TEXT = "[unknown]"
SECRET_TEXT = "[secret]"  # noqa: S105 - the placeholder ESC prints for a redacted secret

_ORG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,38}[A-Za-z0-9]$")  # swagger's orgName pattern
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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


# -- an opened environment as plain data -------------------------------------------------------


class _Unknown:
    def __repr__(self) -> str:
        return UNKNOWN_TEXT


UNKNOWN: Any = _Unknown()  # a value ESC could not resolve (`unknown: true`)
ValuePath = tuple[str | int, ...]


@dataclass(frozen=True)
class EscDocument:
    """An environment's values as plain JSON (UNKNOWN for unresolved ones) and the paths marked secret."""

    values: Mapping[str, Any]
    secret_paths: frozenset[ValuePath] = frozenset()

    def is_secret(self, path: ValuePath) -> bool:
        # ESC's secrecy is inherited: everything inside a secret object is secret.
        return any(path[:length] in self.secret_paths for length in range(1, len(path) + 1))

    def reveal(self, *, redact: bool = False) -> dict[str, Any]:
        """What `esc open --format json` prints (secrets as "[secret]" when `redact`)."""

        def show(value: Any, path: ValuePath) -> Any:
            # Secret before unknown, as ESC does (fixture ciphertext-invalid: a secret that failed to decrypt).
            if redact and path in self.secret_paths:
                return SECRET_TEXT
            if value is UNKNOWN:
                return UNKNOWN_TEXT
            if isinstance(value, list):
                return [show(item, (*path, index)) for index, item in enumerate(value)]
            if isinstance(value, Mapping):
                return {key: show(item, (*path, key)) for key, item in value.items()}
            return value

        return {key: show(value, (key,)) for key, value in self.values.items()}


def document_from_properties(properties: Mapping[str, Any] | None) -> EscDocument:
    """Decode an `Environment.properties` map of ESC `Value` objects (value/secret/unknown/trace)."""
    secrets: set[ValuePath] = set()

    def decode(node: Any, path: ValuePath) -> Any:
        if not isinstance(node, Mapping):
            raise ValueError(f"ESC value at {_dotted(path)} is not a Value object")
        if node.get("secret"):
            secrets.add(path)
        if node.get("unknown"):
            return UNKNOWN
        inner = node.get("value")
        if isinstance(inner, list):
            return [decode(item, (*path, index)) for index, item in enumerate(inner)]
        if isinstance(inner, Mapping):
            return {str(key): decode(item, (*path, str(key))) for key, item in inner.items()}
        return inner

    if properties is not None and not isinstance(properties, Mapping):
        raise ValueError("ESC environment properties are not an object")
    values = {str(key): decode(node, (str(key),)) for key, node in (properties or {}).items()}
    return EscDocument(values, frozenset(secrets))


def document_from_json(data: Mapping[str, Any]) -> EscDocument:
    """Decode `esc open --format json` output: plain values, no secret flags, unknowns as "[unknown]"."""

    def decode(value: Any) -> Any:
        if value == UNKNOWN_TEXT:
            return UNKNOWN
        if isinstance(value, list):
            return [decode(item) for item in value]
        if isinstance(value, Mapping):
            return {str(key): decode(item) for key, item in value.items()}
        return value

    return EscDocument({str(key): decode(value) for key, value in data.items()})


def _dotted(path: ValuePath) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


def _setting_text(value: Any) -> str | None:
    """A value as a setting string, or None when it cannot be one (see the module docstring)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dt.date):  # an unquoted date in a YAML file
        return value.isoformat()
    return None


def group_variable(key: str) -> str | None:
    """`some-key` in an ESC group → `SOME_KEY`; None if that is no variable name."""
    name = key.replace("-", "_").upper()
    return name if _VARIABLE.match(name) else None


def source_values(
    label: str,
    document: EscDocument,
    *,
    expires_at: float = float("inf"),
    is_secret: Callable[[str, ValuePath], bool] | None = None,
) -> SourceValues:
    """The settings an ESC document offers: `environmentVariables` first, then the groups."""
    secret_of = is_secret or (lambda _name, path: document.is_secret(path))
    values: dict[str, str] = {}
    secrets: set[str] = set()

    def offer(name: str, value: Any, path: ValuePath) -> None:
        if name in values:
            return
        text = _setting_text(value)
        if text is None:
            log.debug("ESC value %s is not a single string, number or boolean; not used.", _dotted(path))
            return
        values[name] = text
        if secret_of(name, path):
            secrets.add(name)

    env_vars = document.values.get("environmentVariables")
    if isinstance(env_vars, Mapping):
        for name, value in env_vars.items():
            offer(name, value, ("environmentVariables", name))
    for group in ESC_GROUPS:
        block = document.values.get(group)
        if not isinstance(block, Mapping):
            continue
        for key, value in block.items():
            variable = group_variable(key)
            if variable is None:
                log.debug("ESC key %s.%s does not name a variable; not used.", group, key)
                continue
            offer(variable, value, (group, key))
    return SourceValues(label, values, frozenset(secrets), expires_at)


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


def open_esc_environment(ref: str, *, token: str, backend_url: str | None) -> SourceValues:
    """The settings ESC environment `ref` offers, labelled `esc:<ref>`, cached until its session ends."""
    opened = open_environment(ref, token=token, backend_url=backend_url)
    # Without ESC's secret flags (CLI), secrecy comes from the variable's name (catalog).
    by_name = (lambda name, _path: is_secret_name(name)) if opened.via_cli else None
    return source_values(f"esc:{ref}", opened.document, expires_at=opened.expires_at, is_secret=by_name)


def _open_with_sdk(ref: EscRef, token: str, base: str) -> EscDocument:
    try:
        import pulumi_esc_sdk as esc  # ~0.4 s to import, so only when ESC is configured
        import urllib3
    except ImportError as exc:
        raise _SdkUnavailable(f"pulumi-esc-sdk is not importable ({exc.name})") from None

    api_url = base + "/api/esc"
    config = esc.Configuration(host=api_url, access_token=token)
    # Our deadline bounds the open; urllib3's default three retries would multiply it. (The SDK
    # declares `retries = None`, hence the ignore.)
    config.retries = urllib3.Retry(connect=0, read=0, status=0, other=0, redirect=3)  # type: ignore[assignment]
    client = esc.EscClient(config)
    # EscClient rewrites the host to <scheme>://<netloc>/api/esc, dropping the path of a self-hosted
    # backend URL; the configuration is read on every request, so put the full URL back.
    config.host = api_url
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


# -- local ESC-format file ---------------------------------------------------------------------


def read_esc_file(path: Path) -> SourceValues:
    """Read a local ESC-format YAML file: `values:` with `environmentVariables` and the groups.

    Values are literals or `{fn::secret: literal}`. What only Pulumi ESC can evaluate (encrypted
    `fn::secret: {ciphertext: …}`, other `fn::` functions, imports) is skipped with a warning;
    `${…}` interpolation is not evaluated.
    """
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Could not read the local ESC file {path}: {exc}.",
            hint="Fix or remove the file, or point SOPHIA_ESC_FILE elsewhere.",
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        document = _file_document(loader, root, path)
    except yaml.YAMLError as exc:
        # Only the problem and its line: YAML's own message quotes the line, which may hold a secret.
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(
            f"The local ESC file {where} is not valid YAML: {problem}.",
            hint="Fix the YAML (it must have a top-level `values:` mapping), or point SOPHIA_ESC_FILE elsewhere.",
        ) from None
    finally:
        loader.dispose()
    return source_values("file", document)


def _file_document(loader: yaml.SafeLoader, root: yaml.Node | None, path: Path) -> EscDocument:
    import yaml

    def line(node: yaml.Node) -> int:
        return node.start_mark.line + 1

    def pairs(node: yaml.MappingNode) -> dict[str, yaml.Node]:
        return {str(loader.construct_object(key)): value for key, value in node.value}

    def not_a_mapping(node: yaml.Node, what: str) -> ConfigError:
        return ConfigError(
            f"The local ESC file {path}, line {line(node)}: {what} must be a mapping.",
            hint=f"Use the ESC layout: `values:` with `environmentVariables` and the groups ({', '.join(ESC_GROUPS)}).",
        )

    if root is None:
        return EscDocument({})
    if not isinstance(root, yaml.MappingNode):
        raise not_a_mapping(root, "the document")
    top = pairs(root)
    if "imports" in top:
        log.warning("The local ESC file %s has `imports:`; imports are resolved by Pulumi ESC only.", path)
    values_node = top.get("values")
    if values_node is None or (isinstance(values_node, yaml.ScalarNode) and values_node.tag.endswith(":null")):
        return EscDocument({})
    if not isinstance(values_node, yaml.MappingNode):
        raise not_a_mapping(values_node, "`values`")

    secrets: set[ValuePath] = set()
    skip = object()

    def skipped(node: yaml.Node, where: ValuePath, why: str, hint: str) -> object:
        warning = ConfigError(f"The local ESC file {path}, line {line(node)}: {_dotted(where)} {why}", hint=hint)
        log.warning("%s", warning.agent_message())
        return skip

    def convert(node: yaml.Node, where: ValuePath) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_object(node)
        if isinstance(node, yaml.SequenceNode):
            items = [convert(item, (*where, index)) for index, item in enumerate(node.value)]
            return [item for item in items if item is not skip]
        assert isinstance(node, yaml.MappingNode)
        fields = pairs(node)
        functions = [key for key in fields if key.startswith("fn::")]
        if functions == ["fn::secret"] and len(fields) == 1:
            argument = fields["fn::secret"]
            if isinstance(argument, yaml.ScalarNode):
                secrets.add(where)
                return loader.construct_object(argument)
            if isinstance(argument, yaml.MappingNode) and "ciphertext" in pairs(argument):
                return skipped(
                    node,
                    where,
                    "is encrypted (fn::secret ciphertext), which only Pulumi ESC can decrypt; skipped.",
                    "Put the plaintext under `fn::secret:` in this local file, or use Pulumi ESC "
                    "(SOPHIA_ESC_ENV) for encrypted values.",
                )
        if functions:
            return skipped(
                node,
                where,
                f"uses {functions[0]}, which only Pulumi ESC evaluates; skipped.",
                "Use a literal or `{fn::secret: literal}` in the local file, or use Pulumi ESC (SOPHIA_ESC_ENV).",
            )
        converted = {key: convert(item, (*where, key)) for key, item in fields.items()}
        return {key: item for key, item in converted.items() if item is not skip}

    converted = convert(values_node, ())
    return EscDocument(converted if isinstance(converted, dict) else {}, frozenset(secrets))
