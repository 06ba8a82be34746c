"""The stack tools through the in-process MCP client against the real Pulumi CLI on a temporary file:// backend:
resources (files) are really created, updated and deleted; previews and dry-run scales change nothing; the
write gate, destroy's confirm, secrets, locks and progress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from sophia_infrastructure.names import (
    STACK_CANCEL,
    STACK_CONFIG,
    STACK_CONFIG_SET,
    STACK_DESTROY,
    STACK_HISTORY,
    STACK_LIST,
    STACK_OUTPUTS,
    STACK_PREVIEW,
    STACK_REFRESH,
    STACK_SCALE,
    STACK_UP,
)
from tests import infra_pulumi_support as support
from tests.infra_pulumi_support import call_ok, journal, stand_in_client, text_of

pulumi_cli, pulumi_env = support.pulumi_cli, support.pulumi_env  # fixtures

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WRITE_TOOLS = {STACK_UP, STACK_REFRESH, STACK_DESTROY, STACK_CONFIG_SET}


_client = stand_in_client
_text = text_of
_call = call_ok


def _stack_config_file(env: dict[str, str]) -> Path:
    return Path(env["SOPHIA_DATA_DIR"]) / "infra" / "pulumi" / "sophia-ai" / "Pulumi.sophia-dev.yaml"


async def test_preview_up_scale_outputs_and_destroy_really_change_files(
    pulumi_env: dict[str, str], tmp_path: Path
) -> None:
    files = tmp_path / "files"
    async with _client(pulumi_env, files) as client:
        preview = await _call(client, STACK_PREVIEW, {"stack": "dev"})
        planned = preview.structured_content
        assert planned["counts"] == {"create": 5}
        assert {r["name"] for r in planned["resources"]} == {"ai", "data", "bi", "infrastructure", "gateway"}
        assert "does not exist yet" in planned["note"]
        # A preview changes nothing: no files, and the scratch stack is gone again.
        assert not files.exists()
        assert (await _call(client, STACK_LIST, {})).structured_content["items"] == []

        up = await _call(client, STACK_UP, {"stack": "dev"})
        assert up.structured_content["counts"] == {"create": 5}
        assert (files / "data.yaml").read_text() == "replicas: 3"
        assert sorted(op for op, _ in journal(files)) == ["create"] * 5

        dry = await _call(client, STACK_SCALE, {"workload": "data", "replicas": 5})
        scaled = dry.structured_content
        assert (scaled["current"], scaled["target"], scaled["dry_run"]) == (3, 5, True)
        assert scaled["plan"]["counts"] == {"update": 1, "same": 4}
        (changed,) = scaled["plan"]["resources"]
        assert changed["name"] == "data" and changed["op"] == "update"
        assert "content: replicas: 3 → replicas: 5" in changed["diff"]
        assert "DRY RUN" in _text(dry)
        # The dry run restored the config and touched no file.
        assert (files / "data.yaml").read_text() == "replicas: 3"
        config = await _call(client, STACK_CONFIG, {"stack": "dev"})
        assert "sophia-ai:data_replicas" not in config.structured_content["values"]

        applied = await _call(client, STACK_SCALE, {"workload": "data", "replicas": 5, "dry_run": False})
        assert applied.structured_content["plan"]["counts"]["update"] == 1
        assert (files / "data.yaml").read_text() == "replicas: 5"
        assert journal(files)[-1] == ("update", "data.yaml")

        outputs = await _call(client, STACK_OUTPUTS, {"stack": "sophia-dev"})
        assert outputs.structured_content["outputs"]["data_replicas"] == 5
        listed = (await _call(client, STACK_LIST, {})).structured_content["items"]
        assert [(s["name"], s["resource_count"]) for s in listed] == [("sophia-dev", 7)]
        history = (await _call(client, STACK_HISTORY, {"stack": "dev"})).structured_content["items"]
        assert [h["kind"] for h in history] == ["update", "update"]
        assert history[0]["resource_changes"].get("update") == 1

        refused = await client.call_tool(STACK_DESTROY, {"stack": "dev", "confirm": "dev"})
        assert refused.is_error and 'confirm="sophia-dev"' in _text(refused)
        assert (files / "data.yaml").exists()

        gone = await _call(client, STACK_DESTROY, {"stack": "dev", "confirm": "sophia-dev"})
        assert gone.structured_content["counts"] == {"delete": 5}
        assert not list(files.glob("*.yaml"))


async def test_scale_holds_the_bounds_at_the_exact_boundaries(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    async with _client(pulumi_env, tmp_path / "files") as client:
        await _call(client, STACK_UP, {"stack": "dev"})
        for workload, replicas in (("data", 1), ("gateway", 3), ("gateway", 10)):
            ok = await _call(client, STACK_SCALE, {"workload": workload, "replicas": replicas})
            assert ok.structured_content["target"] == replicas
        for workload, replicas, allowed in (("gateway", 2, "3–10"), ("gateway", 11, "3–10")):
            refused = await client.call_tool(STACK_SCALE, {"workload": workload, "replicas": replicas})
            assert refused.is_error and allowed in _text(refused) and "autoscaler" in _text(refused)
        by_factor = await _call(client, STACK_SCALE, {"workload": "gateway", "factor": 3.3})  # 3 × 3.3 → 10
        assert by_factor.structured_content["target"] == 10
        too_far = await client.call_tool(STACK_SCALE, {"workload": "gateway", "factor": 3.4})  # 3 × 3.4 → 11
        assert too_far.is_error and "to 11 replica(s) is refused" in _text(too_far)
        floor = await _call(client, STACK_SCALE, {"workload": "data", "factor": 0.2})  # 3 × 0.2 → 1, the floor
        assert floor.structured_content["target"] == 1
        neither = await client.call_tool(STACK_SCALE, {"workload": "data"})
        assert neither.is_error and "exactly one of replicas" in _text(neither)
        unknown = await client.call_tool(STACK_SCALE, {"workload": "warehouse", "replicas": 2})
        assert unknown.is_error and "gateway" in _text(unknown)


async def test_gate_off_lists_no_write_tool_and_scale_changes_nothing(
    pulumi_env: dict[str, str], tmp_path: Path
) -> None:
    files = tmp_path / "files"
    async with _client(pulumi_env, files, writes=False) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert not names & WRITE_TOOLS
        assert {STACK_LIST, STACK_PREVIEW, STACK_SCALE, STACK_CANCEL} <= names
        refused = await client.call_tool(STACK_SCALE, {"workload": "data", "replicas": 4, "dry_run": False})
        assert refused.is_error and "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE" in _text(refused)
        assert (await _call(client, STACK_LIST, {})).structured_content["items"] == []
    assert not files.exists()
    assert not _stack_config_file(pulumi_env).exists()


async def test_secret_config_is_never_echoed(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    secret = "sk-live-7f3e9a1c5b2d"
    files = tmp_path / "files"
    async with _client(pulumi_env, files) as client:
        seen = [
            await _call(
                client, STACK_CONFIG_SET, {"stack": "dev", "key": "api_token", "value": secret, "secret": True}
            ),
            await _call(client, STACK_CONFIG, {"stack": "dev"}),
            await _call(client, STACK_CONFIG, {"stack": "dev", "key": "api_token"}),
            await _call(client, STACK_UP, {"stack": "dev"}),
            await _call(client, STACK_OUTPUTS, {"stack": "dev"}),
            await _call(client, STACK_LIST, {}),
            await _call(client, STACK_HISTORY, {"stack": "dev"}),
        ]
    assert seen[2].structured_content["values"] == {"sophia-ai:api_token": "[secret]"}
    assert seen[4].structured_content["outputs"]["api_token"] == "[secret]"
    for result in seen:
        assert secret not in _text(result) and secret not in json.dumps(result.structured_content)
    assert secret not in _stack_config_file(pulumi_env).read_text()  # stored encrypted


async def test_progress_reports_engine_events(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    seen: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with _client(pulumi_env, tmp_path / "files") as client:
        await _call(client, STACK_UP, {"stack": "dev"}, progress_callback=progress)
    assert "up sophia-dev: create data" in seen
    assert "up sophia-dev: create data done" in seen
    assert seen[-1] == "up sophia-dev: finished"


async def test_a_stack_runs_one_operation_at_a_time(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    files = tmp_path / "files"
    seen: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with _client(pulumi_env, files) as client:
        await _call(client, STACK_CONFIG_SET, {"stack": "dev", "key": "delay", "value": "1"})
        results: list[Any] = []

        async def slow_up() -> None:
            results.append(await client.call_tool(STACK_UP, {"stack": "dev"}))

        async with anyio.create_task_group() as group:
            group.start_soon(slow_up)
            for _ in range(600):  # until the up has made its first resource
                if (files / "ai.yaml").exists():
                    break
                await anyio.sleep(0.1)
            busy = await client.call_tool(STACK_UP, {"stack": "dev"})
            # A preview waits for the running up (reporting that it waits) instead of failing.
            waited = await _call(client, STACK_PREVIEW, {"stack": "dev"}, progress_callback=progress)
        assert busy.is_error and "busy" in _text(busy) and STACK_CANCEL in _text(busy)
        assert not results[0].is_error
        assert "waiting for up on sophia-dev" in seen
        assert waited.structured_content["counts"] == {"same": 5}


async def test_a_stack_locked_by_another_process_names_how_to_clear_it(
    pulumi_env: dict[str, str], tmp_path: Path
) -> None:
    files = tmp_path / "files"
    async with _client(pulumi_env, files) as client:
        await _call(client, STACK_UP, {"stack": "dev"})
        locks = Path(pulumi_env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi" / "locks"
        lock_dir = locks / "organization" / "sophia-ai" / "sophia-dev"
        lock_dir.mkdir(parents=True, exist_ok=True)
        (lock_dir / "00000000-0000-0000-0000-000000000001.json").write_text(
            json.dumps(
                {"pid": 999999, "username": "someone", "hostname": "elsewhere", "timestamp": "2026-11-30T00:00:00Z"}
            )
        )
        locked = await client.call_tool(STACK_SCALE, {"workload": "data", "replicas": 4, "dry_run": False})
        assert locked.is_error
        assert "locked" in _text(locked) and STACK_CANCEL in _text(locked) and "pulumi cancel" in _text(locked)
        # The refused scale left nothing behind: its config change was undone.
        assert "data_replicas removed (it was unset)" in _text(locked)
        assert (files / "data.yaml").read_text() == "replicas: 3"
        cleared = await _call(client, STACK_CANCEL, {"stack": "dev"})
        assert "lock" in _text(cleared)
        assert not list(lock_dir.glob("*.json"))
        await _call(client, STACK_UP, {"stack": "dev"})
        assert (files / "data.yaml").read_text() == "replicas: 3"
        await _call(client, STACK_SCALE, {"workload": "data", "replicas": 4, "dry_run": False})
    assert (files / "data.yaml").read_text() == "replicas: 4"


async def test_a_failed_scale_puts_the_previous_replicas_back(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    files = tmp_path / "files"
    async with _client(pulumi_env, files) as client:
        await _call(client, STACK_UP, {"stack": "dev"})
        await _call(client, STACK_CONFIG_SET, {"stack": "dev", "key": "fail_replicas", "value": "5"})

        # The key was unset: after the failed up it is unset again.
        failed = await client.call_tool(STACK_SCALE, {"workload": "data", "replicas": 5, "dry_run": False})
        assert failed.is_error
        said = _text(failed)
        assert "refused to write data.yaml" in said
        assert "config change was undone" in said and "data_replicas removed (it was unset)" in said
        values = (await _call(client, STACK_CONFIG, {"stack": "dev"})).structured_content["values"]
        assert "sophia-ai:data_replicas" not in values
        assert (files / "data.yaml").read_text() == "replicas: 3"

        # The key was set: after the failed up it holds its old value.
        await _call(client, STACK_SCALE, {"workload": "data", "replicas": 4, "dry_run": False})
        await _call(client, STACK_CONFIG_SET, {"stack": "dev", "key": "fail_replicas", "value": "6"})
        failed = await client.call_tool(STACK_SCALE, {"workload": "data", "replicas": 6, "dry_run": False})
        assert failed.is_error and "data_replicas set back to 4" in _text(failed)
        kept = await _call(client, STACK_CONFIG, {"stack": "dev", "key": "data_replicas"})
        assert kept.structured_content["values"] == {"sophia-ai:data_replicas": "4"}
        assert (files / "data.yaml").read_text() == "replicas: 4"

        # Nothing is left behind: the program, the config and the resources agree again.
        after = await _call(client, STACK_PREVIEW, {"stack": "dev"})
        assert after.structured_content["counts"] == {"same": 5}
        again = await _call(client, STACK_SCALE, {"workload": "data", "replicas": 5})
        assert again.structured_content["current"] == 4


async def test_a_cancelled_scale_puts_the_previous_replicas_back(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    files = tmp_path / "files"
    async with _client(pulumi_env, files) as client:
        # Five resources one after another, 1 s each: the up lasts long enough to be cancelled.
        await _call(client, STACK_CONFIG_SET, {"stack": "dev", "key": "delay", "value": "1"})
        results: list[Any] = []

        async def scale() -> None:
            args = {"workload": "data", "replicas": 5, "dry_run": False}
            results.append(await client.call_tool(STACK_SCALE, args))

        async with anyio.create_task_group() as group:
            group.start_soon(scale)
            for _ in range(600):  # until the up has made its first resource
                if (files / "ai.yaml").exists():
                    break
                await anyio.sleep(0.1)
            cancelled = await _call(client, STACK_CANCEL, {"stack": "dev"})
            assert "Asked the running scale of sophia-dev" in _text(cancelled)
        (result,) = results
        assert result.is_error
        assert "cancelled" in _text(result) and "data_replicas removed (it was unset)" in _text(result)
        values = (await _call(client, STACK_CONFIG, {"stack": "dev"})).structured_content["values"]
        assert "sophia-ai:data_replicas" not in values and values["sophia-ai:delay"] == "1"
    assert not (files / "data.yaml").exists() or (files / "data.yaml").read_text() == "replicas: 3"
