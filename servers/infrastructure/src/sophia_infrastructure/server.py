"""The infrastructure server: Lambda Cloud GPUs and Pulumi stacks (tools arrive with their issue)."""

from __future__ import annotations

from sophia_shared.server import ServerSpec, run_server

SPEC: ServerSpec[object] = ServerSpec(
    name="sophia-infrastructure",
    key="infrastructure",
    instructions=(
        "Lambda Cloud GPU instances and Pulumi stacks through the Automation API. "
        "No tools are available in this version yet."
    ),
    tools=[],
)


def main() -> None:
    run_server(SPEC)


if __name__ == "__main__":
    main()
