"""The infrastructure server's settings: declared here, nowhere else."""

from __future__ import annotations

from functools import partial

from sophia_shared.setting_specs import SettingSpec, declare

SERVER_KEY = "infrastructure"  # names the write-gate variable and the ESC group

_spec = partial(declare, SERVER_KEY)

SETTINGS: tuple[SettingSpec, ...] = (
    _spec("LAMBDA_API_KEY", "Lambda Cloud API key.", secret=True),
    _spec("LAMBDA_LABS_API_KEY", "Older name of LAMBDA_API_KEY, accepted when that one is not set.", secret=True),
    _spec("SOPHIA_LAMBDA_BASE_URL", "Lambda Cloud API base (tests, proxies).", default="https://cloud.lambda.ai"),
    _spec("SOPHIA_LAMBDA_MAX_HOURLY_USD", "Most a launched instance may cost per hour.", default="5"),
    _spec("SOPHIA_INFRA_MONTHLY_BUDGET_USD", "Monthly GPU budget; alerts at 75 % and 90 %.", default="1000"),
    _spec("PULUMI_CONFIG_PASSPHRASE", "Passphrase of the local Pulumi secrets provider.", secret=True),
    _spec("SOPHIA_PULUMI_CLI", "Path of the pulumi CLI when it is not on PATH."),
    _spec(
        "SOPHIA_INFRA_REAP_SECONDS",
        "How often the running server terminates GPU instances whose lease expired; 0: only `sophia infra reap`.",
        default="300",
    ),
    _spec("SOPHIA_PROMETHEUS_URL", "Prometheus HTTP API base; the cost report reads measured CPU/memory from it."),
    _spec("SOPHIA_PROMETHEUS_TOKEN", "Bearer token for SOPHIA_PROMETHEUS_URL, when it needs one.", secret=True),
    _spec("SOPHIA_PULUMI_KUBERNETES_PLUGIN", "Path of a built pulumi-resource-kubernetes v4.25.0 to install."),
    _spec("DOCKER_TOKEN", "Docker Hub token.", secret=True),
)

# Vendor prefixes this server reads, so test fixtures can clear a developer's exports by prefix.
ENV_PREFIXES: tuple[str, ...] = (
    "LAMBDA_",
    "DOCKER_",
    "SOPHIA_LAMBDA_",
    "SOPHIA_INFRA_",
    "SOPHIA_PULUMI_",
    "SOPHIA_PROMETHEUS_",
)
