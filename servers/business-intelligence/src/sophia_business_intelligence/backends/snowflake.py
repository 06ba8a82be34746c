"""The cloud warehouse: Snowflake through `snowflake-connector-python` (4.x), imported lazily.

One connection per server, opened on first use and re-opened when closed. Parameters are bound
server-side with the `qmark` style (`?` placeholders, the same as the DuckDB backend): values never
become SQL text. Every session sets QUERY_TAG, MULTI_STATEMENT_COUNT=1 and a statement timeout.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sophia_shared.errors import (
    AuthError,
    BackendError,
    CancelledByClient,
    ConfigError,
    InputError,
    SophiaError,
)
from sophia_shared.settings import Settings, call_with_auth_refresh

from ..sql_guard import CheckedStatement, require_checked
from .base import CancelToken, ColumnInfo, RowPage, TableInfo, WriteOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")

APPLICATION = "sophia-mcp"
LOGIN_TIMEOUT_SECONDS = 30
# The connector aborts a statement client-side after this much more than the server-side timeout,
# so a lost response can never hang a tool call.
CLIENT_GRACE_SECONDS = 15
_FETCH_CHUNK = 1_000
_ISSUED_HANDLES = 256
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# Snowflake query ids are UUID-shaped; the connector formats a resumed id into SQL text.
_QUERY_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DML_KEYWORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})
_TIMEOUT_ERRNOS = frozenset({630, 604})  # statement timeout; statement cancelled (client timebomb)
_NETWORK_ERRNOS = frozenset({250001, 250003, 251011, 251012})
# The session token was rejected (expired, renewed elsewhere, logged out): the statement never ran.
_SESSION_GONE_ERRNOS = frozenset({290401, 390104, 390111, 390112, 390113, 390114, 390115})
_CREDENTIAL_ERRNOS = frozenset({390100, 390101, 390102, 390144, 394300, 394301, 394302, 394304, 394400})
_AUTH_HINT = (
    "Check SNOWFLAKE_USER and the credential in use (SNOWFLAKE_PASSWORD, SNOWFLAKE_TOKEN or "
    "SNOWFLAKE_PRIVATE_KEY_FILE); if it was rotated, update it in Pulumi ESC (SOPHIA_ESC_ENV) or the "
    "environment. For key-pair auth the user needs the matching RSA_PUBLIC_KEY; a PAT must not be expired."
)


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


# -- errors ------------------------------------------------------------------------------------


def _errno(exc: BaseException) -> int | None:
    value = getattr(exc, "errno", None)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_auth_error(exc: BaseException) -> bool:
    """Snowflake rejected the credentials (not a network or SQL problem)."""
    if getattr(exc, "sqlstate", None) == "28000" or _errno(exc) in _CREDENTIAL_ERRNOS:
        return True
    return "incorrect username or password" in str(exc).lower()


def _message(exc: BaseException) -> str:
    return (getattr(exc, "msg", None) or str(exc) or type(exc).__name__).strip()


def translate_error(exc: BaseException, *, timeout_seconds: int) -> SophiaError:
    """A connector error as the suite's error, with what to do about it."""
    from snowflake.connector import errors as sf

    text = str(exc).strip() or _message(exc)
    errno = _errno(exc)
    lowered = text.lower()
    if errno in _TIMEOUT_ERRNOS or ("timeout" in lowered and "statement" in lowered):
        return BackendError(
            f"Snowflake stopped the statement: {text}",
            hint=(
                f"It ran longer than SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS ({timeout_seconds} s). Narrow the "
                "query (filters, LIMIT, fewer columns), use a larger SNOWFLAKE_WAREHOUSE, or raise "
                "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS."
            ),
        )
    if is_auth_error(exc):
        return AuthError(f"Snowflake rejected the credentials: {text}", hint=_AUTH_HINT)
    if isinstance(exc, (sf.OperationalError, sf.InterfaceError)) or errno in _NETWORK_ERRNOS:
        return BackendError(
            f"Could not reach Snowflake: {text}",
            hint=(
                "Is SNOWFLAKE_ACCOUNT right (orgname-accountname, without .snowflakecomputing.com) and is "
                "the network up? SNOWFLAKE_HOST overrides the host (private link)."
            ),
        )
    if isinstance(exc, (sf.ProgrammingError, sf.IntegrityError, sf.DataError, sf.NotSupportedError)):
        return InputError(
            f"Snowflake rejected the statement: {text}",
            hint="Check object and column names with list_tables / describe_table, and the SQL syntax.",
        )
    return BackendError(f"Snowflake failed: {text}")


