"""The embedded warehouse: one DuckDB file, queried in Snowflake SQL.

Statements arrive as `CheckedStatement`s from `sql_guard`; the backend runs exactly the DuckDB text
the guard checked. The connection is locked down so the read tools cannot become a way to read the
user's disk: no external access (files, ATTACH, COPY, extension installs), no extension autoloading,
no Python replacement scans, bounded memory, spill and threads, and a locked configuration (no SET).
Without the write gate the file is also attached read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sophia_shared.errors import BackendError, CancelledByClient, ConfigError, InputError, PolicyError, SophiaError
from sophia_shared.settings import Settings

from ..names import WAREHOUSE_DESCRIBE_TABLE, WAREHOUSE_LIST_TABLES
from ..sql_guard import CheckedStatement, require_checked
from .base import CancelToken, ColumnInfo, RowPage, TableInfo, WriteOutcome
from .duckdb_config import DuckDBConfig, duckdb_path

__all__ = ["DATABASE_NAME", "DuckDBConfig", "DuckDBWarehouse", "duckdb_path"]

log = logging.getLogger(__name__)

# The file is attached under this name whatever the file is called, so `warehouse.crm.deals`
# keeps working when SOPHIA_DUCKDB_PATH points at a renamed copy.
DATABASE_NAME = "warehouse"

# Set when connecting. `lambda_syntax`: sqlglot writes `x -> …` lambdas (ARRAY_TO_STRING, FILTER…),
# which DuckDB 2.0 refuses by default; JSON's `->` operator works either way.
_CONNECT_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,  # no querying Python variables by name
    "lambda_syntax": "ENABLE_SINGLE_ARROW",
}
# Run once the file is attached (ATTACH itself needs file access); after these, no file access and no SET.
_LOCK_DOWN = ("SET enable_external_access = false", "SET lock_configuration = true")

_FETCH_CHUNK = 1_000
_MAX_OPEN_RESULTS = 8
_RESULT_TTL_SECONDS = 600.0
_CLOSE_ATTEMPTS = 20
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
_SQL_ON_DUCKDB_DOC = "docs/snowflake-sql-on-duckdb.md"


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
        _close_quietly(self.cursor)


def _close_quietly(cursor: Any) -> None:
    # Closing a finished or interrupted cursor must not mask the real error.
    with contextlib.suppress(Exception):
        cursor.close()


def _ignore() -> None:
    return None


class DuckDBWarehouse:
    """A DuckDB file; cursors per call so worker threads never share one."""

    kind = "duckdb"
    dialect = "duckdb"

    def __init__(self, config: DuckDBConfig | Path, *, writable: bool = False) -> None:
        self.config = config if isinstance(config, DuckDBConfig) else DuckDBConfig.for_path(config)
        self.writable = writable
        self._lock = threading.Lock()
        self._con: Any = None
        self._closing = False
        self._results: OrderedDict[str, _OpenResult] = OrderedDict()
        self._results_lock = threading.Lock()
        self._running: set[Any] = set()  # cursors inside a DuckDB call, so close() can interrupt them
        self._running_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, writable: bool) -> DuckDBWarehouse:
        return cls(DuckDBConfig.from_settings(settings), writable=writable)

    @property
    def path(self) -> Path:
        return self.config.path

    def describe(self) -> str:
        mode = "read-write" if self.writable else "read-only"
        return f"embedded DuckDB warehouse at {self.path} ({mode})"

    # -- connection ----------------------------------------------------------------------------

    def _connection(self) -> Any:
        with self._lock:
            if self._con is None:
                self._closing = False
                self._con = self._open()
            return self._con

    def _open(self) -> Any:
        import duckdb

        path = self.path
        if path.is_dir():
            raise ConfigError(f"SOPHIA_DUCKDB_PATH points at a directory ({path}), not a DuckDB file.")
        if not path.exists() and not self.writable:
            raise ConfigError(
                f"There is no warehouse at {path} yet.",
                hint="Run `uv run sophia demo` to create one with demo data, point SOPHIA_DUCKDB_PATH at an "
                "existing DuckDB file, or set SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE=1 to create tables.",
            )
        _refuse_foreign_file(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the warehouse at {path}: {exc.strerror or exc}.",
                hint="Set SOPHIA_DUCKDB_PATH to a writable location.",
            ) from exc
        con = duckdb.connect(":memory:", config=self._connect_config())
        try:
            mode = "" if self.writable else " (READ_ONLY)"
            con.execute(f"ATTACH {_sql_string(str(path))} AS {DATABASE_NAME}{mode}")
            con.execute(f"USE {DATABASE_NAME}")
            # Without the in-memory catalog nothing but the file can be written, and cursors default to it.
            con.execute("DETACH memory")
            for statement in _LOCK_DOWN:
                con.execute(statement)
        except duckdb.Error as exc:
            con.close()
            raise _open_error(path, exc) from exc
        return con

    def _connect_config(self) -> dict[str, str | bool | int | float | list[str]]:
        config = dict(_CONNECT_CONFIG)
        config |= {
            "memory_limit": self.config.memory_limit,
            "max_temp_directory_size": self.config.max_temp_size,
            "threads": self.config.threads,
        }
        temp = self.config.temp_directory
        try:
            temp.parent.mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(temp)
        except OSError as exc:
            # Reading still works without spilling; only queries larger than memory fail.
            log.warning("No DuckDB temp directory (%s): large queries cannot spill to disk", exc.strerror or exc)
            config["temp_directory"] = ""
        return config

    def _cursor(self) -> Any:
        return self._connection().cursor()

    def internal_cursor(self) -> Any:
        """A cursor on this file's locked-down connection, for other backends' fixed internal SQL (never a caller's)."""
        return self._cursor()

    @contextlib.contextmanager
    def _deadline(self, cur: Any, cancel: CancelToken | None) -> Iterator[None]:
        """One statement-timeout budget for everything DuckDB does inside the block, fetching included."""
        import duckdb

        # DuckDB streams results, so the work continues in fetchmany(): the timer covers the whole
        # block, not just execute(). The lock keeps a late timer from interrupting the next call.
        state = threading.Lock()
        finished = [False]
        timed_out = threading.Event()

        def expire() -> None:
            with state:
                if not finished[0]:
                    timed_out.set()
                    cur.interrupt()

        timer = threading.Timer(self.config.statement_timeout_seconds, expire)
        timer.daemon = True
        with self._running_lock:
            self._running.add(cur)
        if cancel is not None:
            cancel.on_cancel(cur.interrupt)
        timer.start()
        try:
            yield
        except duckdb.Error as exc:
            raise self._translate(exc, timed_out=timed_out.is_set()) from exc
        finally:
            with state:
                finished[0] = True
            timer.cancel()
            if cancel is not None:
                cancel.on_cancel(_ignore)
            with self._running_lock:
                self._running.discard(cur)
        if timed_out.is_set():  # the deadline passed just as DuckDB finished: still too slow
            raise self._timeout_error()

    # -- errors --------------------------------------------------------------------------------

    def _timeout_error(self) -> BackendError:
        return BackendError(
            f"The query ran longer than {self.config.statement_timeout_seconds:g} s (fetching its rows "
            "included) and was stopped.",
            hint="Aggregate or filter more, ask for fewer rows, or raise SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS.",
        )

    def _translate(self, exc: Exception, *, timed_out: bool) -> SophiaError:
        """A DuckDB error as the agent should see it: what failed, and a hint that fits this failure."""
        import duckdb

        if isinstance(exc, duckdb.InterruptException):
            if timed_out:
                return self._timeout_error()
            if self._closing:
                return BackendError("The query was stopped because the server is shutting down.")
            return CancelledByClient("The query was cancelled.")
        text = self._scrub(str(exc))
        first = text.splitlines()[0] if text else type(exc).__name__
        if isinstance(exc, duckdb.OutOfMemoryException):
            return self._resource_error(first, spill="max_temp_directory_size" in text)
        if isinstance(exc, duckdb.PermissionException):
            return InputError(
                f"The embedded warehouse refused this: {first}",
                hint="Queries can only read the warehouse's own tables, not local files or extensions.",
            )
        message = f"DuckDB could not run the statement on the embedded warehouse: {text}"
        hint = _hint_for(exc, text)
        if hint is None:
            return BackendError(f"DuckDB failed: {text}")
        return InputError(message, hint=hint)

    def _resource_error(self, first_line: str, *, spill: bool) -> BackendError:
        # Only the first line: DuckDB's advice after it (SET threads, SET memory_limit) cannot be
        # followed, as the configuration is locked.
        if spill:
            return BackendError(
                f"The query needed more disk to spill to than the embedded warehouse may use "
                f"({self.config.max_temp_size}): {first_line}",
                hint="Aggregate or filter more, or raise SOPHIA_DUCKDB_MAX_TEMP_SIZE.",
            )
        return BackendError(
            f"The query needed more memory than the embedded warehouse may use ({self.config.memory_limit}): "
            f"{first_line}",
            hint="Aggregate or filter more (sorting or grouping many wide rows needs memory), or raise "
            "SOPHIA_DUCKDB_MEMORY_LIMIT (and SOPHIA_DUCKDB_MAX_TEMP_SIZE, the disk it may spill to).",
        )

    def _scrub(self, text: str) -> str:
        """DuckDB messages name files; the agent needs the file's name, not the user's directories."""
        replacements = {
            str(self.config.temp_directory): "<temp directory>",
            str(self.path): self.path.name,
            str(self.config.data_dir): "<data dir>",
            str(Path.home()): "~",
        }
        for long, short in sorted(replacements.items(), key=lambda item: -len(item[0])):
            if len(long) > 1:
                text = text.replace(long, short)
        return text

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
        rerun = entry is None and offset > 0  # the held result is gone: this page re-runs the query
        cur = self._cursor() if entry is None else entry.cursor
        try:
            # A kept-open result gets a fresh budget for this page's fetch.
            with self._deadline(cur, cancel):
                if entry is None:
                    cur.execute(sql, list(params) if params else None)
                    columns = [ColumnInfo(name=d[0], type=str(d[1])) for d in (cur.description or [])]
                    entry = _OpenResult(cur, fingerprint, columns)
                    entry.skip_to(offset)
                rows = entry.read(offset, max_rows + 1)
        except BaseException:
            _close_quietly(cur)
            raise
        has_more = len(rows) > max_rows
        if has_more:
            handle = handle or uuid.uuid4().hex
            self._keep_result(handle, entry)
        else:
            entry.close()
            handle = ""
        return RowPage(columns=entry.columns, rows=rows[:max_rows], has_more=has_more, handle=handle, rerun=rerun)

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
        if not self.writable:  # the second gate: the file was opened read-only because writes are off
            raise PolicyError(
                "Refused to change the embedded warehouse: it is open read-only because writes are disabled.",
                hint="Set SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE=1 and restart the server.",
            )
        cur = self._cursor()
        try:
            with self._deadline(cur, cancel):
                cur.execute(sql, list(params) if params else None)
                affected = _rows_affected(cur)
        finally:
            _close_quietly(cur)
        return WriteOutcome(rows_affected=affected)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The backend's own catalog queries (fixed text, bound values), with the same deadline."""
        cur = self._cursor()
        try:
            with self._deadline(cur, None):
                return list(cur.execute(sql, list(params) if params else None).fetchall())
        finally:
            _close_quietly(cur)

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
        """Stop what is still running, then close; never raises (it runs at shutdown and on Ctrl-C)."""
        import duckdb

        self._closing = True
        with self._running_lock:
            running = list(self._running)
        for cur in running:
            with contextlib.suppress(Exception):
                cur.interrupt()
        with self._results_lock:
            open_results, self._results = list(self._results.values()), OrderedDict()
        for entry in open_results:
            entry.close()
        with self._lock:
            con, self._con = self._con, None
        if con is None:
            return
        for _ in range(_CLOSE_ATTEMPTS):
            try:
                con.close()
                return
            except duckdb.Error:
                # "Connection is busy": an interrupted statement is still unwinding; interrupt again.
                with self._running_lock:
                    running = list(self._running)
                for cur in running:
                    with contextlib.suppress(Exception):
                        cur.interrupt()
                time.sleep(0.05)
        log.debug("DuckDB warehouse still busy at shutdown; left for the process exit to release")


def _rows_affected(cur: Any) -> int | None:
    import duckdb

    try:
        first = cur.fetchone()
    except duckdb.InvalidInputException:  # DDL has no result set
        return None
    if first is not None and len(first) == 1 and isinstance(first[0], int):
        return first[0]
    return None


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _refuse_foreign_file(path: Path) -> None:
    """A SQLite (or any other) file makes DuckDB try to load a reader extension: say what it is instead."""
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError:
        return  # missing or unreadable: DuckDB's own message says which
    if head and head[8:12] != _DUCKDB_MAGIC:
        raise _not_duckdb(path, sqlite=head.startswith(b"SQLite format 3"))


def _not_duckdb(path: Path, *, sqlite: bool = False) -> ConfigError:
    what = " (it is a SQLite database)" if sqlite else ""
    return ConfigError(
        f"{path} is not a DuckDB database file{what}.",
        hint="Point SOPHIA_DUCKDB_PATH at a DuckDB file, or unset it and run `uv run sophia demo` to create one.",
    )


def _open_error(path: Path, exc: Exception) -> SophiaError:
    import duckdb

    text = str(exc)
    lower = text.lower()
    if isinstance(exc, duckdb.PermissionException) or "not a valid duckdb database" in lower:
        return _not_duckdb(path)
    if "lock" in lower:
        hint = "Another process holds it open for writing: stop it, or point SOPHIA_DUCKDB_PATH elsewhere."
    else:
        hint = "Check the file's permissions, or point SOPHIA_DUCKDB_PATH at another file."
    return BackendError(f"Could not open the DuckDB warehouse {path}: {text}", hint=hint)


_CATALOG_HINT = (
    f"Check table and column names with {WAREHOUSE_LIST_TABLES} / {WAREHOUSE_DESCRIBE_TABLE} "
    "(SOPHIA_DUCKDB_PATH chooses the warehouse file; `sophia demo` fills it with demo data)."
)
_FUNCTION_HINT = (
    f"This function is not available on the embedded warehouse; see {_SQL_ON_DUCKDB_DOC} for what to use "
    "instead, or run the query on Snowflake."
)
_PARAMS_HINT = "Check that params has one value per ? placeholder, and the values' types."
_CAST_HINT = (
    "An argument has the wrong type for this function or operator: cast it, e.g. TO_VARCHAR(x) or "
    "CAST(x AS NUMBER), so the types match."
)
_CONVERSION_HINT = (
    "A value could not be converted to the type asked for: check the value or its format, or use "
    "TRY_CAST / TRY_TO_NUMBER / TRY_TO_DATE, which give NULL instead of failing."
)
_RANGE_HINT = "A number overflowed its type: cast to a wider one first, e.g. CAST(x AS NUMBER(38, 0)) or DOUBLE."
_SYNTAX_HINT = (
    f"The DuckDB translation of this Snowflake SQL is not supported; see {_SQL_ON_DUCKDB_DOC}, rewrite it "
    "with more common SQL, or run it on Snowflake."
)


def _hint_for(exc: Exception, text: str) -> str | None:
    """The hint for a DuckDB error the caller can fix by changing the SQL or params; None if they cannot."""
    import duckdb

    lower = text.lower()
    # Binder ("count mismatch") or invalid input ("values were not provided"), depending on the side.
    if "parameter" in lower and ("mismatch" in lower or "not provided" in lower or "prepared statement" in lower):
        return _PARAMS_HINT
    if isinstance(exc, duckdb.CatalogException):
        if "function with name" in lower or "macro function" in lower:
            return _FUNCTION_HINT
        return _CATALOG_HINT
    if isinstance(exc, duckdb.BinderException):
        if "no function matches" in lower or "could not choose a best candidate" in lower or "cannot compare" in lower:
            return _CAST_HINT
        if "column" in lower or "table" in lower:
            return _CATALOG_HINT
        return _SYNTAX_HINT
    if isinstance(exc, duckdb.InvalidInputException):
        return _CONVERSION_HINT if "convert" in lower or "could not parse" in lower else _SYNTAX_HINT
    if isinstance(exc, duckdb.ConversionException):
        return _CONVERSION_HINT
    if isinstance(exc, duckdb.OutOfRangeException):
        return _RANGE_HINT
    if isinstance(exc, duckdb.TypeMismatchException):
        return _CAST_HINT
    if isinstance(exc, duckdb.ParserException | duckdb.NotImplementedException):
        return _SYNTAX_HINT
    return None
