"""Where Sophia keeps its files on the user's machine."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir(environ: dict[str, str] | None = None) -> Path:
    """The user's Sophia data directory (`SOPHIA_DATA_DIR`, else `$XDG_DATA_HOME/sophia`)."""
    env = os.environ if environ is None else environ
    if env.get("SOPHIA_DATA_DIR"):
        return Path(env["SOPHIA_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "sophia"


def config_dir(environ: dict[str, str] | None = None) -> Path:
    """The user's Sophia config directory (`$XDG_CONFIG_HOME/sophia`)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "sophia"
