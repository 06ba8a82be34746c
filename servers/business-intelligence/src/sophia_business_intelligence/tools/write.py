"""`warehouse_execute`: one DDL/DML statement; registered only behind the write gate."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from sophia_shared.gate import require_write
from sophia_shared.server import ToolResult, sophia_tool, state_of
from sophia_shared.settings import Settings

from ..backends.base import CancelToken, Warehouse
from ..names import WAREHOUSE_EXECUTE
from ..settings import SERVER_KEY
from ..sql_guard import check_write
from ..state import BIState
from .common import SqlParams, on_warehouse


class WriteResult(ToolResult):
    backend: str
    statement_type: str
    rows_affected: int = Field(description="Rows inserted/updated/deleted; -1 when the warehouse does not say.")

    def render_text(self) -> str:
        affected = "" if self.rows_affected < 0 else f", {self.rows_affected} row(s) affected"
        return f"{self.statement_type} executed on {self.backend}{affected}."


def execute_statement(
    wh: Warehouse, cancel: CancelToken, settings: Settings, *, sql: str, params: list[Any]
) -> WriteResult:
    """Check and run one DDL/DML statement (blocking; called in a worker thread)."""
    require_write(settings, SERVER_KEY, "change the warehouse")  # the second gate, after registration
    checked = check_write(sql, dialect=wh.dialect)
    outcome = wh.execute_write(checked, params=params, cancel=cancel)
    return WriteResult(
        backend=wh.kind,
        statement_type=checked.statement_type,
        rows_affected=-1 if outcome.rows_affected is None else outcome.rows_affected,
    )


@sophia_tool(
    WAREHOUSE_EXECUTE,
    title="Execute one DDL/DML statement",
    read_only=False,
    destructive=True,
    idempotent=False,
    writes=True,
)
async def warehouse_execute(
    ctx: Context[Any, Any],
    sql: Annotated[
        str,
        Field(
            description="Exactly one DDL or DML statement in Snowflake SQL (CREATE, ALTER, DROP, INSERT, "
            "UPDATE, DELETE, MERGE, TRUNCATE). Use ? placeholders for values."
        ),
    ],
    params: SqlParams = [],  # noqa: B006 - pydantic copies defaults
) -> WriteResult:
    """Change the business warehouse with one DDL or DML statement (this tool exists only because
    SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE=1 is set).

    It changes data: confirm with the user before dropping or deleting. Session, security and file
    statements (USE, SET, GRANT, COPY, PUT, ATTACH, CALL…) and multiple statements are refused.
    Use warehouse_query for reads.
    """
    settings = state_of(ctx, BIState).settings
    return await on_warehouse(ctx, lambda wh, cancel: execute_statement(wh, cancel, settings, sql=sql, params=params))
