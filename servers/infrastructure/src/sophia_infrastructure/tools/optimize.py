"""The seed's "optimize costs" as a read-only report: replicas vs measured use, idle GPUs, and what each change saves.

Inputs: the suite stack's config (replicas), Prometheus (measured use, when SOPHIA_PROMETHEUS_URL is set) and
Lambda Cloud (instances, leases and the live A10 price, when a key is set). The arithmetic is in `suite/costs.py`.
Nothing is changed: scaling is the stack tools' job.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.errors import InputError, SophiaError
from sophia_shared.server import ToolDef, ToolResult, sophia_tool, state_of

from ..clients.prometheus import URL_VARIABLE, Prometheus, check_window
from ..names import INFRA_OPTIMIZE, STACK_LIST, STACK_PREVIEW, STACK_UP
from ..state import InfraState
from ..suite import costs
from ..suite.topology import NAMESPACE, PROJECT, stack_name

if TYPE_CHECKING:
    from ..clients.lambda_cloud import LambdaCloud

LAMBDA_KEYS = ("LAMBDA_API_KEY", "LAMBDA_LABS_API_KEY")


def _usd(value: Decimal) -> float:
    return float(round(value, 2))


class WorkloadLine(BaseModel):
    workload: str
    replicas: int = Field(description="Replicas in the stack config (or the program's default).")
    node: str = Field(description="The node type a replica is priced on.")
    replica_month_usd: float = Field(description="Node share its requests reserve × node price × 730 h.")
    month_usd: float
    measured: bool
    pods_measured: int
    cpu_cores_used: float | None = Field(description="Average cores used over the window, all pods; null unmeasured.")
    memory_gib_used: float | None = Field(description="Peak working set over the window, summed over pods.")
    cpu_percent_of_requests: float | None
    memory_percent_of_requests: float | None
    suggested_replicas: int | None = Field(description="Null when unmeasured (no suggestion).")
    suggestion: str
    month_delta_usd: float | None = Field(description="Monthly change of the suggestion; negative saves; null: none.")


class GpuLine(BaseModel):
    id: str
    name: str
    status: str
    instance_type: str
    usd_per_hour: float
    month_usd: float
    idle: bool = Field(description="Still billing after its Sophia lease ended.")
    finding: str
    month_delta_usd: float


class NodeLine(BaseModel):
    name: str
    usd_per_hour: float
    vcpus: float
    memory_gib: float
    gpus: int
    source: str = Field(description="Where the price comes from (live API or a stated assumption).")


class CostReport(ToolResult):
    stack: str
    replicas_from: str
    measurements: str
    workloads: list[WorkloadLine]
    gpu_instances: list[GpuLine]
    lambda_checked: str
    node_prices: list[NodeLine]
    month_usd: float = Field(description="Workloads now plus billing GPU instances, per month.")
    month_delta_usd: float = Field(description="All suggestions' monthly change; negative saves.")
    method: str

    def render_text(self) -> str:
        lines = [
            f"Cost report for {self.stack} (read-only; nothing was changed).",
            f"Replicas: {self.replicas_from}. Use: {self.measurements}.",
        ]
        for w in self.workloads:
            use = (
                f"uses {_num(w.cpu_cores_used, '.2f')} cores ({_num(w.cpu_percent_of_requests, '.0f')} % of "
                f"requests), {_num(w.memory_gib_used, '.2f')} GiB ({_num(w.memory_percent_of_requests, '.0f')} %) "
                f"over {w.pods_measured} pod(s)"
                if w.measured
                else "no measurements"
            )
            delta = f", {_signed(w.month_delta_usd)}/month" if w.month_delta_usd else ""
            lines.append(
                f"- {w.workload}: {w.replicas} × ${w.replica_month_usd:.2f}/month = ${w.month_usd:.2f}; {use}; "
                f"{w.suggestion}{delta}"
            )
        lines.append(f"GPU instances: {self.lambda_checked}")
        for g in self.gpu_instances:
            saving = f", {_signed(g.month_delta_usd)}/month" if g.month_delta_usd else ""
            label = f"{g.id} ({g.name})" if g.name else g.id
            lines.append(
                f"- {'IDLE ' if g.idle else ''}{label}: {g.instance_type} {g.status}, ${g.usd_per_hour:.2f}/h "
                f"(${g.month_usd:.2f}/month); {g.finding}{saving}"
            )
        lines.append(
            f"Total: ${self.month_usd:.2f}/month now; all suggestions together: {_signed(self.month_delta_usd)}/month "
            "(estimates resting on the node prices below, assumed where not live)."
        )
        lines += [f"Price of {n.name}: ${n.usd_per_hour:.3f}/h ({n.source})." for n in self.node_prices]
        lines.append(f"Method: {self.method}")
        return "\n".join(lines)


def _num(value: float | None, spec: str) -> str:
    return "?" if value is None else format(value, spec)


def _signed(value: float) -> str:
    return f"-${-value:.2f}" if value < 0 else f"+${value:.2f}"


METHOD = (
    f"a replica costs the largest share of its node that its CPU, memory or GPU requests reserve × the node's price "
    f"× 730 h; a suggestion is the replicas that carry the measured use (average CPU, peak memory) at "
    f"{costs.CPU_TARGET_PERCENT} % CPU / {costs.MEMORY_TARGET_PERCENT} % memory of requests, at least 1 and within "
    "the workload's bounds; a GPU instance is idle when it still bills after its Sophia lease ended (the Lambda API "
    "gives no launch time or GPU use, so an instance without a lease is never called idle)."
)


# --- the plain function (takes its sources; testable without MCP) ----------------------------------


async def cost_report(
    *,
    stack: str,
    stack_config: Mapping[str, str] | None,
    replicas_from: str,
    prometheus: Prometheus,
    cloud: LambdaCloud | None,
    window: str = "1h",
) -> CostReport:
    """The report: `stack_config` None means the stack could not be read (defaults, said in `replicas_from`)."""
    check_window(window)
    replicas = costs.configured_replicas(stack_config or {})

    usage: dict[str, costs.Usage] | None = None
    if await anyio.to_thread.run_sync(prometheus.configured):
        cpu, memory = await prometheus.pod_usage(NAMESPACE, window)
        usage = costs.usage_by_workload(cpu, memory)
        measured = f"Prometheus ({URL_VARIABLE}), namespace {NAMESPACE}, last {window}"
        if not usage:
            measured += ": no pods of the suite's workloads reported; no suggestions"
    else:
        measured = f"no measurements ({URL_VARIABLE} is not set), so no scaling suggestions"

    a10 = costs.A10_NODE
    gpus: list[costs.GpuFinding] = []
    if cloud is None:
        checked = f"not checked ({LAMBDA_KEYS[0]} is not set); the A10 price is Lambda's list price"
    else:
        try:
            offers = {o.name: o for o in await cloud.instance_types()}
            offer = offers.get(costs.A10_TYPE)
            if offer is not None and offer.price_cents_per_hour > 0:
                a10 = costs.a10_node_from_lambda(offer.price_cents_per_hour, offer.vcpus, offer.memory_gib, offer.gpus)
            now = cloud.now()
            instances = []
            for i in await cloud.instances():
                lease = await anyio.to_thread.run_sync(cloud.leases.get, i.id)
                instances.append(
                    costs.GpuInstance(
                        i.id, i.name, i.status, i.instance_type, i.price_cents_per_hour,
                        lease.expires_at if lease else "", i.billing,
                    )
                )  # fmt: skip
            gpus = costs.gpu_findings(instances, now.isoformat())
            idle = sum(1 for g in gpus if g.idle)
            checked = f"{len(gpus)} billing instance(s) at Lambda Cloud, {idle} idle"
        except SophiaError as exc:
            checked = f"Lambda Cloud could not be read ({exc.message}); the A10 price is Lambda's list price"
            a10, gpus = costs.A10_NODE, []

    reports = costs.report_workloads(replicas, usage, a10=a10)
    workloads = [_workload_line(r) for r in reports]
    gpu_lines = [_gpu_line(g) for g in gpus]
    month = sum((r.month_usd for r in reports), Decimal(0)) + sum((g.month_usd for g in gpus), Decimal(0))
    return CostReport(
        stack=stack,
        replicas_from=replicas_from,
        measurements=measured,
        workloads=workloads,
        gpu_instances=gpu_lines,
        lambda_checked=checked,
        node_prices=[_node_line(costs.CPU_NODE), _node_line(a10)],
        month_usd=_usd(month),
        month_delta_usd=_usd(costs.total_delta(reports, gpus)),
        method=METHOD,
    )


def _workload_line(r: costs.WorkloadReport) -> WorkloadLine:
    u = r.usage
    return WorkloadLine(
        workload=r.key,
        replicas=r.replicas,
        node=r.node.name,
        replica_month_usd=_usd(r.replica_month_usd),
        month_usd=_usd(r.month_usd),
        measured=u is not None,
        pods_measured=u.pods if u else 0,
        cpu_cores_used=float(round(u.cpu_cores, 3)) if u else None,
        memory_gib_used=float(round(u.memory_gib, 3)) if u else None,
        cpu_percent_of_requests=(
            float(round(r.cpu_percent_of_requests, 1)) if r.cpu_percent_of_requests is not None else None
        ),
        memory_percent_of_requests=(
            float(round(r.memory_percent_of_requests, 1)) if r.memory_percent_of_requests is not None else None
        ),
        suggested_replicas=r.suggested_replicas if u else None,
        suggestion=r.suggestion,
        month_delta_usd=_usd(r.month_delta_usd) if u else None,
    )


def _gpu_line(g: costs.GpuFinding) -> GpuLine:
    i = g.instance
    return GpuLine(
        id=i.id,
        name=i.name,
        status=i.status,
        instance_type=i.instance_type,
        usd_per_hour=float(Decimal(i.price_cents_per_hour) / 100),
        month_usd=_usd(g.month_usd),
        idle=g.idle,
        finding=g.reason,
        month_delta_usd=_usd(g.month_delta_usd),
    )


def _node_line(n: costs.NodePrice) -> NodeLine:
    return NodeLine(
        name=n.name,
        usd_per_hour=float(n.usd_per_hour),
        vcpus=float(n.vcpus),
        memory_gib=float(n.memory_gib),
        gpus=n.gpus,
        source=n.source,
    )


# --- reading the suite stack's config through the stack engine -------------------------------------


def read_suite_config(state: InfraState, stack: str) -> tuple[dict[str, str] | None, str]:
    """The suite stack's config and where it came from; None (with the reason) when it cannot be read."""
    from ..pulumi.engine import StackNotFound

    name = stack_name(stack)
    try:
        config = state.stack_engine().config(state.project(), name)
    except StackNotFound:
        raise InputError(
            f"Stack {name} is not deployed (it does not exist), so there is nothing to report on.",
            hint=f"Create it with {STACK_PREVIEW} then {STACK_UP}, or name an existing stack ({STACK_LIST} lists "
            "them).",
        ) from None
    except SophiaError as exc:
        return None, f"the program's defaults (the stack {name} could not be read: {exc.message})"
    return config, f"stack config of {PROJECT}/{name}"


