"""The embedded warehouse: one DuckDB file, queried in Snowflake SQL.

Statements arrive in Snowflake SQL, already checked by `sql_guard`; the backend runs exactly the
DuckDB text the guard checked (`sql_guard.duckdb_sql`). The connection is locked down so the read
tools cannot become a way to read the user's disk: no external access (files, ATTACH, COPY,
extension installs), no extension autoloading, no Python replacement scans, and a locked
configuration (no SET). Without the write gate the file is also opened read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sophia_shared.errors import BackendError, CancelledByClient, ConfigError, InputError
from sophia_shared.paths import data_dir
from sophia_shared.settings import Settings

from ..sql_guard import CheckedStatement, require_checked
from .base import CancelToken, ColumnInfo, RowPage, TableInfo, WriteOutcome

log = logging.getLogger(__name__)

LOCKED_DOWN: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,  # no querying Python variables by name
    "lock_configuration": True,
}
_INTERNAL_DATABASES = ("system", "temp")
_FETCH_CHUNK = 1_000
_MAX_OPEN_RESULTS = 8
_RESULT_TTL_SECONDS = 600.0


class _OpenResult:
    """A result set still being paged: rows from `start` on are buffered, the rest wait in DuckDB."""

    def __init__(self, cursor: Any, fingerprint: str, columns: list[ColumnInfo]) -> None:
        self.cursor = cursor
        self.fingerprint = fingerprint
        self.columns = columns
        self.start = 0
        self.buffer: list[list[Any]] = []
        self.touched = 0.0

    def skip_to(self, offset: int) -> None:
        while self.start < offset:
            chunk = self.cursor.fetchmany(min(_FETCH_CHUNK, offset - self.start))
            if not chunk:
                break
            self.start += len(chunk)

    def can_serve(self, offset: int) -> bool:
        return self.start <= offset <= self.start + len(self.buffer)

    def read(self, offset: int, count: int) -> list[list[Any]]:
        """Rows offset … offset+count-1; they stay buffered until a later read moves past them."""
        self.buffer = self.buffer[offset - self.start :]
        self.start = offset
        if len(self.buffer) < count:
            self.buffer += [list(r) for r in self.cursor.fetchmany(count - len(self.buffer))]
        return self.buffer[:count]

    def close(self) -> None:
        # Closing a finished or interrupted cursor must not mask the real error.
        with contextlib.suppress(Exception):
            self.cursor.close()


def duckdb_path(settings: Settings) -> Path:
    explicit = settings.get("SOPHIA_DUCKDB_PATH")
    if explicit:
        return Path(explicit).expanduser()
    configured_dir = settings.get("SOPHIA_DATA_DIR")
    return (Path(configured_dir).expanduser() if configured_dir else data_dir()) / "warehouse.duckdb"


class DuckDBWarehouse:
    """A DuckDB file; cursors per call so worker threads never share one."""

    kind = "duckdb"
    dialect = "duckdb"

    def __init__(self, path: Path, *, writable: bool = False, statement_timeout: float = 120.0) -> None:
        self.path = path
        self.writable = writable
        self.statement_timeout = statement_timeout
        self._lock = threading.Lock()
        self._con: Any = None
        self._results: OrderedDict[str, _OpenResult] = OrderedDict()
        self._results_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, writable: bool) -> DuckDBWarehouse:
        raw = settings.get("SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS") or "120"
        try:
            timeout = float(raw)
        except ValueError:
            raise ConfigError(
                f"SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS must be a number of seconds, not {raw!r}."
            ) from None
        return cls(duckdb_path(settings), writable=writable, statement_timeout=timeout)

    def describe(self) -> str:
        mode = "read-write" if self.writable else "read-only"
        return f"embedded DuckDB warehouse at {self.path} ({mode})"

    # -- connection ----------------------------------------------------------------------------

    def _connection(self) -> Any:
        with self._lock:
            if self._con is None:
                self._con = self._open()
            return self._con

    def _open(self) -> Any:
        import duckdb

        if self.path.is_dir():
            raise ConfigError(f"SOPHIA_DUCKDB_PATH points at a directory ({self.path}), not a DuckDB file.")
        if not self.path.exists() and not self.writable:
            raise ConfigError(
                f"There is no warehouse at {self.path} yet.",
                hint="Run `uv run sophia demo` to create one with demo data, point SOPHIA_DUCKDB_PATH at an "
                "existing DuckDB file, or set SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE=1 to create tables.",
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return duckdb.connect(str(self.path), read_only=not self.writable, config=LOCKED_DOWN)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the warehouse at {self.path}: {exc.strerror or exc}.",
                hint="Set SOPHIA_DUCKDB_PATH to a writable location.",
            ) from exc
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                hint = "Another process holds it open for writing: stop it, or point SOPHIA_DUCKDB_PATH elsewhere."
            elif "not a valid" in text.lower() or "database file" in text.lower():
                hint = "The file is not a DuckDB database: point SOPHIA_DUCKDB_PATH at a DuckDB file."
            else:
                hint = "Check the file's permissions, or point SOPHIA_DUCKDB_PATH at another file."
            raise BackendError(f"Could not open the DuckDB warehouse {self.path}: {text}", hint=hint) from exc

    def _cursor(self, cancel: CancelToken | None = None) -> Any:
        cur = self._connection().cursor()
        if cancel is not None:
            cancel.on_cancel(cur.interrupt)
        return cur

    def _run(self, cur: Any, sql: str, params: Sequence[Any]) -> Any:
        import duckdb

        # DuckDB has no statement timeout of its own: a timer interrupts the cursor instead.
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            cur.interrupt()

        timer = threading.Timer(self.statement_timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            return cur.execute(sql, list(params) if params else None)
        except duckdb.InterruptException as exc:
            if timed_out.is_set():
                raise BackendError(
                    f"The query ran longer than {self.statement_timeout:g} s and was stopped.",
                    hint="Aggregate or filter more, or raise SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS.",
                ) from exc
            raise CancelledByClient("The query was cancelled.") from exc
        except duckdb.PermissionException as exc:
            raise InputError(
                f"The embedded warehouse refused this: {exc}",
                hint="Queries can only read the warehouse's own tables, not local files.",
            ) from exc
        except duckdb.InvalidInputException as exc:
            raise InputError(
                f"DuckDB could not run the statement: {exc}",
                hint="Check that params has one value per ? placeholder, and the values' types.",
            ) from exc
        except (
            duckdb.ParserException,
            duckdb.BinderException,
            duckdb.CatalogException,
            duckdb.ConversionException,
        ) as exc:
            raise InputError(
                f"DuckDB could not run the query on the embedded warehouse {self.path}: {exc}",
                hint="Check table and column names with warehouse_list_tables / warehouse_describe_table "
                "(SOPHIA_DUCKDB_PATH chooses the warehouse file; `sophia demo` fills it with demo data).",
            ) from exc
        except duckdb.Error as exc:
            raise BackendError(f"DuckDB failed: {exc}") from exc
        finally:
            timer.cancel()

    # -- Warehouse -----------------------------------------------------------------------------

    def query(
        self,
        statement: CheckedStatement,
        *,
        params: Sequence[Any],
        offset: int,
        max_rows: int,
        handle: str,
        cancel: CancelToken,
    ) -> RowPage:
        """One page; a result with more rows stays open under a handle, so later pages come from the
        same execution (a re-run could order rows differently and lose or repeat some)."""
        sql = require_checked(statement, dialect=self.dialect, write=False).sql
        fingerprint = hashlib.sha256(repr((sql, list(params))).encode()).hexdigest()
        entry = self._take_result(handle, fingerprint, offset)
        if entry is None:
            cur = self._cursor(cancel)
            try:
                self._run(cur, sql, params)
                entry = _OpenResult(
                    cur, fingerprint, [ColumnInfo(name=d[0], type=str(d[1])) for d in (cur.description or [])]
                )
                entry.skip_to(offset)
            except BaseException:
                cur.close()
                raise
        else:
            cancel.on_cancel(entry.cursor.interrupt)
        try:
            rows = entry.read(offset, max_rows + 1)
        except BaseException:
            entry.close()
            raise
        has_more = len(rows) > max_rows
        if has_more:
            handle = handle or uuid.uuid4().hex
            self._keep_result(handle, entry)
        else:
            entry.close()
            handle = ""
        return RowPage(columns=entry.columns, rows=rows[:max_rows], has_more=has_more, handle=handle)

    def _take_result(self, handle: str, fingerprint: str, offset: int) -> _OpenResult | None:
        if not handle:
            return None
        with self._results_lock:
            entry = self._results.pop(handle, None)
        if entry is None:
            return None
        if entry.fingerprint != fingerprint or not entry.can_serve(offset):
            entry.close()
            return None
        return entry

    def _keep_result(self, handle: str, entry: _OpenResult) -> None:
        now = time.monotonic()
        with self._results_lock:
            self._results[handle] = entry
            entry.touched = now
            stale = [h for h, e in self._results.items() if now - e.touched > _RESULT_TTL_SECONDS]
            while len(self._results) - len(stale) > _MAX_OPEN_RESULTS:
                stale.append(next(iter(self._results)))
            dropped = [self._results.pop(h) for h in dict.fromkeys(stale) if h in self._results]
        for old in dropped:
            old.close()

    def execute_write(self, statement: CheckedStatement, *, params: Sequence[Any], cancel: CancelToken) -> WriteOutcome:
        sql = require_checked(statement, dialect=self.dialect, write=True).sql
        cur = self._cursor(cancel)
        try:
            self._run(cur, sql, params)
            affected: int | None = None
            try:
                first = cur.fetchone()
                if first is not None and len(first) == 1 and isinstance(first[0], int):
                    affected = first[0]
            except Exception:  # DDL has no result set
                affected = None
        finally:
            cur.close()
        return WriteOutcome(rows_affected=affected)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._cursor()
        try:
            return list(self._run(cur, sql, params).fetchall())
        finally:
            cur.close()

    def default_database(self) -> str:
        return str(self._rows("SELECT current_database()")[0][0])

    def list_databases(self) -> list[str]:
        rows = self._rows(
            "SELECT database_name FROM duckdb_databases() WHERE NOT internal "
            "AND database_name NOT IN ('system', 'temp') ORDER BY 1"
        )
        return [r[0] for r in rows]

    def list_schemas(self, database: str) -> list[str]:
        rows = self._rows(
            "SELECT schema_name FROM information_schema.schemata WHERE lower(catalog_name) = lower(?) "
            "AND schema_name NOT IN ('information_schema', 'pg_catalog') ORDER BY 1",
            [database],
        )
        return [r[0] for r in rows]

    def list_tables(self, database: str, schema: str) -> list[TableInfo]:
        rows = self._rows(
            "SELECT t.table_name, t.table_type, d.estimated_size, COALESCE(d.comment, v.comment, '') "
            "FROM information_schema.tables t "
            "LEFT JOIN duckdb_tables() d ON d.database_name = t.table_catalog "
            "  AND d.schema_name = t.table_schema AND d.table_name = t.table_name "
            "LEFT JOIN duckdb_views() v ON v.database_name = t.table_catalog "
            "  AND v.schema_name = t.table_schema AND v.view_name = t.table_name "
            "WHERE lower(t.table_catalog) = lower(?) AND lower(t.table_schema) = lower(?) ORDER BY 1",
            [database, schema],
        )
        return [
            TableInfo(database, schema, name, "VIEW" if kind == "VIEW" else "TABLE", size, comment or "")
            for name, kind, size, comment in rows
        ]

    def describe_table(self, database: str, schema: str, table: str) -> list[ColumnInfo]:
        rows = self._rows(
            "SELECT c.column_name, c.data_type, c.is_nullable, COALESCE(dc.comment, '') "
            "FROM information_schema.columns c "
            "LEFT JOIN duckdb_columns() dc ON dc.database_name = c.table_catalog "
            "  AND dc.schema_name = c.table_schema AND dc.table_name = c.table_name "
            "  AND dc.column_name = c.column_name "
            "WHERE lower(c.table_catalog) = lower(?) AND lower(c.table_schema) = lower(?) "
            "AND lower(c.table_name) = lower(?) "
            "ORDER BY c.ordinal_position",
            [database, schema, table],
        )
        return [ColumnInfo(name, dtype, nullable == "YES", comment) for name, dtype, nullable, comment in rows]

    def ping(self) -> str:
        import duckdb

        self._rows("SELECT 1")
        return f"DuckDB {duckdb.__version__}"

    def close(self) -> None:
        with self._results_lock:
            open_results, self._results = list(self._results.values()), OrderedDict()
        for entry in open_results:
            entry.close()
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
