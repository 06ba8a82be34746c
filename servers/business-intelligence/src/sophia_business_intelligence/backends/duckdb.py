"""The embedded warehouse: one DuckDB file, queried in Snowflake SQL.

Statements arrive in Snowflake SQL, already checked by `sql_guard`; the backend runs exactly the
DuckDB text the guard checked (`sql_guard.duckdb_sql`). The connection is locked down so the read
tools cannot become a way to read the user's disk: no external access (files, ATTACH, COPY,
extension installs), no extension autoloading, no Python replacement scans, and a locked
configuration (no SET). Without the write gate the file is also opened read-only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sophia_shared.errors import BackendError, CancelledByClient, InputError
from sophia_shared.paths import data_dir
from sophia_shared.settings import Settings

from ..sql_guard import duckdb_sql
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


def duckdb_path(settings: Settings) -> Path:
    explicit = settings.get("SOPHIA_DUCKDB_PATH")
    if explicit:
        return Path(explicit).expanduser()
    return data_dir() / "warehouse.duckdb"


class DuckDBWarehouse:
    """A DuckDB file; cursors per call so worker threads never share one."""

    kind = "duckdb"

    def __init__(self, path: Path, *, writable: bool = False) -> None:
        self.path = path
        self.writable = writable
        self._lock = threading.Lock()
        self._con: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, *, writable: bool) -> DuckDBWarehouse:
        return cls(duckdb_path(settings), writable=writable)

    def describe(self) -> str:
        mode = "read-write" if self.writable else "read-only"
        return f"embedded DuckDB warehouse at {self.path} ({mode})"

    # -- connection ----------------------------------------------------------------------------

    def _connection(self) -> Any:
        with self._lock:
            if self._con is None:
                import duckdb

                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():
                    # A read-only open needs an existing file: create an empty warehouse first.
                    duckdb.connect(str(self.path)).close()
                try:
                    self._con = duckdb.connect(str(self.path), read_only=not self.writable, config=LOCKED_DOWN)
                except duckdb.IOException as exc:
                    raise BackendError(
                        f"Could not open the DuckDB warehouse {self.path}: {exc}",
                        hint="Another process may hold it open for writing (stop it), or point "
                        "SOPHIA_DUCKDB_PATH at another file.",
                    ) from exc
            return self._con

    def _cursor(self, cancel: CancelToken | None = None) -> Any:
        cur = self._connection().cursor()
        if cancel is not None:
            cancel.on_cancel(cur.interrupt)
        return cur

    def _run(self, cur: Any, sql: str, params: Sequence[Any]) -> Any:
        import duckdb

        try:
            return cur.execute(sql, list(params) if params else None)
        except duckdb.InterruptException as exc:
            raise CancelledByClient("The query was cancelled.") from exc
        except duckdb.PermissionException as exc:
            raise InputError(
                f"The embedded warehouse refused this: {exc}",
                hint="Queries can only read the warehouse's own tables, not local files.",
            ) from exc
        except (
            duckdb.ParserException,
            duckdb.BinderException,
            duckdb.CatalogException,
            duckdb.ConversionException,
            duckdb.InvalidInputException,
        ) as exc:
            raise InputError(
                f"DuckDB could not run the query on the embedded warehouse {self.path}: {exc}",
                hint="Check table and column names with warehouse_list_tables / warehouse_describe_table "
                "(SOPHIA_DUCKDB_PATH chooses the warehouse file; `sophia demo` fills it with demo data).",
            ) from exc
        except duckdb.Error as exc:
            raise BackendError(f"DuckDB failed: {exc}") from exc

    # -- Warehouse -----------------------------------------------------------------------------

    def query(
        self,
        sql: str,
        *,
        params: Sequence[Any],
        offset: int,
        max_rows: int,
        handle: str,
        cancel: CancelToken,
    ) -> RowPage:
        cur = self._cursor(cancel)
        try:
            self._run(cur, duckdb_sql(sql), params)
            columns = [ColumnInfo(name=d[0], type=str(d[1])) for d in (cur.description or [])]
            skipped = 0
            while skipped < offset:
                chunk = cur.fetchmany(min(_FETCH_CHUNK, offset - skipped))
                if not chunk:
                    break
                skipped += len(chunk)
            rows = [list(r) for r in cur.fetchmany(max_rows + 1)]
        finally:
            cur.close()
        has_more = len(rows) > max_rows
        return RowPage(columns=columns, rows=rows[:max_rows], has_more=has_more)

    def execute_write(self, sql: str, *, params: Sequence[Any], cancel: CancelToken) -> WriteOutcome:
        cur = self._cursor(cancel)
        try:
            self._run(cur, duckdb_sql(sql), params)
            affected: int | None = None
            try:
                first = cur.fetchone()
                if first is not None and len(first) == 1 and isinstance(first[0], int):
                    affected = first[0]
            except Exception:  # DDL has no result set
                affected = None
        finally:
            cur.close()
        return WriteOutcome(statement_type="", rows_affected=affected)

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
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
