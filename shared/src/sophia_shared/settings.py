"""Settings with source tracking: environment → Pulumi ESC → local ESC-format file → `.env`.

Nothing is read until a value is asked for, so servers answer `initialize` before any network call;
what must be known before then (the write gate) is read with `get_local`/`flag_local`, which never
open remote ESC.
Every secret value that resolves is registered with the redactor.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .setting_specs import CORE_SETTINGS, SettingSpec, is_secret_name
from .errors import ConfigError, missing_setting
from .paths import config_dir
from .redaction import mask, register_secret

log = logging.getLogger(__name__)
T = TypeVar("T")

# These locate the other sources, so they are read from the environment and .env only.
BOOTSTRAP = ("SOPHIA_ESC_ENV", "PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "SOPHIA_ESC_FILE", "SOPHIA_DOTENV")


@dataclass(frozen=True)
class Resolved:
    name: str
    value: str
    source: str  # "env", "esc:org/project/env", "file", "dotenv", "default"
    secret: bool

    def display(self) -> str:
        return mask(self.value) if self.secret else self.value


@dataclass(frozen=True)
class SourceValues:
    """Values one source offers, and which of them the source itself marks secret."""

    label: str
    values: Mapping[str, str]
    secrets: frozenset[str] = frozenset()
    expires_at: float = float("inf")  # time.time() after which the source must be re-read


EscOpener = Callable[[str, str, str | None], SourceValues]


def _default_esc_opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
    from .esc import open_esc_environment

    return open_esc_environment(ref, token=token, backend_url=backend_url)


_DOTENV_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}
_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([^=\s]+)\s*=(.*)$")
_TRAILING_COMMENT = re.compile(r"^\s*(?:#.*)?$")
_UNQUOTED_COMMENT = re.compile(r"\s#")


def parse_dotenv(path: Path) -> dict[str, str]:
    """A small `.env` reader: KEY=VALUE, `export` prefix, single or double quotes, `#` comments."""
    values: dict[str, str] = {}
    # utf-8-sig: an editor's byte-order mark must not become part of the first key.
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _DOTENV_LINE.match(stripped)
        if match is None:
            continue
        value = _dotenv_value(match.group(2))
        if value is None:
            # The line number only: the value may be a secret.
            log.warning("%s line %d: text after the closing quote; line skipped", path, number)
            continue
        values[match.group(1)] = value
    return values


def _dotenv_value(text: str) -> str | None:
    """The value part of one line; None when a quoted value is followed by something other than a comment."""
    rest = text.lstrip()
    quote = rest[:1]
    if quote == "'":
        end = rest.find("'", 1)
        if end != -1:
            return rest[1:end] if _TRAILING_COMMENT.match(rest[end + 1 :]) else None
    elif quote == '"':
        chars: list[str] = []
        index = 1
        while index < len(rest):
            char = rest[index]
            if char == "\\" and rest[index + 1 : index + 2] in _DOTENV_ESCAPES:
                chars.append(_DOTENV_ESCAPES[rest[index + 1]])
                index += 2
                continue
            if char == '"':
                return "".join(chars) if _TRAILING_COMMENT.match(rest[index + 1 :]) else None
            chars.append(char)
            index += 1
    # Unquoted, or an unterminated quote kept as written: a comment starts at whitespace + `#`.
    return _UNQUOTED_COMMENT.split(text, maxsplit=1)[0].strip()


class Settings:
    """Resolves settings lazily from the four sources, caching ESC for its session's duration."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        cwd: Path | None = None,
        esc_opener: EscOpener | None = None,
        specs: Iterable[SettingSpec] = (),
    ) -> None:
        # The settings this resolver knows: the core ones plus those its caller declares (a server's
        # own, or every registered server's for `sophia doctor`). Unknown names still resolve.
        self._specs: dict[str, SettingSpec] = {s.name: s for s in (*CORE_SETTINGS, *specs)}
        self._environ = dict(os.environ if environ is None else environ)
        self._cwd = cwd or Path.cwd()
        self._esc_opener = esc_opener or _default_esc_opener
        self._lock = threading.RLock()
        self._dotenv: SourceValues | None = None
        self._file: SourceValues | None = None
        self._esc: SourceValues | None = None
        self._esc_error: str | None = None
        self._bootstrap_secrets()

    # -- sources -------------------------------------------------------------------------------

    @property
    def specs(self) -> Mapping[str, SettingSpec]:
        return self._specs

    @property
    def esc_groups(self) -> tuple[str, ...]:
        """ESC groups whose keys map to settings: the groups of the declared settings."""
        return tuple(sorted({s.group for s in self._specs.values() if s.group != "core"}))

    def is_secret(self, name: str) -> bool:
        return is_secret_name(name, self._specs.get(name))

    def _bootstrap_secrets(self) -> None:
        for name, value in self._environ.items():
            if self.is_secret(name):
                register_secret(value)

    def _bootstrap(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value:
            return value
        return self._dotenv_source().values.get(name) or None

    def _dotenv_source(self) -> SourceValues:
        if self._dotenv is None:
            path = Path(self._environ.get("SOPHIA_DOTENV") or self._cwd / ".env").expanduser()
            values: dict[str, str] = {}
            if path.is_file():
                try:
                    values = parse_dotenv(path)
                except (OSError, UnicodeDecodeError) as exc:
                    log.warning("Could not read %s: %s", path, exc)
            for key, value in values.items():
                if self.is_secret(key):
                    register_secret(value)
            self._dotenv = SourceValues("dotenv", values)
        return self._dotenv

    def esc_file_path(self) -> Path:
        explicit = self._bootstrap("SOPHIA_ESC_FILE")
        return Path(explicit).expanduser() if explicit else config_dir(self._environ) / "esc.yaml"

    def _file_source(self) -> SourceValues:
        if self._file is None:
            path = self.esc_file_path()
            source = SourceValues("file", {})
            if path.is_file():
                from .esc import read_esc_file

                try:
                    source = read_esc_file(path)
                except ConfigError as exc:
                    log.warning("%s", exc.agent_message())
            self._register_source(source)
            self._file = source
        return self._file

    @property
    def esc_ref(self) -> str | None:
        return self._bootstrap("SOPHIA_ESC_ENV")

    def _esc_source(self) -> SourceValues | None:
        ref, token = self.esc_ref, self._bootstrap("PULUMI_ACCESS_TOKEN")
        if not ref or not token:
            return None
        with self._lock:
            if self._esc is not None and time.time() < self._esc.expires_at:
                return self._esc
            try:
                source = self._esc_opener(ref, token, self._bootstrap("PULUMI_BACKEND_URL"))
            except ConfigError as exc:
                # An unreachable ESC must not take the other sources down; doctor reports it.
                self._esc_error = exc.agent_message()
                log.warning("Pulumi ESC %s not used: %s", ref, exc.message)
                self._esc = SourceValues(f"esc:{ref}", {}, expires_at=time.time() + 60)
                return self._esc
            self._esc_error = None
            self._register_source(source)
            self._esc = source
            return source

    def _register_source(self, source: SourceValues) -> None:
        for key, value in source.values.items():
            if key in source.secrets or self.is_secret(key):
                register_secret(value)

    # -- public API ----------------------------------------------------------------------------

    def resolve(self, name: str) -> Resolved | None:
        return self._resolve(name, remote=True)

    def _resolve(self, name: str, *, remote: bool) -> Resolved | None:
        spec = self._specs.get(name)
        secret = self.is_secret(name)
        value = self._environ.get(name)
        if value:
            return Resolved(name, value, "env", secret)
        if name not in BOOTSTRAP:
            sources = (self._esc_source(), self._file_source()) if remote else (self._file_source(),)
            for source in sources:
                if source is not None and source.values.get(name):
                    return Resolved(name, source.values[name], source.label, secret or name in source.secrets)
        value = self._dotenv_source().values.get(name)
        if value:
            return Resolved(name, value, "dotenv", secret)
        if spec is not None and spec.default:
            return Resolved(name, spec.default, "default", secret)
        return None

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.resolve(name)
        return found.value if found is not None else default

    def get_local(self, name: str, default: str | None = None) -> str | None:
        """Like `get`, but never opens remote ESC: environment → local ESC-format file → `.env`.

        For settings read before `initialize` is answered (the write gate), where an unreachable
        ESC would stall the handshake.
        """
        found = self._resolve(name, remote=False)
        return found.value if found is not None else default

    def require(self, name: str, purpose: str) -> str:
        value = self.get(name)
        if value is None:
            raise missing_setting(name, purpose)
        return value

    def flag(self, name: str) -> bool:
        return _truthy(self.get(name))

    def flag_local(self, name: str) -> bool:
        """A flag from the local sources only; see `get_local`."""
        return _truthy(self.get_local(name))

    def refresh_esc(self) -> bool:
        """Re-open the ESC environment (after a vendor 401/403); True only if ESC is in use and re-opened."""
        with self._lock:
            self._esc = None
            # A failed open is cached as an empty source with `esc_error` set: nothing new to retry with.
            return self._esc_source() is not None and self._esc_error is None

    @property
    def esc_error(self) -> str | None:
        return self._esc_error

    def esc_value_count(self) -> int:
        """How many values the ESC environment supplied (opening it if needed); 0 when not in use."""
        source = self._esc_source()
        return len(source.values) if source is not None else 0

    def all_resolved(self) -> list[Resolved]:
        """Every catalogued setting that has a value, for `sophia doctor`."""
        found = (self.resolve(name) for name in self._specs)
        return [r for r in found if r is not None]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def call_with_auth_refresh(
    settings: Settings, action: Callable[[], T], is_auth_error: Callable[[Exception], bool]
) -> T:
    """Run `action`; on an auth failure re-open ESC once and retry (key rotation without restart)."""
    try:
        return action()
    except Exception as exc:
        if not is_auth_error(exc) or not settings.refresh_esc():
            raise
        log.info("Credentials were rejected; re-opened Pulumi ESC and retrying once.")
        return action()
