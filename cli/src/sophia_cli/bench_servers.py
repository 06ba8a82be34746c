"""Servers the benchmark launches: a bare one-tool SDK server, and the BI server plus two probe tools.

`python -m sophia_cli.bench_servers bare|bi`. The probe tools go through the same shared factory
as every real tool (redaction, structured output, worker threads), so the ratios measure our core.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from .bench_probes import SLEEP_SECONDS


def run_bare() -> None:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bare")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    def sleep() -> str:
        """Block a worker thread for SLEEP_SECONDS, as a slow vendor SDK call would."""
        time.sleep(SLEEP_SECONDS)
        return "slept"

    server.run()


def run_bi_with_probes() -> None:
    from sophia_business_intelligence.server import SPEC
    from sophia_shared.server import run_server

    from .bench_probes import bench_echo, bench_sleep

    run_server(replace(SPEC, tools=[*SPEC.tools, bench_echo, bench_sleep]))


if __name__ == "__main__":
    {"bare": run_bare, "bi": run_bi_with_probes}[sys.argv[1]]()
