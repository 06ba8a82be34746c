"""The suite's servers, found through the `sophia.servers` entry-point group.

Each server package declares `[project.entry-points."sophia.servers"] <cli-name> = "<module>:SPEC"`.
The CLI, `doctor`, `config`, the schema test and the test fixtures iterate this registry, so adding a
server or a setting edits only that server's package.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from .setting_specs import CORE_SETTINGS, SettingSpec

GROUP = "sophia.servers"


@dataclass(frozen=True)
class RegisteredServer:
    spec: Any  # ServerSpec; typed loosely so this module does not import the MCP SDK
    module: str  # "sophia_business_intelligence.server": runnable with `python -m`


@functools.cache
def registered_servers() -> tuple[RegisteredServer, ...]:
    """Every installed server, in a stable order (by CLI name)."""
    found = [RegisteredServer(ep.load(), ep.module) for ep in entry_points(group=GROUP)]
    return tuple(sorted(found, key=lambda s: _order(s.spec.key)))


def _order(key: str) -> tuple[int, str]:
    # The BI server first: it is the one with an embedded default for everything.
    return (0 if key == "business_intelligence" else 1, key)


def all_setting_specs() -> tuple[SettingSpec, ...]:
    """Core settings plus every registered server's, each once."""
    seen: dict[str, SettingSpec] = {s.name: s for s in CORE_SETTINGS}
    for server in registered_servers():
        for spec in server.spec.all_settings():
            seen.setdefault(spec.name, spec)
    return tuple(seen.values())


def all_env_prefixes() -> tuple[str, ...]:
    return tuple(p for server in registered_servers() for p in server.spec.env_prefixes)
