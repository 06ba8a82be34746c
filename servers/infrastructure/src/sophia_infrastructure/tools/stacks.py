"""Pulumi stack tools: the suite's `sophia-ai` stacks (or a user's project by directory) through the Automation API.

Reads are always listed; `up`, `refresh`, `destroy` and config writes are write-gated, and `stack_scale` runs
`up` only with dry_run=false and the gate on. Long operations report engine events as MCP progress and stop
the CLI (SIGINT, a graceful cancel) when the MCP call is cancelled. The engine (no MCP) is in `..pulumi`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.errors import InputError, PolicyError
from sophia_shared.gate import require_write
from sophia_shared.output import Page, page_of
from sophia_shared.server import ToolDef, ToolResult, progress_requested, sophia_tool, state_of
from sophia_shared.workers import run_blocking

from ..names import (
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
from ..policy import BUDGET_VARIABLE
from ..pulumi.changes import ProgressCallback, short
from ..pulumi.engine import HistoryEntry, Outcome, Project, StackEngine, StackInfo, check_config_key
from ..settings import SERVER_KEY
from ..state import InfraState
from ..suite.topology import PROJECT, WORKLOADS, Workload
from ..suite.topology import workload as find_workload

T = TypeVar("T")
MAX_RESOURCES = 100  # resources listed per operation; the counts always cover all
PAGE_SIZE = 50

StackArg = Annotated[
    str, Field(description=f"Stack: an environment ('dev' → sophia-dev) or a full name ({STACK_LIST} lists them).")
]
WorkDirArg = Annotated[
    str, Field(description="A Pulumi project directory (its CLI needs the language host); empty: the suite's own.")
]
CursorArg = Annotated[str, Field(description="next_cursor from the previous page; empty for the first.")]


# --- results -------------------------------------------------------------------------------------


class StackItem(BaseModel):
    name: str
    last_update: str
    resource_count: int | None
    update_in_progress: bool
    outputs: dict[str, str] = Field(description="Output values, clipped; secrets shown as [secret].")


class StackListResult(Page[StackItem], ToolResult):
    project: str
    backend: str

    def render_text(self) -> str:
        lines = [f"{len(self.items)} stack(s) of {self.project} in the {self.backend}"]
        if self.truncated:
            lines[-1] += f'; more: call {STACK_LIST} with cursor="{self.next_cursor}"'
        for s in self.items:
            busy = ", UPDATE IN PROGRESS" if s.update_in_progress else ""
            outs = ", ".join(f"{k}={v}" for k, v in s.outputs.items())
            lines.append(
                f"- {s.name}: {s.resource_count if s.resource_count is not None else '?'} resource(s), "
                f"last update {s.last_update or 'never'}{busy}" + (f"; outputs: {outs}" if outs else "")
            )
        return "\n".join(lines)


class OutputsResult(ToolResult):
    stack: str
    outputs: dict[str, Any] = Field(description="Secret outputs are shown as [secret], never their value.")

    def render_text(self) -> str:
        lines = [f"Outputs of {self.stack}: {len(self.outputs)}"]
        lines += [f"- {k}: {short(v, 500)}" for k, v in self.outputs.items()]
        return "\n".join(lines)


class ConfigResult(ToolResult):
    stack: str
    values: dict[str, str] = Field(description="Config keys and values; secret values are shown as [secret].")
    action: str = ""

    def render_text(self) -> str:
        lines = [self.action] if self.action else []
        lines.append(f"Config of {self.stack}: {len(self.values)} key(s)")
        lines += [f"- {k}: {v}" for k, v in self.values.items()]
        return "\n".join(lines)


class ResourceItem(BaseModel):
    name: str
    type: str
    op: str = Field(description="create, update, replace, delete (or same/refresh).")
    diff: list[str] = Field(description="Changed properties: 'path: old → new'.")
    failed: bool = False


class OperationResult(ToolResult):
    operation: str = Field(description="preview, up, refresh or destroy.")
    stack: str
    backend: str
    counts: dict[str, int] = Field(description="Resources per operation (create, update, replace, delete, same).")
    resources: list[ResourceItem] = Field(description="The changed resources with their property diff.")
    omitted: int = Field(0, description="Changed resources not listed (the counts include them).")
    outputs: dict[str, Any] = Field(default_factory=dict, description="Stack outputs after up; secrets masked.")
    seconds: float
    note: str = ""

    def render_text(self) -> str:
        verb = "would change" if self.operation == "preview" else "changed"
        counted = ", ".join(f"{n} {op}" for op, n in sorted(self.counts.items()) if n) or "nothing"
        lines = [f"{self.operation} of {self.stack} ({self.backend}) in {self.seconds:.1f} s: {counted}"]
        if not any(self.counts.get(op) for op in ("create", "update", "replace", "delete")):
            lines.append(f"No resource {verb}.")
        for r in self.resources:
            lines.append(f"{_SIGN.get(r.op, ' ')} {r.op} {r.name} ({r.type})" + (" FAILED" if r.failed else ""))
            lines += [f"    {d}" for d in r.diff]
        if self.omitted:
            lines.append(f"... and {self.omitted} more changed resource(s), counted above.")
        if self.outputs:
            lines.append("Outputs: " + ", ".join(f"{k}={short(v, 80)}" for k, v in self.outputs.items()))
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


_SIGN = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


class HistoryResult(Page[HistoryEntry], ToolResult):
    stack: str

    def render_text(self) -> str:
        lines = [f"{len(self.items)} update(s) of {self.stack}, newest first"]
        if self.truncated:
            lines[-1] += f'; more: call {STACK_HISTORY} with cursor="{self.next_cursor}"'
        for h in self.items:
            changes = ", ".join(f"{n} {op}" for op, n in h.resource_changes.items())
            lines.append(f"- {h.started} {h.kind}: {h.result} ({changes or 'no changes'}) {h.message}".rstrip())
        return "\n".join(lines)


class CancelResult(ToolResult):
    stack: str
    message: str

    def render_text(self) -> str:
        return self.message


class ScaleResult(ToolResult):
    workload: str
    config_key: str
    current: int
    target: int
    bounds: str = Field(description="Replica counts the workload accepts.")
    dry_run: bool
    month_usd_before: float = Field(description="The stack's estimated monthly cost before (assumed node prices).")
    month_usd_after: float
    cost_basis: str = ""
    warning: str = ""
    plan: OperationResult | None = Field(
        None, description="The preview (dry run) or the applied up; none if unchanged."
    )

    def render_text(self) -> str:
        if self.plan is None:
            return (
                f"{self.workload} is already at {_replicas(self.target)} in {PROJECT}:{self.config_key}; nothing to do."
            )
        head = (
            f"DRY RUN: nothing was changed. Scaling {self.workload} from {self.current} to {_replicas(self.target)} "
            f"({PROJECT}:{self.config_key}; allowed {self.bounds}) would do:"
            if self.dry_run
            else f"Scaled {self.workload} from {self.current} to {_replicas(self.target)} ({self.config_key}):"
        )
        delta = self.month_usd_after - self.month_usd_before
        cost = (
            f"Monthly cost of the stack: ${self.month_usd_before:,.2f} → ${self.month_usd_after:,.2f} "
            f"({'+' if delta >= 0 else '-'}${abs(delta):,.2f}); {self.cost_basis}"
        )
        tail = (
            [f"To apply, call {STACK_SCALE} again with the same arguments and dry_run=false (needs the write gate)."]
            if self.dry_run
            else []
        )
        warning = [self.warning] if self.warning else []
        return "\n".join([head, self.plan.render_text(), cost, *warning, *tail])


def _replicas(count: int) -> str:
    return f"{count} replica" if count == 1 else f"{count} replicas"


# --- plain functions (take the engine; testable without MCP) -------------------------------------


def operation_result(outcome: Outcome, engine: StackEngine) -> OperationResult:
    listed = [
        ResourceItem(
            name=c.name,
            type=c.type,
            op=c.op,
            diff=[f"{p.path}: {p.old or '∅'} → {p.new or '∅'}" for p in c.properties][:20],
            failed=c.failed,
        )
        for c in outcome.changes
    ]
    return OperationResult(
        operation=outcome.operation,
        stack=outcome.stack,
        backend=engine.backend.label(),
        counts=outcome.counts,
        resources=listed[:MAX_RESOURCES],
        omitted=max(0, len(listed) - MAX_RESOURCES),
        outputs=outcome.outputs,
        seconds=outcome.seconds,
        note=outcome.note,
    )


def stack_items(infos: list[StackInfo]) -> list[StackItem]:
    return [
        StackItem(
            name=i.name,
            last_update=i.last_update,
            resource_count=i.resource_count,
            update_in_progress=i.update_in_progress,
            outputs=i.outputs,
        )
        for i in infos
    ]


def scale_target(chosen: Workload, current: int, *, replicas: int = 0, factor: float = 0) -> int:
    """The replica count a scale asks for: absolute, or current × factor rounded up; refused outside the bounds."""
    if bool(replicas) == bool(factor):
        raise InputError(
            "Give exactly one of replicas (an absolute count) or factor (a multiplier of the current count).",
            hint="e.g. replicas=5, or factor=1.5 for half again as many.",
        )
    target = replicas if replicas else math.ceil(current * factor - 1e-9)
    low, high = chosen.bounds()
    if target < low or (high is not None and target > high):
        allowed = bounds_text(chosen)
        why = " (the bounds of its autoscaler)" if high is not None else ""
        raise PolicyError(
            f"Scaling {chosen.key} to {target} replica(s) is refused: it accepts {allowed}{why}.",
            hint=f"Choose a count within {allowed}.",
        )
    return target


def bounds_text(chosen: Workload) -> str:
    low, high = chosen.bounds()
    return f"{low}–{high}" if high is not None else f"at least {low}"


def config_value(config: dict[str, str], project: str, key: str) -> str | None:
    return config.get(f"{project}:{key}", config.get(key))


@dataclass
class ScalePlan:
    """What a scale decided, filled in while the stack is held (see `StackEngine.change_config`)."""

    current: int = 0
    target: int = 0
    before: Decimal = Decimal(0)
    after: Decimal = Decimal(0)
    warning: str = ""


def plan_scale(
    chosen: Workload,
    plan: ScalePlan,
    *,
    replicas: int,
    factor: float,
    budget_usd: float,
    apply: bool,
) -> Callable[[dict[str, str]], dict[str, str]]:
    """The `decide` step of a scale: current and target replicas, the monthly cost before and after (one
    replica's cost from suite/costs.py, the assumptions infra_optimize states), and the budget check: a warning
    in a dry run, a refusal for an apply. Returns the config change ({} when the count is unchanged)."""
    from ..suite import costs

    def decide(config: dict[str, str]) -> dict[str, str]:
        all_replicas = costs.configured_replicas(config)  # the shared parser: a bad value is a clear error
        plan.current = all_replicas[chosen.key]
        plan.target = scale_target(chosen, plan.current, replicas=replicas, factor=factor)
        each = {w.key: costs.replica_month_usd(w, costs.node_for(w)) for w in WORKLOADS.values()}
        plan.before = sum((each[k] * n for k, n in all_replicas.items()), Decimal(0))
        plan.after = plan.before + each[chosen.key] * (plan.target - plan.current)
        if plan.target == plan.current:
            return {}
        if budget_usd and plan.after > Decimal(str(budget_usd)) and plan.target > plan.current:
            said = (
                f"The stack's estimated monthly cost after the scale, ${plan.after:,.2f}, is above "
                f"{BUDGET_VARIABLE}=${budget_usd:,.2f}."
            )
            if apply:
                raise PolicyError(
                    f"Refused to scale {chosen.key} to {plan.target}: {said}",
                    hint=f"Raise {BUDGET_VARIABLE} if this spend is intended, or scale to fewer replicas.",
                )
            plan.warning = f"WARNING: {said} Applying it is refused unless {BUDGET_VARIABLE} is raised."
        return {chosen.config_key: str(plan.target)}

    return decide


COST_BASIS = (
    "estimated like infra_optimize: each replica's share of an assumed node price (a CPU VM list price; the "
    "Lambda list price of an A10 node for GPU workloads) × 730 h."
)


# --- MCP wrappers --------------------------------------------------------------------------------


class _ProgressRelay:
    """Engine events arrive on the SDK's threads; this forwards them, in order, as MCP progress."""

    def __init__(self, ctx: Context[Any, Any]) -> None:
        self._ctx = ctx
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue()
        self.enabled = progress_requested(ctx)

    def callback(self) -> ProgressCallback | None:
        if not self.enabled:
            return None

        def report(done: int, message: str) -> None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (done, message))

        return report

    async def pump(self) -> None:
        while (item := await self._queue.get()) is not None:
            await self._ctx.report_progress(float(item[0]), None, item[1])


