"""Merge the suite's servers into a client's real MCP config file: Cursor's mcp.json, Claude Desktop's.

The merge touches only `mcpServers.<our server names>`; every other server and every other key stays
as it was. A changed file is first copied to a timestamped backup and then replaced atomically; an
unchanged one is not written at all (installing twice is a no-op). A file that is not valid JSON is
refused before anything is written.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sophia_shared.errors import InputError
from sophia_shared.setting_specs import is_secret_name

CLAUDE_FILE = "claude_desktop_config.json"
_MASK = "********"


def target_path(
    client: str,
    *,
    scope: str | None = None,
    platform: str | None = None,
    environ: dict[str, str] | None = None,
    home: Path | None = None,
    cwd: Path | None = None,
) -> Path:
    """The client's config file: Cursor's user (~/.cursor) or project (./.cursor) scope, Claude Desktop's
    platform default (macOS Application Support, Windows %APPDATA%, Linux $XDG_CONFIG_HOME)."""
    env = os.environ if environ is None else environ
    home = home or Path.home()
    if client == "cursor":
        base = (cwd or Path.cwd()) if scope == "project" else home
        return base / ".cursor" / "mcp.json"
    if scope is not None:
        raise InputError(
            "Claude Desktop has one config file per user: --scope applies to Cursor only.",
            hint="Drop --scope, or pass --config-path to write another file.",
        )
    platform = platform or sys.platform
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / CLAUDE_FILE
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        if not appdata:
            raise InputError(
                "APPDATA is not set, so Claude Desktop's config file cannot be located.",
                hint="Pass --config-path with the full path of claude_desktop_config.json.",
            )
        return Path(appdata) / "Claude" / CLAUDE_FILE
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return config_home / "Claude" / CLAUDE_FILE


@dataclass(frozen=True)
class InstallOutcome:
    path: Path
    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept: tuple[str, ...]  # other servers in the file, left as they were
    backup: Path | None
    diff: str
    written: bool
    dry_run: bool

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)

    def report(self) -> str:
        lines: list[str] = []
        if self.dry_run:
            lines.append(self.diff.rstrip() if self.changed else f"{self.path}: already up to date.")
            if self.changed:
                lines.append(f"(dry run: {self.path} was not written)")
        elif not self.changed:
            lines.append(f"{self.path}: already up to date, nothing written.")
        else:
            lines.append(f"Wrote {self.path}.")
            if self.backup is not None:
                lines.append(f"Backup of the previous file: {self.backup}")
        for label, names in (("added", self.added), ("updated", self.updated), ("unchanged", self.unchanged)):
            if names:
                lines.append(f"  {label}: {', '.join(names)}")
        if self.kept:
            lines.append(f"  other servers left as they were: {', '.join(self.kept)}")
        if self.written:
            lines.append("Restart the client (or reload its MCP servers) to pick the change up.")
        return "\n".join(lines)


def read_config(path: Path) -> dict[str, Any]:
    """The client's current config (empty when the file does not exist); refuses anything but a JSON object."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.", hint="Check the path and its permissions.") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); nothing was written.",
            hint="Fix or move the file (the client will not read it either), then run the install again.",
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path} holds a JSON {type(data).__name__}, not an object; nothing was written.",
            hint='A client config is an object such as {"mcpServers": {}}: fix or move the file.',
        )
    servers = data.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise InputError(
            f'"mcpServers" in {path} is a JSON {type(servers).__name__}, not an object; nothing was written.',
            hint='Make it an object of servers by name, e.g. "mcpServers": {}.',
        )
    return data


def merged(current: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """`current` with our servers put in (or replaced); everything else as it was, in its order."""
    result = dict(current)
    servers = dict(current.get("mcpServers", {}))
    servers.update(ours["mcpServers"])
    result["mcpServers"] = servers
    return result


def _dump(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def _masked(config: Any, key: str = "") -> Any:
    """A copy fit to show: literal values of secret-named keys (another server's inlined API key) masked."""
    if isinstance(config, dict):
        return {k: _masked(v, k) for k, v in config.items()}
    if isinstance(config, list):
        return [_masked(v) for v in config]
    if isinstance(config, str) and key and is_secret_name(key) and config and not config.startswith("${"):
        return _MASK
    return config


def install(path: Path, ours: dict[str, Any], *, dry_run: bool = False) -> InstallOutcome:
    """Merge `ours` ({"mcpServers": …}) into the config file at `path`."""
    path = path.expanduser()
    current = read_config(path)
    new = merged(current, ours)
    before = current.get("mcpServers", {})
    added = tuple(n for n in ours["mcpServers"] if n not in before)
    updated = tuple(n for n in ours["mcpServers"] if n in before and before[n] != ours["mcpServers"][n])
    unchanged = tuple(n for n in ours["mcpServers"] if n in before and before[n] == ours["mcpServers"][n])
    kept = tuple(n for n in before if n not in ours["mcpServers"])
    diff = "".join(
        difflib.unified_diff(
            _dump(_masked(current)).splitlines(keepends=True) if path.exists() else [],
            _dump(_masked(new)).splitlines(keepends=True),
            fromfile=str(path) if path.exists() else "/dev/null",
            tofile=str(path),
        )
    )
    changed = bool(added or updated)
    backup: Path | None = None
    if changed and not dry_run:
        if path.exists():
            backup = _backup(path)
        _write_atomically(path, _dump(new))
    return InstallOutcome(path, added, updated, unchanged, kept, backup, diff, changed and not dry_run, dry_run)


def _backup(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}.{stamp}.bak")
    backup.write_bytes(path.read_bytes())
    return backup


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InputError(
            f"Cannot write {path}: {exc.strerror}.", hint="Check the directory's permissions, or pass --config-path."
        ) from None
