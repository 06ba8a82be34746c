"""The seed's "optimize costs", as arithmetic: what each workload costs, what it uses, what a change would save.

Pure and exact (Decimal): no I/O here. The tool (`tools/optimize.py`) gathers the inputs: replicas from the
stack config, measured use from Prometheus, instances and the A10 price from Lambda Cloud.

How a replica is priced: the share of its node that its requests reserve, the largest of CPU, memory and
GPU share, times the node's hourly price, times a 730-hour month. The node prices are stated below with
where they come from; the A10 pool's price is Lambda Cloud's live `gpu_1x_a10` price when a key is set.

How a suggestion is made: the replicas needed to carry the measured use at the target utilisation (the
gateway HPA's 70 % CPU / 80 % memory, for every workload), at least 1 and within the workload's bounds.
No measurement for a workload: no suggestion for it. GPU use is not measured (cAdvisor does not export
it), so a GPU workload is sized by its CPU and memory only, and the report says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sophia_shared.errors import InputError

from ..policy import HOURS_PER_MONTH
from .topology import WORKLOADS, Workload

CPU_TARGET_PERCENT = 70  # the gateway HPA's targets, applied to every workload
MEMORY_TARGET_PERCENT = 80


@dataclass(frozen=True)
class NodePrice:
    """A node type the workloads run on, with its hourly price and where that price comes from."""

    name: str
    vcpus: Decimal
    memory_gib: Decimal
    gpus: int
    usd_per_hour: Decimal
    source: str


# Assumption, not a quote: a 4 vCPU / 16 GiB general-purpose node at $0.192/h, the on-demand list price of
# AWS m5.xlarge (Linux, us-east-1). Our clusters' CPU pool is not priced by any API we call.
CPU_NODE = NodePrice(
    name="general-purpose node (4 vCPU, 16 GiB)",
    vcpus=Decimal(4),
    memory_gib=Decimal(16),
    gpus=0,
    usd_per_hour=Decimal("0.192"),
    source="assumed: on-demand list price of a 4 vCPU / 16 GiB general-purpose VM (AWS m5.xlarge, us-east-1)",
)

# Lambda Cloud's published gpu_1x_a10 (1× A10 24 GB, 30 vCPU, 200 GiB) at $0.75/h; replaced by the live
# price and specs from the Lambda API when LAMBDA_API_KEY is set (`a10_node_from_lambda`).
A10_NODE = NodePrice(
    name="gpu_1x_a10",
    vcpus=Decimal(30),
    memory_gib=Decimal(200),
    gpus=1,
    usd_per_hour=Decimal("0.75"),
    source="Lambda Cloud list price of gpu_1x_a10 (no LAMBDA_API_KEY, so not the live price)",
)

A10_TYPE = "gpu_1x_a10"

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
GIB = Decimal(2**30)


def cpu_cores(quantity: str) -> Decimal:
    """A Kubernetes CPU quantity in cores: `500m` → 0.5, `2` → 2."""
    match = _CPU.match(quantity.strip())
    if match is None:
        raise InputError(f"CPU quantity {quantity!r} is not a Kubernetes quantity like '500m' or '2'.")
    value = Decimal(match.group(1))
    return value / 1000 if match.group(2) else value


def memory_gib(quantity: str) -> Decimal:
    """A Kubernetes memory quantity in GiB: `512Mi` → 0.5, `8Gi` → 8, `1G` → 0.931…"""
    match = _MEMORY.match(quantity.strip())
    if match is None:
        raise InputError(f"Memory quantity {quantity!r} is not a Kubernetes quantity like '512Mi' or '8Gi'.")
    return Decimal(match.group(1)) * _BINARY.get(match.group(2) or "", 1) / GIB


def a10_node_from_lambda(price_cents_per_hour: int, vcpus: int, memory_gib_: int, gpus: int) -> NodePrice:
    """The A10 pool's node priced from Lambda Cloud's live instance-type answer."""
    return NodePrice(
        name=A10_TYPE,
        vcpus=Decimal(vcpus or A10_NODE.vcpus),
        memory_gib=Decimal(memory_gib_ or A10_NODE.memory_gib),
        gpus=gpus or A10_NODE.gpus,
        usd_per_hour=Decimal(price_cents_per_hour) / 100,
        source="Lambda Cloud API, live price of gpu_1x_a10",
    )


def node_for(workload: Workload, a10: NodePrice = A10_NODE, cpu: NodePrice = CPU_NODE) -> NodePrice:
    return a10 if workload.gpus else cpu


def replica_month_usd(workload: Workload, node: NodePrice) -> Decimal:
    """What one replica costs a month: its largest share of the node (CPU, memory or GPU) × price × 730 h."""
    shares = [cpu_cores(workload.cpu_request) / node.vcpus, memory_gib(workload.memory_request) / node.memory_gib]
    if workload.gpus:
        shares.append(Decimal(workload.gpus) / Decimal(node.gpus or 1))
    return min(max(shares), Decimal(1)) * node.usd_per_hour * HOURS_PER_MONTH


# -- replicas from the stack config ------------------------------------------------------------


def parse_replicas(workload: Workload, raw: object) -> int:
    """A `{workload}_replicas` config value as a replica count: a whole number ("3", not "3.0" or "3.5") within the
    workload's bounds; unset or empty is the workload's default. The one parser the program, scale, optimize and
    config writes share, so a value one accepts the others accept too."""
    if raw is None or str(raw).strip() == "":
        return workload.replicas
    text = str(raw).strip()
    if not re.fullmatch(r"[0-9]{1,4}", text):
        raise InputError(
            f"{workload.config_key} is {short_value(text)!r}, not a whole number of replicas.",
            hint=f"Set it to a whole number such as {workload.replicas} (the scale tool sets it for you).",
        )
    count = int(text)
    low, high = workload.bounds()
    if count < low or (high is not None and count > high):
        allowed = f"{low}–{high}" if high is not None else f"at least {low}"
        why = ", the bounds of its autoscaler" if high is not None else ""
        raise InputError(
            f"{workload.config_key} is {count}, outside what the {workload.key} workload accepts ({allowed}{why}).",
            hint=f"Choose a count within {allowed}.",
        )
    return count


def short_value(text: str) -> str:
    return text if len(text) <= 40 else text[:39] + "…"


def configured_replicas(config: Mapping[str, str]) -> dict[str, int]:
    """Each workload's replicas from a stack's config (`sophia-ai:data_replicas` or `data_replicas`), else default."""
    return {
        key: parse_replicas(workload, config.get(f"sophia-ai:{workload.config_key}", config.get(workload.config_key)))
        for key, workload in WORKLOADS.items()
    }


# -- measured use ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What a workload's pods used over the window: CPU cores (summed average) and memory GiB (summed peak)."""

    cpu_cores: Decimal
    memory_gib: Decimal
    pods: int


