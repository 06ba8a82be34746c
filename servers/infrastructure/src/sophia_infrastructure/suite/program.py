"""The `sophia-ai` project's inline Pulumi program: the seed's deployment as Kubernetes resources.

What it builds comes from `topology.WORKLOADS`; the stack config only says how many replicas, where to put
the manifests and which ESC environment supplies the secrets. Stack config (project `sophia-ai`):

- `{workload}_replicas` (int): overrides the workload's default; at least 1, within the HPA's bounds where
  the workload has an autoscaler (the gateway: 3–10). The gateway's HPA floor follows it, so a scale the
  user asked for is not undone by the autoscaler.
- `render_dir` (path): render mode (the default) writes the manifests there instead of talking to a
  cluster (`render_yaml_to_directory`); default `<data dir>/infra/manifests/<stack>`.
- `kubeconfig` (path or content) and `context`: apply to that cluster instead of rendering.
- `esc:environment` (`org/project/env`): the ESC environment the secrets come from. ESC hands its values to
  the stack as config (the environment's `pulumiConfig` block, or the engine writes them after opening the
  environment): the secret object `secrets` (`{"LAMBDA_API_KEY": "…", …}`) becomes the Secret
  `sophia-secrets`, which every workload reads through `envFrom` (optional). The program never opens ESC
  itself. Without `esc:environment` no Secret is made (pods start without it), so a stack never holds an
  empty Secret that looks configured.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .topology import GPU_NODE_POOL, NAMESPACE, NODE_POOL_LABEL, PROJECT, WORKLOADS, Workload

SECRET_NAME = "sophia-secrets"  # noqa: S105 - the Kubernetes Secret's name
GPU_RESOURCE = "nvidia.com/gpu"
ESC_NAMESPACE = "esc"  # config key `esc:environment`
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")  # what Kubernetes accepts as a Secret data key


def render_dir_for(data_dir: Path, stack: str) -> Path:
    """Where render mode writes a stack's manifests by default."""
    return data_dir / "infra" / "manifests" / stack


def stack_defaults(data_dir: Path, stack: str) -> dict[str, str]:
    """Config a new suite stack starts with (fully qualified keys): the render directory under the data dir."""
    return {f"{PROJECT}:render_dir": str(render_dir_for(data_dir, stack))}


def replicas_of(config: pulumi.Config, workload: Workload) -> int:
    """The configured replica count of `workload`, its default when unset; a clear error for anything else (the
    same parser the scale and optimize tools use)."""
    from sophia_shared.errors import InputError

    from .costs import parse_replicas

    raw = config.get(workload.config_key)
    try:
        return parse_replicas(workload, raw)
    except InputError as exc:
        if raw is not None and not raw.strip().isdigit():  # not a whole number: Pulumi's own type error
            raise pulumi.ConfigTypeError(f"{PROJECT}:{workload.config_key}", raw, "whole number of replicas") from None
        raise pulumi.RunError(f"{PROJECT}:{exc.message} {exc.hint or ''}".rstrip()) from None


def _labels(workload: Workload) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": f"sophia-{workload.key}",
        "app.kubernetes.io/part-of": PROJECT,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def _container(workload: Workload) -> k8s.core.v1.ContainerArgs:
    limits = {"cpu": workload.cpu_limit, "memory": workload.memory_limit}
    if workload.gpus:
        limits[GPU_RESOURCE] = str(workload.gpus)
    return k8s.core.v1.ContainerArgs(
        name=workload.key,
        image=workload.image,
        command=list(workload.command) or None,
        # A stdio MCP server exits when its stdin closes: an open stdin keeps the pod's server running.
        stdin=not workload.port,
        ports=[k8s.core.v1.ContainerPortArgs(container_port=workload.port, name="http")] if workload.port else None,
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": workload.cpu_request, "memory": workload.memory_request},
            limits=limits,
        ),
        env_from=[
            k8s.core.v1.EnvFromSourceArgs(secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=SECRET_NAME, optional=True))
        ],
    )


def _pod_spec(workload: Workload) -> k8s.core.v1.PodSpecArgs:
    if not workload.gpus:
        return k8s.core.v1.PodSpecArgs(containers=[_container(workload)])
    # GPU workloads run on the A10 pool only; its nodes are tainted for GPU pods.
    return k8s.core.v1.PodSpecArgs(
        containers=[_container(workload)],
        node_selector={NODE_POOL_LABEL: GPU_NODE_POOL},
        tolerations=[k8s.core.v1.TolerationArgs(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")],
    )


def _deployment(
    workload: Workload, replicas: int, namespace: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> k8s.apps.v1.Deployment:
    labels = _labels(workload)
    return k8s.apps.v1.Deployment(
        f"sophia-{workload.key}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"sophia-{workload.key}", namespace=namespace, labels=labels),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=replicas,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels), spec=_pod_spec(workload)
            ),
        ),
        opts=opts,
    )


def _service(workload: Workload, namespace: pulumi.Output[str], opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
    return k8s.core.v1.Service(
        f"sophia-{workload.key}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"sophia-{workload.key}", namespace=namespace, labels=_labels(workload)
        ),
        spec=k8s.core.v1.ServiceSpecArgs(
            selector=_labels(workload),
            ports=[k8s.core.v1.ServicePortArgs(name="http", port=workload.port, target_port="http")],
        ),
        opts=opts,
    )


def _autoscaler(
    workload: Workload,
    replicas: int,
    deployment: k8s.apps.v1.Deployment,
    namespace: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
) -> dict[str, int]:
    scaler = workload.autoscaler
    assert scaler is not None
    bounds = {
        "min_replicas": replicas,  # the configured count is the floor: a scale up sticks
        "max_replicas": scaler.max_replicas,
        "cpu_percent": scaler.cpu_percent,
        "memory_percent": scaler.memory_percent,
    }

    def target(resource: str, percent: int) -> k8s.autoscaling.v2.MetricSpecArgs:
        return k8s.autoscaling.v2.MetricSpecArgs(
            type="Resource",
            resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                name=resource,
                target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=percent),
            ),
        )

    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"sophia-{workload.key}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"sophia-{workload.key}", namespace=namespace, labels=_labels(workload)
        ),
        spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
            scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                api_version="apps/v1", kind="Deployment", name=deployment.metadata.name
            ),
            min_replicas=bounds["min_replicas"],
            max_replicas=bounds["max_replicas"],
            metrics=[target("cpu", scaler.cpu_percent), target("memory", scaler.memory_percent)],
        ),
        opts=opts,
    )
    return bounds


