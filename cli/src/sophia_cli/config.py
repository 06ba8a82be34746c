"""`sophia config cursor|claude`: MCP client configuration, printed or installed into the client's file.

Secrets are never inlined: servers read them from Pulumi ESC, the local ESC file or .env. For
Cursor the ESC bootstrap token is referenced as `${env:PULUMI_ACCESS_TOKEN}`; Claude Desktop has no
interpolation, so it gets the path of the .env file that holds the token instead. Non-secret
settings the user exported (the data location, a write gate) are carried over, paths made absolute,
because a client launches servers with an environment of its own; a URL holding credentials
(`https://user:pw@host`, `?api_key=`) is not, and a note on stderr says to keep it in the .env file.

The docker variant launches each server as `docker run -i --rm … sophia/<server>:latest`: settings
travel as `-e NAME` (the value comes from the `env` block, i.e. from the client), secrets as
`${env:NAME}` references (Cursor) or through `--env-file` (Claude Desktop); host paths do not mean
anything inside a container, so only the data directory goes in, as a volume of the BI image.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from sophia_shared.redaction import holds_url_credentials
from sophia_shared.setting_specs import CORE_SETTINGS, SettingSpec

from .servers import ServerEntry, all_servers, workspace_root

CLIENTS = ("cursor", "claude")
# Core settings worth carrying into a client's config when exported (the rest locate secrets or logs).
_CARRIED_CORE = ("SOPHIA_ESC_ENV", "SOPHIA_ESC_FILE", "SOPHIA_DATA_DIR", "PULUMI_BACKEND_URL")
_PATH_SUFFIXES = ("_PATH", "_DIR", "_FILE")
ESC_TOKEN = "PULUMI_ACCESS_TOKEN"  # noqa: S105 - a variable's name

# The docker images (docker/): one per server, data directory as a volume in the BI image.
IMAGE_PREFIX = "sophia/"
IMAGE_TAG = "latest"
CONTAINER_DATA_DIR = "/data"
DATA_VOLUME = "sophia-data"  # a named volume when the user has not chosen a host directory
_DATA_SERVERS = ("business_intelligence",)


def image_name(entry: ServerEntry) -> str:
    return f"{IMAGE_PREFIX}{entry.key}:{IMAGE_TAG}"


def carried_environment(entry: ServerEntry, environ: dict[str, str]) -> dict[str, str]:
    """Exported, non-secret settings of this server (and the core) to write into its client config."""
    core = [s for s in CORE_SETTINGS if s.name in _CARRIED_CORE]
    specs: list[SettingSpec] = [*core, *entry.spec.all_settings()]
    carried: dict[str, str] = {}
    for spec in specs:
        value = environ.get(spec.name, "")
        if not value or spec.secret or holds_url_credentials(value):
            continue
        if _is_host_path(spec.name, value):
            value = str(Path(value).expanduser().resolve())
        carried[spec.name] = value
    return carried


def withheld_settings(environ: dict[str, str]) -> list[str]:
    """Exported non-secret settings left out of the client config because their URL holds credentials."""
    names = {s.name for s in CORE_SETTINGS if s.name in _CARRIED_CORE}
    names |= {s.name for entry in all_servers() for s in entry.spec.all_settings() if not s.secret}
    return sorted(n for n in names if holds_url_credentials(environ.get(n, "")))


def dotenv_problems(path: Path) -> tuple[list[str], list[str]]:
    """Names of the .env's quoted values and `export` lines: docker's --env-file keeps quotes as part of
    the value and refuses `export NAME=`, where python-dotenv (the servers) accepts both."""
    quoted: list[str] = []
    exported: list[str] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return quoted, exported
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            exported.append(line[len("export") :].strip().partition("=")[0].strip())
            continue
        name, sep, value = line.partition("=")
        if sep and value.strip()[:1] in ('"', "'"):
            quoted.append(name.strip())
    return quoted, exported


def _is_host_path(name: str, value: str) -> bool:
    return (name.endswith(_PATH_SUFFIXES) and "://" not in value) or value.startswith("file://")


def dotenv_path(environ: dict[str, str]) -> Path:
    return Path(environ.get("SOPHIA_DOTENV") or workspace_root() / ".env").expanduser().resolve()


def client_config(
    client: str,
    *,
    use_uv: bool = False,
    include_empty: bool = False,
    docker: bool = False,
    environ: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`{"mcpServers": {...}}` for `client` ("cursor" or "claude"), launching by venv script, uv or docker."""
    if client not in CLIENTS:
        raise ValueError(f"unknown client {client!r}: use one of {', '.join(CLIENTS)}")
    environ = dict(os.environ if environ is None else environ)
    servers: dict[str, Any] = {}
    for entry in all_servers():
        if not entry.spec.tools and not include_empty:
            continue
        server = _docker_server(client, entry, environ) if docker else _local_server(client, entry, environ, use_uv)
        if client == "cursor":
            server = {"type": "stdio", **server}
        servers[entry.mcp_name] = server
    return {"mcpServers": servers}


def _local_server(client: str, entry: ServerEntry, environ: dict[str, str], use_uv: bool) -> dict[str, Any]:
    root = workspace_root()
    script = Path(sys.executable).parent / entry.script
    if use_uv or not script.exists():
        command, args = shutil.which("uv") or "uv", ["run", "--frozen", "--directory", str(root), entry.script]
    else:
        command, args = str(script), []
    env = carried_environment(entry, environ)
    env["SOPHIA_DOTENV"] = str(dotenv_path(environ))
    if client == "cursor":
        env[ESC_TOKEN] = "${env:" + ESC_TOKEN + "}"
    return {"command": command, "args": args, "env": env}


