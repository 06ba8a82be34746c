"""`sophia inspect NAME`: the MCP Inspector (web UI, or its CLI) against one server, with its settings.

The Inspector starts the server with a minimal environment (HOME, PATH, USER and the like), so the
server's settings are handed over explicitly: declared non-secret ones as `-e NAME=VALUE`; secrets,
undeclared vendor variables (APIFY_PAT: any of them may be a key) and any value whose URL holds
credentials through a temporary `.env` file (mode 0600, removed when the Inspector exits) named by
`SOPHIA_DOTENV`, so no secret value is ever on a command line (where `ps` shows it) or printed.
The user's own `.env` is copied into that file first; an exported secret comes after it and wins,
as it would in the environment.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sophia_shared.errors import InputError
from sophia_shared.redaction import holds_url_credentials
from sophia_shared.setting_specs import CORE_SETTINGS, is_secret_name

from .servers import ServerEntry, find_server, workspace_root

INSPECTOR_PACKAGE = "@modelcontextprotocol/inspector"
# Not settings, but where the server finds its files when no setting says (data dir, ESC file).
_LOCATION_VARIABLES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME")


def find_inspector(root: Path | None = None) -> Path:
    """The Inspector installed by `npm install` in the checkout, else one on PATH."""
    local = (root or workspace_root()) / "node_modules" / ".bin" / "mcp-inspector"
    if local.exists():
        return local
    found = shutil.which("mcp-inspector")
    if found:
        return Path(found)
    raise InputError(
        "The MCP Inspector is not installed.",
        hint=f"Run `npm install --no-package-lock` in {root or workspace_root()} (it installs {INSPECTOR_PACKAGE} "
        "from package.json); Node 20 or newer is needed.",
    )


@dataclass(frozen=True)
class ServerEnvironment:
    plain: dict[str, str]  # declared, non-secret, no credentials: passed as -e NAME=VALUE
    secrets: dict[str, str]  # everything else: written to the temporary .env file, never on a command line


def server_environment(entry: ServerEntry, environ: dict[str, str]) -> ServerEnvironment:
    """What of `environ` the server reads: core and server settings, its vendors' variables, file locations."""
    declared = {s.name: s for s in (*CORE_SETTINGS, *entry.spec.all_settings())}
    prefixes = tuple(entry.spec.env_prefixes)
    plain: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for name, value in environ.items():
        if not value or not (name in declared or name.startswith(prefixes) or name in _LOCATION_VARIABLES):
            continue
        if name == "SOPHIA_DOTENV":
            continue  # replaced by the temporary file, which carries its content
        undeclared_vendor = name not in declared and name not in _LOCATION_VARIABLES
        if undeclared_vendor or is_secret_name(name, declared.get(name)) or holds_url_credentials(value):
            secrets[name] = value
        else:
            plain[name] = value
    return ServerEnvironment(plain, secrets)


def inspector_command(
    inspector: Path,
    entry: ServerEntry,
    plain: dict[str, str],
    *,
    cli: bool,
    cwd: Path,
    extra: list[str],
) -> list[str]:
    command = [str(inspector), "--cli" if cli else "--web"]
    for name, value in plain.items():
        command += ["-e", f"{name}={value}"]
    command += ["--cwd", str(cwd), sys.executable, "-m", entry.module, *extra]
    return command


def _dotenv_line(name: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"\n'


@contextmanager
def secrets_file(secrets: dict[str, str], user_dotenv: Path | None) -> Iterator[Path]:
    """A private temporary .env: the user's .env, then the exported secrets; removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="sophia-inspect-", suffix=".env")
    path = Path(name)
    try:
        os.chmod(path, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if user_dotenv is not None and user_dotenv.is_file():
                text = user_dotenv.read_text(encoding="utf-8-sig")
                handle.write(text if text.endswith("\n") or not text else text + "\n")
            for key, value in secrets.items():
                handle.write(_dotenv_line(key, value))
        yield path
    finally:
        path.unlink(missing_ok=True)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "inspect",
        help="open the MCP Inspector on one server, with that server's settings",
        description=(
            "Launch the MCP Inspector (web UI by default, --cli for its command line) against a server run "
            "from this checkout. Settings reach the server explicitly (the Inspector gives it a minimal "
            "environment): plain ones with -e, secrets through a private temporary .env file. With --cli, "
            "--method/--tool-name/--tool-arg call the server once, e.g. `sophia inspect bi --cli --method tools/list`."
        ),
    )
    p.add_argument("server", help="the server: its name, CLI name or alias (bi, ai, data, infra)")
    p.add_argument("--cli", action="store_true", help="the Inspector's command line instead of its web UI")
    p.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the command line and the variables passed (secrets by name only); start nothing",
    )
    p.add_argument("--method", help="with --cli: the MCP method to call, e.g. tools/list or tools/call")
    p.add_argument("--tool-name", help="with --method tools/call: the tool")
    p.add_argument(
        "--tool-arg", action="append", default=[], metavar="KEY=VALUE", help="with tools/call: an argument (repeat)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    entry = find_server(args.server)
    if (args.method or args.tool_name or args.tool_arg) and not args.cli:
        raise InputError(
            "--method, --tool-name and --tool-arg drive the Inspector's command line.",
            hint="Add --cli, e.g. `sophia inspect bi --cli --method tools/list`.",
        )
    extra = _cli_arguments(args.method, args.tool_name, args.tool_arg)
    environ = dict(os.environ)
    env = server_environment(entry, environ)
    cwd = Path.cwd()
    user_dotenv = Path(environ.get("SOPHIA_DOTENV") or cwd / ".env").expanduser()
    if args.print_only:
        inspector = find_inspector_or_name()
        plain = {**env.plain, "SOPHIA_DOTENV": "<temporary .env: your .env plus the secrets below>"}
        print(shlex.join(inspector_command(inspector, entry, plain, cli=args.cli, cwd=cwd, extra=extra)))
        if env.secrets:
            print(
                "secrets and vendor variables, through the temporary .env file (values not shown): "
                f"{', '.join(sorted(env.secrets))}"
            )
        print(
            f"the server's own .env, copied into it first: {user_dotenv}{'' if user_dotenv.is_file() else ' (absent)'}"
        )
        return 0
    inspector = find_inspector()
    with secrets_file(env.secrets, user_dotenv) as dotenv:
        plain = {**env.plain, "SOPHIA_DOTENV": str(dotenv)}
        command = inspector_command(inspector, entry, plain, cli=args.cli, cwd=cwd, extra=extra)
        if not args.cli:
            print(f"Starting the MCP Inspector on {entry.mcp_name}; Ctrl-C stops it.", file=sys.stderr)
        try:
            return subprocess.run(command, check=False).returncode
        except KeyboardInterrupt:
            return 130


def _cli_arguments(method: str | None, tool: str | None, tool_args: list[str]) -> list[str]:
    extra = ["--method", method] if method else []
    if tool:
        extra += ["--tool-name", tool]
    for pair in tool_args:
        if "=" not in pair:
            raise InputError(f"--tool-arg {pair!r} is not KEY=VALUE.", hint="e.g. --tool-arg schema=CRM")
        extra += ["--tool-arg", pair]
    return extra


def find_inspector_or_name() -> Path:
    """For --print: the Inspector's path when installed, else its command name (nothing is started)."""
    try:
        return find_inspector()
    except InputError:
        return Path("mcp-inspector")
