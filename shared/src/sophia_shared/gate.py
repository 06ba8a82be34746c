"""The write gate: which variable opens a server's writes, and the second check clients make."""

from __future__ import annotations

from typing import Protocol

from .errors import PolicyError


class LocalFlags(Protocol):
    def flag_local(self, name: str) -> bool: ...


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
