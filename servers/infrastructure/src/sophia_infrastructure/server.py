"""The infrastructure server: Lambda Cloud GPUs and Pulumi stacks (tools arrive with their issue)."""

from __future__ import annotations

from sophia_shared.server import ServerSpec, run_server

from .settings import ENV_PREFIXES, SERVER_KEY, SETTINGS

SPEC: ServerSpec[object] = ServerSpec(
    name="sophia-infrastructure",
    key=SERVER_KEY,
    aliases=("infra",),
    summary="Lambda Cloud GPUs and Pulumi stacks (no tools yet)",
    instructions=(
        "Lambda Cloud GPU instances and Pulumi stacks through the Automation API. "
        "No tools are available in this version yet."
    ),
    tools=[],
    settings=SETTINGS,
    env_prefixes=ENV_PREFIXES,
)


def main() -> None:
    run_server(SPEC)


if __name__ == "__main__":
    main()
