"""The embedded memory store: its own DuckDB file, `<data dir>/memory.duckdb`, and the local embedder.

Memories live apart from the warehouse file because that file is read-only unless the DDL/DML gate
is on, and the memory gate must work without it. The file is opened for each operation and closed
after it, never held: DuckDB lets one process write a file at a time, and several servers (one per
MCP client) may share the same memories. A store opened without the memory gate opens it read-only.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sophia_shared.errors import BackendError, PolicyError
from sophia_shared.gate import require_write, write_gate_variable
from sophia_shared.settings import Settings

from ...names import MEMORY_GATE
from .base import (
    Memory,
    RecallPage,
    RecallRequest,
    as_utc,
    naive_utc,
    refuse_mixed_models,
)

if TYPE_CHECKING:
    from sophia_shared.embedding import Embedder

log = logging.getLogger(__name__)

MEMORY_FILE_NAME = "memory.duckdb"
# Another server may be inside an operation on the file; operations take milliseconds, so waiting
# this long before giving up means the file is held by something that keeps it open.
LOCK_WAIT_SECONDS = 3.0
_LOCK_RETRY_SECONDS = 0.05
_CONNECT_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    # Only the store's own fixed SQL runs here; nothing may reach other files or extensions.
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "threads": 1,
}
_PID = re.compile(r"PID (\d+)")
_COLUMNS = "id, text, tags, source, author, created_at, model"


class EmbeddedMemoryStore:
    """Memories in a DuckDB file of their own, embedded with the local MiniLM model."""

    backend = "embedded"

    def __init__(
        self,
        path: Path,
        settings: Settings,
        *,
        writable: bool,
        table: tuple[str, ...],
        embedder: Embedder | None = None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.writable = writable
        # The file is its own database: a DATABASE part in SOPHIA_MEMORY_TABLE does not apply here.
        self._schema = table[-2] if len(table) >= 2 else "MAIN"
        self._table_name = table[-1]
        self._table = f'"{self._schema}"."{self._table_name}"'
        self._embedder = embedder
        self._lock = threading.Lock()  # one operation at a time: the file is opened per operation

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from sophia_shared.embedding.minilm import local_embedder

            self._embedder = local_embedder()
        return self._embedder

    @property
    def model(self) -> str:
        return self.embedder.model

    def describe(self) -> str:
        mode = "read-write" if self.writable else "read-only"
        return f"embedded memory file {self.path}, table {self._schema}.{self._table_name} ({mode})"

    # -- writes --------------------------------------------------------------------------------

    def remember(self, text: str, *, tags: Sequence[str], source: str, author: str) -> Memory:
        self._require_write("remember")
        memory = Memory.new(text, tags=tags, source=source, author=author, model=self.embedder.model)
        # Embedded before the file is opened: the model may take a while, the file is shared.
        vector = self.embedder.embed([memory.text])[0].tolist()
        with self._connection() as con:
            self._create_table(con)
            refuse_mixed_models(self._models(con), memory.model, self.describe())
            con.execute(
                f"INSERT INTO {self._table} ({_COLUMNS}, embedding) "
                f"VALUES (?, ?, ?::VARCHAR[], ?, ?, ?, ?, ?::FLOAT[{self.embedder.dimension}])",
                [
                    memory.id,
                    memory.text,
                    list(memory.tags),
                    memory.source,
                    memory.author,
                    naive_utc(memory.created_at),
                    memory.model,
                    vector,
                ],
            )
        return memory

    def forget_ids(self, ids: Sequence[str]) -> list[str]:
        self._require_write("forget memories")
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        with self._connection() as con:
            if not self._table_exists(con):
                return []
            rows = con.execute(f"DELETE FROM {self._table} WHERE id IN ({marks}) RETURNING id", list(ids)).fetchall()
        gone = {str(r[0]) for r in rows}
        return [i for i in dict.fromkeys(ids) if i in gone]

    def count_tagged(self, tags: Sequence[str]) -> int:
        with self._connection() as con:
            if not self._table_exists(con):
                return 0
            row = con.execute(
                f"SELECT count(*) FROM {self._table} WHERE list_has_all(tags, ?::VARCHAR[])", [list(tags)]
            ).fetchone()
        return int(row[0]) if row else 0

    def forget_tagged(self, tags: Sequence[str]) -> int:
        self._require_write("forget memories")
        with self._connection() as con:
            if not self._table_exists(con):
                return 0
            rows = con.execute(
                f"DELETE FROM {self._table} WHERE list_has_all(tags, ?::VARCHAR[]) RETURNING id", [list(tags)]
            ).fetchall()
        return len(rows)

    # -- reads ---------------------------------------------------------------------------------

    def recall(self, request: RecallRequest) -> RecallPage:
        vector = self.embedder.embed([request.query])[0].tolist() if request.query else None
        where: list[str] = ["model = ?"]
        params: list[Any] = [self.embedder.model]
        if request.since is not None:
            where.append("created_at >= ?")
            params.append(naive_utc(request.since))
        if request.tags_all:
            where.append("list_has_all(tags, ?::VARCHAR[])")
            params.append(list(request.tags_all))
        if request.tags_any:
            where.append("list_has_any(tags, ?::VARCHAR[])")
            params.append(list(request.tags_any))
        if vector is not None:
            score = f"array_cosine_similarity(embedding, ?::FLOAT[{self.embedder.dimension}])"
            order = "score DESC, created_at DESC, id"
            params.insert(0, vector)  # the score's placeholder comes first in the text
        else:
            score, order = "NULL::DOUBLE", "created_at DESC, id"
        sql = (
            f"SELECT {_COLUMNS}, {score} AS score FROM {self._table} WHERE {' AND '.join(where)} "
            f"ORDER BY {order} LIMIT {int(request.limit) + 1} OFFSET {int(request.offset)}"
        )
        with self._connection() as con:
            if not self._table_exists(con):
                return RecallPage(memories=[], has_more=False)
            refuse_mixed_models(self._models(con), self.embedder.model, self.describe())
            rows = con.execute(sql, params).fetchall()
        memories = [_memory(row) for row in rows[: request.limit]]
        return RecallPage(memories=memories, has_more=len(rows) > request.limit)

    def close(self) -> None:
        """Nothing is held between operations; the embedder is process-wide and stays loaded."""

    # -- the file ------------------------------------------------------------------------------

    def _require_write(self, action: str) -> None:
        # The second gate, after tool registration; a read-only store could not write anyway.
        require_write(self.settings, MEMORY_GATE, action)
        if not self.writable:
            raise PolicyError(
                f"Refused to {action}: the memory store was opened read-only.",
                hint=f"Set {write_gate_variable(MEMORY_GATE)}=1 and restart the server.",
            )

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        import duckdb

        with self._lock:
            if not self.writable and not self.path.exists():
                yield None  # nothing was ever remembered here, and a read-only store creates nothing
                return
            con = self._open()
            try:
                yield con
            except duckdb.Error as exc:
                raise BackendError(f"The embedded memory store failed: {exc}") from exc
            finally:
                con.close()

    def _open(self) -> Any:
        import duckdb

        if self.writable:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendError(
                    f"Cannot create the memory file's directory {self.path.parent}: {exc.strerror or exc}.",
                    hint="Set SOPHIA_DATA_DIR to a writable directory.",
                ) from exc
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=not self.writable, config=dict(_CONNECT_CONFIG))
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise BackendError(f"Could not open the memory file {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise self._busy_error(str(exc)) from exc
                time.sleep(_LOCK_RETRY_SECONDS)
            except duckdb.Error as exc:
                raise BackendError(
                    f"Could not open the memory file {self.path}: {exc}",
                    hint="Move the file aside (memories in it are lost to this server) or set SOPHIA_DATA_DIR "
                    "to another directory.",
                ) from exc

    def _busy_error(self, text: str) -> BackendError:
        pid = _PID.search(text)
        holder = f"process {pid.group(1)}" if pid else "another process"
        return BackendError(
            f"The memory file {self.path} is held open by {holder} and stayed locked for "
            f"{LOCK_WAIT_SECONDS:g} s. DuckDB lets only one process at a time open a file that is being written.",
            hint="Sophia servers open this file only for the moment of each call, so something else keeps it "
            "open (a DuckDB shell or notebook?): close it, then call again.",
        )

    def _create_table(self, con: Any) -> None:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            "id VARCHAR PRIMARY KEY, text VARCHAR NOT NULL, tags VARCHAR[] NOT NULL, source VARCHAR NOT NULL, "
            "author VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, model VARCHAR NOT NULL, "
            f"embedding FLOAT[{self.embedder.dimension}] NOT NULL)"
        )

    def _table_exists(self, con: Any) -> bool:
        if con is None:
            return False
        row = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [self._schema, self._table_name],
        ).fetchone()
        return bool(row and row[0])

    def _models(self, con: Any) -> list[str]:
        return [str(r[0]) for r in con.execute(f"SELECT DISTINCT model FROM {self._table} ORDER BY 1").fetchall()]


def _memory(row: Sequence[Any]) -> Memory:
    ident, text, tags, source, author, created_at, model, score = row
    return Memory(
        id=str(ident),
        text=str(text),
        tags=tuple(tags or ()),
        source=str(source or ""),
        author=str(author or ""),
        created_at=as_utc(created_at),
        model=str(model),
        score=None if score is None else float(score),
    )
