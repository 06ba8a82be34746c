"""Lambda Cloud GPU tools: types and prices, instances and their cost, account objects, and the gated writes.

Every result carries the expired-lease reminder. The spend rules and the vendor calls are in the client.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.errors import InputError
from sophia_shared.output import Page, page_of
from sophia_shared.server import ToolDef, ToolResult, sophia_tool, state_of

from ..clients.lambda_cloud import (
    LAUNCH_PATH,
    MAX_LEASE_HOURS,
    Instance,
    InstanceTypeOffer,
    LambdaCloud,
    LaunchRequest,
)
from ..leases import expired_notes
from ..names import (
    GPU_ACCOUNT,
    GPU_FILE_SYSTEM,
    GPU_INSTANCES,
    GPU_LAUNCH,
    GPU_RESTART,
    GPU_SSH_KEY,
    GPU_TERMINATE,
    GPU_TYPES,
)
from ..policy import usd
from ..state import InfraState

PAGE_SIZE = 100
ItemT = TypeVar("ItemT")

CursorArg = Annotated[
    str, Field(description="next_cursor from the previous page of this same request; empty for the first page.")
]
InstanceIdArg = Annotated[str, Field(description=f"The instance id, as {GPU_INSTANCES} lists it.")]


# --- results -------------------------------------------------------------------------------------


class InfraResult(ToolResult):
    expired_leases: list[str] = Field(
        default_factory=list,
        description="Instances whose lease has expired and may still be billing, and what the reaper did.",
    )

    def reminder(self) -> list[str]:
        return [f"WARNING: {note}" for note in self.expired_leases]


def _more(truncated: bool, tool: str, cursor: str) -> str:
    return f'; more exist: call {tool} with cursor="{cursor}"' if truncated else ""


class TypeItem(BaseModel):
    name: str = Field(description=f"Pass as instance_type to {GPU_LAUNCH}.")
    description: str
    gpu_description: str
    gpus: int
    usd_per_hour: float
    vcpus: int
    memory_gib: int
    storage_gib: int
    regions_with_capacity: list[str] = Field(description="Regions that can launch this type right now.")

    @classmethod
    def of(cls, offer: InstanceTypeOffer) -> TypeItem:
        return cls(
            name=offer.name,
            description=offer.description,
            gpu_description=offer.gpu_description,
            gpus=offer.gpus,
            usd_per_hour=float(usd(offer.price_cents_per_hour)),
            vcpus=offer.vcpus,
            memory_gib=offer.memory_gib,
            storage_gib=offer.storage_gib,
            regions_with_capacity=list(offer.regions_with_capacity),
        )


class TypesResult(InfraResult, Page[TypeItem]):
    def render_text(self) -> str:
        lines = [*self.reminder(), f"{len(self.items)} Lambda Cloud instance type(s), cheapest first"]
        lines[-1] += _more(self.truncated, GPU_TYPES, self.next_cursor)
        for t in self.items:
            where = ", ".join(t.regions_with_capacity) or "no capacity now"
            lines.append(
                f"- {t.name}: {t.description}, ${t.usd_per_hour:.2f}/h, {t.vcpus} vCPU, {t.memory_gib} GiB RAM, "
                f"{t.storage_gib} GiB disk; capacity: {where}"
            )
        return "\n".join(lines)


class InstanceItem(BaseModel):
    id: str
    name: str
    status: str = Field(description="booting, active, unhealthy, terminating, terminated or preempted.")
    ip: str
    instance_type: str
    region: str
    usd_per_hour: float
    uptime_hours: float = Field(description="Hours since launch through Sophia; -1 when not launched here.")
    cost_so_far_usd: float = Field(description="Computed: usd_per_hour × uptime_hours (not a bill); -1 unknown.")
    lease_expires_at: str = Field(description="When the lease ends and the instance is reaped; empty: no lease.")


class InstancesResult(InfraResult, Page[InstanceItem]):
    month_projection: str = Field(description="Billing instances' hourly total over a 730-hour month vs the budget.")
    budget_alerts: list[str]

    def render_text(self) -> str:
        lines = [*self.reminder(), *self.budget_alerts, f"{len(self.items)} Lambda Cloud instance(s)"]
        lines[-1] += _more(self.truncated, GPU_INSTANCES, self.next_cursor)
        for i in self.items:
            cost = (
                f"up {i.uptime_hours:.2f} h, ${i.cost_so_far_usd:.2f} so far (computed: price × uptime)"
                if i.uptime_hours >= 0
                else "uptime unknown (not launched through Sophia)"
            )
            lease = f", lease ends {i.lease_expires_at}" if i.lease_expires_at else ""
            label = f"{i.id} ({i.name})" if i.name else i.id
            lines.append(
                f"- {label}: {i.status}, {i.instance_type} in {i.region}, ip {i.ip or '—'}, "
                f"${i.usd_per_hour:.2f}/h, {cost}{lease}"
            )
        lines.append(f"Month: {self.month_projection}.")
        return "\n".join(lines)


AccountKind = Literal["images", "ssh_keys", "file_systems", "firewall_rules"]


class AccountResult(InfraResult, Page[dict[str, Any]]):
    kind: str

    def render_text(self) -> str:
        lines = [*self.reminder(), f"{len(self.items)} {self.kind.replace('_', ' ')}"]
        lines[-1] += _more(self.truncated, GPU_ACCOUNT, self.next_cursor)
        lines += [f"- {', '.join(f'{k}: {v}' for k, v in item.items() if v not in ('', None))}" for item in self.items]
        return "\n".join(lines)


class LaunchResult(InfraResult):
    dry_run: bool
    request: str = Field(description="The exact request sent (or that would be sent): method, path and JSON body.")
    usd_per_hour: float
    max_usd_per_hour: float
    lease_hours: float
    lease_cost_usd: float = Field(description="usd_per_hour × lease_hours: the most this launch costs if reaped.")
    month_projection: str
    month_usd: float
    budget_usd: float
    budget_alerts: list[str]
    has_capacity: bool = Field(description="Whether the chosen region has capacity for the type now.")
    regions_with_capacity: list[str]
    instance_ids: list[str]
    lease_expires_at: str

    def render_text(self) -> str:
        head = "DRY RUN: nothing was launched." if self.dry_run else f"Launched {', '.join(self.instance_ids)}."
        capacity = (
            "capacity available in the chosen region"
            if self.has_capacity
            else "NO capacity in the chosen region now; regions with capacity: "
            + (", ".join(self.regions_with_capacity) or "none")
        )
        lines = [
            *self.reminder(),
            head,
            f"Request: {self.request}",
            f"Price: ${self.usd_per_hour:.2f}/h (cap ${self.max_usd_per_hour:.2f}/h); {capacity}.",
            f"Lease: {self.lease_hours:g} h → ${self.lease_cost_usd:.2f}"
            + (f", ends {self.lease_expires_at}" if self.lease_expires_at else ""),
            f"Month: {self.month_projection}.",
            *self.budget_alerts,
        ]
        if self.dry_run:
            lines.append(f"To launch, call {GPU_LAUNCH} again with the same arguments and dry_run=false.")
        return "\n".join(lines)


class InstanceChange(InfraResult):
    action: str
    instances: list[InstanceItem]

    def render_text(self) -> str:
        lines = [*self.reminder(), f"{self.action}: {len(self.instances)} instance(s)"]
        lines += [f"- {i.id} ({i.name or 'no name'}): {i.status}" for i in self.instances]
        return "\n".join(lines)


class AccountChange(InfraResult):
    action: str
    detail: dict[str, Any]

    def render_text(self) -> str:
        details = ", ".join(f"{k}: {v}" for k, v in self.detail.items())
        return "\n".join([*self.reminder(), f"{self.action}. {details}".rstrip(". ")])


# --- plain functions (take the client; testable without MCP) -------------------------------------


def _notes(client: LambdaCloud) -> list[str]:
    reaped = [f"The server's lease reaper: {line}" for line in client.take_reaper_reports()]
    return [*reaped, *expired_notes(client.leases, client.now())]


def _paged(items: Sequence[ItemT], cursor: str, request: Sequence[object]) -> tuple[list[ItemT], bool, str]:
    page = page_of(items, cursor=cursor, request=request, page_size=PAGE_SIZE)
    return page.items, page.truncated, page.next_cursor


def _instance_item(instance: Instance, client: LambdaCloud, now: dt.datetime) -> InstanceItem:
    lease = client.leases.get(instance.id)
    hourly = usd(instance.price_cents_per_hour)
    uptime = max((now - lease.launched).total_seconds() / 3600, 0.0) if lease else -1.0
    return InstanceItem(
        id=instance.id,
        name=instance.name,
        status=instance.status,
        ip=instance.ip,
        instance_type=instance.instance_type,
        region=instance.region,
        usd_per_hour=float(hourly),
        uptime_hours=round(uptime, 4) if lease else -1.0,
        cost_so_far_usd=round(float(hourly) * uptime, 2) if lease else -1.0,
        lease_expires_at=lease.expires_at if lease else "",
    )


async def list_types(
    client: LambdaCloud, *, gpu: str = "", max_usd_per_hour: float = 0, region: str = "", cursor: str = ""
) -> TypesResult:
    offers = [
        o
        for o in await client.instance_types()
        if (not gpu or gpu.lower() in f"{o.name} {o.gpu_description}".lower())
        and (not max_usd_per_hour or usd(o.price_cents_per_hour) <= usd(round(max_usd_per_hour * 100)))
        and (not region or region in o.regions_with_capacity)
    ]
    items, truncated, next_cursor = _paged(
        [TypeItem.of(o) for o in offers], cursor, (GPU_TYPES, gpu, max_usd_per_hour, region)
    )
    return TypesResult(items=items, truncated=truncated, next_cursor=next_cursor, expired_leases=_notes(client))


async def list_instances(client: LambdaCloud, *, status: str = "", cursor: str = "") -> InstancesResult:
    listed = await client.instances()
    projection = await client.month_projection(listed)
    now = client.now()
    chosen = [_instance_item(i, client, now) for i in listed if not status or i.status == status]
    items, truncated, next_cursor = _paged(chosen, cursor, (GPU_INSTANCES, status))
    return InstancesResult(
        items=items,
        truncated=truncated,
        next_cursor=next_cursor,
        month_projection=projection.line(),
        budget_alerts=projection.alerts,
        expired_leases=_notes(client),
    )


async def list_account(client: LambdaCloud, *, kind: AccountKind, cursor: str = "") -> AccountResult:
    readers: dict[str, Callable[[], Awaitable[Sequence[Any]]]] = {
        "images": client.images,
        "ssh_keys": client.ssh_keys,
        "file_systems": client.file_systems,
        "firewall_rules": client.firewall_rules,
    }
    if kind not in readers:
        raise InputError(f"kind {kind!r} is unknown.", hint=f"Use one of: {', '.join(readers)}.")
    rows: list[dict[str, Any]] = [asdict(x) for x in await readers[kind]()]
    items, truncated, next_cursor = _paged(rows, cursor, (GPU_ACCOUNT, kind))
    return AccountResult(
        kind=kind, items=items, truncated=truncated, next_cursor=next_cursor, expired_leases=_notes(client)
    )


async def launch(client: LambdaCloud, request: LaunchRequest, *, dry_run: bool = True) -> LaunchResult:
    plan = await client.launch(request, dry_run=dry_run)
    return LaunchResult(
        dry_run=plan.dry_run,
        request=f"POST {LAUNCH_PATH} {json.dumps(plan.request.body(), sort_keys=True)}",
        usd_per_hour=float(usd(plan.offer.price_cents_per_hour)),
        max_usd_per_hour=float(plan.max_hourly_usd),
        lease_hours=plan.request.lease_hours,
        lease_cost_usd=float(plan.lease_cost_usd),
        month_projection=plan.projection.line(),
        month_usd=float(plan.projection.month_usd),
        budget_usd=float(plan.projection.budget_usd),
        budget_alerts=plan.projection.alerts,
        has_capacity=plan.has_capacity,
        regions_with_capacity=list(plan.offer.regions_with_capacity),
        instance_ids=plan.instance_ids,
        lease_expires_at=plan.expires_at,
        expired_leases=_notes(client),
    )


async def terminate(client: LambdaCloud, *, instance_id: str, confirm: str) -> InstanceChange:
    gone = await client.terminate(instance_id, confirm=confirm)
    now = client.now()
    return InstanceChange(
        action="Terminated", instances=[_instance_item(i, client, now) for i in gone], expired_leases=_notes(client)
    )


async def restart(client: LambdaCloud, *, instance_id: str) -> InstanceChange:
    again = await client.restart(instance_id)
    now = client.now()
    return InstanceChange(
        action="Restarted", instances=[_instance_item(i, client, now) for i in again], expired_leases=_notes(client)
    )


async def change_ssh_key(
    client: LambdaCloud, *, action: Literal["add", "delete"], name: str = "", public_key: str = "", key_id: str = ""
) -> AccountChange:
    if action == "add":
        key = await client.add_ssh_key(name, public_key)
        detail: dict[str, Any] = {"id": key.id, "name": key.name}
        done = f"Added SSH key {key.name}"
    else:
        await client.delete_ssh_key(key_id)
        detail, done = {"id": key_id}, f"Deleted SSH key {key_id}"
    return AccountChange(action=done, detail=detail, expired_leases=_notes(client))


async def change_file_system(
    client: LambdaCloud,
    *,
    action: Literal["create", "delete"],
    name: str = "",
    region: str = "",
    file_system_id: str = "",
) -> AccountChange:
    if action == "create":
        made = await client.create_file_system(name, region)
        detail: dict[str, Any] = {"id": made.id, "name": made.name, "region": made.region, "mount": made.mount_point}
        done = f"Created file system {made.name}"
    else:
        deleted = await client.delete_file_system(file_system_id)
        detail, done = {"deleted_ids": deleted}, f"Deleted file system {file_system_id}"
    return AccountChange(action=done, detail=detail, expired_leases=_notes(client))


# --- MCP wrappers --------------------------------------------------------------------------------


def _client(ctx: Context[Any, Any]) -> LambdaCloud:
    return state_of(ctx, InfraState).lambda_cloud()


@sophia_tool(GPU_TYPES, title="Lambda Cloud GPU types, prices and capacity", read_only=True, open_world=True)
async def gpu_types(
    ctx: Context[Any, Any],
    gpu: Annotated[str, Field(description="Only types whose name or GPU contains this, e.g. 'H100', 'a10'.")] = "",
    max_usd_per_hour: Annotated[float, Field(ge=0, description="Only types at or below this USD/h; 0: any.")] = 0,
    region: Annotated[str, Field(description="Only types with capacity now in this region, e.g. 'us-east-1'.")] = "",
    cursor: CursorArg = "",
) -> TypesResult:
    """List Lambda Cloud GPU instance types, cheapest first: price per hour (USD), GPUs, vCPUs, RAM, disk, and the
    regions that have capacity for each right now. Filter by GPU name, maximum hourly price, or region. Use a
    type's `name` and a region with capacity for gpu_launch. Warns about any expired GPU lease."""
    return await list_types(_client(ctx), gpu=gpu, max_usd_per_hour=max_usd_per_hour, region=region, cursor=cursor)


