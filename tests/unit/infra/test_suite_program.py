"""The `sophia-ai` program under Pulumi's mocks: which resources it declares from the stack config.

No CLI and no plugin: `pulumi.runtime.set_mocks` records every resource the program registers.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import set_root_resource

from sophia_infrastructure.suite import program
from sophia_infrastructure.suite.plugins import KUBERNETES_VERSION, ensure_kubernetes_plugin
from sophia_infrastructure.suite.program import SECRET_NAME, stack_defaults, suite_program
from sophia_infrastructure.suite.topology import GPU_NODE_POOL, NAMESPACE, NODE_POOL_LABEL, PROJECT, WORKLOADS

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SECRET = "kubernetes:core/v1:Secret"
NS = "kubernetes:core/v1:Namespace"
PROVIDER = "pulumi:providers:kubernetes"
SECRET_SIG, SECRET_SIG_VALUE = rpc._special_sig_key, rpc._special_secret_sig


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str


class Recorder(pulumi.runtime.Mocks):
    """Answers every registration with its inputs as state, and remembers it."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs), args.provider or ""))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def of(self, typ: str) -> dict[str, Registered]:
        return {r.name: r for r in self.resources if r.typ == typ}


@dataclass
class Run:
    recorder: Recorder
    outputs: dict[str, Any]

    def deployment(self, key: str) -> dict[str, Any]:
        return self.recorder.of(DEPLOYMENT)[f"sophia-{key}"].inputs


def run_program(config: dict[str, str] | None = None, secret_keys: tuple[str, ...] = ()) -> Run:
    """Run `suite_program` under mocks with this stack config; its resources and resolved outputs."""
    recorder = Recorder()
    # The mocks run on the thread's current loop; an earlier async test may have closed it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_mocks(recorder, project=PROJECT, stack="sophia-test", preview=False)
    set_all_config(dict(config or {}), list(secret_keys))
    outputs: dict[str, Any] = {}

    @pulumi_mocks.test  # type: ignore[untyped-decorator,unused-ignore]
    def body() -> pulumi.Output[Any]:
        suite_program()
        root = pulumi.runtime.get_root_resource()
        exported: dict[str, Any] = root.outputs  # type: ignore[union-attr]
        return pulumi.Output.all(**exported).apply(outputs.update)

    try:
        body()
    finally:
        set_all_config({}, [])
        asyncio.set_event_loop(None)
        loop.close()
    return Run(recorder, outputs)


@pytest.fixture(autouse=True)
def _no_real_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.setenv("SOPHIA_DATA_DIR", str(tmp_path / "data"))


def test_defaults_follow_the_seed_topology() -> None:
    run = run_program()
    assert {key: run.deployment(key)["spec"]["replicas"] for key in WORKLOADS} == {
        "ai": 2,
        "data": 3,
        "bi": 1,
        "infrastructure": 1,
        "gateway": 3,
    }
    assert run.outputs["replicas"] == {"ai": 2, "data": 3, "bi": 1, "infrastructure": 1, "gateway": 3}
    assert run.outputs["namespace"] == NAMESPACE


def test_replicas_come_from_the_stack_config() -> None:
    run = run_program({f"{PROJECT}:data_replicas": "5", f"{PROJECT}:gateway_replicas": "7"})
    assert run.deployment("data")["spec"]["replicas"] == 5
    assert run.deployment("ai")["spec"]["replicas"] == 2
    assert run.outputs["replicas"]["data"] == 5
    # The gateway's HPA floor follows the asked-for count, so the autoscaler does not undo the scale.
    hpa = run.recorder.of(HPA)["sophia-gateway"].inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (7, 10)


def test_gateway_autoscaler_targets_cpu_and_memory_within_3_to_10() -> None:
    run = run_program()
    hpas = run.recorder.of(HPA)
    assert list(hpas) == ["sophia-gateway"]
    spec = hpas["sophia-gateway"].inputs["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sophia-gateway"}
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    assert run.outputs["gateway_hpa"] == {
        "min_replicas": 3,
        "max_replicas": 10,
        "cpu_percent": 70,
        "memory_percent": 80,
    }


