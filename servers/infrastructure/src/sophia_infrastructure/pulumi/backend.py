"""Which Pulumi backend stacks live in, and the environment every CLI call gets.

`PULUMI_BACKEND_URL` names a self-managed backend (`file://`, `s3://`, `azblob://`, `gs://`, ...) or a
Pulumi Cloud URL; without it `PULUMI_ACCESS_TOKEN` means Pulumi Cloud; with neither, stacks live in a
`file://` backend in the data dir, so everything works offline with zero keys.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sophia_shared.errors import ConfigError
from sophia_shared.paths import data_dir
from sophia_shared.settings import Settings

CLOUD_URL = "https://api.pulumi.com"
SELF_MANAGED_SCHEMES = ("file://", "s3://", "azblob://", "gs://", "postgres://")
BackendKind = Literal["local", "self-managed", "cloud"]


def pulumi_dir(environ: dict[str, str] | None = None) -> Path:
    """`<data dir>/infra/pulumi`: the embedded backend, the generated passphrase, the suite's project files."""
    return data_dir(environ) / "infra" / "pulumi"


@dataclass(frozen=True)
class Backend:
    url: str
    kind: BackendKind
    home: Path  # PULUMI_HOME: plugins and credentials of the CLI we drive
    passphrase_source: str  # "" for Pulumi Cloud (its own secrets provider)
    env: dict[str, str] = field(repr=False)  # holds secrets: never rendered

    def label(self) -> str:
        """Which backend, in a few words: `embedded local backend file:///…`."""
        where = {"local": "embedded local backend", "self-managed": "self-managed backend", "cloud": "Pulumi Cloud"}
        return f"{where[self.kind]} {self.url}"

    def describe(self) -> str:
        """The label plus where stack secrets' passphrase comes from (never the passphrase)."""
        secrets_line = f"; secrets: passphrase from {self.passphrase_source}" if self.passphrase_source else ""
        return f"{self.label()}{secrets_line}"


def _passphrase_file(root: Path) -> Path:
    """A passphrase made once per data dir (mode 0600), used when PULUMI_CONFIG_PASSPHRASE is not set."""
    path = root / "passphrase"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(32))
    return path


def resolve_backend(settings: Settings) -> Backend:
    """The backend and the CLI environment for these settings (creates the local backend's directory)."""
    data = settings.get("SOPHIA_DATA_DIR")
    root = pulumi_dir({"SOPHIA_DATA_DIR": data} if data else None)
    url = (settings.get("PULUMI_BACKEND_URL") or "").strip().rstrip("/")
    token = (settings.get("PULUMI_ACCESS_TOKEN") or "").strip()
    # The CLI's own home (plugins, `pulumi login` credentials) unless the user points elsewhere.
    home = Path(settings.get("PULUMI_HOME") or Path.home() / ".pulumi").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PULUMI_HOME": str(home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",  # else the CLI tries dozens of DNS look-ups on every call
        "PULUMI_PYTHON_CMD": sys.executable,  # dynamic providers run with the interpreter that has `pulumi`
    }
    # A missing plugin is downloaded by the CLI (the Kubernetes one the suite needs is installed from a
    # local build when there is one); PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true makes it an error.
    no_download = settings.get("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION")
    if no_download:
        env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = no_download
    kind: BackendKind
    if url.startswith(SELF_MANAGED_SCHEMES):
        kind = "self-managed"
    elif url.startswith(("https://", "http://")) or (not url and token):
        kind, url = "cloud", url or CLOUD_URL
    elif url:
        raise ConfigError(
            f"PULUMI_BACKEND_URL={url!r} is not a backend Sophia knows.",
            hint="Use file://DIR, s3://BUCKET, azblob://, gs://, postgres:// or a Pulumi Cloud URL "
            "(https://api.pulumi.com); leave it unset for the embedded local backend.",
        )
    else:
        local = root / "backend"
        local.mkdir(parents=True, exist_ok=True)
        kind, url = "local", f"file://{local}"
    env["PULUMI_BACKEND_URL"] = url
    passphrase_source = ""
    if kind == "cloud":
        if not token:
            raise ConfigError(
                f"PULUMI_BACKEND_URL={url} is Pulumi Cloud, but PULUMI_ACCESS_TOKEN is not set.",
                hint="Set PULUMI_ACCESS_TOKEN (a Pulumi Cloud access token), or point PULUMI_BACKEND_URL at a "
                "self-managed backend such as file://DIR.",
            )
        env["PULUMI_ACCESS_TOKEN"] = token
    else:
        passphrase = settings.get("PULUMI_CONFIG_PASSPHRASE")
        if passphrase:
            env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
            passphrase_source = "PULUMI_CONFIG_PASSPHRASE"  # noqa: S105 - the variable's name
        else:
            path = _passphrase_file(root)
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(path)
            passphrase_source = f"{path} (generated for this data dir; keep it, stack secrets need it)"
        if token:
            env["PULUMI_ACCESS_TOKEN"] = token  # an ESC environment on the stack still needs it
    return Backend(url=url, kind=kind, home=home, passphrase_source=passphrase_source, env=env)
