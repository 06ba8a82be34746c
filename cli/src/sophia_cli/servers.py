"""The suite's servers as the `sophia` command knows them: whatever the registry lists."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sophia_shared.errors import InputError
from sophia_shared.registry import registered_servers


@dataclass(frozen=True)
class ServerEntry:
    spec: Any  # the server's ServerSpec
    module: str  # "sophia_business_intelligence.server"

    @property
    def key(self) -> str:
        """`business-intelligence`: the CLI name."""
        return str(self.spec.cli_name)

    @property
    def mcp_name(self) -> str:
        return str(self.spec.name)

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(self.spec.aliases)

    @property
    def summary(self) -> str:
        return str(self.spec.summary)

    @property
    def script(self) -> str:
        """The console script each server package installs under its MCP name."""
        return self.mcp_name

    def command(self) -> list[str]:
        """How to start it over stdio with this interpreter."""
        return [sys.executable, "-m", self.module]


def all_servers() -> tuple[ServerEntry, ...]:
    return tuple(ServerEntry(s.spec, s.module) for s in registered_servers())


def find_server(name: str) -> ServerEntry:
    wanted = name.strip().lower().replace("_", "-")
    servers = all_servers()
    for entry in servers:
        if wanted in (entry.key, entry.mcp_name, *entry.aliases):
            return entry
    names = ", ".join(f"{e.key} ({'/'.join(e.aliases)})" for e in servers)
    raise InputError(f"There is no server called '{name}'.", hint=f"Use one of: {names}.")


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The full environment for a spawned server: settings travel through it."""
    env = dict(os.environ)
    env.update(extra or {})
    return env


def workspace_root() -> Path:
    """The checkout this command runs from (the folder holding uv.lock), else the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "uv.lock").exists():
            return parent
    return Path.cwd()
