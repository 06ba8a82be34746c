"""The AI-intelligence server: LLM calls routed through Portkey (tools arrive with their issue)."""

from __future__ import annotations

from sophia_shared.server import ServerSpec, run_server

SPEC: ServerSpec[object] = ServerSpec(
    name="sophia-ai-intelligence",
    key="ai_intelligence",
    instructions=(
        "LLM calls routed through a Portkey gateway: model comparison, embeddings, usage and cost. "
        "No tools are available in this version yet."
    ),
    tools=[],
)


def main() -> None:
    run_server(SPEC)


if __name__ == "__main__":
    main()
