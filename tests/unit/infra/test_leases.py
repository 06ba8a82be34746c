"""Leases: kept across processes, reported when expired, reaped with a sentence per instance."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest

from sophia_infrastructure.leases import Lease, LeaseBook, expired_notes, reap_expired
from tests.fakes.lambda_cloud import FakeLambda, quick_state, settings_for

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def lease(instance_id: str, hours_left: float, name: str = "") -> Lease:
    return Lease(
        instance_id=instance_id,
        name=name,
        instance_type="gpu_1x_a10",
        region="us-east-1",
        price_cents_per_hour=75,
        launched_at=(NOW - dt.timedelta(hours=1)).isoformat(),
        expires_at=(NOW + dt.timedelta(hours=hours_left)).isoformat(),
    )


def test_a_lease_expires_at_its_end_not_before(tmp_path: Path) -> None:
    book = LeaseBook(tmp_path / "leases.json")
    book.record(lease("a", 0))
    book.record(lease("b", 0.01))
    assert [x.instance_id for x in book.expired(NOW)] == ["a"]
    assert book.forget("a") and not book.forget("a")
    assert [x.instance_id for x in LeaseBook(tmp_path / "leases.json").all()] == ["b"]


def _record_many(path: str, start: int) -> None:
    book = LeaseBook(Path(path))
    for n in range(start, start + 25):
        book.record(lease(f"i{n}", 1))


def test_leases_recorded_by_several_processes_at_once_are_all_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "leases.json")
    workers = [multiprocessing.get_context("spawn").Process(target=_record_many, args=(path, s)) for s in (0, 100)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert len(LeaseBook(Path(path)).all()) == 50


def test_expired_notes_name_the_instance_and_the_reaper(tmp_path: Path) -> None:
    book = LeaseBook(tmp_path / "leases.json")
    book.record(lease("0920582c", -0.5, name="trainer"))
    (note,) = expired_notes(book, NOW)
    assert "0920582c (trainer)" in note and "sophia infra reap" in note and "$0.75/h" in note


@pytest.mark.anyio
async def test_reap_terminates_expired_instances_and_says_so(tmp_path: Path) -> None:
    fake = FakeLambda()
    late = fake.add_instance("gpu_1x_a10", "us-east-1", name="late")
    ok = fake.add_instance("gpu_1x_a10", "us-east-1", name="ok")
    gone = fake.add_instance("gpu_1x_a10", "us-east-1", status="terminated")
    state = quick_state(fake, settings_for(tmp_path), tmp_path)
    for instance_id, hours in ((late, -1), (ok, 3), (gone, -2), ("deadbeef", -1)):
        state.leases.record(lease(instance_id, hours))
    said = await reap_expired(state.settings, state.lambda_cloud(), now=NOW)
    await state.close()
    assert fake.instances[late]["status"] == "terminating" and fake.instances[ok]["status"] == "active"
    assert [c.json for c in fake.posts] == [{"instance_ids": [late]}]
    assert any(s.startswith(late) and "terminated" in s for s in said)
    assert any(s.startswith(gone) and "already terminated" in s for s in said)
    assert any(s.startswith("deadbeef") and "no longer exists" in s for s in said)
    assert [x.instance_id for x in state.leases.all()] == [ok]


@pytest.mark.anyio
async def test_reap_with_the_write_gate_off_terminates_nothing_and_says_why(tmp_path: Path) -> None:
    fake = FakeLambda()
    late = fake.add_instance("gpu_1x_a10", "us-east-1")
    state = quick_state(fake, settings_for(tmp_path, gate=False), tmp_path)
    state.leases.record(lease(late, -1))
    (said,) = await reap_expired(state.settings, state.lambda_cloud(), now=NOW)
    await state.close()
    assert "NOT terminated" in said and "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE" in said
    assert fake.posts == [] and len(state.leases.all()) == 1
