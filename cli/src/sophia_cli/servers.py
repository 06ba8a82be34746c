"""The suite's servers as the `sophia` command knows them."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from sophia_shared.errors import InputError


@dataclass(frozen=True)
class ServerEntry:
    key: str  # "business-intelligence"
    mcp_name: str  # "sophia-business-intelligence"
    module: str  # "sophia_business_intelligence.server"
    aliases: tuple[str, ...]
    summary: str

    @property
    def script(self) -> str:
        return self.mcp_name

    def command(self) -> list[str]:
        """How to start it over stdio with this interpreter."""
        return [sys.executable, "-m", self.module]


SERVERS: tuple[ServerEntry, ...] = (
    ServerEntry(
        "business-intelligence",
        "sophia-business-intelligence",
        "sophia_business_intelligence.server",
        ("bi",),
        "SQL over Snowflake or the embedded DuckDB warehouse",
    ),
    ServerEntry(
        "ai-intelligence",
        "sophia-ai-intelligence",
        "sophia_ai_intelligence.server",
        ("ai",),
        "LLM calls through Portkey (tools arrive in a later release)",
    ),
    ServerEntry(
        "data-intelligence",
        "sophia-data-intelligence",
        "sophia_data_intelligence.server",
        ("data",),
        "web search, extraction, scraping (tools arrive in a later release)",
    ),
    ServerEntry(
        "infrastructure",
        "sophia-infrastructure",
        "sophia_infrastructure.server",
        ("infra",),
        "Lambda Cloud GPUs and Pulumi stacks (tools arrive in a later release)",
    ),
)


def find_server(name: str) -> ServerEntry:
    wanted = name.strip().lower().replace("_", "-")
    for entry in SERVERS:
        if wanted in (entry.key, entry.mcp_name, *entry.aliases):
            return entry
    names = ", ".join(f"{e.key} ({'/'.join(e.aliases)})" for e in SERVERS)
    raise InputError(f"There is no server called '{name}'.", hint=f"Use one of: {names}.")


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The full environment for a spawned server: settings travel through it."""
    env = dict(os.environ)
    env.update(extra or {})
    return env
