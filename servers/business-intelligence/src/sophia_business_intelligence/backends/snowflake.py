"""The cloud warehouse: Snowflake through `snowflake-connector-python` (4.x), imported lazily.

One connection per server, opened on first use and re-opened when closed. Parameters are bound
server-side with the `qmark` style (`?` placeholders, the same as the DuckDB backend): values never
become SQL text. Every session sets QUERY_TAG, MULTI_STATEMENT_COUNT=1 and a statement timeout.
Login is in `snowflake_connect`, the typed settings in `snowflake_config`, error mapping in `snowflake_errors`.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sophia_shared.errors import CancelledByClient, InputError, SophiaError
from sophia_shared.gate import require_write
from sophia_shared.output import request_digest
from sophia_shared.settings import Settings, call_with_auth_refresh

from ..names import WAREHOUSE_LIST_DATABASES
from ..settings import SERVER_KEY
from ..sql_guard import CheckedStatement, require_checked
from .base import CancelToken, ColumnInfo, RowPage, TableInfo, WriteOutcome
from .snowflake_config import SnowflakeConfig
from .snowflake_connect import open_connection
from .snowflake_errors import SessionExpired, is_auth_error, session_expired, translate_error

log = logging.getLogger(__name__)
T = TypeVar("T")

_ISSUED_HANDLES = 256
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# Snowflake query ids are UUID-shaped; the connector formats a resumed id into SQL text.
_QUERY_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Snowflake's row count means "rows changed" only for DML; for DDL it is a status row.
_DML_TYPES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})


def snowflake_configured(settings: Settings) -> bool:
    """True when the server should use Snowflake rather than the embedded DuckDB warehouse."""
    return bool(settings.get("SNOWFLAKE_ACCOUNT") or settings.get("SNOWFLAKE_CONNECTION_NAME"))


# -- identifiers -------------------------------------------------------------------------------


def quote_identifier(name: str) -> str:
    """`name` as a quoted Snowflake identifier that means exactly that stored name."""
    if not name or not name.strip():
        raise InputError("An identifier (database, schema or table name) cannot be empty.")
    if "\x00" in name or len(name) > 255:
        raise InputError("That identifier is not a valid Snowflake name (NUL byte or over 255 characters).")
    return '"' + name.replace('"', '""') + '"'


def stored_name(name: str) -> str:
    """The name Snowflake stores for `name` written in SQL: unquoted identifiers are upper-cased."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        inner = name[1:-1]
        if '"' in inner.replace('""', ""):
            raise InputError(f'The quoted identifier {name!r} has an unescaped double quote (write it as "").')
        return inner.replace('""', '"')
    if _PLAIN_IDENTIFIER.fullmatch(name):
        return name.upper()
    return name


def _name_candidates(name: str) -> list[str]:
    """Stored names `name` may mean: as Snowflake resolves it, then exactly as given."""
    return list(dict.fromkeys([stored_name(name), name]))


# -- the warehouse -----------------------------------------------------------------------------


