"""Merge the suite's servers into a client's real MCP config file: Cursor's mcp.json, Claude Desktop's.

The merge touches only `mcpServers.<our server names>`; every other server and every other key stays
as it was. A changed file is first copied to a timestamped, owner-only backup and then replaced
atomically (a symlinked config is written through to its target, keeping its mode); an unchanged one
is not written at all (installing twice is a no-op). A file that is not valid JSON, or is read-only,
is refused before anything is written. The dry-run diff shows only our servers' entries: another
server's entry may hold its credentials in any shape (headers, URLs, arguments), so it is never shown.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sophia_shared.errors import InputError
from sophia_shared.files import PRIVATE, write_atomically
from sophia_shared.setting_specs import is_secret_name

CLAUDE_FILE = "claude_desktop_config.json"
_MASK = "********"
# Key names whose values are credentials whatever the words in them (HTTP headers).
_CREDENTIAL_KEYS = ("authorization", "proxy-authorization", "cookie", "headers")
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_URL_QUERY = re.compile(r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^?#\s]*)\?[^#\s]*")


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
            if self.changed and self.kept:
                lines.append(f"({len(self.kept)} other server(s) unchanged, not shown)")
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
    """A copy fit to show: credentials masked wherever they sit (secret-named keys, HTTP headers, URL
    userinfo and query strings, the argument after a secret-looking flag)."""
    if isinstance(config, dict):
        if key.lower() in _CREDENTIAL_KEYS:
            return {
                k: _MASK if isinstance(v, str) and v and not v.startswith("${") else _masked(v, k)
                for k, v in config.items()
            }
        return {k: _masked(v, k) for k, v in config.items()}
    if isinstance(config, list):
        shown: list[Any] = []
        after_flag = False
        for item in config:
            secret = after_flag and isinstance(item, str) and not item.startswith(("-", "${"))
            shown.append(_MASK if secret else _masked(item))
            after_flag = isinstance(item, str) and _is_secret_flag(item)
        return shown
    if isinstance(config, str):
        if config.startswith("${"):
            return config
        if key and (is_secret_name(key) or key.lower() in _CREDENTIAL_KEYS) and config:
            return _MASK
        return _masked_text(config)
    return config


def _is_secret_flag(item: str) -> bool:
    """`--token`, `--api-key`, `-password` (not `--token=x`, masked as text)."""
    return item.startswith("-") and "=" not in item and is_secret_name(item.lstrip("-").replace("-", "_"))


def _masked_text(text: str) -> str:
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{_MASK}@", text)
    text = _URL_QUERY.sub(lambda m: f"{m['url']}?{_MASK}", text)
    name, sep, _value = text.partition("=")
    if sep and is_secret_name(name.lstrip("-").replace("-", "_")):
        return f"{name}={_MASK}"
    return text


def install(path: Path, ours: dict[str, Any], *, dry_run: bool = False) -> InstallOutcome:
    """Merge `ours` ({"mcpServers": …}) into the config file at `path` (through a symlink, to its target)."""
    path = path.expanduser()
    real = path.resolve() if path.is_symlink() else path
    current = read_config(real)
    new = merged(current, ours)
    before = current.get("mcpServers", {})
    added = tuple(n for n in ours["mcpServers"] if n not in before)
    updated = tuple(n for n in ours["mcpServers"] if n in before and before[n] != ours["mcpServers"][n])
    unchanged = tuple(n for n in ours["mcpServers"] if n in before and before[n] == ours["mcpServers"][n])
    kept = tuple(n for n in before if n not in ours["mcpServers"])
    diff = _diff(path, {n: before[n] for n in ours["mcpServers"] if n in before}, ours["mcpServers"], real.exists())
    changed = bool(added or updated)
    backup: Path | None = None
    if changed and not dry_run:
        _refuse_read_only(real)
        if real.exists():
            backup = _backup(real)
        _write_atomically(real, _dump(new))
    return InstallOutcome(path, added, updated, unchanged, kept, backup, diff, changed and not dry_run, dry_run)


def _diff(path: Path, before: dict[str, Any], after: dict[str, Any], existed: bool) -> str:
    """A unified diff of our servers' entries only, masked."""
    return "".join(
        difflib.unified_diff(
            _dump({"mcpServers": _masked(before)}).splitlines(keepends=True) if existed else [],
            _dump({"mcpServers": _masked(after)}).splitlines(keepends=True),
            fromfile=f"{path} (our servers)" if existed else "/dev/null",
            tofile=f"{path} (our servers)",
        )
    )


def _refuse_read_only(path: Path) -> None:
    """A config made read-only is a choice; checked on the mode bits, since root could write it anyway."""
    if path.exists() and not path.stat().st_mode & stat.S_IWUSR:
        raise InputError(
            f"{path} is read-only (mode {stat.S_IMODE(path.stat().st_mode):04o}); nothing was written.",
            hint="Make it writable (chmod u+w) if you mean to change it, or pass --config-path to write another file.",
        )


def _backup(path: Path) -> Path:
    """An owner-only copy beside the file: it may hold another server's inlined token."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}.{stamp}.bak")
    try:
        fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE)
            handle.write(path.read_bytes())
    except OSError as exc:
        raise InputError(
            f"Cannot back up {path} to {backup}: {exc.strerror}; nothing was written.",
            hint="Check the directory's permissions, or pass --config-path.",
        ) from None
    return backup


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` by a new file written beside it, with the old file's mode (owner-only when new)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else PRIVATE
        write_atomically(path, text, mode=mode)
    except OSError as exc:
        raise InputError(
            f"Cannot write {path}: {exc.strerror}.", hint="Check the directory's permissions, or pass --config-path."
        ) from None