@asynccontextmanager
async def _relay(ctx: Context[Any, Any]) -> AsyncIterator[_ProgressRelay]:
    relay = _ProgressRelay(ctx)
    pump = asyncio.create_task(relay.pump()) if relay.enabled else None
    try:
        yield relay
    finally:
        if pump is not None:
            relay._queue.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(pump), timeout=2)
            except (TimeoutError, asyncio.CancelledError):
                pump.cancel()


async def _target(ctx: Context[Any, Any], work_dir: str) -> tuple[InfraState, StackEngine, Project]:
    state = state_of(ctx, InfraState)
    engine = await run_blocking(state.stack_engine)
    project = await run_blocking(lambda: state.project(work_dir))
    return state, engine, project


async def _operate(
    ctx: Context[Any, Any],
    engine: StackEngine,
    project: Project,
    stack: str,
    run: Callable[[ProgressCallback | None], T],
) -> T:
    """Run a long operation off the loop, with progress, and cancel the CLI if the MCP call is cancelled."""
    async with _relay(ctx) as relay:
        return await run_blocking(lambda: run(relay.callback()), on_cancel=lambda: _interrupt(engine, project, stack))


def _interrupt(engine: StackEngine, project: Project, stack: str) -> None:
    engine.interrupt(project, stack)


