"""Finding the `pulumi` CLI: `SOPHIA_PULUMI_CLI`, then PATH, then the build script's cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from sophia_shared.errors import NotConfigured
from sophia_shared.settings import Settings

# Built and tested here; the Python SDK (pulumi==3.272.0) also checks its own minimum.
TESTED_VERSION = "3.276.0"
MINIMUM_VERSION = (3, 150, 0)
CLI_SETTING = "SOPHIA_PULUMI_CLI"

INSTALL_HINT = (
    "Install the Pulumi CLI: from a Sophia checkout run `scripts/build-pulumi.sh` (builds v"
    + TESTED_VERSION
    + " from Go modules into ~/.cache/sophia/tools, found there automatically), or use Pulumi's installer "
    "(https://www.pulumi.com/docs/install/). Then put `pulumi` on PATH or set SOPHIA_PULUMI_CLI to its path."
)


@dataclass(frozen=True)
class PulumiCli:
    """A `pulumi` binary that answered `pulumi version`."""

    path: Path
    version: str  # "3.276.0"

    @property
    def directory(self) -> Path:
        return self.path.parent

    def has_plugin(self, name: str) -> bool:
        """Whether a plugin binary (`pulumi-language-python`, `pulumi-resource-pulumi-python`) is beside the CLI
        or on PATH, as the CLI looks for it."""
        return (self.directory / name).exists() or shutil.which(name) is not None


def build_cache_dir(environ: dict[str, str] | None = None) -> Path:
    """Where `scripts/build-pulumi.sh` puts the CLI (its SOPHIA_TOOLS_DIR default)."""
    env = os.environ if environ is None else environ
    tools = env.get("SOPHIA_TOOLS_DIR") or str(Path.home() / ".cache" / "sophia" / "tools")
    return Path(tools).expanduser() / f"pulumi-v{TESTED_VERSION}"


def candidate_paths(settings: Settings) -> list[tuple[Path, str]]:
    """Where the CLI may be, in order, each with where that came from."""
    found: list[tuple[Path, str]] = []
    configured = (settings.get(CLI_SETTING) or "").strip()
    if configured:
        path = Path(configured).expanduser()
        found.append((path / "pulumi" if path.is_dir() else path, CLI_SETTING))
        return found  # an explicit setting is never silently replaced by another binary
    on_path = shutil.which("pulumi")
    found.append((Path(on_path) if on_path else Path("pulumi"), "PATH"))
    found.append((build_cache_dir() / "pulumi", "the build script's cache"))
    return found


_VERSIONS: dict[tuple[str, float], str] = {}
_VERSIONS_LOCK = threading.Lock()


def cli_version(path: Path) -> str:
    """`pulumi version` without the leading v; cached by path and modification time."""
    key = (str(path), path.stat().st_mtime)
    with _VERSIONS_LOCK:
        if key in _VERSIONS:
            return _VERSIONS[key]
    env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    done = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30, env=env, check=False)
    version = done.stdout.strip().removeprefix("v")
    if done.returncode != 0 or not re.fullmatch(r"\d+\.\d+\.\d+\S*", version):
        raise NotConfigured(
            f"{path} did not report a version (`pulumi version` printed {version or 'nothing'!r}).",
            hint="A CLI built without `-X ...version.Version=vX.Y.Z` reports none and the Automation API cannot "
            "use it. " + INSTALL_HINT,
        )
    with _VERSIONS_LOCK:
        _VERSIONS[key] = version
    return version


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def find_cli(settings: Settings) -> PulumiCli:
    """The CLI to drive, version-checked; NotConfigured with the install hint when there is none."""
    looked: list[str] = []
    for path, origin in candidate_paths(settings):
        if not (path.is_file() and os.access(path, os.X_OK)):
            looked.append(f"{path} ({origin})")
            continue
        version = cli_version(path)
        if _version_tuple(version) < MINIMUM_VERSION:
            raise NotConfigured(
                f"The Pulumi CLI at {path} is v{version}; Sophia needs "
                f"v{'.'.join(map(str, MINIMUM_VERSION))} or newer.",
                hint=INSTALL_HINT,
            )
        return PulumiCli(path=path, version=version)
    raise NotConfigured(
        "The Pulumi CLI was not found, so Pulumi stacks are unavailable. Looked at: " + "; ".join(looked) + ".",
        hint=INSTALL_HINT,
    )
