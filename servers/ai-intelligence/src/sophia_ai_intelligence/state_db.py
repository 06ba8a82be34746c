"""The AI server's local SQLite files (cache and ledger): where they live and how a process uses them.

Several server processes (one per editor window) share each file: WAL mode, a busy timeout and short
`BEGIN IMMEDIATE` transactions keep every row and never surface "database is locked".
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sophia_shared.errors import BackendError
from sophia_shared.paths import data_dir
from sophia_shared.settings import Settings

# Long enough to outwait another process's short write; the driver retries on its own within it.
BUSY_TIMEOUT_MS = 15_000


def ai_state_dir(settings: Settings) -> Path:
    """`<data dir>/ai`: SOPHIA_DATA_DIR from any settings source, else the platform default."""
    configured = settings.get("SOPHIA_DATA_DIR")
    return (Path(configured).expanduser() if configured else data_dir()) / "ai"


@contextmanager
def open_state_db(path: Path, what: str, *, write: bool) -> Iterator[sqlite3.Connection]:
    """The file's connection in a transaction; `write` takes the write lock up front (no upgrade deadlock).

    One connection per file and process, used under a lock: threads of this process queue on the lock
    (microseconds) instead of meeting in SQLite's busy handler (sleeps of up to 100 ms); other processes
    still wait on the file lock with the busy timeout.
    """
    try:
        lock, conn = _pooled(path)
    except (OSError, sqlite3.Error) as exc:
        raise _storage_error(path, what, exc) from exc
    with lock:
        try:
            _begin(conn, write=write)
        except sqlite3.Error as exc:
            raise _storage_error(path, what, exc) from exc
        try:
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        except sqlite3.Error as exc:
            _forget(path, conn)
            raise _storage_error(path, what, exc) from exc


_POOL: dict[Path, tuple[threading.Lock, sqlite3.Connection]] = {}
_POOL_LOCK = threading.Lock()


def _pooled(path: Path) -> tuple[threading.Lock, sqlite3.Connection]:
    with _POOL_LOCK:
        found = _POOL.get(path)
        if found is None or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            found = (threading.Lock(), _connect(path))
            _POOL[path] = found
        return found


def _forget(path: Path, conn: sqlite3.Connection) -> None:
    with _POOL_LOCK:
        if _POOL.get(path, (None, None))[1] is conn:
            del _POOL[path]
    with contextlib.suppress(sqlite3.Error):
        conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    # Switching a new file to WAL, and WAL recovery, can answer SQLITE_BUSY without calling the busy
    # handler when two processes open the file at once: retry the setup until the busy timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # WAL is a property of the file: set it once, not on every open (the switch needs an exclusive lock).
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.03))  # noqa: S311 (jitter, not security)


def _begin(conn: sqlite3.Connection, *, write: bool) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            # A deferred transaction that later upgrades to a write gets SQLITE_BUSY without waiting.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.03))  # noqa: S311 (jitter, not security)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def create_schema(conn: sqlite3.Connection, schema: str) -> None:
    """Run `;`-separated DDL inside the caller's transaction (executescript would commit it)."""
    for statement in schema.split(";"):
        if statement.strip():
            conn.execute(statement)


def _storage_error(path: Path, what: str, exc: Exception) -> BackendError:
    return BackendError(
        f"The {what} file {path} could not be used: {exc}.",
        hint=f"Check that the directory is writable and the disk not full; deleting {path.name} resets the {what}.",
    )
