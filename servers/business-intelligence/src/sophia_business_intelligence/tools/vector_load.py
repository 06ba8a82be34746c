"""`vector_load_from_warehouse`: embed a text column of a warehouse query into a vector index, in batches,
with MCP progress and cancellation; idempotent by a key column."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from sophia_shared.embedding import Embedder
from sophia_shared.errors import InputError
from sophia_shared.output import json_safe
from sophia_shared.server import ToolResult, sophia_tool, state_of
from sophia_shared.workers import run_blocking

from ..backends.base import CancelToken, Warehouse
from ..backends.vectors.base import TEXT_KEY, TextRecord, VectorRecord, VectorStore
from ..names import VECTOR_LOAD_FROM_WAREHOUSE, VECTOR_SEARCH
from ..sql_guard import check_read_only
from ..state import BIState
from .common import SqlParams
from .vectors import IndexName, Namespace, _embedder_for, _local_embedder, check_index_name

MAX_LOAD_ROWS = 100_000
DEFAULT_BATCH = 64


class LoadResult(ToolResult):
    index: str
    namespace: str
    rows_read: int = Field(description="Rows read from the query.")
    upserted: int = Field(description="Records written (an existing id is replaced, so a re-run is safe).")
    skipped: int = Field(description="Rows left out because their id or text was NULL or empty.")
    batches: int
    truncated: bool = Field(description="True when max_rows stopped the load before the query's end.")
    model: str = Field(description="The model that embedded the texts.")

    def render_text(self) -> str:
        where = f"{self.index}/{self.namespace}" if self.namespace else self.index
        text = (
            f"Loaded {self.upserted} record(s) into {where} from {self.rows_read} row(s) in {self.batches} batch(es), "
            f"embedded with {self.model}."
        )
        if self.skipped:
            text += f" {self.skipped} row(s) skipped (NULL or empty id or text)."
        if self.truncated:
            text += (
                " Stopped at max_rows: raise it, or narrow the query and load again (ids are replaced, not duplicated)."
            )
        return text + f" Search it with {VECTOR_SEARCH}."


@dataclass(frozen=True)
class LoadRequest:
    index: str
    sql: str
    params: list[Any]
    id_column: str
    text_column: str
    metadata_columns: list[str]
    namespace: str
    max_rows: int
    batch_size: int


@dataclass
class LoadProgress:
    rows_read: int = 0
    upserted: int = 0
    skipped: int = 0
    batches: int = 0
    truncated: bool = False
    model: str = ""


def _column_index(names: list[str], wanted: str, role: str) -> int:
    exact = [i for i, n in enumerate(names) if n == wanted]
    folded = [i for i, n in enumerate(names) if n.casefold() == wanted.casefold()]
    found = exact or folded
    if len(found) != 1:
        raise InputError(
            f"The query has no single column '{wanted}' for the {role} (its columns: {', '.join(names)}).",
            hint="Name the column as the query returns it; alias it in the SELECT if needed.",
        )
    return found[0]


def load_batches(
    wh: Warehouse, store: VectorStore, embedder: Embedder, request: LoadRequest, cancel: CancelToken
) -> Iterator[LoadProgress]:
    """Read the query page by page, embed each page's texts and upsert them; yields after every batch.

    Blocking: each step runs in a worker thread. The query is checked by the SQL guard like
    warehouse_query's, and pages come from one execution where the warehouse can hold it.
    """
    info = store.describe_index(check_index_name(request.index))
    model = None if info.integrated else _embedder_for(info, embedder)
    checked = check_read_only(request.sql, dialect=wh.dialect)
    progress = LoadProgress(model=info.model if model is None else model.model)
    offset, handle = 0, ""
    while progress.rows_read < request.max_rows:
        size = min(request.batch_size, request.max_rows - progress.rows_read)
        page = wh.query(checked, params=request.params, offset=offset, max_rows=size, handle=handle, cancel=cancel)
        names = [c.name for c in page.columns]
        id_at = _column_index(names, request.id_column, "id")
        text_at = _column_index(names, request.text_column, "text")
        meta_at = {c: _column_index(names, c, "metadata") for c in request.metadata_columns}
        rows = [r for r in page.rows if r[id_at] not in (None, "") and r[text_at] not in (None, "")]
        progress.skipped += len(page.rows) - len(rows)
        progress.rows_read += len(page.rows)
        offset += len(page.rows)
        handle = page.handle
        if rows:
            ids = [str(r[id_at]) for r in rows]
            texts = [str(r[text_at]) for r in rows]
            metadata = [{name: json_safe(r[i]) for name, i in meta_at.items() if r[i] is not None} for r in rows]
            if model is None:
                records = [TextRecord(i, t, m) for i, t, m in zip(ids, texts, metadata, strict=True)]
                progress.upserted += store.upsert_texts(request.index, records, namespace=request.namespace)
            else:
                vectors = model.embed(texts)
                vector_records = [
                    VectorRecord(i, vectors[n].tolist(), {**m, TEXT_KEY: texts[n]})
                    for n, (i, m) in enumerate(zip(ids, metadata, strict=True))
                ]
                progress.upserted += store.upsert(
                    request.index, vector_records, namespace=request.namespace, model=model.model
                )
        progress.batches += 1
        yield progress
        if not page.has_more:
            return
    progress.truncated = True
    yield progress


@sophia_tool(
    VECTOR_LOAD_FROM_WAREHOUSE,
    title="Load a warehouse text column into a vector index",
    read_only=False,
    idempotent=True,
    open_world=True,
    writes=True,
)
async def vector_load_from_warehouse(
    ctx: Context[Any, Any],
    index: IndexName,
    sql: Annotated[
        str,
        Field(
            description="One read-only query in Snowflake SQL returning an id column, a text column and any "
            "metadata columns, e.g. SELECT CALL_ID, TRANSCRIPT, DEAL_ID FROM CALLS.TRANSCRIPTS. Checked like "
            "warehouse_query's."
        ),
    ],
    id_column: Annotated[str, Field(description="Column whose value becomes the record id (re-loading replaces).")],
    text_column: Annotated[str, Field(description="Column holding the text to embed.")],
    metadata_columns: Annotated[
        list[str], Field(description="Columns to store as metadata, usable in search filters.")
    ] = [],  # noqa: B006 - pydantic copies defaults
    params: SqlParams = [],  # noqa: B006 - pydantic copies defaults
    namespace: Namespace = "",
    max_rows: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_LOAD_ROWS,
            description=f"Stop after this many rows (default 10,000, at most {MAX_LOAD_ROWS:,}).",
        ),
    ] = 10_000,
    batch_size: Annotated[
        int, Field(ge=1, le=500, description="Rows embedded and written per batch (default 64).")
    ] = DEFAULT_BATCH,
) -> LoadResult:
    """Embed a text column of a warehouse query into a vector index, batch by batch (write gate only).

    Reports progress after every batch and stops cleanly when cancelled (what was written stays).
    Records are keyed by id_column, so running it again replaces rather than duplicates. Rows with a
    NULL or empty id or text are skipped and counted. Create the index first with
    vector_create_index; check the query with warehouse_query.
    """
    state = state_of(ctx, BIState)
    request = LoadRequest(index, sql, params, id_column, text_column, metadata_columns, namespace, max_rows, batch_size)
    cancel = CancelToken()

    def start() -> Iterator[LoadProgress]:
        return load_batches(state.warehouse(), state.vectors(), _local_embedder(), request, cancel)

    steps = await run_blocking(start, on_cancel=cancel.cancel)
    progress = LoadProgress()
    while True:
        step = await run_blocking(lambda: next(steps, None), on_cancel=cancel.cancel)
        if step is None:
            break
        progress = step
        await ctx.report_progress(
            progress.rows_read, max_rows, f"{progress.upserted} record(s) loaded into {index} so far"
        )
    return LoadResult(
        index=index,
        namespace=namespace,
        rows_read=progress.rows_read,
        upserted=progress.upserted,
        skipped=progress.skipped,
        batches=progress.batches,
        truncated=progress.truncated,
        model=progress.model,
    )