def workload_of_pod(pod: str) -> str | None:
    """`sophia-data-7d9f8c6b5-x2k4q` → `data` (a Deployment's pods are `<deployment>-<hash>-<suffix>`)."""
    parts = pod.rsplit("-", 2)
    if len(parts) != 3 or not parts[0].startswith("sophia-"):
        return None
    key = parts[0].removeprefix("sophia-")
    return key if key in WORKLOADS else None


def usage_by_workload(cpu_by_pod: Mapping[str, float], memory_bytes_by_pod: Mapping[str, float]) -> dict[str, Usage]:
    """Per-pod samples (as Prometheus returns them) summed per workload; pods of other apps are ignored."""
    cpu: dict[str, Decimal] = {}
    memory: dict[str, Decimal] = {}
    pods: dict[str, set[str]] = {}
    for source, into, scale in ((cpu_by_pod, cpu, Decimal(1)), (memory_bytes_by_pod, memory, GIB)):
        for pod, value in source.items():
            key = workload_of_pod(pod)
            if key is None or not math.isfinite(value):
                continue
            into[key] = into.get(key, Decimal(0)) + Decimal(str(value)) / scale
            pods.setdefault(key, set()).add(pod)
    return {
        key: Usage(cpu.get(key, Decimal(0)), memory.get(key, Decimal(0)), len(names)) for key, names in pods.items()
    }


# -- suggestions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadReport:
    key: str
    replicas: int
    node: NodePrice
    replica_month_usd: Decimal
    month_usd: Decimal
    usage: Usage | None
    needed: int | None  # None: no measurement
    cpu_percent_of_requests: Decimal | None
    memory_percent_of_requests: Decimal | None
    suggestion: str
    month_delta_usd: Decimal  # negative saves money

    @property
    def suggested_replicas(self) -> int:
        return self.needed if self.needed is not None else self.replicas


def replicas_for(workload: Workload, usage: Usage) -> int:
    """Replicas that carry `usage` at the target utilisation (at least 1), before the workload's bounds."""
    cpu_capacity = cpu_cores(workload.cpu_request) * CPU_TARGET_PERCENT / 100
    memory_capacity = memory_gib(workload.memory_request) * MEMORY_TARGET_PERCENT / 100
    return max(math.ceil(max(usage.cpu_cores / cpu_capacity, usage.memory_gib / memory_capacity)), 1)


