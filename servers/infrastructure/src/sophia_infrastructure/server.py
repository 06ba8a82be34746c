"""The infrastructure server: Lambda Cloud GPUs with spend guards (Pulumi stacks arrive with their issue)."""

from __future__ import annotations

from collections.abc import Sequence

from sophia_shared.server import LazyTools, ServerSpec, ToolDef, run_server

from .settings import ENV_PREFIXES, SERVER_KEY, SETTINGS
from .state import InfraState


def _tools() -> Sequence[ToolDef]:
    """Imported on first use, so `initialize` does not wait for the HTTP stack."""
    from .tools.gpu import TOOLS

    return list(TOOLS)


SPEC: ServerSpec[InfraState] = ServerSpec(
    name="sophia-infrastructure",
    key=SERVER_KEY,
    aliases=("infra",),
    summary="Lambda Cloud GPUs with price caps, a monthly budget and leases",
    instructions=(
        "Lambda Cloud GPU instances: gpu_types shows types with price and the regions with capacity now; "
        "gpu_instances shows what runs and what it costs against the monthly budget; with the write gate, "
        "gpu_launch (a dry run by default, refused above SOPHIA_LAMBDA_MAX_HOURLY_USD or the monthly budget, "
        "with a lease) and gpu_terminate (confirm with the instance's name or id). Expired leases are reported "
        "on every call and terminated by `sophia infra reap`."
    ),
    tools=LazyTools(_tools),
    make_state=InfraState,
    close_state=InfraState.close,
    settings=SETTINGS,
    env_prefixes=ENV_PREFIXES,
)


def main() -> None:
    run_server(SPEC)


if __name__ == "__main__":
    main()
