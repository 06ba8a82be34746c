"""The infrastructure server's settings: declared here, nowhere else."""

from __future__ import annotations

from functools import partial

from sophia_shared.setting_specs import SettingSpec, declare

SERVER_KEY = "infrastructure"  # names the write-gate variable and the ESC group

_spec = partial(declare, SERVER_KEY)


SETTINGS: tuple[SettingSpec, ...] = (
    _spec("LAMBDA_API_KEY", "Lambda Cloud API key.", secret=True),
    _spec("DOCKER_TOKEN", "Docker Hub token.", secret=True),
)

# Vendor prefixes this server reads, so test fixtures can clear a developer's exports by prefix.
ENV_PREFIXES: tuple[str, ...] = ("LAMBDA_", "DOCKER_", "SOPHIA_LAMBDA_", "SOPHIA_INFRA_")
