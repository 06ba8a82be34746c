"""The infrastructure server's settings: declared here, nowhere else."""

from __future__ import annotations

from sophia_shared.setting_specs import SettingSpec

SERVER_KEY = "infrastructure"  # names the write-gate variable and the ESC group


def _spec(name: str, description: str, *, secret: bool = False, default: str = "") -> SettingSpec:
    return SettingSpec(name, SERVER_KEY, secret, description, default)


SETTINGS: tuple[SettingSpec, ...] = (
    _spec("LAMBDA_API_KEY", "Lambda Cloud API key.", secret=True),
    _spec("DOCKER_TOKEN", "Docker Hub token.", secret=True),
)

# Vendor prefixes this server reads, so test fixtures can clear a developer's exports by prefix.
ENV_PREFIXES: tuple[str, ...] = ("LAMBDA_", "DOCKER_", "SOPHIA_LAMBDA_", "SOPHIA_INFRA_")
