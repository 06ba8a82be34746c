"""What a review found, proved against the real CLI on a temporary file:// backend: a dry run never writes the real
stack config or backend, clearing another process's lock is gated, a cancel sent early stops a scale, bad names
and keys are clear input errors, replica values share one parser, and scale states its cost and the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from sophia_infrastructure.names import (
    INFRA_OPTIMIZE,
    STACK_CANCEL,
    STACK_CONFIG,
    STACK_CONFIG_SET,
    STACK_DESTROY,
    STACK_HISTORY,
    STACK_LIST,
    STACK_OUTPUTS,
    STACK_PREVIEW,
    STACK_SCALE,
    STACK_UP,
)
from sophia_infrastructure.pulumi.engine import check_config_key, check_stack_name
from sophia_infrastructure.state import InfraState
from sophia_shared.errors import InputError
from tests import infra_pulumi_support as support
from tests.infra_pulumi_support import call_ok, journal, stand_in_client, text_of

pulumi_cli, pulumi_env = support.pulumi_cli, support.pulumi_env  # fixtures


_client = stand_in_client
_text = text_of
_call = call_ok


async def _error(client: Client, tool: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, _text(result)
    return _text(result)


def _project_dir(env: dict[str, str]) -> Path:
    return Path(env["SOPHIA_DATA_DIR"]) / "infra" / "pulumi" / "sophia-ai"


def _backend(env: dict[str, str]) -> Path:
    return Path(env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi"


def _lock_dir(env: dict[str, str]) -> Path:
    return _backend(env) / "locks" / "organization" / "sophia-ai" / "sophia-dev"


def _plant_lock(env: dict[str, str]) -> Path:
    lock = _lock_dir(env) / "00000000-0000-0000-0000-000000000001.json"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(
        '{"pid": 999999, "username": "someone", "hostname": "elsewhere", "timestamp": "2026-11-30T00:00:00Z"}'
    )
    return lock


# --- no I/O ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dév", "prod/../dev", "x" * 300, "a/b/c/d", "--stack", "", "with space", "org/."])
def test_invalid_stack_names_are_input_errors(name: str) -> None:
    with pytest.raises(InputError, match="not a valid Pulumi stack name"):
        check_stack_name(name)


@pytest.mark.parametrize("name", ["dev", "sophia-prod", "my_stack.v2", "acme/dev", "acme/sophia-ai/prod", "x" * 100])
def test_valid_stack_names_pass(name: str) -> None:
    assert check_stack_name(name) == name


@pytest.mark.parametrize("key", ["-x", "--stack", "a b", "aws:", ":x", "a:b:c", "dév", "x" * 201])
def test_config_keys_that_are_not_namespace_name_are_refused(key: str) -> None:
    with pytest.raises(InputError, match="not a valid config key"):
        check_config_key(key)


@pytest.mark.parametrize("key", ["data_replicas", "aws:region", "kubernetes:context", "esc:environment", "a.b-c"])
def test_config_keys_in_namespace_name_form_pass(key: str) -> None:
    assert check_config_key(key) == key


# --- against the real CLI ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_dry_run_never_writes_the_real_stack_config_or_backend(
    pulumi_env: dict[str, str], tmp_path: Path
) -> None:
    files = tmp_path / "files"
    async with _client(pulumi_env, files) as client:
        # A stack that does not exist: previewed without creating anything in the real backend.
        missing = await _call(client, STACK_PREVIEW, {"stack": "dev"})
        assert missing.structured_content["counts"] == {"create": 5}
        assert "does not exist yet" in missing.structured_content["note"]
        backend = _backend(pulumi_env)
        assert not [p for p in backend.rglob("*") if "sophia-dev" in p.name] if backend.exists() else True
        assert not (_project_dir(pulumi_env) / "Pulumi.sophia-dev.yaml").exists()

        await _call(client, STACK_UP, {"stack": "dev"})
        config_file = _project_dir(pulumi_env) / "Pulumi.sophia-dev.yaml"
        before = (config_file.read_bytes(), config_file.stat().st_mtime_ns)
        watched: list[bytes] = []
        done = anyio.Event()

        async def watch() -> None:  # another client reading the file during the dry run sees no new value
            while not done.is_set():
                watched.append(config_file.read_bytes())
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            dry = await _call(client, STACK_SCALE, {"workload": "data", "replicas": 5})
            done.set()
        assert dry.structured_content["plan"]["counts"] == {"update": 1, "same": 4}
        assert (config_file.read_bytes(), config_file.stat().st_mtime_ns) == before
        assert all(b"data_replicas" not in seen for seen in watched)
        assert (files / "data.yaml").read_text() == "replicas: 3"


@pytest.mark.anyio
@pytest.mark.slow
async def test_clearing_another_process_lock_needs_the_write_gate_and_says_if_there_was_one(
    pulumi_env: dict[str, str], tmp_path: Path
) -> None:
    files = tmp_path / "files"
    async with _client(pulumi_env, files) as client:
        await _call(client, STACK_UP, {"stack": "dev"})
        nothing = await _call(client, STACK_CANCEL, {"stack": "dev"})
        assert "no process holds its update lock" in _text(nothing)
    lock = _plant_lock(pulumi_env)
    async with _client(pulumi_env, files, writes=False) as reader:
        refused = await _error(reader, STACK_CANCEL, {"stack": "dev"})
        assert "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE" in refused and "pulumi cancel" in refused
        assert lock.exists()
    async with _client(pulumi_env, files) as client:
        cleared = await _call(client, STACK_CANCEL, {"stack": "dev"})
        assert "Cleared the update lock process 999999 of someone@elsewhere" in _text(cleared)
        assert not lock.exists()


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_cancel_sent_while_scale_reads_the_config_stops_it(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    files = tmp_path / "files"
    states: list[InfraState] = []
    async with _client(pulumi_env, files, states=states) as client:
        await _call(client, STACK_UP, {"stack": "dev"})
        (state,) = states
        engine, project = state.stack_engine(), state.project()
        results: list[Any] = []

        async def scale() -> None:
            args = {"workload": "data", "replicas": 5, "dry_run": False}
            results.append(await client.call_tool(STACK_SCALE, args))

        async with anyio.create_task_group() as group:
            group.start_soon(scale)
            for _ in range(2000):  # the scale is registered before its first CLI call (reading the config)
                if engine.running(project, "dev") == "scale":
                    break
                await anyio.sleep(0.005)
            assert engine.running(project, "dev") == "scale"
            cancelled = await _call(client, STACK_CANCEL, {"stack": "dev"})
            assert "Asked the running scale of sophia-dev" in _text(cancelled)
        (result,) = results
        assert result.is_error and "cancelled" in _text(result)
        values = (await _call(client, STACK_CONFIG, {"stack": "dev"})).structured_content["values"]
        assert "sophia-ai:data_replicas" not in values
    assert (files / "data.yaml").read_text() == "replicas: 3"
    assert ("update", "data.yaml") not in journal(files)


@pytest.mark.anyio
@pytest.mark.slow
async def test_bad_stack_names_and_keys_are_clear_errors_not_server_bugs(
    pulumi_env: dict[str, str], tmp_path: Path
) -> None:
    async with _client(pulumi_env, tmp_path / "files") as client:
        for tool in (STACK_OUTPUTS, STACK_CONFIG, STACK_HISTORY, STACK_PREVIEW):
            for name in ("dév", "prod/../dev", "x" * 300):
                said = await _error(client, tool, {"stack": name})
                assert "not a valid Pulumi stack name" in said and "bug" not in said
        said = await _error(client, STACK_CONFIG_SET, {"stack": "dev", "key": "--non-interactive", "value": "1"})
        assert "not a valid config key" in said
        assert (await _call(client, STACK_LIST, {})).structured_content["items"] == []


@pytest.mark.anyio
@pytest.mark.slow
async def test_replica_values_are_whole_numbers_within_bounds(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    async with _client(pulumi_env, tmp_path / "files") as client:
        for key, value in (("data_replicas", "3.0"), ("gateway_replicas", "11"), ("sophia-ai:ai_replicas", "0")):
            said = await _error(client, STACK_CONFIG_SET, {"stack": "dev", "key": key, "value": value})
            assert "not a whole number" in said or "outside what" in said
        assert (await _call(client, STACK_LIST, {})).structured_content["items"] == []  # nothing was created
        ok = await _call(client, STACK_CONFIG_SET, {"stack": "dev", "key": "data_replicas", "value": "4"})
        assert ok.structured_content["values"] == {"sophia-ai:data_replicas": "4"}
        removed = await _call(
            client, STACK_CONFIG_SET, {"stack": "dev", "key": "data_replicas", "value": "", "remove": True}
        )
        assert "Removed data_replicas" in _text(removed)
        assert "sophia-ai:data_replicas" not in removed.structured_content["values"]
        again = await _call(
            client, STACK_CONFIG_SET, {"stack": "dev", "key": "data_replicas", "value": "", "remove": True}
        )
        assert "nothing was removed" in _text(again)


@pytest.mark.anyio
@pytest.mark.slow
async def test_scale_refuses_a_missing_stack_says_unchanged_and_guards_the_budget(
    pulumi_env: dict[str, str], tmp_path: Path
) -> None:
    files = tmp_path / "files"
    async with _client(pulumi_env, files) as client:
        missing = await _error(client, STACK_SCALE, {"workload": "data", "replicas": 5})
        assert "does not exist" in missing and STACK_UP in missing and STACK_PREVIEW in missing
        assert (await _call(client, STACK_LIST, {})).structured_content["items"] == []
        await _call(client, STACK_UP, {"stack": "dev"})
        same = await _call(client, STACK_SCALE, {"workload": "data", "replicas": 3})
        assert "already at 3 replicas" in _text(same) and same.structured_content["plan"] is None
        one = await _call(client, STACK_SCALE, {"workload": "data", "factor": 0.2})
        assert "to 1 replica " in _text(one)
        dry = (await _call(client, STACK_SCALE, {"workload": "gateway", "replicas": 4})).structured_content
        assert dry["month_usd_after"] > dry["month_usd_before"] > 0 and "730 h" in dry["cost_basis"]
    # A budget below the stack's cost: a warning in a dry run, a refusal for an apply.
    tight = {**pulumi_env, "SOPHIA_INFRA_MONTHLY_BUDGET_USD": "10"}
    async with _client(tight, files) as client:
        warned = await _call(client, STACK_SCALE, {"workload": "gateway", "replicas": 4})
        assert "WARNING" in _text(warned) and "SOPHIA_INFRA_MONTHLY_BUDGET_USD" in _text(warned)
        refused = await _error(client, STACK_SCALE, {"workload": "gateway", "replicas": 4, "dry_run": False})
        assert "Refused to scale gateway to 4" in refused and "Raise SOPHIA_INFRA_MONTHLY_BUDGET_USD" in refused
    assert (files / "gateway.yaml").read_text() == "replicas: 3"


@pytest.mark.anyio
@pytest.mark.slow
async def test_work_dir_projects_read_without_the_language_host(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: elsewhere\nruntime: cobol\n")
    async with _client(pulumi_env, tmp_path / "files") as client:
        listed = await _call(client, STACK_LIST, {"work_dir": str(project)})
        assert listed.structured_content["items"] == []
        needs_host = await _error(client, STACK_PREVIEW, {"stack": "dev", "work_dir": str(project)})
        assert "pulumi-language-cobol" in needs_host
        relative = await _error(client, STACK_LIST, {"work_dir": "proj"})
        assert "relative path" in relative and "absolute" in relative
        nowhere = await _error(client, STACK_LIST, {"work_dir": str(tmp_path / "nope")})
        assert "does not exist" in nowhere


@pytest.mark.anyio
@pytest.mark.slow
async def test_destroy_with_remove_stack_leaves_no_empty_dirs(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    manifests = tmp_path / "manifests" / "sophia-dev"
    async with _client(pulumi_env, tmp_path / "files") as client:
        await _call(client, STACK_CONFIG_SET, {"stack": "dev", "key": "render_dir", "value": str(manifests)})
        await _call(client, STACK_UP, {"stack": "dev"})
        (manifests / "0-crd").mkdir(parents=True)  # what render mode leaves once its files are deleted
        (manifests / "1-manifest").mkdir()
        await _call(client, STACK_DESTROY, {"stack": "dev", "confirm": " sophia-dev ", "remove_stack": True})
    assert not manifests.exists()
    assert not _lock_dir(pulumi_env).exists()


@pytest.mark.anyio
@pytest.mark.slow
async def test_optimize_refuses_a_stack_that_is_not_deployed(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    async with _client(pulumi_env, tmp_path / "files") as client:
        said = await _error(client, INFRA_OPTIMIZE, {"stack": "dev"})
        assert "not deployed" in said and STACK_UP in said and "$" not in said
