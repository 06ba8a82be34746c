"""The Snowflake memory store: a table (SOPHIA_MEMORY_TABLE, default AI_MEMORY.MEMORIES) embedded by Cortex.

Snowflake makes every vector itself: `SNOWFLAKE.CORTEX.EMBED_TEXT_768` in the INSERT, and again for
the query inside the recall, compared with `VECTOR_COSINE_SIMILARITY`. The store runs only its own
fixed SQL (identifiers from a validated setting, every value bound), not user SQL, so it does not
pass the SQL guard; the memory gate allows its one piece of DDL: creating its schema and table.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from sophia_shared.errors import InputError, PolicyError, SophiaError
from sophia_shared.gate import require_write, write_gate_variable
from sophia_shared.settings import Settings, call_with_auth_refresh

from ...names import MEMORY_GATE
from ..snowflake_config import SnowflakeConfig
from ..snowflake_connect import open_connection
from ..snowflake_errors import SessionExpired, is_auth_error, session_expired, translate_error
from .base import (
    TABLE_SETTING,
    Memory,
    RecallPage,
    RecallRequest,
    as_utc,
    naive_utc,
    refuse_mixed_models,
    tag_key,
    tags_of_key,
)

log = logging.getLogger(__name__)

# VENDOR-NOTES §6: EMBED_TEXT_768 takes snowflake-arctic-embed-m-v1.5, snowflake-arctic-embed-m or e5-base-v2.
CORTEX_EMBED_MODEL = "snowflake-arctic-embed-m-v1.5"
EMBED = "SNOWFLAKE.CORTEX.EMBED_TEXT_768"
_COLUMNS = "M.ID, M.TEXT, M.TAG_KEY, M.SOURCE, M.AUTHOR, M.CREATED_AT, M.MODEL"


@runtime_checkable
class SqlRunner(Protocol):
    """Runs the server's own fixed SQL (bound values) on Snowflake and returns the rows."""

    def run_internal(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class SnowflakeMemoryStore:
    """Memories in a Snowflake table with a VECTOR(FLOAT, 768) column made by Cortex."""

    backend = "snowflake"
    model = CORTEX_EMBED_MODEL

    def __init__(self, settings: Settings, runner: SqlRunner, *, writable: bool, table: tuple[str, ...]) -> None:
        self.settings = settings
        self.writable = writable
        self._runner = runner
        # A session this store opened itself is closed with it; the warehouse closes its own.
        self._own_session = runner if isinstance(runner, SnowflakeMemorySession) else None
        self.table = ".".join(table)  # validated plain identifiers, upper-cased: safe as SQL text
        self._schema = ".".join(table[:-1])
        self._created = False

    def describe(self) -> str:
        return f"Snowflake table {self.table} (vectors by Cortex {EMBED}, model {self.model})"

    # -- writes --------------------------------------------------------------------------------

    def remember(self, text: str, *, tags: Sequence[str], source: str, author: str) -> Memory:
        self._require_write("remember")
        memory = Memory.new(text, tags=tags, source=source, author=author, model=self.model)
        self._create_table()
        refuse_mixed_models(self._models(), memory.model, self.describe())
        # INSERT … SELECT: Snowflake refuses PARSE_JSON and other functions inside a VALUES list.
        self._run(
            f"INSERT INTO {self.table} (ID, TEXT, TAGS, TAG_KEY, SOURCE, AUTHOR, CREATED_AT, MODEL, EMBEDDING) "
            f"SELECT ?, ?, PARSE_JSON(?), ?, ?, ?, ?, ?, {EMBED}(?, ?)",
            [
                memory.id,
                memory.text,
                json.dumps(list(memory.tags)),
                tag_key(memory.tags),
                memory.source,
                memory.author,
                naive_utc(memory.created_at),
                memory.model,
                memory.model,
                memory.text,
            ],
        )
        return memory

    def forget_ids(self, ids: Sequence[str]) -> list[str]:
        self._require_write("forget memories")
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        marks = ", ".join("?" for _ in unique)
        # Snowflake's DELETE has no RETURNING: read which of the ids exist, then delete those.
        found = self._rows_or_none(f"SELECT ID FROM {self.table} WHERE ID IN ({marks})", unique)
        if not found:
            return []
        present = {str(r[0]) for r in found}
        gone = [i for i in unique if i in present]
        self._run(f"DELETE FROM {self.table} WHERE ID IN ({', '.join('?' for _ in gone)})", gone)
        return gone

    def count_tagged(self, tags: Sequence[str]) -> int:
        where, params = _tags_all(tags)
        rows = self._rows_or_none(f"SELECT COUNT(*) FROM {self.table} AS M WHERE {where}", params)
        return int(rows[0][0]) if rows else 0

    def forget_tagged(self, tags: Sequence[str]) -> int:
        self._require_write("forget memories")
        where, params = _tags_all(tags)
        rows = self._rows_or_none(f"DELETE FROM {self.table} AS M WHERE {where}", params)
        return int(rows[0][0]) if rows and rows[0] and rows[0][0] is not None else 0

    # -- reads ---------------------------------------------------------------------------------

    def recall(self, request: RecallRequest) -> RecallPage:
        models = self._rows_or_none(f"SELECT DISTINCT MODEL FROM {self.table}")
        if models is None:
            return RecallPage(memories=[], has_more=False)  # nothing remembered yet: no table
        refuse_mixed_models(sorted(str(r[0]) for r in models), self.model, self.describe())
        where: list[str] = ["M.MODEL = ?"]
        params: list[Any] = [self.model]
        if request.since is not None:
            where.append("M.CREATED_AT >= ?")
            params.append(naive_utc(request.since))
        if request.tags_all:
            clause, values = _tags_all(request.tags_all)
            where.append(clause)
            params += values
        if request.tags_any:
            where.append("(" + " OR ".join("CONTAINS(M.TAG_KEY, ?)" for _ in request.tags_any) + ")")
            params += [f",{t}," for t in request.tags_any]
        page = f"LIMIT {int(request.limit) + 1} OFFSET {int(request.offset)}"
        if request.query:
            # The query is embedded once, in a CTE, by the same model as the stored rows.
            sql = (
                f"WITH PROBE AS (SELECT {EMBED}(?, ?) AS VEC) "
                f"SELECT {_COLUMNS}, VECTOR_COSINE_SIMILARITY(M.EMBEDDING, PROBE.VEC) AS SCORE "
                f"FROM {self.table} AS M, PROBE WHERE {' AND '.join(where)} "
                f"ORDER BY SCORE DESC, M.CREATED_AT DESC, M.ID {page}"
            )
            params = [self.model, request.query, *params]
        else:
            sql = (
                f"SELECT {_COLUMNS}, NULL AS SCORE FROM {self.table} AS M WHERE {' AND '.join(where)} "
                f"ORDER BY M.CREATED_AT DESC, M.ID {page}"
            )
        rows = self._run(sql, params)
        return RecallPage(memories=[_memory(r) for r in rows[: request.limit]], has_more=len(rows) > request.limit)

    def close(self) -> None:
        if self._own_session is not None:
            self._own_session.close()

    # -- SQL -----------------------------------------------------------------------------------

    def _require_write(self, action: str) -> None:
        require_write(self.settings, MEMORY_GATE, action)  # the second gate: nothing reaches Snowflake
        if not self.writable:
            raise PolicyError(
                f"Refused to {action}: the memory store was opened without the memory gate.",
                hint=f"Set {write_gate_variable(MEMORY_GATE)}=1 and restart the server.",
            )

    def _create_table(self) -> None:
        if self._created:
            return
        if self._schema:
            self._run(f"CREATE SCHEMA IF NOT EXISTS {self._schema}")
        self._run(
            f"CREATE TABLE IF NOT EXISTS {self.table} (ID VARCHAR(36) NOT NULL PRIMARY KEY, TEXT VARCHAR NOT NULL, "
            "TAGS ARRAY, TAG_KEY VARCHAR NOT NULL, SOURCE VARCHAR NOT NULL, AUTHOR VARCHAR NOT NULL, "
            "CREATED_AT TIMESTAMP_NTZ NOT NULL, MODEL VARCHAR NOT NULL, EMBEDDING VECTOR(FLOAT, 768) NOT NULL) "
            "COMMENT = 'Sophia long-term memory: remember, recall, forget. CREATED_AT is UTC.'"
        )
        self._created = True

    def _models(self) -> list[str]:
        return sorted(str(r[0]) for r in self._run(f"SELECT DISTINCT MODEL FROM {self.table}"))

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._runner.run_internal(sql, params)
        except InputError as exc:
            if _missing_object(exc) and not self._schema_is_known():
                raise InputError(
                    f"Snowflake could not find where memories live ({self.table}): {exc.message}",
                    hint=f"Set SNOWFLAKE_DATABASE (the session needs a database), or name one in {TABLE_SETTING} "
                    "as DATABASE.SCHEMA.TABLE.",
                ) from None
            raise

    def _rows_or_none(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
        """Rows, or None when the table does not exist yet (nothing was ever remembered)."""
        try:
            return self._runner.run_internal(sql, params)
        except InputError as exc:
            if _missing_object(exc):
                return None
            raise

    def _schema_is_known(self) -> bool:
        return self.table.count(".") == 2 or bool(self.settings.get("SNOWFLAKE_DATABASE"))


def _missing_object(exc: SophiaError) -> bool:
    text = exc.message.lower()
    return "does not exist" in text or "not authorized" in text


def _tags_all(tags: Sequence[str]) -> tuple[str, list[Any]]:
    """Every tag must be present: one substring test per tag against `,a,b,` (see `tag_key`)."""
    return " AND ".join("CONTAINS(M.TAG_KEY, ?)" for _ in tags), [f",{t}," for t in tags]


def _memory(row: Sequence[Any]) -> Memory:
    ident, text, key, source, author, created_at, model, score = row
    return Memory(
        id=str(ident),
        text=str(text),
        tags=tags_of_key(key),
        source=str(source or ""),
        author=str(author or ""),
        created_at=as_utc(created_at),
        model=str(model),
        score=None if score is None else float(score),
    )


class SnowflakeMemorySession:
    """A Snowflake connection of the store's own, made like the warehouse's (same settings and login).

    Used until `SnowflakeWarehouse` offers `run_internal`; it costs one more Snowflake session.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._conn: Any = None
        self._timeout = 0

    def run_internal(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._execute(sql, params)
        except SessionExpired:
            log.info("The Snowflake session of the memory store ended; logging in again.")
            self.close()
            return self._execute(sql, params)

    def _execute(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._connection()
        cur = conn.cursor()
        try:
            cur.execute(sql, list(params) if params else None)
            return list(cur.fetchall()) if cur.description else []
        except Exception as exc:
            raise session_expired(exc) or translate_error(exc, timeout_seconds=self._timeout) from None
        finally:
            cur.close()

    def _connection(self) -> Any:
        with self._lock:
            if self._conn is None or self._conn.is_closed():
                try:
                    self._conn = call_with_auth_refresh(self.settings, self._open, is_auth_error)
                except SophiaError:
                    raise
                except Exception as exc:
                    raise translate_error(exc, timeout_seconds=self._timeout) from None
            return self._conn

    def _open(self) -> Any:
        config = SnowflakeConfig.from_settings(self.settings)
        self._timeout = config.statement_timeout_seconds
        return open_connection(config)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # closing must never fail a shutdown
                log.debug("Closing the memory store's Snowflake connection failed: %s", exc)
