"""The GPU tools through the in-process MCP client: the write gate, dry runs, the caps at the boundary, confirm,
the expired-lease reminder, and the key never in output."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from sophia_infrastructure.clients.lambda_cloud import LaunchRequest
from sophia_infrastructure.leases import Lease
from sophia_infrastructure.names import (
    GPU_ACCOUNT,
    GPU_FILE_SYSTEM,
    GPU_INSTANCES,
    GPU_LAUNCH,
    GPU_RESTART,
    GPU_SSH_KEY,
    GPU_TERMINATE,
    GPU_TYPES,
)
from sophia_infrastructure.settings import SETTINGS
from sophia_infrastructure.state import InfraState
from sophia_infrastructure.tools.gpu import TOOLS
from sophia_shared.errors import PolicyError
from sophia_shared.server import ServerSpec, build_server
from tests.fakes.lambda_cloud import API_KEY, FakeLambda, quick_state, settings_for

pytestmark = pytest.mark.anyio

LAUNCH = {"instance_type": "gpu_1x_a100", "region": "us-west-1", "ssh_key": "laptop", "lease_hours": 3, "name": "exp"}
READS = {GPU_TYPES, GPU_INSTANCES, GPU_ACCOUNT}
WRITES = {GPU_LAUNCH, GPU_TERMINATE, GPU_RESTART, GPU_SSH_KEY, GPU_FILE_SYSTEM}


def spec_on(fake: FakeLambda, tmp_path: Path) -> ServerSpec[InfraState]:
    return ServerSpec(
        name="sophia-infrastructure",
        key="infrastructure",
        instructions="GPU tools under test.",
        tools=list(TOOLS),
        settings=SETTINGS,
        make_state=lambda s: quick_state(fake, s, tmp_path),
        close_state=lambda state: state.close(),
    )


async def call(fake: FakeLambda, tmp_path: Path, tool: str, args: dict[str, Any], **settings: Any) -> Any:
    server = build_server(spec_on(fake, tmp_path), settings_for(tmp_path, **settings))
    async with Client(server) as client:
        return await client.call_tool(tool, args)


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content)


@pytest.fixture
def fake() -> FakeLambda:
    return FakeLambda()


async def test_write_tools_are_listed_only_with_the_gate_on(fake: FakeLambda, tmp_path: Path) -> None:
    async with Client(build_server(spec_on(fake, tmp_path), settings_for(tmp_path, gate=False))) as closed:
        shut = {t.name for t in (await closed.list_tools()).tools}
    async with Client(build_server(spec_on(fake, tmp_path), settings_for(tmp_path))) as opened:
        tools = {t.name: t for t in (await opened.list_tools()).tools}
    assert shut == READS and set(tools) == READS | WRITES
    assert tools[GPU_TERMINATE].annotations.destructive_hint and tools[GPU_TYPES].annotations.read_only_hint


async def test_with_the_gate_off_the_client_posts_nothing(fake: FakeLambda, tmp_path: Path) -> None:
    cloud = quick_state(fake, settings_for(tmp_path, gate=False), tmp_path).lambda_cloud()
    request = LaunchRequest("us-west-1", "gpu_1x_a100", "laptop", 1)
    running = fake.add_instance("gpu_1x_a10", "us-east-1", name="x")
    for attempt in (
        cloud.launch(request, dry_run=False),
        cloud.launch(request),
        cloud.terminate(running, confirm=running),
        cloud.restart(running),
        cloud.add_ssh_key("k", "ssh-ed25519 AAAA k"),
        cloud.delete_file_system("fs1"),
    ):
        with pytest.raises(PolicyError, match="writes are disabled"):
            await attempt
    await cloud.aclose()
    assert fake.calls == []


async def test_launch_is_a_dry_run_by_default_and_shows_request_price_lease_and_month(
    fake: FakeLambda, tmp_path: Path
) -> None:
    result = await call(fake, tmp_path, GPU_LAUNCH, LAUNCH)
    assert not result.is_error, text(result)
    data = result.structured_content
    assert fake.posts == [] and data["dry_run"] and data["instance_ids"] == []
    body = json.loads(data["request"].split(" ", 2)[2])
    assert data["request"].startswith("POST /api/v1/instance-operations/launch ")
    assert body == {"instance_type_name": "gpu_1x_a100", "name": "exp", "region_name": "us-west-1",
                    "ssh_key_names": ["laptop"]}  # fmt: skip
    assert (data["usd_per_hour"], data["lease_cost_usd"]) == (1.29, 3.87)
    assert data["month_usd"] == pytest.approx(941.70) and data["budget_usd"] == 1000  # 1.29 $/h × 730 h
    assert "Budget alert (90 %)" in data["budget_alerts"][0]
    assert "DRY RUN" in text(result) and "dry_run=false" in text(result)


async def test_launch_refuses_one_cent_above_the_hourly_cap_and_allows_the_cap(
    fake: FakeLambda, tmp_path: Path
) -> None:
    above = await call(fake, tmp_path, GPU_LAUNCH, {**LAUNCH, "dry_run": False}, SOPHIA_LAMBDA_MAX_HOURLY_USD="1.28")
    assert above.is_error and "above the $1.28/h cap" in text(above)
    assert fake.launches == []
    at = await call(fake, tmp_path, GPU_LAUNCH, {**LAUNCH, "dry_run": False}, SOPHIA_LAMBDA_MAX_HOURLY_USD="1.29")
    assert not at.is_error, text(at)
    assert len(fake.launches) == 1 and at.structured_content["instance_ids"]


async def test_launch_refuses_when_running_plus_new_would_cross_the_budget(fake: FakeLambda, tmp_path: Path) -> None:
    fake.add_instance("gpu_1x_a10", "us-east-1")  # 0.75 + 1.29 = 2.04 $/h → $1489.20 a month
    over = await call(
        fake, tmp_path, GPU_LAUNCH, {**LAUNCH, "dry_run": False}, SOPHIA_INFRA_MONTHLY_BUDGET_USD="1489.19"
    )
    assert over.is_error and "above the $1489.19 monthly budget" in text(over) and fake.launches == []
    at = await call(fake, tmp_path, GPU_LAUNCH, {**LAUNCH, "dry_run": False}, SOPHIA_INFRA_MONTHLY_BUDGET_USD="1489.20")
    assert not at.is_error and len(fake.launches) == 1
    assert "90 %" in at.structured_content["budget_alerts"][0]


async def test_a_dry_run_without_capacity_names_the_regions_that_have_it(fake: FakeLambda, tmp_path: Path) -> None:
    fake.set_capacity("gpu_1x_a100", "us-east-1")
    result = await call(fake, tmp_path, GPU_LAUNCH, LAUNCH)
    assert not result.structured_content["has_capacity"]
    assert "NO capacity in the chosen region now; regions with capacity: us-east-1" in text(result)


async def test_launch_records_a_lease_and_instances_show_computed_cost(fake: FakeLambda, tmp_path: Path) -> None:
    launched = await call(fake, tmp_path, GPU_LAUNCH, {**LAUNCH, "dry_run": False})
    (instance_id,) = launched.structured_content["instance_ids"]
    state = quick_state(fake, settings_for(tmp_path), tmp_path)
    lease = state.leases.get(instance_id)
    assert lease is not None and lease.expires - lease.launched == dt.timedelta(hours=3)
    listed = await call(fake, tmp_path, GPU_INSTANCES, {})
    (item,) = listed.structured_content["items"]
    assert item["status"] == "booting" and item["lease_expires_at"] == lease.expires_at
    assert item["uptime_hours"] >= 0 and item["cost_so_far_usd"] >= 0
    assert "computed: price × uptime" in text(listed)


async def test_terminate_refuses_a_confirm_that_is_not_the_name_or_id(fake: FakeLambda, tmp_path: Path) -> None:
    target = fake.add_instance("gpu_1x_a10", "us-east-1", name="trainer")
    wrong = await call(fake, tmp_path, GPU_TERMINATE, {"instance_id": target, "confirm": "yes"})
    assert wrong.is_error and "confirm must equal" in text(wrong) and fake.posts == []
    by_name = await call(fake, tmp_path, GPU_TERMINATE, {"instance_id": target, "confirm": "trainer"})
    assert not by_name.is_error and fake.instances[target]["status"] == "terminating"


async def test_every_read_warns_about_an_expired_lease(fake: FakeLambda, tmp_path: Path) -> None:
    late = fake.add_instance("gpu_1x_a10", "us-east-1")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    quick_state(fake, settings_for(tmp_path), tmp_path).leases.record(
        Lease(late, "", "gpu_1x_a10", "us-east-1", 75, (past - dt.timedelta(hours=2)).isoformat(), past.isoformat())
    )
    for tool, args in ((GPU_TYPES, {}), (GPU_INSTANCES, {}), (GPU_ACCOUNT, {"kind": "ssh_keys"})):
        result = await call(fake, tmp_path, tool, args)
        assert result.structured_content["expired_leases"], tool
        assert text(result).startswith(f"WARNING: Lease expired: instance {late}"), tool


async def test_types_filter_by_gpu_price_and_region(fake: FakeLambda, tmp_path: Path) -> None:
    names = lambda r: [i["name"] for i in r.structured_content["items"]]  # noqa: E731
    assert names(await call(fake, tmp_path, GPU_TYPES, {"gpu": "h100"})) == ["gpu_8x_h100_sxm5"]
    assert names(await call(fake, tmp_path, GPU_TYPES, {"max_usd_per_hour": 1.29})) == ["gpu_1x_a10", "gpu_1x_a100"]
    assert names(await call(fake, tmp_path, GPU_TYPES, {"region": "us-east-1"})) == ["gpu_1x_a10"]


async def test_account_objects_and_their_writes(fake: FakeLambda, tmp_path: Path) -> None:
    fs = await call(fake, tmp_path, GPU_ACCOUNT, {"kind": "file_systems"})
    assert fs.structured_content["items"][0]["region"] == "us-west-1"
    added = await call(
        fake, tmp_path, GPU_SSH_KEY, {"action": "add", "name": "ci", "public_key": "ssh-ed25519 AAAA ci"}
    )
    made = await call(fake, tmp_path, GPU_FILE_SYSTEM, {"action": "create", "name": "ckpt", "region": "us-east-1"})
    assert not added.is_error and not made.is_error, text(added) + text(made)
    assert [k["name"] for k in fake.ssh_keys] == ["laptop", "ci"] and len(fake.file_systems) == 2


async def test_the_key_is_never_in_any_output(fake: FakeLambda, tmp_path: Path) -> None:
    outputs = [
        await call(fake, tmp_path, GPU_TYPES, {}),
        await call(fake, tmp_path, GPU_LAUNCH, {**LAUNCH, "dry_run": False}),
        await call(fake, tmp_path, GPU_INSTANCES, {}),
        await call(fake, tmp_path, GPU_TERMINATE, {"instance_id": "nope", "confirm": "nope"}),
    ]
    fake.fail_next(3, 500)
    outputs.append(await call(fake, tmp_path, GPU_INSTANCES, {}))
    fake.reject_key(API_KEY)
    outputs.append(await call(fake, tmp_path, GPU_INSTANCES, {}))
    assert outputs[-1].is_error and outputs[-2].is_error and outputs[3].is_error
    for result in outputs:
        assert API_KEY not in text(result) and API_KEY not in json.dumps(result.structured_content or {})
