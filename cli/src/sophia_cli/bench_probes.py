"""Two probe tools the benchmark adds to the BI server, built with the same factory as real tools."""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import Field

from sophia_shared.server import ToolResult, sophia_tool
from sophia_shared.workers import run_blocking

SLEEP_SECONDS = 0.5


class Echo(ToolResult):
    text: str

    def render_text(self) -> str:
        return self.text


@sophia_tool("bench_echo", title="Echo", read_only=True)
async def bench_echo(text: Annotated[str, Field(description="Text to echo.")]) -> Echo:
    """Echo the text back (benchmark probe)."""
    return Echo(text=text)


@sophia_tool("bench_sleep", title="Sleep", read_only=True)
async def bench_sleep() -> Echo:
    """Block a worker thread for SLEEP_SECONDS, as a blocking vendor SDK would (benchmark probe)."""
    await run_blocking(lambda: time.sleep(SLEEP_SECONDS))
    return Echo(text="slept")