class SessionExpired(BackendError):
    """Snowflake no longer accepts this connection's session; a new login is needed."""


# -- the warehouse -----------------------------------------------------------------------------


class SnowflakeWarehouse:
    """Snowflake over one lazily opened, thread-shared connection (cursors are per call)."""

    kind = "snowflake"
    dialect = "snowflake"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._conn: Any = None
        self._issued: OrderedDict[str, str] = OrderedDict()  # query id → fingerprint of sql + params
        self._issued_lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------------

    def _int_setting(self, name: str, default: int) -> int:
        raw = self.settings.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {raw!r}.", hint=f"Fix {name}.") from None
        if value < 0:
            raise ConfigError(f"{name} cannot be negative.", hint=f"Fix {name}.")
        return value

    @property
    def statement_timeout(self) -> int:
        return self._int_setting("SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS", 120)

    def auth_method(self) -> str:
        get = self.settings.get
        if get("SNOWFLAKE_PRIVATE_KEY_FILE"):
            return "key-pair"
        if get("SNOWFLAKE_TOKEN"):
            return "programmatic access token"
        if get("SNOWFLAKE_PASSWORD"):
            return "password"
        if get("SNOWFLAKE_CONNECTION_NAME"):
            return "connections.toml"
        return "none"

    def _connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `snowflake.connector.connect` (holds secrets: never log it)."""
        get = self.settings.get
        connection_name = get("SNOWFLAKE_CONNECTION_NAME")
        kwargs: dict[str, Any] = {}
        if connection_name:
            kwargs["connection_name"] = connection_name
        elif not get("SNOWFLAKE_ACCOUNT"):
            self.settings.require("SNOWFLAKE_ACCOUNT", "the Snowflake warehouse")
        for setting, key in (
            ("SNOWFLAKE_ACCOUNT", "account"),
            ("SNOWFLAKE_USER", "user"),
            ("SNOWFLAKE_ROLE", "role"),
            ("SNOWFLAKE_WAREHOUSE", "warehouse"),
            ("SNOWFLAKE_DATABASE", "database"),
            ("SNOWFLAKE_SCHEMA", "schema"),
            ("SNOWFLAKE_HOST", "host"),
            ("SNOWFLAKE_PROTOCOL", "protocol"),
        ):
            value = get(setting)
            if value:
                kwargs[key] = value
        if get("SNOWFLAKE_PORT"):
            kwargs["port"] = self._int_setting("SNOWFLAKE_PORT", 443)
        kwargs.update(self._credentials(connection_name))

        timeout = self.statement_timeout
        kwargs.update(
            application=APPLICATION,
            # Server-side binding: `?` placeholders, values sent apart from the SQL text.
            paramstyle="qmark",
            login_timeout=LOGIN_TIMEOUT_SECONDS,
            network_timeout=timeout + CLIENT_GRACE_SECONDS,
            session_parameters={
                "QUERY_TAG": get("SNOWFLAKE_QUERY_TAG") or APPLICATION,
                "MULTI_STATEMENT_COUNT": 1,
                "STATEMENT_TIMEOUT_IN_SECONDS": timeout,
                # Out-of-band telemetry goes to a Snowflake service outside the account: keep it off.
                "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
            },
        )
        return kwargs

    def _credentials(self, connection_name: str | None) -> dict[str, Any]:
        get = self.settings.get
        user = get("SNOWFLAKE_USER")
        if get("SNOWFLAKE_PRIVATE_KEY_FILE"):
            if not user and not connection_name:
                raise self._missing_user("key-pair")
            return {"private_key": self._private_key_der()}
        if token := get("SNOWFLAKE_TOKEN"):
            return {"authenticator": "PROGRAMMATIC_ACCESS_TOKEN", "token": token}
        if password := get("SNOWFLAKE_PASSWORD"):
            if not user and not connection_name:
                raise self._missing_user("password")
            return {"password": password}
        if connection_name:
            return {}  # connections.toml holds the credentials
        raise ConfigError(
            "No Snowflake credentials are set, so the Snowflake warehouse is unavailable.",
            hint=(
                "Set one of SNOWFLAKE_PASSWORD, SNOWFLAKE_TOKEN (programmatic access token) or "
                "SNOWFLAKE_PRIVATE_KEY_FILE (+ SNOWFLAKE_PRIVATE_KEY_PASSPHRASE if the key is encrypted), "
                "or SNOWFLAKE_CONNECTION_NAME to use ~/.snowflake/connections.toml."
            ),
        )

    @staticmethod
    def _missing_user(method: str) -> ConfigError:
        return ConfigError(
            f"SNOWFLAKE_USER is not set, so {method} authentication to Snowflake cannot be used.",
            hint="Set SNOWFLAKE_USER to the Snowflake login name.",
        )

    def _private_key_der(self) -> bytes:
        """The PEM key decrypted and re-encoded as unencrypted PKCS#8 DER, as the connector takes it."""
        from cryptography.hazmat.primitives import serialization

        path = Path(self.settings.get("SNOWFLAKE_PRIVATE_KEY_FILE") or "").expanduser()
        passphrase = self.settings.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"Cannot read the Snowflake private key file {path} ({exc.strerror or type(exc).__name__}).",
                hint="Point SNOWFLAKE_PRIVATE_KEY_FILE at a readable PEM private key.",
            ) from None
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase.encode() if passphrase else None)
        except TypeError:
            # cryptography says whether a password was missing or superfluous; the text has no secret.
            if passphrase:
                hint = "The key is not encrypted: unset SNOWFLAKE_PRIVATE_KEY_PASSPHRASE."
            else:
                hint = "The key is encrypted: set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE."
            raise ConfigError(f"Cannot load the Snowflake private key {path}.", hint=hint) from None
        except ValueError:
            raise ConfigError(
                f"Cannot load the Snowflake private key {path}: wrong passphrase, or not a PEM private key.",
                hint="Check SNOWFLAKE_PRIVATE_KEY_PASSPHRASE and that SNOWFLAKE_PRIVATE_KEY_FILE is the "
                "PEM file (-----BEGIN ENCRYPTED PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----).",
            ) from None
        return key.private_bytes(
            encoding=serialization.Encoding.DER,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )

    def describe(self) -> str:
        get = self.settings.get
        if get("SNOWFLAKE_ACCOUNT"):
            where = f"Snowflake account {get('SNOWFLAKE_ACCOUNT')}"
        else:
            where = f"Snowflake connection {get('SNOWFLAKE_CONNECTION_NAME')!r} from connections.toml"
        parts = [where]
        if user := get("SNOWFLAKE_USER"):
            parts.append(f"as {user}")
        details = [
            f"{label} {value}"
            for label, value in (
                ("role", get("SNOWFLAKE_ROLE")),
                ("warehouse", get("SNOWFLAKE_WAREHOUSE")),
                ("database", ".".join(v for v in (get("SNOWFLAKE_DATABASE"), get("SNOWFLAKE_SCHEMA")) if v)),
                ("host", get("SNOWFLAKE_HOST")),
            )
            if value
        ]
        details.append(f"{self.auth_method()} auth")
        return " ".join(parts) + f" ({', '.join(details)})"

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
                raise translate_error(exc, timeout_seconds=self.statement_timeout) from None
            return self._conn

    def _open(self) -> Any:
        """One connection attempt with the settings as they are now (ESC may have rotated them)."""
        kwargs = self._connect_kwargs()
        import snowflake.connector
        from snowflake.connector import errors as sf

        try:
            return snowflake.connector.connect(**kwargs)
        except sf.Error as exc:
            if exc.errno is None or "connection_name" in str(exc):
                # The connector's own configuration checks (unknown connection name, bad option).
                raise ConfigError(
                    f"The Snowflake connector refused the configuration: {_message(exc)}",
                    hint="Check SNOWFLAKE_CONNECTION_NAME against ~/.snowflake/connections.toml and the "
                    "other SNOWFLAKE_* settings (`sophia doctor`).",
                ) from None
            raise

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
                timeout=self.statement_timeout + CLIENT_GRACE_SECONDS,
                _statement_params={"requestId": str(request_id)},
            )
        except SophiaError:
            raise
        except Exception as exc:
            if cancel is not None and cancel.cancelled:
                raise CancelledByClient("The query was cancelled.") from None
            if _errno(exc) in _SESSION_GONE_ERRNOS:
                raise SessionExpired(
                    f"Snowflake ended the session: {exc}",
                    hint="Call again: the server logs in anew on the next call.",
                ) from None
            raise translate_error(exc, timeout_seconds=self.statement_timeout) from None
        finally:
            in_flight.clear()
        if cancel is not None and cancel.cancelled:
            raise CancelledByClient("The query was cancelled.")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[Any], list[tuple[Any, ...]]]:
        def work(conn: Any) -> tuple[list[Any], list[tuple[Any, ...]]]:
            cur = conn.cursor()
            try:
                self._execute(cur, sql, params, None)
                return list(cur.description or []), cur.fetchall()
            finally:
                cur.close()

        return self._run(work)

    @staticmethod
    def _fingerprint(sql: str, params: Sequence[Any]) -> str:
        return hashlib.sha256(repr((sql, list(params))).encode("utf-8", "replace")).hexdigest()

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
        skipped = 0
        while skipped < offset:
            chunk = cur.fetchmany(min(_FETCH_CHUNK, offset - skipped))
            if not chunk:
                break
            skipped += len(chunk)
        rows = [list(r) for r in cur.fetchmany(max_rows + 1)]
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
        fingerprint = self._fingerprint(sql, params)

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
                    raise translate_error(exc, timeout_seconds=self.statement_timeout) from None
            finally:
                cur.close()
            if cancel.cancelled:
                raise CancelledByClient("The query was cancelled.")
            if query_id:
                self._remember(query_id, fingerprint)
            return RowPage(columns=columns, rows=rows, has_more=has_more, handle=query_id)

        return self._run(work)

    def execute_write(self, statement: CheckedStatement, *, params: Sequence[Any], cancel: CancelToken) -> WriteOutcome:
        if cancel.cancelled:
            raise CancelledByClient("The statement was cancelled before it started.")
        sql = require_checked(statement, dialect=self.dialect, write=True).sql

        def work(conn: Any) -> int | None:
            cur = conn.cursor()
            try:
                self._execute(cur, sql, params, cancel)
                return cur.rowcount
            finally:
                cur.close()

        rowcount = self._run(work)
        affected = (
            rowcount if statement.statement_type in _DML_KEYWORDS and rowcount is not None and rowcount >= 0 else None
        )
        return WriteOutcome(rows_affected=affected)

    def default_database(self) -> str:
        configured = self.settings.get("SNOWFLAKE_DATABASE")
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
            hint="Call list_databases for the names available to SNOWFLAKE_ROLE.",
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
