"""The suite's real `sophia-ai` program through our MCP tools: the real server spec (its own suite project, the
Kubernetes plugin installed from the local build) behind the in-process MCP client, against the real Pulumi CLI
in render mode. Preview, up, outputs, a dry-run and an applied scale of the data workload, the HPA bound on
the gateway, and destroy's confirm, each checked against the manifests rendered on disk.

Hermetic: a temporary file:// backend, PULUMI_HOME and data dir, no KUBECONFIG, and plugin acquisition
disabled so a missing plugin fails fast instead of trying to download. Skipped when the CLI or the plugin is
missing, unless SOPHIA_REQUIRE_PULUMI=1 (CI), then failed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client

from sophia_infrastructure.names import (
    STACK_CONFIG,
    STACK_DESTROY,
    STACK_LIST,
    STACK_OUTPUTS,
    STACK_PREVIEW,
    STACK_SCALE,
    STACK_UP,
)
from sophia_infrastructure.server import SPEC
from sophia_infrastructure.suite.plugins import KUBERNETES_VERSION, PLUGIN_VARIABLE, plugin_binary
from sophia_infrastructure.suite.program import render_dir_for
from sophia_shared.server import build_server
from tests import infra_pulumi_support as support
from tests.infra_pulumi_support import KUBERNETES_PLUGIN_OVERRIDE, missing_tool, pulumi_environ, settings_of

pulumi_cli = support.pulumi_cli  # fixture

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DATA = "Deployment/sophia-data"
STACK = "sophia-dev"


@pytest.fixture
def suite_env(tmp_path: Path, pulumi_cli: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The server's settings, and the process environment the CLI inherits, for one hermetic run."""
    plugin_env = {PLUGIN_VARIABLE: KUBERNETES_PLUGIN_OVERRIDE} if KUBERNETES_PLUGIN_OVERRIDE else {}
    built = plugin_binary(pulumi_cli, {"PATH": str(pulumi_cli.parent), **plugin_env})
    if built is None or not built.is_file():
        missing_tool(
            f"no pulumi-resource-kubernetes v{KUBERNETES_VERSION} beside {pulumi_cli} (or {PLUGIN_VARIABLE}): "
            "build it with scripts/build-pulumi.sh --kubernetes"
        )
    env = pulumi_environ(
        tmp_path,
        pulumi_cli,
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_SKIP_UPDATE_CHECK="true",
        SOPHIA_INFRA_REAP_SECONDS="0",
        SOPHIA_ESC_FILE=str(tmp_path / "no-esc.yaml"),
        **plugin_env,
    )
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _client(env: dict[str, str]) -> Client:
    return Client(build_server(SPEC, settings_of({**env, "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE": "1"})))


def _text(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


async def _call(client: Client, tool: str, args: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, args)
    assert not result.is_error, _text(result)
    return result


def rendered(render_dir: Path) -> dict[str, dict[str, Any]]:
    """The manifests on disk by `Kind/name`."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(render_dir.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def _replicas(render_dir: Path) -> int:
    return int(rendered(render_dir)[DATA]["spec"]["replicas"])


async def test_the_suite_program_through_the_stack_tools(suite_env: dict[str, str]) -> None:
    started = time.perf_counter()
    render_dir = render_dir_for(Path(suite_env["SOPHIA_DATA_DIR"]), STACK)
    async with _client(suite_env) as client:
        preview = (await _call(client, STACK_PREVIEW, {"stack": "dev"})).structured_content
        planned = {(r["type"], r["name"]) for r in preview["resources"] if r["op"] == "create"}
        assert {
            ("kubernetes:core/v1:Namespace", "sophia-ai"),
            ("kubernetes:apps/v1:Deployment", "sophia-data"),
            ("kubernetes:apps/v1:Deployment", "sophia-bi"),
            ("kubernetes:core/v1:Service", "sophia-gateway"),
            ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "sophia-gateway"),
        } <= planned
        assert "does not exist yet" in preview["note"]
        # A preview changes nothing: no manifest, and the scratch stack is removed again.
        assert not render_dir.exists()
        assert (await _call(client, STACK_LIST, {})).structured_content["items"] == []

        up = (await _call(client, STACK_UP, {"stack": "dev"})).structured_content
        assert up["counts"].get("create", 0) >= 8 and "update" not in up["counts"]
        manifests = rendered(render_dir)
        assert {DATA, "Deployment/sophia-ai", "HorizontalPodAutoscaler/sophia-gateway"} <= set(manifests)
        assert manifests[DATA]["spec"]["replicas"] == 3
        assert manifests["HorizontalPodAutoscaler/sophia-gateway"]["spec"]["maxReplicas"] == 10

        outputs = (await _call(client, STACK_OUTPUTS, {"stack": "dev"})).structured_content["outputs"]
        assert outputs["replicas"] == {"ai": 2, "data": 3, "bi": 1, "infrastructure": 1, "gateway": 3}
        assert outputs["mode"] == "render" and outputs["render_dir"] == str(render_dir)

        dry = await _call(client, STACK_SCALE, {"workload": "data", "replicas": 5})
        scaled = dry.structured_content
        assert (scaled["current"], scaled["target"], scaled["dry_run"]) == (3, 5, True)
        assert scaled["plan"]["counts"].get("update") == 1
        (changed,) = [r for r in scaled["plan"]["resources"] if r["op"] != "same"]
        assert (changed["type"], changed["name"], changed["op"]) == (
            "kubernetes:apps/v1:Deployment",
            "sophia-data",
            "update",
        )
        assert "spec.replicas: 3 → 5" in changed["diff"]
        assert "DRY RUN" in _text(dry)
        # Nothing was persisted: the manifest still says 3 and the stack has no data_replicas.
        assert _replicas(render_dir) == 3
        config = (await _call(client, STACK_CONFIG, {"stack": "dev"})).structured_content["values"]
        assert "sophia-ai:data_replicas" not in config

        applied = await _call(client, STACK_SCALE, {"workload": "data", "replicas": 5, "dry_run": False})
        assert applied.structured_content["plan"]["counts"].get("update") == 1
        assert applied.structured_content["plan"]["outputs"]["replicas"]["data"] == 5
        assert _replicas(render_dir) == 5
        assert rendered(render_dir)["HorizontalPodAutoscaler/sophia-gateway"]["spec"]["minReplicas"] == 3

        refused = await client.call_tool(STACK_SCALE, {"workload": "gateway", "replicas": 11, "dry_run": False})
        assert refused.is_error and "3–10" in _text(refused) and "autoscaler" in _text(refused)
        gateway = rendered(render_dir)["Deployment/sophia-gateway"]
        assert gateway["spec"]["replicas"] == 3

        wrong = await client.call_tool(STACK_DESTROY, {"stack": "dev", "confirm": "dev"})
        assert wrong.is_error and f'confirm="{STACK}"' in _text(wrong)
        assert _replicas(render_dir) == 5

        gone = (await _call(client, STACK_DESTROY, {"stack": "dev", "confirm": STACK})).structured_content
        assert gone["counts"].get("delete", 0) >= 8
        assert rendered(render_dir) == {}
    assert time.perf_counter() - started < 90