@sophia_tool(GPU_INSTANCES, title="Lambda Cloud GPU instances and their cost", read_only=True, open_world=True)
async def gpu_instances(
    ctx: Context[Any, Any],
    status: Annotated[
        Literal["", "booting", "active", "unhealthy", "terminating", "terminated", "preempted"],
        Field(description="Only instances in this status; empty: all."),
    ] = "",
    cursor: CursorArg = "",
) -> InstancesResult:
    """List the account's Lambda Cloud instances: id, name, status, public IP, type, region, price per hour, and
    for instances launched through Sophia the uptime, cost so far (computed as price × uptime, not a bill) and
    lease end. Also projects the billing instances over a 730-hour month against the monthly budget (alerts at
    75 % and 90 %) and warns about any expired lease."""
    return await list_instances(_client(ctx), status=status, cursor=cursor)


@sophia_tool(
    GPU_ACCOUNT, title="Lambda Cloud images, SSH keys, file systems, firewall", read_only=True, open_world=True
)
async def gpu_account(
    ctx: Context[Any, Any],
    kind: Annotated[
        AccountKind,
        Field(description="images (OS images per region), ssh_keys, file_systems (with region), firewall_rules."),
    ],
    cursor: CursorArg = "",
) -> AccountResult:
    """List one kind of Lambda Cloud account object: machine images (family, version, architecture, region), SSH
    keys (name, public key), file systems (name, region, in use, bytes used) or inbound firewall rules
    (protocol, ports, source network). Warns about any expired GPU lease."""
    return await list_account(_client(ctx), kind=kind, cursor=cursor)