async def _waiting(ctx: Context[Any, Any], run: Callable[[ProgressCallback | None], T]) -> T:
    """A short call that may wait for the stack's running operation; the wait is reported as progress."""
    async with _relay(ctx) as relay:
        return await run_blocking(lambda: run(relay.callback()))


def _gate(state: InfraState, action: str) -> None:
    require_write(state.settings, SERVER_KEY, action)


@sophia_tool(STACK_LIST, title="List Pulumi stacks", read_only=True)
async def stack_list(ctx: Context[Any, Any], work_dir: WorkDirArg = "", cursor: CursorArg = "") -> StackListResult:
    """List the stacks of the suite's sophia-ai project (or of the project in work_dir): last update, resource
    count, whether an update runs, and an outputs summary (secrets masked). Shows which backend is in use."""
    _, engine, project = await _target(ctx, work_dir)
    infos = await run_blocking(lambda: engine.list_stacks(project))
    page = page_of(stack_items(infos), cursor=cursor, request=(STACK_LIST, work_dir), page_size=PAGE_SIZE)
    return StackListResult(
        items=page.items,
        truncated=page.truncated,
        next_cursor=page.next_cursor,
        project=project.name,
        backend=engine.backend.describe(),
    )


@sophia_tool(STACK_OUTPUTS, title="Pulumi stack outputs", read_only=True)
async def stack_outputs(ctx: Context[Any, Any], stack: StackArg, work_dir: WorkDirArg = "") -> OutputsResult:
    """The outputs of one stack (e.g. 'prod'); secret outputs are shown as [secret], never their value."""
    _, engine, project = await _target(ctx, work_dir)
    outputs = await run_blocking(lambda: engine.outputs(project, stack))
    return OutputsResult(stack=project.stack_name(stack), outputs=outputs)


