"""Settings with source tracking: environment → Pulumi ESC → local ESC-format file → `.env`.

Nothing is read until a value is asked for, so servers answer `initialize` before any network call;
what must be known before then (the write gate) is read with `get_local`/`flag_local`, which never
open remote ESC.
Every secret value that resolves is registered with the redactor.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import ConfigError, missing_setting
from .esc_file import read_esc_file
from .esc_remote import open_esc_environment
from .paths import config_dir
from .redaction import mask, mask_url, register_secret, register_url_secrets
from .setting_specs import CORE_SETTINGS, SettingSpec, is_secret_name
from .sources import EscOpener, SourceValues, read_dotenv

# SourceValues and EscOpener live in `sources`; they are re-exported for code that injects an opener.
__all__ = ["BOOTSTRAP", "EscOpener", "Resolved", "Settings", "SourceValues", "call_with_auth_refresh"]

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
        """The value as `sophia doctor` shows it: masked when secret; a URL's credentials masked otherwise."""
        return mask(self.value) if self.secret else mask_url(self.value)


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
        self._esc_groups = tuple(sorted({s.group for s in self._specs.values() if s.group != "core"}))
        self._esc_opener = esc_opener or self._open_esc
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
        return self._esc_groups

    def is_secret(self, name: str) -> bool:
        return is_secret_name(name, self._specs.get(name))

    def _bootstrap_secrets(self) -> None:
        for name, value in self._environ.items():
            if self.is_secret(name):
                register_secret(value)
            else:
                register_url_secrets(value)  # https://user:password@host in a non-secret URL setting

    def _bootstrap(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value:
            return value
        return self._dotenv_source().values.get(name) or None

    @property
    def dotenv_path(self) -> Path:
        """The `.env` file settings are read from (SOPHIA_DOTENV, else ./.env), absolute; it may not exist."""
        explicit = self._environ.get("SOPHIA_DOTENV")
        return (self._cwd / (Path(explicit).expanduser() if explicit else Path(".env"))).resolve()

    def _dotenv_source(self) -> SourceValues:
        if self._dotenv is None:
            source = read_dotenv(self.dotenv_path)
            self._register_source(source)
            self._dotenv = source
        return self._dotenv

    def esc_file_path(self) -> Path:
        explicit = self._bootstrap("SOPHIA_ESC_FILE")
        return Path(explicit).expanduser() if explicit else config_dir(self._environ) / "esc.yaml"

    def _file_source(self) -> SourceValues:
        if self._file is None:
            path = self.esc_file_path()
            source = SourceValues("file", {})
            if path.is_file():
                try:
                    source = read_esc_file(path, groups=self._esc_groups)
                except ConfigError as exc:
                    log.warning("%s", exc.agent_message())
            self._register_source(source)
            self._file = source
        return self._file

    @property
    def esc_ref(self) -> str | None:
        return self._bootstrap("SOPHIA_ESC_ENV")

    def _open_esc(self, ref: str, token: str, backend_url: str | None) -> SourceValues:
        return open_esc_environment(ref, token=token, backend_url=backend_url, groups=self._esc_groups)

    def _esc_source(self) -> SourceValues | None:
        """The ESC source when SOPHIA_ESC_ENV is set (empty, with `esc_error`, if it cannot be opened)."""
        ref = self.esc_ref
        if not ref:
            return None
        with self._lock:
            if self._esc is not None and time.time() < self._esc.expires_at:
                return self._esc
            token = self._bootstrap("PULUMI_ACCESS_TOKEN")
            try:
                if not token:
                    # Skipping ESC here would quietly answer from local settings meant to be overridden.
                    raise _token_missing(ref)
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
            else:
                register_url_secrets(value)

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

    def get_int(self, name: str, *, minimum: int | None = None) -> int:
        """`name` as a whole number (its declared default applies); ConfigError says where a bad value came from."""
        accepted = _accepted("a whole number", minimum)
        found = self._require_number(name, accepted)
        text = found.value.strip()
        if _WHOLE_NUMBER.fullmatch(text):
            value = int(text)
            if minimum is None or value >= minimum:
                return value
        raise self._bad_number(found, accepted)

    def get_float(self, name: str, *, minimum: float | None = None) -> float:
        """`name` as a finite number (its declared default applies); ConfigError says where a bad value came from."""
        accepted = _accepted("a number", minimum)
        found = self._require_number(name, accepted)
        try:
            value = float(found.value.strip())
        except ValueError:
            value = math.nan
        if math.isfinite(value) and (minimum is None or value >= minimum):
            return value
        raise self._bad_number(found, accepted)

    def _require_number(self, name: str, accepted: str) -> Resolved:
        found = self.resolve(name)
        if found is None:
            raise ConfigError(f"{name} is not set and has no default.", hint=f"Set {name} to {accepted}.")
        return found

    def _bad_number(self, found: Resolved, accepted: str) -> ConfigError:
        where = self.describe_source(found.source)
        shown = "a hidden value" if found.secret else repr(found.value)
        return ConfigError(
            f"{found.name} is {shown} (from {where}), which is not {accepted}.",
            hint=f"Set {found.name} to {accepted} in {where}.",
        )

    def describe_source(self, source: str) -> str:
        """A source label (`Resolved.source`) as a place a person can go and edit."""
        if source == "env":
            return "the process environment"
        if source == "file":
            return f"the local ESC file {self.esc_file_path()}"
        if source == "dotenv":
            return f"the .env file {self.dotenv_path}"
        if source == "default":
            return "its declared default"
        return f"Pulumi ESC environment {source.removeprefix('esc:')}"

    def refresh_esc(self) -> bool:
        """Re-open the ESC environment (after a vendor 401/403); True only if ESC is in use and re-opened."""
        with self._lock:
            self._esc = None
            # A failed open is cached as an empty source with `esc_error` set: nothing new to retry with.
            return self._esc_source() is not None and self._esc_error is None

    @property
    def esc_error(self) -> str | None:
        """Why the last attempt to open ESC failed; None after a successful open or before any attempt."""
        return self._esc_error

    def esc_problem(self) -> str | None:
        """Why the configured ESC environment cannot be used (opening it if need be); None if fine or not configured."""
        if self._esc_source() is None:
            return None
        return self._esc_error

    def esc_value_count(self) -> int:
        """How many values the ESC environment supplied (opening it if needed); 0 when not in use."""
        source = self._esc_source()
        return len(source.values) if source is not None else 0

    def all_resolved(self) -> list[Resolved]:
        """Every declared setting that has a value, for `sophia doctor`."""
        found = (self.resolve(name) for name in self._specs)
        return [r for r in found if r is not None]


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,18}")


def _accepted(form: str, minimum: float | None) -> str:
    if minimum is None:
        return form
    return f"{form} of at least {minimum:g}" if isinstance(minimum, float) else f"{form} of at least {minimum}"


def _token_missing(ref: str) -> ConfigError:
    return ConfigError(
        f"PULUMI_ACCESS_TOKEN is not set, so Pulumi ESC environment {ref} (SOPHIA_ESC_ENV) cannot be opened.",
        hint=(
            "Set PULUMI_ACCESS_TOKEN (in the environment or .env) to a Pulumi access token that may open "
            f"{ref}, or unset SOPHIA_ESC_ENV to use local settings only. An MCP client started from a "
            "desktop launcher may not see your shell's exports."
        ),
    )


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
