"""The reaper inside the running server: expired leases are terminated on its schedule and each outcome is
logged as a warning (never silent); without a key it says it cannot."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import anyio
import pytest

from sophia_infrastructure.leases import Lease
from tests.fakes.lambda_cloud import FakeLambda, quick_state, settings_for

pytestmark = pytest.mark.anyio


def _lease(instance_id: str, hours: float) -> Lease:
    now = dt.datetime.now(dt.UTC)
    return Lease(
        instance_id=instance_id,
        name="late",
        instance_type="gpu_1x_a10",
        region="us-east-1",
        price_cents_per_hour=75,
        launched_at=(now - dt.timedelta(hours=2)).isoformat(),
        expires_at=(now + dt.timedelta(hours=hours)).isoformat(),
    )


async def test_the_running_server_reaps_expired_leases_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeLambda()
    late = fake.add_instance("gpu_1x_a10", "us-east-1", name="late")
    ok = fake.add_instance("gpu_1x_a10", "us-east-1", name="ok")
    state = quick_state(fake, settings_for(tmp_path, SOPHIA_INFRA_REAP_SECONDS="0.05"), tmp_path)
    state.leases.record(_lease(late, -1))
    state.leases.record(_lease(ok, 3))
    with caplog.at_level(logging.WARNING, logger="sophia_infrastructure.state"):
        state.start_reaper()
        for _ in range(200):
            if state.reaped:
                break
            await anyio.sleep(0.05)
        await state.close()
    assert fake.instances[late]["status"] == "terminating" and fake.instances[ok]["status"] == "active"
    assert any(late in line and "terminated" in line for line in state.reaped)
    assert any("lease reaper" in r.message and late in r.message for r in caplog.records)


async def test_without_a_key_the_reaper_says_it_cannot_terminate(tmp_path: Path) -> None:
    fake = FakeLambda()
    state = quick_state(fake, settings_for(tmp_path, key=None), tmp_path)
    state.leases.record(_lease("abc123", -1))
    (said,) = await state.reap_once()
    await state.close()
    assert "LAMBDA_API_KEY is not set" in said and fake.posts == []


async def test_a_reap_interval_of_zero_starts_no_reaper(tmp_path: Path) -> None:
    state = quick_state(FakeLambda(), settings_for(tmp_path, SOPHIA_INFRA_REAP_SECONDS="0"), tmp_path)
    state.start_reaper()
    assert state._reaper is None
    await state.close()


async def test_what_the_reaper_did_rides_along_in_the_next_gpu_result_once(tmp_path: Path) -> None:
    from sophia_infrastructure.tools.gpu import list_types

    fake = FakeLambda()
    late = fake.add_instance("gpu_1x_a10", "us-east-1", name="late")
    state = quick_state(fake, settings_for(tmp_path), tmp_path)
    state.leases.record(_lease(late, -1))
    (said,) = await state.reap_once()
    first = await list_types(state.lambda_cloud())
    second = await list_types(state.lambda_cloud())
    await state.close()
    assert late in said and "terminated" in said
    assert any("lease reaper" in note and late in note for note in first.expired_leases)
    assert "lease reaper" in first.render_text()
    assert not any("lease reaper" in note for note in second.expired_leases)  # said once, not on every call
