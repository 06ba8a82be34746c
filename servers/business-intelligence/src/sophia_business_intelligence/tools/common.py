"""Pieces the BI tools share: the warehouse call wrapper and table rendering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.server import state_of
from sophia_shared.workers import run_blocking

from ..backends.base import CancelToken, Warehouse
from ..state import BIState

T = TypeVar("T")


# Bound values for `?` placeholders; a plain list (default []) keeps the schema free of anyOf.
SqlParams = Annotated[
    list[Any], Field(description="Values bound to the ? placeholders, in order (never formatted into the SQL).")
]


class Column(BaseModel):
    name: str = Field(description="Column name as the warehouse reports it.")
    type: str = Field(description="Column data type.")


async def on_warehouse(ctx: Context[Any, Any], action: Callable[[Warehouse, CancelToken], T]) -> T:
    """Run a blocking warehouse call in a worker thread; MCP cancellation cancels the statement."""
    state = state_of(ctx, BIState)
    cancel = CancelToken()
    return await run_blocking(lambda: action(state.warehouse(), cancel), on_cancel=cancel.cancel)


def render_table(columns: list[str], rows: list[list[Any]], *, max_cell: int = 80) -> str:
    """A compact pipe table for the text rendering (the structured content has the full values)."""

    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(value)
        text = text.replace("\n", " ").replace("|", "\\|")
        return text if len(text) <= max_cell else text[: max_cell - 1] + "…"

    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    lines += [" | ".join(cell(v) for v in row) for row in rows]
    return "\n".join(lines)
