"""The data-intelligence server: web search, extraction and scraping (tools arrive with their issue)."""

from __future__ import annotations

from sophia_shared.server import ServerSpec, run_server

SPEC: ServerSpec[object] = ServerSpec(
    name="sophia-data-intelligence",
    key="data_intelligence",
    instructions=(
        "Web search, page extraction, scraping, actor runs, blog search and lead lists. "
        "No tools are available in this version yet."
    ),
    tools=[],
)


def main() -> None:
    run_server(SPEC)


if __name__ == "__main__":
    main()