@pytest.mark.parametrize(
    ("key", "value"), [("gateway_replicas", "11"), ("gateway_replicas", "2"), ("data_replicas", "0")]
)
def test_replicas_outside_the_bounds_fail_with_the_allowed_range(key: str, value: str) -> None:
    with pytest.raises(pulumi.RunError, match=rf"{PROJECT}:{key} is {value}, outside .*\(") as failure:
        run_program({f"{PROJECT}:{key}": value})
    assert ("3–10" in str(failure.value)) == key.startswith("gateway")


def test_bi_runs_on_the_a10_pool_with_one_gpu_and_others_do_not() -> None:
    run = run_program()
    bi = run.deployment("bi")["spec"]["template"]["spec"]
    assert bi["nodeSelector"] == {NODE_POOL_LABEL: GPU_NODE_POOL}
    assert bi["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    container = bi["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    data = run.deployment("data")["spec"]["template"]["spec"]
    assert "nodeSelector" not in data and "nvidia.com/gpu" not in data["containers"][0]["resources"]["limits"]


def test_workloads_with_a_port_get_a_service_selecting_their_pods() -> None:
    run = run_program()
    services = run.recorder.of(SERVICE)
    assert set(services) == {f"sophia-{w.key}" for w in WORKLOADS.values() if w.port}
    gateway = services["sophia-gateway"].inputs["spec"]
    assert gateway["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]
    assert gateway["selector"] == run.deployment("gateway")["spec"]["selector"]["matchLabels"]


def test_everything_is_in_the_namespace_through_the_render_provider(tmp_path: Path) -> None:
    run = run_program({f"{PROJECT}:render_dir": str(tmp_path / "out")})
    (provider,) = run.recorder.of(PROVIDER).values()
    assert provider.inputs["renderYamlToDirectory"] == str(tmp_path / "out")
    assert provider.inputs.get("kubeconfig", "") == ""
    assert run.outputs["render_dir"] == str(tmp_path / "out") and run.outputs["mode"] == "render"
    assert NAMESPACE in run.recorder.of(NS)
    for r in run.recorder.resources:
        if r.typ.startswith("kubernetes:") and r.typ != NS:
            assert r.inputs["metadata"]["namespace"] == NAMESPACE, r.name
            assert "pulumi:providers:kubernetes::render::" in r.provider, r.name


def test_render_dir_defaults_under_the_data_dir(tmp_path: Path) -> None:
    run = run_program()
    expected = str(tmp_path / "data" / "infra" / "manifests" / "sophia-test")
    assert run.outputs["render_dir"] == expected
    assert stack_defaults(tmp_path / "data", "sophia-test") == {f"{PROJECT}:render_dir": expected}


def test_a_kubeconfig_targets_a_cluster_instead_of_rendering() -> None:
    run = run_program({f"{PROJECT}:kubeconfig": "/tmp/kubeconfig", f"{PROJECT}:context": "prod"})
    (provider,) = run.recorder.of(PROVIDER).values()
    assert provider.name == "cluster" and "renderYamlToDirectory" not in provider.inputs
    assert provider.inputs["context"] == "prod"
    assert run.outputs["mode"] == "cluster" and run.outputs["render_dir"] == ""


def test_no_esc_environment_means_no_secret_and_optional_env_from() -> None:
    run = run_program({f"{PROJECT}:secrets": json.dumps({"LAMBDA_API_KEY": "x"})})
    assert run.recorder.of(SECRET) == {}
    container = run.deployment("ai")["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": SECRET_NAME, "optional": True}}]
    assert run.outputs["esc_environment"] == ""


