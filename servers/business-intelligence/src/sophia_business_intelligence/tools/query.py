"""`warehouse_query`: one read-only statement in Snowflake SQL, capped and paged."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from sophia_shared.output import Cursor, cap_rows, clip_cells, json_safe, request_digest
from sophia_shared.server import ToolResult, sophia_tool

from ..backends.base import CancelToken, Warehouse
from ..names import WAREHOUSE_QUERY
from ..sql_guard import check_read_only
from .common import DATA_CLOSE, DATA_OPEN, Column, SqlParams, on_warehouse, render_table
from .common import Cursor as CursorArg

DEFAULT_ROWS = 100
MAX_ROWS = 1_000
MAX_CELL_CHARS = 20_000


class QueryResult(ToolResult):
    backend: str = Field(description="Which warehouse answered: duckdb or snowflake.")
    statement_type: str = Field(description="The kind of statement that ran (SELECT, SHOW, …).")
    columns: list[Column]
    rows: list[list[Any]] = Field(description="Row values in column order; JSON-safe (decimals as strings).")
    row_count: int = Field(description="Rows in this page.")
    offset: int = Field(description="Index of this page's first row in the whole result.")
    truncated: bool = Field(description="True when more rows exist; pass next_cursor to continue.")
    next_cursor: str = Field(description="Opaque cursor for the next page; empty when complete.")
    clipped_cells: int = Field(
        description=f"Text values longer than {MAX_CELL_CHARS:,} characters cut short (marked with …[clipped])."
    )
    rerun: bool = Field(
        default=False,
        description="True when this page came from running the query again (the first run's result was no longer "
        "held); without ORDER BY such a page may repeat or skip rows.",
    )

    def render_text(self) -> str:
        names = [c.name for c in self.columns]
        first, last = self.offset + 1, self.offset + self.row_count
        if self.truncated:
            status = (
                f"Rows {first}–{last} shown; more rows exist. "
                f'Call {WAREHOUSE_QUERY} again with the same sql and params and cursor="{self.next_cursor}".'
            )
        else:
            status = f"{self.row_count} row(s)" + (f" (rows {first}–{last})" if self.offset else "") + "."
        if self.clipped_cells:
            status += (
                f" {self.clipped_cells} value(s) longer than {MAX_CELL_CHARS:,} characters were clipped (marked "
                "…[clipped N chars]); select SUBSTR(col, start, length) to read the rest."
            )
        if self.rerun:
            status += " This page came from running the query again; add ORDER BY for stable pages."
        table = render_table(names, self.rows) if names else "(no result columns)"
        return f"{self.statement_type} on {self.backend}. {status}\n{DATA_OPEN}\n{table}\n{DATA_CLOSE}"


def run_query(
    wh: Warehouse, cancel: CancelToken, *, sql: str, params: list[Any], max_rows: int, cursor: str
) -> QueryResult:
    """Check, run and page one read-only statement (blocking; called in a worker thread)."""
    checked = check_read_only(sql, dialect=wh.dialect)
    digest = request_digest(checked.source, params, max_rows)
    start = Cursor.decode(cursor, digest=digest) if cursor else Cursor(digest, 0)
    page = wh.query(checked, params=params, offset=start.offset, max_rows=max_rows, handle=start.handle, cancel=cancel)
    rows, clipped = clip_cells([[json_safe(v) for v in row] for row in page.rows], max_chars=MAX_CELL_CHARS)
    kept, cut = cap_rows(rows, max_rows=max_rows)
    truncated = cut or page.has_more
    # A page cut by the byte cap keeps the handle only if the backend can serve from mid-page.
    next_cursor = Cursor(start.digest, start.offset + kept, page.handle).encode() if truncated else ""
    return QueryResult(
        backend=wh.kind,
        statement_type=checked.statement_type,
        columns=[Column(name=c.name, type=c.type) for c in page.columns],
        rows=rows[:kept],
        row_count=kept,
        offset=start.offset,
        truncated=truncated,
        next_cursor=next_cursor,
        clipped_cells=clipped,
        rerun=page.rerun,
    )


@sophia_tool(WAREHOUSE_QUERY, title="Run a read-only SQL query", read_only=True, idempotent=True)
async def warehouse_query(
    ctx: Context[Any, Any],
    sql: Annotated[
        str,
        Field(
            description="Exactly one read-only statement in Snowflake SQL: SELECT, WITH … SELECT, SHOW, "
            "DESCRIBE or EXPLAIN. Use ? placeholders for values and pass them in params."
        ),
    ],
    params: SqlParams = [],  # noqa: B006 - pydantic copies defaults
    max_rows: Annotated[
        int, Field(ge=1, le=MAX_ROWS, description=f"Rows per page, 1–{MAX_ROWS} (default {DEFAULT_ROWS}).")
    ] = DEFAULT_ROWS,
    cursor: CursorArg = "",
) -> QueryResult:
    """Run one read-only SQL statement against the business warehouse and return rows.

    Write Snowflake SQL on every backend (the embedded DuckDB warehouse translates it, and refuses with
    the reason what it cannot translate faithfully). Only queries are accepted: SELECT, WITH … SELECT,
    SHOW, DESCRIBE and EXPLAIN; anything that writes, changes the session, reads files or holds more
    than one statement is refused with the reason. Results are capped at max_rows (default 100, at most
    1,000) and about 200 KB; when `truncated` is true, call again with the same sql and params and
    `cursor` set to `next_cursor`. Explore first with warehouse_list_tables and
    warehouse_describe_table, and aggregate in SQL rather than paging through raw rows.
    """
    return await on_warehouse(
        ctx, lambda wh, cancel: run_query(wh, cancel, sql=sql, params=params, max_rows=max_rows, cursor=cursor)
    )
