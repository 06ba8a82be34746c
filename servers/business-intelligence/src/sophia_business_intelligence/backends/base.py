"""The `Warehouse` interface both backends implement; tools never branch on which one they got."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..sql_guard import CheckedStatement


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool = True
    comment: str = ""


@dataclass
class RowPage:
    """One page of a result: raw Python values (the tool layer makes them JSON-safe)."""

    columns: list[ColumnInfo]
    rows: list[list[Any]]
    has_more: bool
    handle: str = ""  # a backend result id that lets the next page resume without re-running
    # True when a later page had to run the query again (the first execution's result was no longer
    # held): an unordered result may then repeat or skip rows, and the tool says so.
    rerun: bool = False


@dataclass(frozen=True)
class TableInfo:
    database: str
    schema: str
    name: str
    kind: str  # "TABLE" or "VIEW"
    row_count: int | None = None
    comment: str = ""


@dataclass(frozen=True)
class WriteOutcome:
    rows_affected: int | None


@dataclass
class CancelToken:
    """Lets the async layer cancel a statement running in a worker thread."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancel: Callable[[], None] | None = None
    cancelled: bool = False

    def on_cancel(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._cancel = fn
            run_now = self.cancelled
        if run_now:
            fn()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            fn = self._cancel
        if fn is not None:
            fn()


class Warehouse(Protocol):
    """A SQL warehouse. Methods are blocking and are called from worker threads.

    A backend runs only `CheckedStatement`s made by `sql_guard` for its `dialect` (it calls
    `require_checked` first), so no SQL reaches a warehouse without passing the guard.
    """

    kind: str  # which warehouse answered, for results: "duckdb" or "snowflake"
    dialect: str  # the SQL dialect the guard must check statements for

    def describe(self) -> str:
        """One line saying which warehouse this is (no secrets)."""
        ...

    def query(
        self,
        statement: CheckedStatement,
        *,
        params: Sequence[Any],
        offset: int,
        max_rows: int,
        handle: str,
        cancel: CancelToken,
    ) -> RowPage: ...

    def execute_write(
        self, statement: CheckedStatement, *, params: Sequence[Any], cancel: CancelToken
    ) -> WriteOutcome: ...

    def list_databases(self) -> list[str]: ...

    def default_database(self) -> str:
        """The database unqualified names resolve in ("" when the session has none)."""
        ...

    def list_schemas(self, database: str) -> list[str]: ...

    def list_tables(self, database: str, schema: str) -> list[TableInfo]: ...

    def describe_table(self, database: str, schema: str, table: str) -> list[ColumnInfo]: ...

    def ping(self) -> str:
        """Prove the warehouse answers (connects if needed); returns a short version string."""
        ...

    def close(self) -> None: ...