@sophia_tool(
    GPU_LAUNCH,
    title="Launch a Lambda Cloud GPU instance (costs money)",
    read_only=False,
    idempotent=False,
    open_world=True,
    writes=True,
)
async def gpu_launch(
    ctx: Context[Any, Any],
    instance_type: Annotated[str, Field(description=f"Instance type name exactly as {GPU_TYPES} lists it.")],
    region: Annotated[str, Field(description=f"Region with capacity for the type ({GPU_TYPES}), e.g. 'us-east-1'.")],
    ssh_key: Annotated[str, Field(description=f"Name of an SSH key in the account ({GPU_ACCOUNT} kind=ssh_keys).")],
    lease_hours: Annotated[
        float,
        Field(gt=0, le=MAX_LEASE_HOURS, description="Hours the instance may run; it is terminated when this ends."),
    ] = 4,
    name: Annotated[str, Field(max_length=64, description="A name for the instance (terminate accepts it).")] = "",
    file_systems: Annotated[
        list[str], Field(description="File system names to mount; they must be in the same region.")
    ] = [],  # noqa: B006 - pydantic copies defaults
    image: Annotated[str, Field(description="Image id (UUID) or image family; empty: latest Lambda Stack.")] = "",
    tags: Annotated[dict[str, str], Field(description="Key/value tags for the instance.")] = {},  # noqa: B006
    dry_run: Annotated[bool, Field(description="True (default): check and show the plan, launch nothing.")] = True,
) -> LaunchResult:
    """Launch one Lambda Cloud GPU instance with a lease. By default a dry run: it shows the exact request, the
    hourly price, the cost of the lease and the month's projection, and launches nothing; call again with
    dry_run=false to launch. Refused when the type costs more per hour than SOPHIA_LAMBDA_MAX_HOURLY_USD, when
    running instances plus this one would project above SOPHIA_INFRA_MONTHLY_BUDGET_USD over a month (alerts at
    75 % and 90 %), or when the region has no capacity now (the regions that have it are named). When the lease
    ends the instance is terminated by `sophia infra reap`."""
    request = LaunchRequest(
        region=region,
        instance_type=instance_type,
        ssh_key=ssh_key,
        lease_hours=lease_hours,
        name=name,
        file_systems=tuple(file_systems),
        image=image,
        tags=dict(tags),
    )
    return await launch(_client(ctx), request, dry_run=dry_run)


