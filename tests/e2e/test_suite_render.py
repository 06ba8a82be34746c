"""The `sophia-ai` program against the real Pulumi CLI and the real Kubernetes plugin, in render mode.

`up` writes the manifests to a directory, scaling data 3 → 5 rewrites its Deployment file, `destroy`
deletes them. Everything is local: a `file://` backend, a private PULUMI_HOME, no KUBECONFIG.
Skipped when the CLI or the plugin is missing, unless SOPHIA_REQUIRE_PULUMI=1 (CI), then failed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sophia_infrastructure.suite.plugins import ensure_kubernetes_plugin
from sophia_infrastructure.suite.program import suite_program
from sophia_infrastructure.suite.topology import NAMESPACE, PROJECT
from sophia_shared.errors import InputError

pytestmark = pytest.mark.slow
CLI_VERSION = "3.276.0"
STACK = "sophia-e2e"


def _missing(reason: str) -> None:
    if os.environ.get("SOPHIA_REQUIRE_PULUMI") == "1":
        pytest.fail(f"SOPHIA_REQUIRE_PULUMI=1 but {reason}")
    pytest.skip(reason)


def _cli() -> Path | None:
    named = os.environ.get("SOPHIA_PULUMI_CLI")
    if named:
        return Path(named)
    tools = Path(os.environ.get("SOPHIA_TOOLS_DIR", Path("~/.cache/sophia/tools").expanduser()))
    for candidate in (tools / f"pulumi-v{CLI_VERSION}" / "pulumi", shutil.which("pulumi")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


# Read before the suite's fixtures clear SOPHIA_* and PULUMI_* variables.
CLI = _cli()
REQUIRE = os.environ.get("SOPHIA_REQUIRE_PULUMI")
PLUGIN_OVERRIDE = os.environ.get("SOPHIA_PULUMI_KUBERNETES_PLUGIN")


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from pulumi import automation as auto

    if REQUIRE:
        monkeypatch.setenv("SOPHIA_REQUIRE_PULUMI", REQUIRE)
    if CLI is None:
        _missing("no pulumi CLI (SOPHIA_PULUMI_CLI, PATH or ~/.cache/sophia/tools); build it: scripts/build-pulumi.sh")
    assert CLI is not None
    home, backend = tmp_path / "pulumi-home", tmp_path / "backend"
    backend.mkdir()
    env = {
        "PATH": f"{CLI.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ["HOME"],
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": "e2e-passphrase",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }
    if PLUGIN_OVERRIDE:
        env["SOPHIA_PULUMI_KUBERNETES_PLUGIN"] = PLUGIN_OVERRIDE
    plugin = ensure_kubernetes_plugin(CLI, environ=env)
    if not plugin.installed:
        _missing(plugin.message)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # `pulumi` resolves through PATH, whose first entry is now the CLI's directory.
    workspace = auto.LocalWorkspaceOptions(pulumi_home=str(home), env_vars=env, pulumi_command=auto.PulumiCommand())
    yield auto.create_or_select_stack(stack_name=STACK, project_name=PROJECT, program=suite_program, opts=workspace)


def manifests(render_dir: Path) -> dict[str, dict[str, object]]:
    """Rendered objects by `Kind/name`."""
    found: dict[str, dict[str, object]] = {}
    for path in sorted(render_dir.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = {"doc": doc, "path": path}
    return found


def test_up_renders_scale_rewrites_and_destroy_deletes(stack: object, tmp_path: Path) -> None:
    from pulumi import automation as auto

    assert isinstance(stack, auto.Stack)
    render_dir = tmp_path / "rendered"
    stack.set_config("render_dir", auto.ConfigValue(str(render_dir)))

    first = stack.up(on_output=lambda _line: None)
    assert first.summary.result == "succeeded"
    rendered = manifests(render_dir)
    assert {
        "Namespace/sophia-ai",
        "Deployment/sophia-data",
        "Deployment/sophia-bi",
        "Service/sophia-gateway",
        "HorizontalPodAutoscaler/sophia-gateway",
    } <= set(rendered)
    assert "Secret/sophia-secrets" not in rendered  # no esc:environment
    data = rendered["Deployment/sophia-data"]
    data_path = data["path"]
    assert isinstance(data_path, Path)
    assert data["doc"]["spec"]["replicas"] == 3  # type: ignore[index]
    assert data["doc"]["metadata"]["namespace"] == NAMESPACE  # type: ignore[index]
    bi = rendered["Deployment/sophia-bi"]["doc"]["spec"]["template"]["spec"]  # type: ignore[index]
    assert bi["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert first.outputs["replicas"].value["data"] == 3
    assert first.outputs["render_dir"].value == str(render_dir)
    before = {name: item["path"].read_text() for name, item in rendered.items()}  # type: ignore[union-attr]

    stack.set_config("data_replicas", auto.ConfigValue("5"))
    preview = stack.preview(on_output=lambda _line: None)
    assert preview.change_summary.get("update") == 1, preview.change_summary
    second = stack.up(on_output=lambda _line: None)
    assert second.summary.resource_changes is not None and second.summary.resource_changes.get("update") == 1
    after = manifests(render_dir)
    assert after["Deployment/sophia-data"]["doc"]["spec"]["replicas"] == 5  # type: ignore[index]
    changed = {name for name, item in after.items() if item["path"].read_text() != before.get(name)}  # type: ignore[union-attr]
    assert changed == {"Deployment/sophia-data"}
    assert second.outputs["replicas"].value["data"] == 5

    stack.destroy(on_output=lambda _line: None)
    assert manifests(render_dir) == {}
    stack.workspace.remove_stack(STACK)


def test_esc_secrets_render_as_a_secret_and_stay_encrypted_in_the_state(stack: object, tmp_path: Path) -> None:
    from pulumi import automation as auto

    assert isinstance(stack, auto.Stack)
    render_dir = tmp_path / "rendered"
    stack.set_all_config(
        {
            "render_dir": auto.ConfigValue(str(render_dir)),
            "esc:environment": auto.ConfigValue("acme/sophia/dev"),
            "secrets": auto.ConfigValue('{"LAMBDA_API_KEY": "secret_e2e_value_42"}', secret=True),
        }
    )
    stack.up(on_output=lambda _line: None)
    secret = manifests(render_dir)["Secret/sophia-secrets"]["doc"]
    assert secret["metadata"]["annotations"] == {"sophia.ai/esc-environment": "acme/sophia/dev"}  # type: ignore[index]
    state = stack.export_stack()
    assert "secret_e2e_value_42" not in str(state.deployment)
    stack.destroy(on_output=lambda _line: None)


@pytest.mark.anyio
async def test_cost_report_reads_replicas_from_the_real_stack_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's replicas come from the suite stack as the stack tools keep it (same project, same backend)."""
    from sophia_infrastructure.clients.prometheus import Prometheus
    from sophia_infrastructure.settings import SETTINGS
    from sophia_infrastructure.state import InfraState
    from sophia_infrastructure.tools.optimize import cost_report, read_suite_config
    from sophia_shared.settings import Settings

    if CLI is None:
        _missing("no pulumi CLI (SOPHIA_PULUMI_CLI, PATH or ~/.cache/sophia/tools); build it: scripts/build-pulumi.sh")
    assert CLI is not None
    home = tmp_path / "pulumi-home"
    env = {"PULUMI_HOME": str(home), "PATH": str(CLI.parent)}
    if PLUGIN_OVERRIDE:
        env["SOPHIA_PULUMI_KUBERNETES_PLUGIN"] = PLUGIN_OVERRIDE
    if not ensure_kubernetes_plugin(CLI, environ=env).installed:
        _missing("no pulumi-resource-kubernetes v4.25.0; build it: scripts/build-pulumi.sh --kubernetes")
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.setenv("SOPHIA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    environ = {
        "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"),
        "SOPHIA_DATA_DIR": str(tmp_path / "data"),
        "SOPHIA_PULUMI_CLI": str(CLI),
        "PULUMI_CONFIG_PASSPHRASE": "e2e-passphrase",
    }
    state = InfraState(Settings(environ, cwd=tmp_path, specs=SETTINGS))
    engine = state.stack_engine()
    engine.set_config(state.project(), "dev", "data_replicas", "5", secret=False)

    config, source = read_suite_config(state, "dev")
    assert config is not None and source == f"stack config of {PROJECT}/sophia-dev"
    report = await cost_report(
        stack="sophia-dev", stack_config=config, replicas_from=source, prometheus=Prometheus(state.settings), cloud=None
    )
    assert {w.workload: w.replicas for w in report.workloads}["data"] == 5
    assert report.measurements.startswith("no measurements")
    with pytest.raises(InputError, match="sophia-nosuch is not deployed"):
        read_suite_config(state, "nosuch")