def test_secret_takes_the_values_esc_gives_the_stack() -> None:
    values = {"LAMBDA_API_KEY": "secret_lambda_123", "PORTKEY_API_KEY": "pk-456"}
    run = run_program(
        {"esc:environment": "acme/sophia/prod", f"{PROJECT}:secrets": json.dumps(values)},
        secret_keys=(f"{PROJECT}:secrets",),
    )
    secret = run.recorder.of(SECRET)[SECRET_NAME].inputs
    # Marked secret on the wire: the engine encrypts it in the state.
    assert secret["stringData"][SECRET_SIG] == SECRET_SIG_VALUE
    assert secret["stringData"]["value"] == values
    assert secret["metadata"]["annotations"] == {"sophia.ai/esc-environment": "acme/sophia/prod"}
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert run.outputs["esc_environment"] == "acme/sophia/prod"
    assert "secret_lambda_123" not in json.dumps(run.outputs)


def test_secret_with_a_key_kubernetes_refuses_names_the_key_not_the_value() -> None:
    config = {"esc:environment": "acme/sophia/prod", f"{PROJECT}:secrets": json.dumps({"bad key!": "hunter2"})}
    with pytest.raises(Exception, match="bad key!") as failure:
        run_program(config)
    assert "hunter2" not in str(failure.value)


def test_a_non_number_replica_count_is_refused() -> None:
    with pytest.raises(pulumi.ConfigTypeError, match="data_replicas"):
        run_program({f"{PROJECT}:data_replicas": "five"})


def test_the_program_module_does_not_open_esc_at_import() -> None:
    source = Path(program.__file__).read_text(encoding="utf-8")
    assert "open_esc" not in source and "esc_client" not in source


def test_esc_environment_without_values_gives_an_empty_secret_not_a_failure() -> None:
    run = run_program({"esc:environment": "acme/sophia/dev"})
    secret = run.recorder.of(SECRET)[SECRET_NAME].inputs
    assert secret["stringData"][SECRET_SIG] == SECRET_SIG_VALUE and secret["stringData"]["value"] == {}


# -- the Kubernetes plugin the program needs ------------------------------------------------------------


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_plugin_already_in_pulumi_home_is_used_as_is(tmp_path: Path) -> None:
    home = tmp_path / "home"
    binary = _executable(home / "plugins" / f"resource-kubernetes-v{KUBERNETES_VERSION}" / "pulumi-resource-kubernetes")
    status = ensure_kubernetes_plugin(None, environ={"PULUMI_HOME": str(home), "PATH": str(tmp_path / "empty")})
    assert status.installed and status.path == binary


def test_a_partial_plugin_download_does_not_count(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _executable(home / "plugins" / f"resource-kubernetes-v{KUBERNETES_VERSION}" / "pulumi-resource-kubernetes")
    (home / "plugins" / f"resource-kubernetes-v{KUBERNETES_VERSION}.partial").touch()
    status = ensure_kubernetes_plugin(None, environ={"PULUMI_HOME": str(home), "PATH": str(tmp_path / "empty")})
    assert not status.installed


def test_missing_plugin_says_how_to_get_it(tmp_path: Path) -> None:
    cli = _executable(tmp_path / "bin" / "pulumi")
    status = ensure_kubernetes_plugin(cli, environ={"PULUMI_HOME": str(tmp_path / "h"), "PATH": str(tmp_path / "e")})
    assert not status.installed and status.path is None
    assert "scripts/build-pulumi.sh --kubernetes" in status.message
    assert "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION" in status.message and str(cli) in status.message


def test_a_built_plugin_without_a_cli_names_the_cli_setting(tmp_path: Path) -> None:
    binary = _executable(tmp_path / "built" / "pulumi-resource-kubernetes")
    environ = {"PULUMI_HOME": str(tmp_path / "h"), "PATH": "", "SOPHIA_PULUMI_KUBERNETES_PLUGIN": str(binary)}
    status = ensure_kubernetes_plugin(None, environ=environ)
    assert not status.installed and "SOPHIA_PULUMI_CLI" in status.message
