"""Blocking SDK calls run in worker threads, cancellable from the MCP request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def run_blocking(fn: Callable[[], T], *, on_cancel: Callable[[], None] | None = None) -> T:
    """Run `fn` in a worker thread; if the MCP call is cancelled, call `on_cancel` (e.g. abort the
    running query) and stop waiting, so the event loop never blocks on a vendor SDK."""
    try:
        return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        if on_cancel is not None:
            on_cancel()
        raise