@sophia_tool(
    GPU_TERMINATE,
    title="Terminate a Lambda Cloud GPU instance",
    read_only=False,
    destructive=True,
    open_world=True,
    writes=True,
)
async def gpu_terminate(
    ctx: Context[Any, Any],
    instance_id: InstanceIdArg,
    confirm: Annotated[str, Field(description="Must equal the instance's id or its name exactly.")],
) -> InstanceChange:
    """Terminate one Lambda Cloud instance for good (its local disk is lost; file systems stay). `confirm` must
    equal the instance's id or name, or nothing is done. Ends its lease."""
    return await terminate(_client(ctx), instance_id=instance_id, confirm=confirm)


@sophia_tool(
    GPU_RESTART,
    title="Restart a Lambda Cloud GPU instance",
    read_only=False,
    idempotent=False,
    open_world=True,
    writes=True,
)
async def gpu_restart(ctx: Context[Any, Any], instance_id: InstanceIdArg) -> InstanceChange:
    """Restart (reboot) one Lambda Cloud instance; it keeps its id, disk and lease."""
    return await restart(_client(ctx), instance_id=instance_id)


@sophia_tool(GPU_SSH_KEY, title="Add or delete a Lambda Cloud SSH key", read_only=False, open_world=True, writes=True)
async def gpu_ssh_key(
    ctx: Context[Any, Any],
    action: Annotated[Literal["add", "delete"], Field(description="add a public key, or delete a key by id.")],
    name: Annotated[str, Field(description="add: the key's name.")] = "",
    public_key: Annotated[str, Field(description="add: the public key text (e.g. 'ssh-ed25519 AAAA… me').")] = "",
    key_id: Annotated[str, Field(description=f"delete: the key's id ({GPU_ACCOUNT} kind=ssh_keys).")] = "",
) -> AccountChange:
    """Add a public SSH key to the Lambda Cloud account (name + public_key; key pairs are never generated here), or
    delete one by id. Instances launched with a key accept logins with it."""
    return await change_ssh_key(_client(ctx), action=action, name=name, public_key=public_key, key_id=key_id)


@sophia_tool(
    GPU_FILE_SYSTEM,
    title="Create or delete a Lambda Cloud file system",
    read_only=False,
    open_world=True,
    writes=True,
)
async def gpu_file_system(
    ctx: Context[Any, Any],
    action: Annotated[Literal["create", "delete"], Field(description="create (name + region) or delete (by id).")],
    name: Annotated[str, Field(description="create: letters first, then letters, digits or '-'.")] = "",
    region: Annotated[str, Field(description="create: the region, e.g. 'us-east-1'.")] = "",
    file_system_id: Annotated[str, Field(description=f"delete: the id ({GPU_ACCOUNT} kind=file_systems).")] = "",
) -> AccountChange:
    """Create a persistent Lambda Cloud file system in a region (instances in that region can mount it), or delete
    one by id (refused by Lambda while an instance mounts it; its data is lost)."""
    return await change_file_system(
        _client(ctx), action=action, name=name, region=region, file_system_id=file_system_id
    )


TOOLS: tuple[ToolDef, ...] = (
    gpu_types,
    gpu_instances,
    gpu_account,
    gpu_launch,
    gpu_terminate,
    gpu_restart,
    gpu_ssh_key,
    gpu_file_system,
)
