"""`sophia bundle NAME`: an MCP Bundle (.mcpb) of one server, installable in Claude Desktop by double-click.

The bundle is the `uv` server type of the MCPB manifest (v0.4): Claude Desktop brings uv and
Python, and `uv run` installs the bundle's pyproject: the server's dependencies pinned exactly as
in this checkout's uv.lock, and the server and sophia-shared as wheels inside the bundle. Settings
become the install dialog's `user_config`: secrets marked sensitive (the client keeps them in the
OS keychain), write gates as switches, Pulumi ESC first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sophia_shared.errors import InputError
from sophia_shared.registry import GROUP
from sophia_shared.setting_specs import CORE_SETTINGS, SettingSpec

from .servers import ServerEntry, find_server, workspace_root

MANIFEST_VERSION = "0.4"
PYTHON = ">=3.11"
PLATFORMS = ("darwin", "win32", "linux")
SHARED_DISTRIBUTION = "sophia-shared"
ENTRY_POINT = "server/main.py"
# Core settings offered at install time: ESC (where the rest of the settings live) and the data dir.
_CORE_OFFERED = ("SOPHIA_ESC_ENV", "PULUMI_ACCESS_TOKEN", "SOPHIA_DATA_DIR")
# Endpoint overrides exist for tests and proxies, not for an install dialog.
_NOT_OFFERED = ("BASE_URL", "_HOST", "_PORT", "_PROTOCOL", "ENDPOINT")


def distribution_of(entry: ServerEntry) -> str:
    """The server's Python distribution ("sophia-business-intelligence") from its import package."""
    for point in entry_points(group=GROUP):
        if point.module == entry.module and point.dist is not None:
            return str(point.dist.name)
    raise InputError(f"{entry.mcp_name}'s package is not installed.", hint="Run `uv sync` in the checkout.")


def offered_settings(entry: ServerEntry) -> list[SettingSpec]:
    """The settings the install dialog asks for (all optional)."""
    core = [s for s in CORE_SETTINGS if s.name in _CORE_OFFERED]
    own = [
        s
        for s in entry.spec.all_settings()
        if s.secret or s.name.endswith("_ALLOW_WRITE") or (not s.default and not any(m in s.name for m in _NOT_OFFERED))
    ]
    return [*core, *own]


def user_config_key(name: str) -> str:
    return name.lower()


def _user_config_field(spec: SettingSpec) -> dict[str, Any]:
    field: dict[str, Any] = {"title": spec.name, "description": spec.description, "required": False}
    if spec.name.endswith("_ALLOW_WRITE"):
        field.update(type="boolean", default=False)
    elif spec.name.endswith("_DIR"):
        field["type"] = "directory"
    else:
        field["type"] = "string"
        if spec.secret:
            field["sensitive"] = True
    return field


def manifest(entry: ServerEntry, version: str) -> dict[str, Any]:
    offered = offered_settings(entry)
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": entry.mcp_name,
        "display_name": f"Sophia {entry.key.replace('-', ' ').title()}",
        "version": version,
        "description": entry.summary or entry.spec.instructions.split(".")[0],
        "long_description": entry.spec.instructions,
        "author": {"name": "Sophia MCP suite"},
        "license": "MIT",
        "keywords": ["sophia", "mcp", entry.key],
        "server": {
            "type": "uv",
            "entry_point": ENTRY_POINT,
            "mcp_config": {
                "command": "uv",
                "args": ["run", "--directory", "${__dirname}", "--no-dev", ENTRY_POINT],
                "env": {s.name: "${user_config." + user_config_key(s.name) + "}" for s in offered},
            },
        },
        "tools": [{"name": t.name, "description": _first_sentence(t.fn.__doc__ or "")} for t in entry.spec.tools],
        "tools_generated": False,
        "user_config": {user_config_key(s.name): _user_config_field(s) for s in offered},
        "compatibility": {"platforms": list(PLATFORMS), "runtimes": {"python": PYTHON}},
    }


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _uv() -> str:
    found = shutil.which("uv")
    if not found:
        raise InputError("uv is not on PATH; the bundle is built with it.", hint="Install it with `pip install uv`.")
    return found


def _run(command: list[str], root: Path) -> str:
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InputError(
            f"`{' '.join(command[1:3])} …` failed: {done.stderr.strip()[-800:]}",
            hint="Run `uv sync` in the checkout and try again.",
        )
    return done.stdout


def pinned_requirements(distribution: str, root: Path) -> list[str]:
    """The server's third-party dependencies exactly as uv.lock pins them (markers kept)."""
    out = _run(
        [
            _uv(),
            "export",
            "--frozen",
            "--package",
            distribution,
            "--no-dev",
            "--no-hashes",
            "--no-emit-workspace",
            "--no-header",
            "--no-annotate",
        ],
        root,
    )
    return [line.strip() for line in out.splitlines() if line.strip() and not line.lstrip().startswith(("#", "-"))]


