"""The infrastructure server: Lambda Cloud GPUs with spend guards, and Pulumi stacks through the Automation API."""

from __future__ import annotations

from collections.abc import Sequence

from sophia_shared.server import LazyTools, ServerSpec, ToolDef, run_server, tool_names_in
from sophia_shared.settings import Settings

from . import names
from .settings import ENV_PREFIXES, SERVER_KEY, SETTINGS
from .state import InfraState, make_state


def _tools() -> Sequence[ToolDef]:
    """Imported on first use, so `initialize` does not wait for the HTTP stack (`pulumi` itself is imported
    only when a stack tool runs)."""
    from .tools.gpu import TOOLS as GPU_TOOLS
    from .tools.optimize import TOOLS as OPTIMIZE_TOOLS
    from .tools.stacks import TOOLS as STACK_TOOLS

    return [*GPU_TOOLS, *STACK_TOOLS, *OPTIMIZE_TOOLS]


def probe_pulumi(settings: Settings) -> str:
    """`sophia doctor`'s check: the CLI's path and version and the stacks' backend; the install hint when missing."""
    from .pulumi.backend import resolve_backend
    from .pulumi.cli import find_cli

    cli = find_cli(settings)  # NotConfigured (doctor shows "off") with the install hint when missing
    backend = resolve_backend(settings)
    return f"Pulumi CLI v{cli.version} at {cli.path}; stacks in the {backend.describe()}"


SPEC: ServerSpec[InfraState] = ServerSpec(
    name="sophia-infrastructure",
    key=SERVER_KEY,
    aliases=("infra",),
    summary="Lambda Cloud GPUs with price caps, a monthly budget and leases; Pulumi stacks",
    instructions=(
        "Lambda Cloud GPU instances: gpu_types shows types with price and the regions with capacity now; "
        "gpu_instances shows what runs and what it costs against the monthly budget; with the write gate, "
        "gpu_launch (a dry run by default, refused above SOPHIA_LAMBDA_MAX_HOURLY_USD or the monthly budget, "
        "with a lease) and gpu_terminate (confirm with the instance's name or id). Expired leases are reported "
        "on every call and terminated by the server while it runs (and by `sophia infra reap`). "
        "Pulumi stacks of the suite's sophia-ai project (stacks sophia-<env>; or a project directory via work_dir): "
        "stack_list, stack_outputs, stack_config, stack_preview (the diff, changes nothing), stack_history; "
        "stack_scale sets {workload}_replicas within the HPA bounds and previews (applies with dry_run=false); "
        "with the write gate stack_up, stack_refresh, stack_destroy (confirm = stack name), stack_config_set "
        "(secret=true for secrets, never echoed). stack_cancel stops a running update or clears a stale lock."
    ),
    tools=LazyTools(_tools),
    tool_names=tool_names_in(names),
    write_tools=dict.fromkeys(
        (
            names.GPU_LAUNCH,
            names.GPU_TERMINATE,
            names.GPU_RESTART,
            names.GPU_SSH_KEY,
            names.GPU_FILE_SYSTEM,
            names.STACK_CONFIG_SET,
            names.STACK_UP,
            names.STACK_REFRESH,
            names.STACK_DESTROY,
        ),
        "",
    ),
    make_state=make_state,
    close_state=InfraState.close,
    settings=SETTINGS,
    env_prefixes=ENV_PREFIXES,
    probe=probe_pulumi,
)


def main() -> None:
    run_server(SPEC)


if __name__ == "__main__":
    main()