@sophia_tool(STACK_CONFIG, title="Pulumi stack config", read_only=True)
async def stack_config(
    ctx: Context[Any, Any],
    stack: StackArg,
    key: Annotated[str, Field(description="One key, e.g. 'data_replicas'; empty: all keys.")] = "",
    work_dir: WorkDirArg = "",
) -> ConfigResult:
    """Read a stack's config: one key or all. Secret values are shown as [secret], never their value."""
    _, engine, project = await _target(ctx, work_dir)
    values = await run_blocking(lambda: engine.config(project, stack, key))
    return ConfigResult(stack=project.stack_name(stack), values=values)


@sophia_tool(STACK_CONFIG_SET, title="Set a Pulumi stack config value", read_only=False, writes=True)
async def stack_config_set(
    ctx: Context[Any, Any],
    stack: StackArg,
    key: Annotated[str, Field(min_length=1, description="Config key, e.g. 'data_replicas' or 'aws:region'.")],
    value: Annotated[str, Field(description="The value; with secret=true it is encrypted and never echoed.")],
    secret: Annotated[
        bool, Field(description="Store as a secret (encrypted by the stack's secrets provider).")
    ] = False,
    work_dir: WorkDirArg = "",
    remove: Annotated[bool, Field(description="Remove the key instead (value is ignored).")] = False,
) -> ConfigResult:
    """Set one stack config value (creates the stack if it does not exist), or remove it with remove=true. Use
    secret=true for passwords and tokens: stored encrypted, shown as [secret]. Takes effect on the next stack_up."""
    state, engine, project = await _target(ctx, work_dir)
    name = project.stack_name(stack)
    key = check_config_key(key)
    if remove:
        _gate(state, f"remove config {key} from stack {name}")
        removed = await _waiting(ctx, lambda cb: engine.remove_config(project, stack, key, on_progress=cb))
        values = await run_blocking(lambda: engine.config(project, stack))
        said = f"Removed {key}." if removed else f"{name} had no config key {key}; nothing was removed."
        return ConfigResult(stack=name, values=values, action=said)
    if not work_dir.strip():
        check_suite_value(key, value, secret=secret)
    _gate(state, f"set config {key} on stack {name}")
    created = await _waiting(
        ctx, lambda cb: engine.set_config(project, stack, key, value, secret=secret, on_progress=cb)
    )
    values = await run_blocking(lambda: engine.config(project, stack, key))
    made = " (stack created)" if created else ""
    return ConfigResult(stack=name, values=values, action=f"Set {key}{' as a secret' if secret else ''}{made}.")


