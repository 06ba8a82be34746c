"""The cost report: replica prices from requests, suggestions from measured use, idle GPUs, and the tool end to end
against the fake Prometheus and the fake Lambda Cloud."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from sophia_infrastructure.clients.prometheus import Prometheus
from sophia_infrastructure.leases import Lease
from sophia_infrastructure.settings import SETTINGS
from sophia_infrastructure.state import InfraState
from sophia_infrastructure.suite import costs
from sophia_infrastructure.suite.topology import NAMESPACE, WORKLOADS
from sophia_infrastructure.tools.optimize import INFRA_OPTIMIZE, TOOLS, cost_report
from sophia_shared.errors import InputError
from sophia_shared.http import RetryPolicy
from sophia_shared.server import ServerSpec, build_server
from tests.fakes.lambda_cloud import FakeLambda, quick_state, settings_for
from tests.fakes.prometheus import FakePrometheus

GIB = 2**30


def usage(cores: str, gib: str, pods: int = 1) -> costs.Usage:
    return costs.Usage(Decimal(cores), Decimal(gib), pods)


# -- pure arithmetic ----------------------------------------------------------------------------------


def test_kubernetes_quantities_convert_exactly() -> None:
    assert costs.cpu_cores("500m") == Decimal("0.5") and costs.cpu_cores("2") == 2
    assert costs.memory_gib("512Mi") == Decimal("0.5") and costs.memory_gib("8Gi") == 8
    with pytest.raises(InputError, match="'lots'"):
        costs.cpu_cores("lots")
    with pytest.raises(InputError, match="'8GB'"):
        costs.memory_gib("8GB")


def test_replica_prices_follow_requests_and_node_prices() -> None:
    prices = {w.key: costs.replica_month_usd(w, costs.node_for(w)) for w in WORKLOADS.values()}
    # data: 250m of a 4-vCPU node (6.25 %) beats 512Mi of 16 GiB (3.125 %): 0.0625 × $0.192 × 730
    assert prices["data"] == Decimal("8.76")
    assert prices["ai"] == prices["gateway"] == Decimal("17.52")  # 500m: 12.5 %
    # bi takes the A10 node's only GPU: the whole node, $0.75 × 730
    assert prices["bi"] == Decimal("547.50")


def test_replicas_come_from_either_key_form_else_the_default() -> None:
    found = costs.configured_replicas({"sophia-ai:data_replicas": "5", "gateway_replicas": "7"})
    assert found == {"ai": 2, "data": 5, "bi": 1, "infrastructure": 1, "gateway": 7}
    with pytest.raises(InputError, match="data_replicas is 'many'"):
        costs.configured_replicas({"sophia-ai:data_replicas": "many"})


def test_pods_are_summed_per_workload_and_other_apps_ignored() -> None:
    found = costs.usage_by_workload(
        {"sophia-data-7d9f8c6b5-x2k4q": 0.1, "sophia-data-7d9f8c6b5-abcde": 0.2, "postgres-0": 3.0},
        {"sophia-data-7d9f8c6b5-x2k4q": 0.25 * GIB, "sophia-gateway-5c6d7e8f9-zzzzz": GIB},
    )
    assert set(found) == {"data", "gateway"}
    assert found["data"] == usage("0.3", "0.25", pods=2)
    assert found["gateway"].cpu_cores == 0 and found["gateway"].memory_gib == 1


def test_overprovisioned_workload_gets_a_scale_down_with_its_saving() -> None:
    # 0.3 cores / (250m × 70 %) = 1.7 → 2; 0.6 GiB / (512Mi × 80 %) = 1.5 → 2
    report = costs.report_workload(WORKLOADS["data"], 3, usage("0.3", "0.6", pods=3))
    assert report.needed == 2 and report.suggestion.startswith("scale down 3 → 2")
    assert report.month_delta_usd == Decimal("-8.76")
    assert report.cpu_percent_of_requests == Decimal(40)  # 0.3 of 0.75 requested


def test_busy_workload_gets_a_scale_up_with_its_cost() -> None:
    report = costs.report_workload(WORKLOADS["ai"], 2, usage("1.2", "1.0", pods=2))  # 1.2 / 0.35 = 3.4 → 4
    assert report.needed == 4 and report.month_delta_usd == Decimal("35.04")
    assert "scale up 2 → 4" in report.suggestion


def test_autoscaled_gateway_stays_within_3_to_10() -> None:
    quiet = costs.report_workload(WORKLOADS["gateway"], 3, usage("0.01", "0.01", pods=3))
    assert quiet.needed == 3 and quiet.month_delta_usd == 0
    assert "use alone calls for 1; held within the bounds 3–10" in quiet.suggestion
    flooded = costs.report_workload(WORKLOADS["gateway"], 5, usage("50", "1", pods=5))
    assert flooded.needed == 10 and flooded.month_delta_usd == 5 * Decimal("17.52")


def test_without_measurements_nothing_is_suggested() -> None:
    reports = costs.report_workloads({"data": 3}, None)
    assert all(r.usage is None and r.month_delta_usd == 0 for r in reports)
    assert {r.suggestion for r in reports} == {"no measurements for its pods: no suggestion"}
    assert costs.total_delta(reports, []) == 0


def test_gpu_workload_notes_that_gpu_use_is_not_measured() -> None:
    report = costs.report_workload(WORKLOADS["bi"], 1, usage("0.1", "0.5"))
    assert report.needed == 1 and "GPU use is not measured" in report.suggestion


def test_idle_means_billing_after_the_lease_ended() -> None:
    now = "2026-11-30T12:00:00+00:00"

    def gpu(iid: str, status: str, lease: str) -> costs.GpuInstance:
        return costs.GpuInstance(iid, "", status, "gpu_1x_a10", 75, lease, status not in {"terminated", "terminating"})

    found = costs.gpu_findings(
        [
            gpu("expired", "active", "2026-11-30T11:00:00+00:00"),
            gpu("exactly-now", "active", now),
            gpu("leased", "active", "2026-11-30T13:00:00+00:00"),
            gpu("unleased", "active", ""),
            gpu("gone", "terminated", "2026-11-29T00:00:00+00:00"),
        ],
        now,
    )
    by_id = {f.instance.id: f for f in found}
    assert set(by_id) == {"expired", "exactly-now", "leased", "unleased"}
    assert by_id["expired"].idle and by_id["exactly-now"].idle
    assert by_id["expired"].month_delta_usd == Decimal("-547.50")
    assert not by_id["leased"].idle and by_id["leased"].month_delta_usd == 0
    assert not by_id["unleased"].idle and "no suggestion" in by_id["unleased"].reason


# -- the report against the fakes --------------------------------------------------------------------


def prometheus_on(fake: FakePrometheus, tmp_path: Path, **extra: str) -> Prometheus:
    settings = settings_for(tmp_path, SOPHIA_PROMETHEUS_URL="http://prometheus.test", **extra)
    return Prometheus(settings, transport=httpx.ASGITransport(app=fake), retry=RetryPolicy(base_delay=0.01))


def busy_cluster() -> FakePrometheus:
    fake = FakePrometheus()
    for suffix in ("aaaaa", "bbbbb", "ccccc"):  # data: 3 pods, lightly used
        fake.add_pod(NAMESPACE, f"sophia-data-6f7c9d8b4-{suffix}", 0.1, 0.2 * GIB)
    for suffix in ("ddddd", "eeeee"):  # ai: 2 pods, busy
        fake.add_pod(NAMESPACE, f"sophia-ai-5b6c7d8e9-{suffix}", 0.6, 0.5 * GIB)
    fake.add_pod("other", "sophia-data-6f7c9d8b4-zzzzz", 9.0, 9 * GIB)  # another namespace: not ours
    return fake


@pytest.mark.anyio
async def test_report_with_measurements_and_an_idle_gpu(tmp_path: Path) -> None:
    lam = FakeLambda()
    lam.types["gpu_1x_a10"].price_cents_per_hour = 80  # the live price, not the list price
    state = quick_state(lam, settings_for(tmp_path), tmp_path)
    idle_id = lam.add_instance("gpu_1x_a10", "us-east-1", name="forgotten")
    leased_id = lam.add_instance("gpu_1x_a100", "us-west-1", name="training")
    past, future = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    for iid, start, end, price in ((idle_id, past - dt.timedelta(hours=4), past, 80), (leased_id, past, future, 129)):
        state.leases.record(Lease(iid, "", "t", "r", price, start.isoformat(), end.isoformat()))
    prometheus = prometheus_on(busy_cluster(), tmp_path)
    try:
        report = await cost_report(
            stack="sophia-dev",
            stack_config={"sophia-ai:data_replicas": "3"},
            replicas_from="stack config of sophia-ai/sophia-dev",
            prometheus=prometheus,
            cloud=state.lambda_cloud(),
        )
    finally:
        await prometheus.aclose()
        await state.close()
    lines = {w.workload: w for w in report.workloads}
    # data: 0.3 cores, 0.6 GiB over 3 pods → 2 replicas; ai: 1.2 cores → 4 replicas
    assert (lines["data"].suggested_replicas, lines["data"].month_delta_usd) == (2, -8.76)
    assert (lines["ai"].suggested_replicas, lines["ai"].month_delta_usd) == (4, 35.04)
    assert lines["data"].pods_measured == 3 and lines["data"].cpu_cores_used == 0.3
    assert not lines["gateway"].measured and lines["gateway"].suggestion.startswith("no measurements")
    assert lines["bi"].replica_month_usd == 584.0  # $0.80 × 730, from the Lambda API
    assert any("live price" in n.source for n in report.node_prices)
    gpus = {g.id: g for g in report.gpu_instances}
    assert gpus[idle_id].idle and gpus[idle_id].month_delta_usd == -584.0
    assert not gpus[leased_id].idle
    assert report.month_delta_usd == round(-8.76 + 35.04 - 584.0, 2)
    text = report.render_text()
    assert "IDLE" in text and "forgotten" in text and "-$584.00/month" in text and "nothing was changed" in text


@pytest.mark.anyio
async def test_without_prometheus_the_report_says_no_measurements(tmp_path: Path) -> None:
    fake = FakePrometheus()
    settings = settings_for(tmp_path, key=None)
    prometheus = Prometheus(settings, transport=httpx.ASGITransport(app=fake))
    report = await cost_report(
        stack="sophia-dev", stack_config=None, replicas_from="defaults", prometheus=prometheus, cloud=None
    )
    assert fake.calls == []
    assert report.measurements.startswith("no measurements (SOPHIA_PROMETHEUS_URL is not set)")
    assert report.month_delta_usd == 0
    # Unmeasured: no suggestion and no measured figures, as nulls (not -1 or the current count).
    assert all(w.suggested_replicas is None and w.month_delta_usd is None for w in report.workloads)
    assert all(w.cpu_cores_used is None and w.memory_percent_of_requests is None for w in report.workloads)
    assert "resting on the node prices below" in report.render_text()
    assert "not checked (LAMBDA_API_KEY is not set)" in report.lambda_checked
    # defaults: ai 2×17.52 + data 3×8.76 + bi 547.50 + infrastructure 8.76 + gateway 3×17.52
    assert report.month_usd == round(2 * 17.52 + 3 * 8.76 + 547.50 + 8.76 + 3 * 17.52, 2)


@pytest.mark.anyio
async def test_bad_window_is_refused_before_any_query(tmp_path: Path) -> None:
    fake = busy_cluster()
    prometheus = prometheus_on(fake, tmp_path)
    with pytest.raises(InputError, match="'an hour' is not a Prometheus duration"):
        await cost_report(
            stack="s", stack_config={}, replicas_from="x", prometheus=prometheus, cloud=None, window="an hour"
        )
    assert fake.calls == []


# -- the tool through MCP ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tool_is_read_only_and_reports_defaults_when_the_stack_is_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPHIA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no pulumi CLI to find
    spec: ServerSpec[InfraState] = ServerSpec(
        name="sophia-infrastructure",
        key="infrastructure",
        instructions="cost report under test",
        tools=list(TOOLS),
        settings=SETTINGS,
        make_state=lambda s: quick_state(FakeLambda(), s, tmp_path),
        close_state=lambda state: state.close(),
    )
    settings = settings_for(tmp_path, gate=False, key=None, SOPHIA_PULUMI_CLI=str(tmp_path / "no-pulumi"))
    async with Client(build_server(spec, settings)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        result: Any = await client.call_tool(INFRA_OPTIMIZE, {"stack": "dev"})
    assert listed[INFRA_OPTIMIZE].annotations is not None and listed[INFRA_OPTIMIZE].annotations.read_only_hint
    assert not result.is_error, result.content
    structured = result.structured_content
    assert structured["stack"] == "sophia-dev"
    assert structured["replicas_from"].startswith("the program's defaults (the stack sophia-dev could not be read")
    assert [w["replicas"] for w in structured["workloads"]] == [w.replicas for w in WORKLOADS.values()]