def within_bounds(workload: Workload, count: int) -> int:
    low, high = workload.bounds()
    return min(max(count, low), high) if high is not None else max(count, low)


def report_workload(
    workload: Workload, replicas: int, usage: Usage | None, a10: NodePrice = A10_NODE, cpu: NodePrice = CPU_NODE
) -> WorkloadReport:
    node = node_for(workload, a10, cpu)
    each = replica_month_usd(workload, node)
    if usage is None:
        return WorkloadReport(
            workload.key, replicas, node, each, each * replicas, None, None, None, None,
            "no measurements for its pods: no suggestion", Decimal(0),
        )  # fmt: skip
    requested_cpu = cpu_cores(workload.cpu_request) * replicas
    requested_memory = memory_gib(workload.memory_request) * replicas
    wanted = replicas_for(workload, usage)
    needed = within_bounds(workload, wanted)
    if needed < replicas:
        text = f"scale down {replicas} → {needed}"
    elif needed > replicas:
        text = f"scale up {replicas} → {needed}: measured use is above the target utilisation"
    else:
        text = "keep: replicas match measured use"
    if wanted != needed:
        low, high = workload.bounds()
        text += f" (use alone calls for {wanted}; held within the bounds {low}–{high if high is not None else '∞'})"
    if workload.gpus:
        text += "; GPU use is not measured, sized by CPU and memory"
    return WorkloadReport(
        key=workload.key,
        replicas=replicas,
        node=node,
        replica_month_usd=each,
        month_usd=each * replicas,
        usage=usage,
        needed=needed,
        cpu_percent_of_requests=usage.cpu_cores * 100 / requested_cpu if requested_cpu else None,
        memory_percent_of_requests=usage.memory_gib * 100 / requested_memory if requested_memory else None,
        suggestion=text,
        month_delta_usd=(needed - replicas) * each,
    )


def report_workloads(
    replicas: Mapping[str, int],
    usage: Mapping[str, Usage] | None,
    a10: NodePrice = A10_NODE,
    cpu: NodePrice = CPU_NODE,
) -> list[WorkloadReport]:
    """One report per workload; `usage` None means nothing was measured (no suggestion for any)."""
    return [
        report_workload(w, replicas.get(w.key, w.replicas), None if usage is None else usage.get(w.key), a10, cpu)
        for w in WORKLOADS.values()
    ]


# -- idle GPU instances -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuInstance:
    """What the report needs of a Lambda instance and its Sophia lease (`lease_expires_at` '' when none)."""

    id: str
    name: str
    status: str
    instance_type: str
    price_cents_per_hour: int
    lease_expires_at: str  # ISO-8601
    billing: bool


@dataclass(frozen=True)
class GpuFinding:
    instance: GpuInstance
    idle: bool
    reason: str
    month_usd: Decimal
    month_delta_usd: Decimal  # of terminating it: minus its month when idle, 0 otherwise


def gpu_findings(instances: Iterable[GpuInstance], now_iso: str) -> list[GpuFinding]:
    """Idle = still billing (not terminating/terminated) with a Sophia lease that ended at or before now.

    The Lambda API gives no launch time and no GPU utilisation, so an instance without a lease cannot be
    called idle: it is listed with its cost and no suggestion.
    """
    from datetime import datetime

    now = datetime.fromisoformat(now_iso)
    found: list[GpuFinding] = []
    for i in instances:
        if not i.billing:
            continue
        month = Decimal(i.price_cents_per_hour) / 100 * HOURS_PER_MONTH
        if i.lease_expires_at and datetime.fromisoformat(i.lease_expires_at) <= now:
            found.append(
                GpuFinding(i, True, f"lease ended {i.lease_expires_at}; still {i.status}: terminate it", month, -month)
            )
        elif not i.lease_expires_at:
            found.append(
                GpuFinding(
                    i, False, "not launched through Sophia (no lease): uptime and use unknown, no suggestion", month,
                    Decimal(0),
                )
            )  # fmt: skip
        else:
            found.append(GpuFinding(i, False, f"leased until {i.lease_expires_at}", month, Decimal(0)))
    return found


def total_delta(workloads: Sequence[WorkloadReport], gpus: Sequence[GpuFinding]) -> Decimal:
    return sum((w.month_delta_usd for w in workloads), Decimal(0)) + sum((g.month_delta_usd for g in gpus), Decimal(0))