def check_suite_value(key: str, value: str, *, secret: bool) -> None:
    """A `{workload}_replicas` key of the suite's project takes a whole number within the workload's bounds."""
    from ..suite.costs import parse_replicas

    namespace, _, bare = key.rpartition(":")
    if namespace not in {"", PROJECT}:
        return
    chosen = next((w for w in WORKLOADS.values() if w.config_key == bare), None)
    if chosen is None:
        return
    if secret:
        raise InputError(f"{bare} is a replica count, not a secret.", hint="Set it with secret=false.")
    parse_replicas(chosen, value)


@sophia_tool(STACK_PREVIEW, title="Preview a Pulumi stack update", read_only=True)
async def stack_preview(ctx: Context[Any, Any], stack: StackArg, work_dir: WorkDirArg = "") -> OperationResult:
    """Preview what stack_up would do, changing nothing: per resource create/update/replace/delete, and for changed
    resources the properties that differ (old → new). Reports engine events as progress."""
    _, engine, project = await _target(ctx, work_dir)
    outcome = await _operate(ctx, engine, project, stack, lambda cb: engine.preview(project, stack, on_progress=cb))
    return operation_result(outcome, engine)


@sophia_tool(STACK_UP, title="Apply a Pulumi stack (pulumi up)", read_only=False, idempotent=False, writes=True)
async def stack_up(ctx: Context[Any, Any], stack: StackArg, work_dir: WorkDirArg = "") -> OperationResult:
    """Apply the stack (pulumi up): create, update, replace and delete resources to match the program and config;
    creates the stack if new. Run stack_preview first. Reports progress; cancelling the call cancels the update."""
    state, engine, project = await _target(ctx, work_dir)
    _gate(state, f"update stack {project.stack_name(stack)}")
    outcome = await _operate(ctx, engine, project, stack, lambda cb: engine.up(project, stack, on_progress=cb))
    return operation_result(outcome, engine)


@sophia_tool(STACK_REFRESH, title="Refresh a Pulumi stack's state", read_only=False, writes=True)
async def stack_refresh(ctx: Context[Any, Any], stack: StackArg, work_dir: WorkDirArg = "") -> OperationResult:
    """Refresh the stack's state from the real resources (pulumi refresh); changes state, not resources."""
    state, engine, project = await _target(ctx, work_dir)
    _gate(state, f"refresh stack {project.stack_name(stack)}")
    outcome = await _operate(ctx, engine, project, stack, lambda cb: engine.refresh(project, stack, on_progress=cb))
    return operation_result(outcome, engine)


@sophia_tool(STACK_DESTROY, title="Destroy a Pulumi stack's resources", read_only=False, destructive=True, writes=True)
async def stack_destroy(
    ctx: Context[Any, Any],
    stack: StackArg,
    confirm: Annotated[str, Field(description="Must equal the full stack name, e.g. 'sophia-dev'.")],
    remove_stack: Annotated[bool, Field(description="Also remove the stack, its config and history.")] = False,
    work_dir: WorkDirArg = "",
) -> OperationResult:
    """Delete every resource of the stack (pulumi destroy). `confirm` must equal the full stack name or nothing
    is done. Reports progress; cancelling the call cancels the destroy."""
    state, engine, project = await _target(ctx, work_dir)
    name = project.stack_name(stack)
    if confirm.strip() != name:
        raise PolicyError(
            f"Refused to destroy {name}: confirm was {confirm!r}, not the stack's name.",
            hint=f'Call {STACK_DESTROY} again with confirm="{name}" if the user means to delete all its resources.',
        )
    _gate(state, f"destroy stack {name}")
    outcome = await _operate(
        ctx, engine, project, stack, lambda cb: engine.destroy(project, stack, remove=remove_stack, on_progress=cb)
    )
    return operation_result(outcome, engine)


