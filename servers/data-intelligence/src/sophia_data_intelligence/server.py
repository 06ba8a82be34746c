"""The data-intelligence server: web search, extraction and scraping (tools arrive with their issue)."""

from __future__ import annotations

from sophia_shared.server import ServerSpec, run_server

from .settings import ENV_PREFIXES, SERVER_KEY, SETTINGS

SPEC: ServerSpec[object] = ServerSpec(
    name="sophia-data-intelligence",
    key=SERVER_KEY,
    aliases=("data",),
    summary="web search, extraction, scraping (no tools yet)",
    instructions=(
        "Web search, page extraction, scraping, actor runs, blog search and lead lists. "
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
