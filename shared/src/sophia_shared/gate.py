"""The gates: which tools a server exposes.

Two kinds, both read from local sources only (environment, local ESC-format file, `.env`) because tools
are listed before any remote call may be made:

- the write gate (`SOPHIA_<SERVER>_ALLOW_WRITE`): write tools are registered only when it is on, and
  clients call `require_write` again before any vendor write;
- the allow-lists (`SOPHIA_<SERVER>_TOOLS`, `SOPHIA_<SERVER>_TOOLS_EXCLUDE`): which tools to offer at all,
  so a user keeps the suite under a client's tool cap. A name that matches no tool, a list that
  leaves nothing, or one that leaves only write tools whose gate is off (`ServerSpec.check_startup`)
  is a configuration error at startup, never a silently smaller or empty server.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .errors import ConfigError, PolicyError


class LocalFlags(Protocol):
    def flag_local(self, name: str) -> bool: ...


class LocalSettings(LocalFlags, Protocol):
    def get_local(self, name: str, default: str | None = None) -> str | None: ...


def write_gate_variable(server_key: str) -> str:
    """`business_intelligence` → `SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE`."""
    return f"SOPHIA_{server_key.upper()}_ALLOW_WRITE"


def writes_allowed(settings: LocalFlags, server_key: str) -> bool:
    """The gate, read from local sources only (environment, local ESC file, `.env`), as registration reads it."""
    return settings.flag_local(write_gate_variable(server_key))


def require_write(settings: LocalFlags, server_key: str, action: str) -> None:
    """The second gate: a client calls this before any vendor write, so a tool that forgets cannot bypass it."""
    if not writes_allowed(settings, server_key):
        variable = write_gate_variable(server_key)
        raise PolicyError(
            f"Refused to {action}: writes are disabled for this server ({variable} is not set to 1).",
            hint=f"Set {variable}=1 in the environment, the local ESC file or .env, then restart the server.",
        )


def tools_variable(server_key: str) -> str:
    """`business_intelligence` → `SOPHIA_BUSINESS_INTELLIGENCE_TOOLS`: the tools to offer (all when unset)."""
    return f"SOPHIA_{server_key.upper()}_TOOLS"


def tools_exclude_variable(server_key: str) -> str:
    """`business_intelligence` → `SOPHIA_BUSINESS_INTELLIGENCE_TOOLS_EXCLUDE`: tools not to offer."""
    return f"SOPHIA_{server_key.upper()}_TOOLS_EXCLUDE"


@dataclass(frozen=True)
class ToolSelection:
    """Which of a server's tools its allow-lists keep; `left_out` says why each other one is not offered."""

    kept: frozenset[str] | None  # None: no allow-list is set, every tool is kept
    left_out: dict[str, str] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return self.kept is None or name in self.kept


_SEPARATORS = re.compile(r"[\s,;]+")


def _entries(raw: str | None) -> list[str]:
    return [e.lower() for e in _SEPARATORS.split(raw or "") if e]


def _matches(entry: str, names: Sequence[str]) -> list[str]:
    """The tool names an entry selects: itself, or what a `*`/`?` pattern matches (`web_*`)."""
    if any(c in entry for c in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n, entry)]
    return [entry] if entry in names else []


def select_tools(
    settings: LocalSettings,
    server_key: str,
    names: Iterable[str],
    *,
    server: str,
    aliases: Iterable[str] = (),
) -> ToolSelection:
    """The tools a server offers under its allow-lists, or a ConfigError naming the server's tools.

    `SOPHIA_<SERVER>_TOOLS` keeps only the tools it names (all when unset or empty), then
    `SOPHIA_<SERVER>_TOOLS_EXCLUDE` removes the ones it names. Entries are separated by commas or
    spaces, case-insensitive, and may be patterns (`web_*`). Write gates apply on top.
    """
    known = tuple(names)
    allow_variable, exclude_variable = tools_variable(server_key), tools_exclude_variable(server_key)
    for alias in aliases:
        for variable, canonical in (
            (tools_variable(alias), allow_variable),
            (tools_exclude_variable(alias), exclude_variable),
        ):
            if variable != canonical and settings.get_local(variable):
                raise ConfigError(
                    f"{server}: {variable} is set, but this server reads {canonical}.",
                    hint=f"Rename {variable} to {canonical} (allow-lists use the server's full name).",
                )
    allowed, excluded = (_entries(settings.get_local(v)) for v in (allow_variable, exclude_variable))
    if not allowed and not excluded:
        return ToolSelection(None)
    listing = ", ".join(known)
    for variable, entries in ((allow_variable, allowed), (exclude_variable, excluded)):
        unknown = [e for e in entries if not _matches(e, known)]
        if unknown:
            raise ConfigError(
                f"{server}: {variable} names {', '.join(repr(u) for u in unknown)}, which "
                f"{'is not a tool' if len(unknown) == 1 else 'are not tools'} of this server. Its tools: {listing}.",
                hint=f"Fix {variable} (comma-separated tool names or patterns like web_*) and restart the server.",
            )
    kept = {n for e in allowed for n in _matches(e, known)} if allowed else set(known)
    dropped = {n for e in excluded for n in _matches(e, known)}
    if not kept - dropped:
        raise ConfigError(
            f"{server}: {allow_variable}={','.join(allowed) or '(unset)'} and "
            f"{exclude_variable}={','.join(excluded) or '(unset)'} leave no tool to offer. Its tools: {listing}.",
            hint="Keep at least one tool, or unset both variables to offer all of them.",
        )
    left_out: dict[str, str] = {}
    for name in known:
        if name in dropped:
            left_out[name] = (
                f"{name} is turned off on this server by {exclude_variable}; "
                "remove it there and restart the server to use it."
            )
        elif name not in kept:
            left_out[name] = (
                f"{name} is turned off on this server: {allow_variable} does not list it. "
                "Add it there and restart the server to use it."
            )
    return ToolSelection(frozenset(kept - dropped), left_out)