def docker_secret_names(entry: ServerEntry, environ: dict[str, str]) -> list[str]:
    """Secrets passed through by reference: the ESC token always, the server's own when exported now."""
    exported = [s.name for s in entry.spec.all_settings() if s.secret and environ.get(s.name)]
    return [ESC_TOKEN, *(name for name in exported if name != ESC_TOKEN)]


def _docker_server(client: str, entry: ServerEntry, environ: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in carried_environment(entry, environ).items() if not _is_host_path(k, v)}
    args = ["run", "-i", "--rm"]
    if entry.spec.key in _DATA_SERVERS:
        host_dir = environ.get("SOPHIA_DATA_DIR")
        source = str(Path(host_dir).expanduser().resolve()) if host_dir else DATA_VOLUME
        args += ["-v", f"{source}:{CONTAINER_DATA_DIR}"]
    dotenv = dotenv_path(environ)
    if client == "claude":
        # No interpolation in Claude Desktop: docker reads the secrets from the .env file itself.
        args += ["--env-file", str(dotenv)]
    else:
        if dotenv.is_file():
            args += ["--env-file", str(dotenv)]
        for name in docker_secret_names(entry, environ):
            env[name] = "${env:" + name + "}"
    for name in env:
        args += ["-e", name]
    args.append(image_name(entry))
    return {"command": "docker", "args": args, "env": env}


def config_notes(environ: dict[str, str] | None = None) -> list[str]:
    """What any user should know about settings left out of the printed config (for stderr, names only)."""
    environ = dict(os.environ if environ is None else environ)
    withheld = withheld_settings(environ)
    if not withheld:
        return []
    return [
        f"Not written into the config, because the URL holds credentials: {', '.join(withheld)}. "
        f"Put it in {dotenv_path(environ)} (the servers and docker --env-file read it from there)."
    ]


def docker_notes(client: str, environ: dict[str, str] | None = None) -> list[str]:
    """What a user of the docker variant should know about their current settings (for stderr)."""
    environ = dict(os.environ if environ is None else environ)
    notes: list[str] = []
    dropped = sorted(
        {
            name
            for entry in all_servers()
            for name, value in carried_environment(entry, environ).items()
            if _is_host_path(name, value) and name != "SOPHIA_DATA_DIR"
        }
    )
    if dropped:
        notes.append(
            f"Not carried into the containers (host paths mean nothing there): {', '.join(dropped)}. "
            f"The BI server keeps its data in {CONTAINER_DATA_DIR}, mounted from SOPHIA_DATA_DIR or the "
            f"'{DATA_VOLUME}' volume."
        )
    dotenv = dotenv_path(environ)
    if client == "claude" and not dotenv.is_file():
        notes.append(
            f"docker refuses a missing --env-file: create {dotenv} (it holds "
            f"{ESC_TOKEN} and any API keys; it may be empty) or set SOPHIA_DOTENV to yours."
        )
    quoted, exported = dotenv_problems(dotenv) if dotenv.is_file() else ([], [])
    if quoted:
        notes.append(
            f"{dotenv} has quoted values ({', '.join(quoted)}): docker --env-file keeps the quotes as part of "
            "the value. Write KEY=value, no quotes."
        )
    if exported:
        notes.append(
            f"{dotenv} has `export` lines ({', '.join(exported)}): docker --env-file refuses them. "
            "Write KEY=value, no export."
        )
    return notes


def register(sub: Any) -> None:
    """`sophia config cursor|claude [--uv|--docker] [--install [--scope user|project] [--dry-run]]`."""
    p: argparse.ArgumentParser = sub.add_parser(
        "config",
        help="print a ready-to-paste MCP client config, or install it into the client's config file",
        description=(
            "Print the Cursor or Claude Desktop configuration of the suite's servers, or merge it into the "
            "client's own config file with --install (other servers untouched, a backup written). Secrets are "
            "referenced, never written."
        ),
    )
    p.add_argument("client", choices=CLIENTS)
    launch = p.add_mutually_exclusive_group()
    launch.add_argument("--uv", action="store_true", help="launch through `uv run` instead of the venv scripts")
    launch.add_argument(
        "--docker", action="store_true", help="launch each server with `docker run -i --rm sophia/<server>`"
    )
    p.add_argument("--all", action="store_true", help="include servers that have no tools yet")
    p.add_argument("--install", action="store_true", help="merge into the client's config file")
    p.add_argument(
        "--scope",
        choices=("user", "project"),
        default=None,
        help="Cursor only: ~/.cursor/mcp.json (user, default) or ./.cursor/mcp.json (project)",
    )
    p.add_argument("--dry-run", action="store_true", help="with --install: show the change as a diff, write nothing")
    p.add_argument("--config-path", type=Path, default=None, help="with --install: the file to write instead")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from sophia_shared.errors import InputError

    if not args.install and (args.dry_run or args.scope or args.config_path):
        raise InputError(
            "--dry-run, --scope and --config-path only apply to --install.",
            hint=f"Run `sophia config {args.client} --install --dry-run` to see what would change.",
        )
    config = client_config(args.client, use_uv=args.uv, include_empty=args.all, docker=args.docker)
    for note in [*config_notes(), *(docker_notes(args.client) if args.docker else [])]:
        print(f"note: {note}", file=sys.stderr)
    if not args.install:
        print(json.dumps(config, indent=2))
        return 0
    from .install import install, target_path

    path = args.config_path or target_path(args.client, scope=args.scope)
    outcome = install(path, config, dry_run=args.dry_run)
    print(outcome.report())
    return 0
