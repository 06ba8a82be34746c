"""`sophia secrets check` (and doctor's credential lines): per server and feature, which credentials are
present, from which source, masked, and for missing ones the exact ESC key to add."""

from __future__ import annotations

from dataclasses import dataclass

from sophia_shared.registry import registered_servers
from sophia_shared.secret_groups import esc_key, vendor_of
from sophia_shared.settings import Settings

_SOURCE_WORDS = {"env": "env", "file": "ESC file", "dotenv": ".env", "default": "default"}


@dataclass(frozen=True)
class CredentialStatus:
    name: str
    vendor: str
    source: str | None  # None: missing
    shown: str  # masked value, or "" when missing
    group: str  # the ESC group to add it to
    key: str  # the key inside that group

    @property
    def present(self) -> bool:
        return self.source is not None


@dataclass(frozen=True)
class ServerCredentials:
    key: str
    name: str
    credentials: tuple[CredentialStatus, ...]


def collect(settings: Settings) -> list[ServerCredentials]:
    """Each server's vendor settings: every secret one, plus others that are set (and not by default)."""
    found = []
    for server in registered_servers():
        rows = []
        for spec in server.spec.settings:
            row = vendor_of(spec.name)
            if row is None:
                continue
            resolved = settings.resolve(spec.name)
            if resolved is not None and resolved.source == "default":
                resolved = None
            if not spec.secret and resolved is None:
                continue
            rows.append(
                CredentialStatus(
                    spec.name,
                    row.vendor,
                    source_word(resolved.source) if resolved else None,
                    resolved.display() if resolved else "",
                    row.group,
                    esc_key(spec.name),
                )
            )
        found.append(ServerCredentials(server.spec.key, server.spec.name, tuple(rows)))
    return found


def source_word(label: str) -> str:
    """A `Resolved.source` label in the words `secrets check` uses: env, ESC file, ESC org/project/env, .env."""
    return _SOURCE_WORDS.get(label, f"ESC {label.removeprefix('esc:')}" if label.startswith("esc:") else label)


def esc_line(settings: Settings) -> tuple[bool, str]:
    """(ok, one line) on the ESC environment: opened, not configured, or why it cannot be opened."""
    ref = settings.esc_ref
    if not ref:
        return True, "Pulumi ESC: not configured (SOPHIA_ESC_ENV=org/project/env and PULUMI_ACCESS_TOKEN)"
    problem = settings.esc_problem()
    if problem:
        return False, f"Pulumi ESC {ref}: NOT OPENED: {problem.splitlines()[0]}"
    return True, f"Pulumi ESC {ref}: opened, {settings.esc_value_count()} value(s) mapped to settings"


def esc_file_line(settings: Settings) -> tuple[bool, str]:
    """(ok, one line) on the local ESC file (SOPHIA_ESC_FILE, else the config folder's esc.yaml)."""
    from sophia_shared.errors import ConfigError
    from sophia_shared.esc_file import read_esc_file

    path = settings.esc_file_path()
    if not path.is_file():
        return True, f"ESC file {path}: absent"
    try:
        values = read_esc_file(path, groups=settings.esc_groups).values
    except ConfigError as exc:
        return False, f"ESC file {path}: found, NOT READ: {exc.message.splitlines()[0]}"
    return True, f"ESC file {path}: found, {len(values)} value(s) mapped to settings"


def where_to_add(item: CredentialStatus, ref: str | None) -> str:
    target = f"ESC environment {ref}" if ref else "your ESC environment"
    return f"add `{item.key}: {{fn::secret: …}}` under values.{item.group} in {target} (or set {item.name})"


def check_lines(settings: Settings) -> tuple[bool, list[str]]:
    ok, esc = esc_line(settings)
    file_ok, esc_file = esc_file_line(settings)
    ok = ok and file_ok
    lines = [esc, esc_file, ""]
    ref = settings.esc_ref
    for server in collect(settings):
        lines.append(f"{server.name} (ESC group {server.key})")
        vendors = dict.fromkeys(item.vendor for item in server.credentials)
        for vendor in vendors:
            items = [item for item in server.credentials if item.vendor == vendor]
            lines.append(f"  {vendor}")
            width = max(len(item.name) for item in items)
            for item in items:
                if item.present:
                    lines.append(f"    {item.name:<{width}}  present  {item.source:<24} {item.shown}")
                else:
                    lines.append(f"    {item.name:<{width}}  missing  {where_to_add(item, ref)}")
        lines.append("")
    return ok, lines


def missing_lines(settings: Settings) -> list[str]:
    """Doctor's short form: one line per server that misses credentials."""
    lines = []
    for server in collect(settings):
        missing = [item for item in server.credentials if not item.present]
        if missing:
            keys = ", ".join(f"{item.name} (ESC {item.group}.{item.key})" for item in missing)
            lines.append(f"  not set ({server.key}): {keys}")
    return lines
