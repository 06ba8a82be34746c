"""The Lambda Cloud client against the fake: the API's limits, error codes, statuses, 5xx and timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sophia_infrastructure.clients.lambda_cloud import LambdaCloud, LaunchRequest, Spacing
from sophia_infrastructure.leases import LeaseBook
from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError
from sophia_shared.http import RetryPolicy
from tests.fakes.lambda_cloud import API, API_KEY, FakeLambda, quick_state, settings_for
from tests.fakes.vendor_app import serve

pytestmark = pytest.mark.anyio

A100 = LaunchRequest(region="us-west-1", instance_type="gpu_1x_a100", ssh_key="laptop", lease_hours=2, name="run")


@pytest.fixture
def fake() -> FakeLambda:
    return FakeLambda()


@pytest.fixture
async def cloud(fake: FakeLambda, tmp_path: Path) -> Any:
    client = quick_state(fake, settings_for(tmp_path), tmp_path).lambda_cloud()
    yield client
    await client.aclose()


async def test_requests_are_queued_one_interval_apart_not_refused(tmp_path: Path) -> None:
    fake = FakeLambda(min_interval=0.05)
    client = LambdaCloud(
        settings_for(tmp_path),
        transport=httpx.ASGITransport(app=fake),
        retry=RetryPolicy(max_attempts=1),
        request_spacing=Spacing(0.06),
        launch_spacing=Spacing(0),
    )
    async with anyio.create_task_group() as tasks:
        for _ in range(5):
            tasks.start_soon(client.instance_types)
    await client.aclose()
    gaps = [b.at - a.at for a, b in zip(fake.calls, fake.calls[1:], strict=False)]
    assert len(fake.calls) == 5 and fake.limit_violations == 0
    assert min(gaps) >= 0.05


async def test_launches_wait_twelve_seconds_for_each_other_by_default() -> None:
    clock = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    launches = Spacing(12.0, clock=lambda: clock[0], sleep=sleep)
    await launches.wait()
    clock[0] += 3
    await launches.wait()
    await launches.wait()
    assert slept == [9.0, 12.0]


async def test_the_default_client_spaces_requests_one_second_and_launches_twelve() -> None:
    from sophia_infrastructure.clients.lambda_cloud import LAUNCH_INTERVAL, REQUEST_INTERVAL

    assert (REQUEST_INTERVAL, LAUNCH_INTERVAL) == (1.0, 12.0)


async def test_types_list_price_specs_and_capacity_and_follow_capacity_changes(
    cloud: LambdaCloud, fake: FakeLambda
) -> None:
    before = {o.name: o for o in await cloud.instance_types()}
    fake.set_capacity("gpu_1x_a100", "us-east-1", "us-west-1")
    after = {o.name: o for o in await cloud.instance_types()}
    a100 = before["gpu_1x_a100"]
    assert (a100.price_cents_per_hour, a100.gpus, a100.vcpus) == (129, 1, 30)
    assert a100.regions_with_capacity == ("us-west-1",)
    assert after["gpu_1x_a100"].regions_with_capacity == ("us-east-1", "us-west-1")


async def test_instances_move_from_booting_to_terminated(cloud: LambdaCloud, fake: FakeLambda) -> None:
    plan = await cloud.launch(A100, dry_run=False)
    (instance_id,) = plan.instance_ids
    seen = [(await cloud.instance(instance_id)).status, (await cloud.instance(instance_id)).status]
    await cloud.terminate(instance_id, confirm="run")
    seen += [(await cloud.instance(instance_id)).status, (await cloud.instance(instance_id)).status]
    assert seen == ["booting", "active", "terminating", "terminated"]


async def test_capacity_lost_at_launch_names_the_tool_that_shows_capacity(cloud: LambdaCloud, fake: FakeLambda) -> None:
    fake.sold_out_on_launch.add("gpu_1x_a100")
    with pytest.raises(BackendError, match="no capacity for this instance type") as caught:
        await cloud.launch(A100, dry_run=False)
    assert "gpu_types" in caught.value.hint


async def test_launch_without_capacity_says_which_regions_have_it(cloud: LambdaCloud, fake: FakeLambda) -> None:
    fake.set_capacity("gpu_1x_a100", "us-east-1", "us-south-1")
    with pytest.raises(BackendError, match="regions with capacity now: us-east-1, us-south-1"):
        await cloud.launch(A100, dry_run=False)
    assert fake.launches == []


async def test_quota_and_wrong_region_file_system_are_translated_by_code(cloud: LambdaCloud, fake: FakeLambda) -> None:
    fake.quota = 0
    with pytest.raises(BackendError, match="quota is exhausted") as quota:
        await cloud.launch(A100, dry_run=False)
    assert "Contact Support" in quota.value.message and "gpu_instances" in quota.value.hint
    fake.quota = 10
    with pytest.raises(InputError, match="different region") as region:
        await cloud.launch(
            LaunchRequest("us-east-1", "gpu_1x_a10", "laptop", 1, file_systems=["datasets"]), dry_run=False
        )
    assert "kind=file_systems" in region.value.hint


async def test_a_rejected_key_reopens_esc_once_then_says_what_to_do(fake: FakeLambda, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, key="secret_wrong-key_abcdef0123456789")
    refreshes: list[bool] = []
    settings.refresh_esc = lambda: refreshes.append(True) or True  # type: ignore[method-assign]
    client = quick_state(fake, settings, tmp_path).lambda_cloud()
    with pytest.raises(AuthError, match="rejected the API key in LAMBDA_API_KEY") as caught:
        await client.instances()
    await client.aclose()
    assert refreshes == [True] and len(fake.calls) == 2
    assert "secret_wrong-key" not in caught.value.agent_message()


async def test_the_older_key_name_is_used_when_the_new_one_is_unset(fake: FakeLambda, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, key=None, LAMBDA_LABS_API_KEY=API_KEY)
    client = quick_state(fake, settings, tmp_path).lambda_cloud()
    assert [i.status for i in await client.instances()] == []
    await client.aclose()
    assert fake.calls[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_a_missing_key_is_named_only_when_a_call_needs_it(fake: FakeLambda, tmp_path: Path) -> None:
    state = quick_state(fake, settings_for(tmp_path, key=None), tmp_path)
    client = state.lambda_cloud()  # making the client needs no key
    with pytest.raises(ConfigError, match=r"LAMBDA_API_KEY is not set .nor its older name LAMBDA_LABS_API_KEY"):
        await client.instance_types()
    await state.close()
    assert fake.calls == []


async def test_reads_are_retried_after_a_5xx_but_a_launch_is_not(cloud: LambdaCloud, fake: FakeLambda) -> None:
    fake.fail_next(1, 503)
    assert len(await cloud.instance_types()) == 3
    assert len(fake.calls_to(API + "/instance-types")) == 2
    fake.launch_fails_with = 502
    with pytest.raises(BackendError, match="failed with HTTP 502"):
        await cloud.launch(A100, dry_run=False)
    assert len(fake.launches) == 1  # a launch that may have happened is never sent twice
    assert cloud.leases.all() == []


async def test_a_timeout_becomes_an_actionable_error(fake: FakeLambda, tmp_path: Path) -> None:
    with serve(fake) as url:
        client = LambdaCloud(
            settings_for(tmp_path, SOPHIA_LAMBDA_BASE_URL=url),
            timeout=httpx.Timeout(0.2),
            retry=RetryPolicy(max_attempts=2, base_delay=0.01),
            leases=LeaseBook(tmp_path / "leases.json"),
            request_spacing=Spacing(0),
        )
        fake.slow_next(2, seconds=1.0)
        with pytest.raises(BackendError, match=r"Could not get an answer from Lambda Cloud .* after 2 attempts"):
            await client.instances()
        await client.aclose()
