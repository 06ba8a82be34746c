"""`sophia config cursor|claude`: ready-to-paste MCP client configuration.

Secrets are never inlined: servers read them from Pulumi ESC, the local ESC file or .env. For
Cursor the ESC bootstrap token is referenced as `${env:PULUMI_ACCESS_TOKEN}`; Claude Desktop has no
interpolation, so it gets the path of the .env file that holds the token instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .servers import SERVERS


def _workspace_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "uv.lock").exists():
            return parent
    return Path.cwd()


def client_config(client: str, *, use_uv: bool = False) -> dict[str, Any]:
    root = _workspace_root()
    bin_dir = Path(sys.executable).parent
    uv = shutil.which("uv") or "uv"
    servers: dict[str, Any] = {}
    for entry in SERVERS:
        script = bin_dir / entry.script
        if use_uv or not script.exists():
            command, args = uv, ["run", "--frozen", "--directory", str(root), entry.script]
        else:
            command, args = str(script), []
        env: dict[str, str] = {}
        if os.environ.get("SOPHIA_ESC_ENV"):
            env["SOPHIA_ESC_ENV"] = os.environ["SOPHIA_ESC_ENV"]
        env["SOPHIA_DOTENV"] = str(Path(os.environ.get("SOPHIA_DOTENV") or root / ".env").resolve())
        if client == "cursor":
            env["PULUMI_ACCESS_TOKEN"] = "${env:PULUMI_ACCESS_TOKEN}"  # noqa: S105 - a reference, not a value
        server: dict[str, Any] = {"command": command, "args": args, "env": env}
        if client == "cursor":
            server["type"] = "stdio"
        servers[entry.mcp_name] = server
    return {"mcpServers": servers}