# --- MCP wrapper ----------------------------------------------------------------------------------


@sophia_tool(INFRA_OPTIMIZE, title="Cost report: replicas vs measured use, idle GPUs", read_only=True, open_world=True)
async def infra_optimize(
    ctx: Context[Any, Any],
    stack: Annotated[str, Field(description="The suite's stack, e.g. 'dev' or 'sophia-prod'.")] = "dev",
    window: Annotated[
        str, Field(description="How far back measured use is read, as a Prometheus duration: '1h', '6h', '7d'.")
    ] = "1h",
) -> CostReport:
    """Cost report for the suite's sophia-ai stack; changes nothing. Per workload: replicas (stack config), cost
    per replica and month (computed from its requests and a stated node price; the A10 node at Lambda's live
    gpu_1x_a10 price with a key), CPU/memory use over `window` from Prometheus (SOPHIA_PROMETHEUS_URL; without it,
    "no measurements" and no suggestion), the replicas that carry that use at 70 % CPU / 80 % memory within the
    workload's bounds, and the monthly cost change. Also Lambda instances still billing after their lease ended
    (idle) and the saving of terminating them. Apply a suggestion with stack_scale."""
    if not stack.strip():
        raise InputError("No stack was named.", hint="Pass the suite's stack, e.g. 'dev'.")
    state = state_of(ctx, InfraState)
    config, source = await anyio.to_thread.run_sync(read_suite_config, state, stack)
    has_key = await anyio.to_thread.run_sync(lambda: any(state.settings.get(k) for k in LAMBDA_KEYS))
    prometheus = Prometheus(state.settings)
    try:
        return await cost_report(
            stack=stack_name(stack),
            stack_config=config,
            replicas_from=source,
            prometheus=prometheus,
            cloud=state.lambda_cloud() if has_key else None,
            window=window,
        )
    finally:
        await prometheus.aclose()


TOOLS: tuple[ToolDef, ...] = (infra_optimize,)