def _checked_secret_values(values: Any, environment: str) -> dict[str, str]:
    """The `secrets` config object as Secret data; names the bad key (never a value) when it cannot be used."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise pulumi.RunError(
            f"{PROJECT}:secrets must be an object of NAME: value pairs (from ESC environment {environment}); "
            f"it is a {type(values).__name__}."
        )
    checked: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _SECRET_KEY.match(key):
            raise pulumi.RunError(
                f"{PROJECT}:secrets has the key {key!r}, which Kubernetes does not accept in a Secret "
                "(letters, digits, '-', '_' and '.' only)."
            )
        if isinstance(value, dict | list):
            raise pulumi.RunError(f"{PROJECT}:secrets.{key} must be a string, not a {type(value).__name__}.")
        checked[key] = "" if value is None else str(value)
    return checked


def _secret(
    environment: str, config: pulumi.Config, namespace: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> k8s.core.v1.Secret:
    raw = config.get_secret_object("secrets")
    if raw is None:
        pulumi.log.warn(
            f"esc:environment is {environment} but the stack has no {PROJECT}:secrets from it, so the Secret "
            f"{SECRET_NAME} is empty; give that environment a pulumiConfig block with {PROJECT}:secrets."
        )
        raw = pulumi.Output.from_input({})
    checked: pulumi.Output[dict[str, str]] = raw.apply(lambda values: _checked_secret_values(values, environment))
    data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(checked)
    return k8s.core.v1.Secret(
        SECRET_NAME,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=SECRET_NAME,
            namespace=namespace,
            labels={"app.kubernetes.io/part-of": PROJECT, "app.kubernetes.io/managed-by": "pulumi"},
            annotations={"sophia.ai/esc-environment": environment},
        ),
        type="Opaque",
        string_data=data,
        opts=opts,
    )


def _provider(config: pulumi.Config) -> tuple[k8s.Provider, str, str]:
    """The provider, the mode (`render` or `cluster`) and the render directory ('' for a cluster)."""
    kubeconfig = config.get("kubeconfig")
    context = config.get("context")
    if kubeconfig or context:
        return k8s.Provider("cluster", kubeconfig=kubeconfig, context=context), "cluster", ""
    from sophia_shared.paths import data_dir

    render_dir = config.get("render_dir") or str(render_dir_for(data_dir(), pulumi.get_stack()))
    # kubeconfig="": an ambient KUBECONFIG must not switch render mode to a real cluster.
    return k8s.Provider("render", render_yaml_to_directory=render_dir, kubeconfig=""), "render", render_dir


def suite_program() -> None:
    """The `sophia-ai` stack: namespace, the five workloads, the gateway's Service and HPA, the ESC Secret."""
    config = pulumi.Config(PROJECT)
    replicas = {w.key: replicas_of(config, w) for w in WORKLOADS.values()}  # all checked before any resource
    provider, mode, render_dir = _provider(config)
    opts = pulumi.ResourceOptions(provider=provider)

    namespace = k8s.core.v1.Namespace(
        NAMESPACE,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels={"app.kubernetes.io/part-of": PROJECT}),
        opts=opts,
    )
    name = namespace.metadata.apply(lambda meta: meta.name or NAMESPACE)

    environment = pulumi.Config(ESC_NAMESPACE).get("environment") or ""
    if environment:
        _secret(environment, config, name, opts)

    autoscalers: dict[str, dict[str, int]] = {}
    for workload in WORKLOADS.values():
        deployment = _deployment(workload, replicas[workload.key], name, opts)
        if workload.port:
            _service(workload, name, opts)
        if workload.autoscaler is not None:
            autoscalers[workload.key] = _autoscaler(workload, replicas[workload.key], deployment, name, opts)

    pulumi.export("namespace", name)
    pulumi.export("replicas", replicas)
    pulumi.export("mode", mode)
    pulumi.export("render_dir", render_dir)
    pulumi.export("esc_environment", environment)
    pulumi.export("gateway_hpa", autoscalers.get("gateway", {}))
