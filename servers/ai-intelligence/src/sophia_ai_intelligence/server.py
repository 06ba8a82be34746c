"""The AI-intelligence server: LLM calls routed through Portkey (tools arrive with their issue)."""

from __future__ import annotations

from sophia_shared.server import ServerSpec, run_server

from .settings import ENV_PREFIXES, SERVER_KEY, SETTINGS

SPEC: ServerSpec[object] = ServerSpec(
    name="sophia-ai-intelligence",
    key=SERVER_KEY,
    aliases=("ai",),
    summary="LLM calls through Portkey (no tools yet)",
    instructions=(
        "LLM calls routed through a Portkey gateway: model comparison, embeddings, usage and cost. "
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