def _pyproject(entry: ServerEntry, version: str, requirements: list[str], wheels: dict[str, str]) -> str:
    deps = [*requirements, *wheels]
    lines = [
        "# Made by `sophia bundle`: the environment `uv run` builds for this bundle.",
        "[project]",
        f'name = "{entry.mcp_name}-bundle"',
        f'version = "{version}"',
        f'requires-python = "{PYTHON}"',
        "dependencies = [",
        *(f"    {json.dumps(d)}," for d in deps),
        "]",
        "",
        "[tool.uv]",
        "package = false",
        "",
        "[tool.uv.sources]",
        *(f'{name} = {{ path = "{path}" }}' for name, path in wheels.items()),
        "",
    ]
    return "\n".join(lines)


def _main_py(entry: ServerEntry, names: list[str]) -> str:
    """The entry point: drops the settings Claude Desktop left unfilled, then runs the server.

    Claude Desktop is reported to pass an optional field left blank as the literal `${user_config.x}`
    (stickerdaniel/linkedin-mcp-server#678); as a value it would stop the server (a tool allow-list),
    beat the ESC value (an API key) or name a directory, so it is removed, as is an empty value.
    """
    return (
        f'"""{entry.mcp_name} over stdio, as the bundle launches it."""\n\n'
        "import os\n"
        "import re\n"
        "from collections.abc import MutableMapping\n\n"
        "# The settings the install dialog offers (manifest.json user_config, mapped into the env).\n"
        "OFFERED = {\n" + "".join(f"    {json.dumps(name)},\n" for name in names) + "}\n"
        'UNFILLED = re.compile(r"\\$\\{user_config\\.[^}]*\\}")\n\n\n'
        "def drop_unfilled_settings(environ: MutableMapping[str, str]) -> None:\n"
        '    """Claude passes a blank optional field as its literal `${user_config.x}`: unset it (and empties)."""\n'
        "    for name, value in list(environ.items()):\n"
        "        if UNFILLED.fullmatch(value.strip()) or (name in OFFERED and not value.strip()):\n"
        "            del environ[name]\n\n\n"
        'if __name__ == "__main__":\n'
        "    drop_unfilled_settings(os.environ)\n"
        f"    from {entry.module} import main\n\n"
        "    main()\n"
    )


@dataclass(frozen=True)
class Bundle:
    directory: Path
    archive: Path
    manifest: dict[str, Any]


def build_bundle(name: str, out_dir: Path, *, root: Path | None = None) -> Bundle:
    """The bundle's directory (`out_dir/<server>/`) and its archive (`out_dir/<server>-<version>.mcpb`)."""
    root = root or workspace_root()
    entry = find_server(name)
    version = str(entry.spec.version)
    distribution = distribution_of(entry)
    directory = out_dir / entry.mcp_name
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "server").mkdir(parents=True)
    wheels_dir = directory / "wheels"
    wheels: dict[str, str] = {}
    for dist in (SHARED_DISTRIBUTION, distribution):
        _run([_uv(), "build", "--package", dist, "--wheel", "--out-dir", str(wheels_dir), "--quiet"], root)
        stem = dist.replace("-", "_")
        built = sorted(wheels_dir.glob(f"{stem}-*.whl"))
        if not built:
            raise InputError(f"uv built no wheel for {dist}.", hint="Run `uv build --package {dist}` to see why.")
        wheels[dist] = f"wheels/{built[-1].name}"
    data = manifest(entry, version)
    (directory / "manifest.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    requirements = pinned_requirements(distribution, root)
    (directory / "pyproject.toml").write_text(_pyproject(entry, version, requirements, wheels), encoding="utf-8")
    offered = [s.name for s in offered_settings(entry)]
    (directory / ENTRY_POINT).write_text(_main_py(entry, offered), encoding="utf-8")
    archive = out_dir / f"{entry.mcp_name}-{version}.mcpb"
    archive.unlink(missing_ok=True)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(directory).as_posix())
    return Bundle(directory, archive, data)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "bundle",
        help="build an MCP Bundle (.mcpb) of one server for Claude Desktop",
        description=(
            "Build NAME's .mcpb: a manifest (uv server type), a pyproject pinned from uv.lock and the server's "
            "wheels. Double-click the file (or drag it onto Claude Desktop's Settings > Extensions) to install; "
            "Claude asks for the keys, keeps the secret ones in the OS keychain, and runs the server with uv."
        ),
    )
    p.add_argument("server", help="the server: its name, CLI name or alias (bi, ai, data, infra)")
    p.add_argument("--out", type=Path, default=Path("dist"), help="output directory (default ./dist)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    bundle = build_bundle(args.server, args.out.resolve())
    size = bundle.archive.stat().st_size
    print(f"Built {bundle.archive} ({size / 1024:.0f} KB); its contents are in {bundle.directory}/.")
    print("Install: double-click it, or drag it onto Claude Desktop > Settings > Extensions.")
    return 0