class SnowflakeWarehouse:
    """Snowflake over one lazily opened, thread-shared connection (cursors are per call)."""

    kind = "snowflake"
    dialect = "snowflake"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._conn: Any = None
        self._config: SnowflakeConfig | None = None
        self._issued: OrderedDict[str, str] = OrderedDict()  # query id → fingerprint of sql + params
        self._issued_lock = threading.Lock()

    @property
    def config(self) -> SnowflakeConfig:
        """The settings as read at the last login (read now if there has been none)."""
        config = self._config
        if config is None:
            config = self._config = SnowflakeConfig.from_settings(self.settings)
        return config

    def describe(self) -> str:
        return self.config.describe()

    # -- connection ----------------------------------------------------------------------------

    def _connection(self) -> Any:
        with self._lock:
            conn = self._conn
            # `expired` is the connector's mark for a master token Snowflake no longer accepts.
            if conn is not None and not conn.is_closed() and not getattr(conn, "expired", False):
                return conn
            self._conn = None
            try:
                self._conn = call_with_auth_refresh(self.settings, self._open, is_auth_error)
            except SophiaError:
                raise
            except Exception as exc:
                raise translate_error(exc, timeout_seconds=self.config.statement_timeout_seconds) from None
            return self._conn

    def _open(self) -> Any:
        """One login with the settings as they are now (ESC may have rotated the credentials)."""
        self._config = SnowflakeConfig.from_settings(self.settings)
        return open_connection(self._config)

    def _discard(self, conn: Any) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None
        try:
            conn.close()
        except Exception as exc:  # closing must never fail a shutdown
            log.debug("Closing the Snowflake connection failed: %s", exc)

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            self._discard(conn)

    def _run(self, work: Callable[[Any], T]) -> T:
        """`work(connection)`, logging in again once if Snowflake has dropped the session."""
        conn = self._connection()
        try:
            return work(conn)
        except SessionExpired:
            log.info("The Snowflake session is no longer valid; logging in again.")
            self._discard(conn)
            return work(self._connection())

    # -- statements ----------------------------------------------------------------------------

    def _execute(self, cur: Any, sql: str, params: Sequence[Any], cancel: CancelToken | None) -> None:
        """Run one statement on `cur`; `cancel` aborts it server-side from any thread."""
        request_id = uuid.uuid4()
        in_flight = threading.Event()
        if cancel is not None:
            if cancel.cancelled:
                raise CancelledByClient("The query was cancelled before it started.")
            conn = cur.connection

            def abort() -> None:
                if not in_flight.is_set():
                    return
                try:
                    # The connector's own timeout and Ctrl-C path: abort by SQL text + request id,
                    # which works before the query id is known.
                    conn._cancel_query(sql, request_id)
                except Exception as exc:
                    log.warning("Could not ask Snowflake to cancel the statement: %s", exc)

            cancel.on_cancel(abort)
            in_flight.set()
            if cancel.cancelled:
                raise CancelledByClient("The query was cancelled before it started.")
        try:
            cur.execute(
                sql,
                list(params) if params else None,
                timeout=self.config.client_timeout_seconds,
                _statement_params={"requestId": str(request_id)},
            )
        except SophiaError:
            raise
        except Exception as exc:
            if cancel is not None and cancel.cancelled:
                raise CancelledByClient("The query was cancelled.") from None
            raise session_expired(exc) or translate_error(
                exc, timeout_seconds=self.config.statement_timeout_seconds
            ) from None
        finally:
            in_flight.clear()
        if cancel is not None and cancel.cancelled:
            raise CancelledByClient("The query was cancelled.")

    def run_internal(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The server's own fixed SQL (the memory store), values bound; not user SQL, so not the guard's."""
        return [tuple(row) for row in self._rows(sql, params)[1]]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[Any], list[tuple[Any, ...]]]:
        def work(conn: Any) -> tuple[list[Any], list[tuple[Any, ...]]]:
            cur = conn.cursor()
            try:
                self._execute(cur, sql, params, None)
                return list(cur.description or []), cur.fetchall()
            finally:
                cur.close()

        return self._run(work)

    def _remember(self, query_id: str, fingerprint: str) -> None:
        with self._issued_lock:
            self._issued[query_id] = fingerprint
            self._issued.move_to_end(query_id)
            while len(self._issued) > _ISSUED_HANDLES:
                self._issued.popitem(last=False)

    def _can_resume(self, handle: str, fingerprint: str) -> bool:
        with self._issued_lock:
            return bool(_QUERY_ID.fullmatch(handle)) and self._issued.get(handle) == fingerprint

    @staticmethod
    def _read_page(cur: Any, offset: int, max_rows: int) -> tuple[list[ColumnInfo], list[list[Any]], bool]:
        """Rows `offset` to `offset + max_rows` of the cursor's result, and whether more follow."""
        rows = [list(r) for r in itertools.islice(cur, offset, offset + max_rows + 1)]
        columns = [_column_from_description(d) for d in (cur.description or [])]
        return columns, rows[:max_rows], len(rows) > max_rows

    def _resumed_page(self, conn: Any, handle: str, offset: int, max_rows: int) -> RowPage | None:
        """The page read from a finished query's stored result, or None to re-run the query."""
        from snowflake.connector.constants import QueryStatus

        try:
            # Checked first: for an unknown id the connector would poll for up to ~100 s.
            if conn.get_query_status(handle) != QueryStatus.SUCCESS:
                return None
            cur = conn.cursor()
            try:
                cur.get_results_from_sfqid(handle)
                columns, rows, has_more = self._read_page(cur, offset, max_rows)
            finally:
                cur.close()
        except Exception as exc:
            log.info("Could not resume Snowflake query %s (%s); running it again.", handle, exc)
            return None
        return RowPage(columns=columns, rows=rows, has_more=has_more, handle=handle)

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
        if cancel.cancelled:
            raise CancelledByClient("The query was cancelled before it started.")
        sql = require_checked(statement, dialect=self.dialect, write=False).sql
        fingerprint = request_digest(sql, list(params))

        def work(conn: Any) -> RowPage:
            if handle and self._can_resume(handle, fingerprint):
                resumed = self._resumed_page(conn, handle, offset, max_rows)
                if resumed is not None:
                    return resumed
            cur = conn.cursor()
            try:
                self._execute(cur, sql, params, cancel)
                query_id = cur.sfqid or ""
                try:
                    columns, rows, has_more = self._read_page(cur, offset, max_rows)
                except Exception as exc:
                    raise translate_error(exc, timeout_seconds=self.config.statement_timeout_seconds) from None
            finally:
                cur.close()
            if cancel.cancelled:
                raise CancelledByClient("The query was cancelled.")
            if query_id:
                self._remember(query_id, fingerprint)
            return RowPage(columns=columns, rows=rows, has_more=has_more, handle=query_id, rerun=offset > 0)

        return self._run(work)

    def execute_write(self, statement: CheckedStatement, *, params: Sequence[Any], cancel: CancelToken) -> WriteOutcome:
        if cancel.cancelled:
            raise CancelledByClient("The statement was cancelled before it started.")
        sql = require_checked(statement, dialect=self.dialect, write=True).sql
        require_write(self.settings, SERVER_KEY, "change the Snowflake warehouse")  # the second gate

        def work(conn: Any) -> int | None:
            cur = conn.cursor()
            try:
                self._execute(cur, sql, params, cancel)
                rowcount: int | None = cur.rowcount
                return rowcount
            finally:
                cur.close()

        rowcount = self._run(work)
        affected = (
            rowcount if statement.statement_type in _DML_TYPES and rowcount is not None and rowcount >= 0 else None
        )
        return WriteOutcome(rows_affected=affected)

    def default_database(self) -> str:
        configured = self.config.database
        if configured:
            return configured
        _, rows = self._rows("SELECT CURRENT_DATABASE()")
        return str(rows[0][0]) if rows and rows[0][0] else ""

    def list_databases(self) -> list[str]:
        description, rows = self._rows("SHOW DATABASES")
        index = next((i for i, d in enumerate(description) if d.name.lower() == "name"), 1)
        return sorted(str(r[index]) for r in rows)

    def _in_database(self, database: str, build: Callable[[str], str], params: Sequence[Any]) -> tuple[str, list[Any]]:
        """Run an INFORMATION_SCHEMA query in `database` (its stored name is returned with the rows)."""
        last: InputError | None = None
        for candidate in _name_candidates(database):
            try:
                return candidate, self._rows(build(quote_identifier(candidate)), params)[1]
            except InputError as exc:
                if "does not exist" not in exc.message and "not authorized" not in exc.message:
                    raise
                last = exc
        assert last is not None
        raise InputError(
            f"The Snowflake database {database!r} does not exist or this role cannot see it.",
            hint=f"Call {WAREHOUSE_LIST_DATABASES} for the names available to SNOWFLAKE_ROLE.",
        ) from last

    def list_schemas(self, database: str) -> list[str]:
        _, rows = self._in_database(
            database,
            lambda db: (
                f"SELECT schema_name FROM {db}.INFORMATION_SCHEMA.SCHEMATA "
                "WHERE schema_name <> 'INFORMATION_SCHEMA' ORDER BY schema_name"
            ),
            (),
        )
        return [str(r[0]) for r in rows]

    def list_tables(self, database: str, schema: str) -> list[TableInfo]:
        schemas = _name_candidates(schema)
        marks = ", ".join("?" for _ in schemas)
        # Snowflake lists views in TABLES too; VIEWS is read as well for servers that do not.
        stored_database, rows = self._in_database(
            database,
            lambda db: (
                f"SELECT table_schema, table_name, table_type, row_count, comment "
                f"FROM {db}.INFORMATION_SCHEMA.TABLES WHERE table_schema IN ({marks}) "
                f"UNION ALL SELECT table_schema, table_name, 'VIEW', NULL, comment "
                f"FROM {db}.INFORMATION_SCHEMA.VIEWS WHERE table_schema IN ({marks})"
            ),
            [*schemas, *schemas],
        )
        chosen = _pick_name(schemas, {r[0] for r in rows})
        found: dict[str, TableInfo] = {}
        for schema_name, name, table_type, row_count, comment in rows:
            if schema_name != chosen or name in found:
                continue
            kind = "VIEW" if "VIEW" in str(table_type).upper() else "TABLE"
            found[name] = TableInfo(
                database=stored_database,
                schema=schema_name,
                name=name,
                kind=kind,
                row_count=int(row_count) if row_count is not None and kind == "TABLE" else None,
                comment=comment or "",
            )
        return [found[name] for name in sorted(found)]

    def describe_table(self, database: str, schema: str, table: str) -> list[ColumnInfo]:
        schemas, tables = _name_candidates(schema), _name_candidates(table)
        _, rows = self._in_database(
            database,
            lambda db: (
                "SELECT table_schema, table_name, column_name, data_type, numeric_precision, numeric_scale, "
                f"is_nullable, comment FROM {db}.INFORMATION_SCHEMA.COLUMNS "
                f"WHERE table_schema IN ({', '.join('?' for _ in schemas)}) "
                f"AND table_name IN ({', '.join('?' for _ in tables)}) ORDER BY ordinal_position"
            ),
            [*schemas, *tables],
        )
        chosen_schema = _pick_name(schemas, {r[0] for r in rows})
        chosen_table = _pick_name(tables, {r[1] for r in rows if r[0] == chosen_schema})
        return [
            ColumnInfo(
                name=column,
                type=_column_type(data_type, precision, scale),
                nullable=str(nullable).upper() == "YES",
                comment=comment or "",
            )
            for schema_name, name, column, data_type, precision, scale, nullable, comment in rows
            if schema_name == chosen_schema and name == chosen_table
        ]

    def ping(self) -> str:
        _, rows = self._rows("SELECT CURRENT_VERSION()")
        return f"Snowflake {rows[0][0]}" if rows else "Snowflake"


# -- result metadata ---------------------------------------------------------------------------


def _pick_name(candidates: list[str], present: set[Any]) -> Any:
    """The stored name to use: how Snowflake resolves the input, else exactly as given."""
    for name in candidates:
        if name in present:
            return name
    return None


def _column_type(data_type: Any, precision: Any, scale: Any) -> str:
    name = str(data_type or "").upper()
    if name == "NUMBER" and precision is not None:
        return f"NUMBER({precision},{scale or 0})"
    return name


def _column_from_description(meta: Any) -> ColumnInfo:
    from snowflake.connector.constants import FIELD_ID_TO_NAME

    field = FIELD_ID_TO_NAME.get(meta.type_code) or str(meta.type_code)
    if field == "FIXED":
        type_name = _column_type("NUMBER", meta.precision, meta.scale)
    elif field == "REAL":
        type_name = "FLOAT"
    else:
        type_name = field
    nullable = meta.is_nullable if meta.is_nullable is not None else True
    return ColumnInfo(name=meta.name, type=type_name, nullable=bool(nullable))
