"""`sophia config cursor|claude`: ready-to-paste MCP client configuration.

Secrets are never inlined: servers read them from Pulumi ESC, the local ESC file or .env. For
Cursor the ESC bootstrap token is referenced as `${env:PULUMI_ACCESS_TOKEN}`; Claude Desktop has no
interpolation, so it gets the path of the .env file that holds the token instead. Non-secret
settings the user exported (the data location, a write gate) are carried over, paths made absolute,
because a client launches servers with an environment of its own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from sophia_shared.setting_specs import CORE_SETTINGS, SettingSpec

from .servers import ServerEntry, all_servers

# Core settings worth carrying into a client's config when exported (the rest locate secrets or logs).
_CARRIED_CORE = ("SOPHIA_ESC_ENV", "SOPHIA_ESC_FILE", "SOPHIA_DATA_DIR", "PULUMI_BACKEND_URL")
_PATH_SUFFIXES = ("_PATH", "_DIR", "_FILE")


def _workspace_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "uv.lock").exists():
            return parent
    return Path.cwd()


def carried_environment(entry: ServerEntry, environ: dict[str, str]) -> dict[str, str]:
    """Exported, non-secret settings of this server (and the core) to write into its client config."""
    core = [s for s in CORE_SETTINGS if s.name in _CARRIED_CORE]
    specs: list[SettingSpec] = [*core, *entry.spec.all_settings()]
    carried: dict[str, str] = {}
    for spec in specs:
        value = environ.get(spec.name, "")
        if not value or spec.secret:
            continue
        if spec.name.endswith(_PATH_SUFFIXES) and "://" not in value:
            value = str(Path(value).expanduser().resolve())
        carried[spec.name] = value
    return carried


def client_config(client: str, *, use_uv: bool = False, include_empty: bool = False) -> dict[str, Any]:
    root = _workspace_root()
    bin_dir = Path(sys.executable).parent
    uv = shutil.which("uv") or "uv"
    environ = dict(os.environ)
    servers: dict[str, Any] = {}
    for entry in all_servers():
        if not entry.spec.tools and not include_empty:
            continue
        script = bin_dir / entry.script
        if use_uv or not script.exists():
            command, args = uv, ["run", "--frozen", "--directory", str(root), entry.script]
        else:
            command, args = str(script), []
        env = carried_environment(entry, environ)
        env["SOPHIA_DOTENV"] = str(Path(environ.get("SOPHIA_DOTENV") or root / ".env").expanduser().resolve())
        if client == "cursor":
            env["PULUMI_ACCESS_TOKEN"] = "${env:PULUMI_ACCESS_TOKEN}"  # noqa: S105 - a reference, not a value
        server: dict[str, Any] = {"command": command, "args": args, "env": env}
        if client == "cursor":
            server["type"] = "stdio"
        servers[entry.mcp_name] = server
    return {"mcpServers": servers}
