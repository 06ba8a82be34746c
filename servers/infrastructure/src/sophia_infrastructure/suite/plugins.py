"""The Kubernetes resource plugin the suite's program needs, installed into the PULUMI_HOME in use.

Pulumi downloads plugins by itself on a networked machine; here (and in CI) it is built from Go modules
(`scripts/build-pulumi.sh --kubernetes`) and installed from that file. Its version must equal the
`pulumi-kubernetes` SDK's, or the engine rejects it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "4.25.0"  # == the pinned pulumi-kubernetes SDK
PLUGIN_BINARY = "pulumi-resource-kubernetes"
PLUGIN_VARIABLE = "SOPHIA_PULUMI_KUBERNETES_PLUGIN"
BUILD_COMMAND = "scripts/build-pulumi.sh --kubernetes"


@dataclass(frozen=True)
class PluginStatus:
    """Whether the plugin is usable, where it lives, and (when not) what is missing and what to do."""

    installed: bool
    path: Path | None
    message: str


def pulumi_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env["PULUMI_HOME"]).expanduser() if env.get("PULUMI_HOME") else Path.home() / ".pulumi"


def installed_plugin(home: Path, version: str = KUBERNETES_VERSION) -> Path | None:
    """The plugin binary inside `home`'s plugin cache, or None (a partial download does not count)."""
    directory = home / "plugins" / f"resource-kubernetes-v{version}"
    binary = directory / PLUGIN_BINARY
    partial = home / "plugins" / f"resource-kubernetes-v{version}.partial"
    if binary.is_file() and os.access(binary, os.X_OK) and not partial.exists():
        return binary
    return None


def plugin_binary(cli: Path | None, environ: dict[str, str] | None = None) -> Path | None:
    """A built plugin to install: `SOPHIA_PULUMI_KUBERNETES_PLUGIN`, else the file next to the CLI."""
    env = os.environ if environ is None else environ
    named = env.get(PLUGIN_VARIABLE)
    if named:
        return Path(named).expanduser()
    beside = cli.parent / PLUGIN_BINARY if cli is not None else None
    if beside is not None and beside.is_file():
        return beside
    found = shutil.which(PLUGIN_BINARY, path=env.get("PATH"))
    return Path(found) if found else None


def ensure_kubernetes_plugin(
    cli: Path | None, *, environ: dict[str, str] | None = None, timeout: float = 120
) -> PluginStatus:
    """Install the built plugin into PULUMI_HOME when it is not there yet; say what is missing otherwise.

    `environ` is the environment the CLI runs with (PULUMI_HOME, PATH); `cli` the pulumi binary.
    """
    env = dict(os.environ if environ is None else environ)
    home = pulumi_home(env)
    present = installed_plugin(home)
    if present is not None:
        return PluginStatus(True, present, f"{PLUGIN_BINARY} v{KUBERNETES_VERSION} is installed in {home}.")
    binary = plugin_binary(cli, env)
    if binary is None or not binary.is_file():
        where = f"{PLUGIN_VARIABLE}={binary}" if binary is not None else f"next to the pulumi CLI ({cli})"
        return PluginStatus(
            False,
            None,
            f"The Kubernetes plugin {PLUGIN_BINARY} v{KUBERNETES_VERSION} is not installed in {home} and no built "
            f"binary was found ({where}). On a networked machine Pulumi downloads it by itself (leave "
            f"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION unset); offline, build it with `{BUILD_COMMAND}` or "
            f"point {PLUGIN_VARIABLE} at a pulumi-resource-kubernetes v{KUBERNETES_VERSION} binary.",
        )
    if cli is None:
        return PluginStatus(
            False,
            None,
            f"Found {binary} but no pulumi CLI to install it with; set SOPHIA_PULUMI_CLI or put it on PATH.",
        )
    command = [str(cli), "plugin", "install", "resource", "kubernetes", f"v{KUBERNETES_VERSION}", "--file", str(binary)]
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return PluginStatus(False, None, f"`pulumi plugin install` of {binary} failed: {exc}.")
    present = installed_plugin(home)
    if done.returncode != 0 or present is None:
        said = (done.stderr or done.stdout).strip().splitlines()
        return PluginStatus(
            False,
            None,
            f"`pulumi plugin install resource kubernetes v{KUBERNETES_VERSION} --file {binary}` failed "
            f"(exit {done.returncode}): {said[-1] if said else 'no output'}.",
        )
    return PluginStatus(True, present, f"Installed {PLUGIN_BINARY} v{KUBERNETES_VERSION} from {binary} into {home}.")