@sophia_tool(STACK_HISTORY, title="Pulumi stack update history", read_only=True)
async def stack_history(
    ctx: Context[Any, Any],
    stack: StackArg,
    limit: Annotated[int, Field(ge=1, le=200, description="Most recent updates to read (default 20).")] = 20,
    work_dir: WorkDirArg = "",
    cursor: CursorArg = "",
) -> HistoryResult:
    """The stack's past updates, newest first: kind (update, refresh, destroy), result, times and change counts."""
    _, engine, project = await _target(ctx, work_dir)
    entries = await run_blocking(lambda: engine.history(project, stack, limit=limit))
    page = page_of(entries, cursor=cursor, request=(STACK_HISTORY, stack, limit, work_dir), page_size=PAGE_SIZE)
    return HistoryResult(
        items=page.items, truncated=page.truncated, next_cursor=page.next_cursor, stack=project.stack_name(stack)
    )


@sophia_tool(STACK_CANCEL, title="Cancel a Pulumi stack update", read_only=False, idempotent=False)
async def stack_cancel(ctx: Context[Any, Any], stack: StackArg, work_dir: WorkDirArg = "") -> CancelResult:
    """Stop the stack's running operation in this server (graceful). If none runs here, clears the update lock
    another process or a crashed run left (`pulumi cancel`; needs the write gate)."""
    state, engine, project = await _target(ctx, work_dir)
    name = project.stack_name(stack)
    stopped = await run_blocking(lambda: engine.interrupt(project, stack))
    if stopped:
        return CancelResult(stack=name, message=f"Asked the running {stopped} of {name} in this server to stop.")
    _gate(state, f"clear the update lock of stack {name} (no operation on it runs in this server; `pulumi cancel`)")
    message = await run_blocking(lambda: engine.clear_lock(project, stack))
    return CancelResult(stack=name, message=message)


@sophia_tool(STACK_SCALE, title="Scale a sophia-ai workload", read_only=False, idempotent=False)
async def stack_scale(
    ctx: Context[Any, Any],
    workload: Annotated[
        str, Field(description="ai, data, bi, infrastructure or gateway (the HPA-scaled MCP gateway, 3–10).")
    ],
    stack: StackArg = "dev",
    replicas: Annotated[int, Field(ge=0, description="Absolute replica count; 0: use factor.")] = 0,
    factor: Annotated[float, Field(ge=0, description="Multiply the current count (rounded up); 0: use replicas.")] = 0,
    dry_run: Annotated[bool, Field(description="True (default): preview only; false applies (write gate).")] = True,
) -> ScaleResult:
    """Scale a workload of the suite's sophia-ai stack: sets {workload}_replicas (absolute or by factor; at least 1,
    within the HPA bounds where it has one), previews and shows the diff. Runs up only with dry_run=false; if that
    up fails or is cancelled, the previous replica setting is restored and the error says so."""
    try:
        chosen = find_workload(workload)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    state, engine, project = await _target(ctx, "")
    name = project.stack_name(stack)
    if not dry_run:
        _gate(state, f"scale {chosen.key} on stack {name}")
    if bool(replicas) == bool(factor):
        scale_target(chosen, chosen.replicas, replicas=replicas, factor=factor)  # says how to ask
    plan = ScalePlan()
    decide = plan_scale(
        chosen,
        plan,
        replicas=replicas,
        factor=factor,
        budget_usd=state.settings.get_float(BUDGET_VARIABLE, minimum=0),
        apply=not dry_run,
    )
    # One held operation from the first CLI call: a stack_cancel at any point stops it (config set back).
    outcome = await _operate(
        ctx,
        engine,
        project,
        stack,
        lambda cb: engine.change_config("scale", project, stack, decide, apply=not dry_run, on_progress=cb),
    )
    return ScaleResult(
        workload=chosen.key,
        config_key=chosen.config_key,
        current=plan.current,
        target=plan.target,
        bounds=bounds_text(chosen),
        dry_run=dry_run,
        month_usd_before=float(round(plan.before, 2)),
        month_usd_after=float(round(plan.after, 2)),
        cost_basis=COST_BASIS,
        warning=plan.warning,
        plan=operation_result(outcome, engine) if outcome is not None else None,
    )


TOOLS: tuple[ToolDef, ...] = (
    stack_list,
    stack_outputs,
    stack_config,
    stack_config_set,
    stack_preview,
    stack_up,
    stack_refresh,
    stack_destroy,
    stack_history,
    stack_cancel,
    stack_scale,
)
