"""What the BI tools share for the life of the server: settings and the chosen backends.

Each backend is made on first use (so `initialize` never waits for a login or a model load) and
closed with the server.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sophia_shared.errors import ConfigError
from sophia_shared.gate import writes_allowed
from sophia_shared.settings import Settings

from .backends.base import Warehouse
from .names import MEMORY_GATE
from .settings import SERVER_KEY

if TYPE_CHECKING:
    from .backends.memory.base import MemoryStore
    from .backends.text_ai.base import TextAI
    from .backends.vectors.base import VectorStore


class BIState:
    """Chooses and creates the warehouse on first use, so `initialize` never waits for a login."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._warehouse: Warehouse | None = None
        self._vectors: VectorStore | None = None
        self._text_ai: TextAI | None = None
        self._memory: MemoryStore | None = None

    @property
    def allow_write(self) -> bool:
        # Local sources only, like the registration of the write tool itself.
        return writes_allowed(self.settings, SERVER_KEY)

    @property
    def allow_memory_write(self) -> bool:
        return writes_allowed(self.settings, MEMORY_GATE)

    def warehouse(self) -> Warehouse:
        with self._lock:
            if self._warehouse is None:
                self._warehouse = open_warehouse(self.settings, writable=self.allow_write)
            return self._warehouse

    def vectors(self) -> VectorStore:
        warehouse = self.warehouse()  # the embedded store shares the warehouse's DuckDB file
        with self._lock:
            if self._vectors is None:
                from .backends.vectors import open_vector_store

                self._vectors = open_vector_store(self.settings, warehouse, writable=self.allow_write)
            return self._vectors

    def text_ai(self) -> TextAI:
        warehouse = self.warehouse()
        with self._lock:
            if self._text_ai is None:
                from .backends.text_ai import open_text_ai

                self._text_ai = open_text_ai(self.settings, warehouse)
            return self._text_ai

    def memory(self) -> MemoryStore:
        warehouse = self.warehouse()
        with self._lock:
            if self._memory is None:
                from .backends.memory import open_memory_store

                self._memory = open_memory_store(self.settings, warehouse, writable=self.allow_memory_write)
            return self._memory

    def close(self) -> None:
        with self._lock:
            backends = [self._memory, self._text_ai, self._vectors, self._warehouse]
            self._memory = self._text_ai = self._vectors = self._warehouse = None
        for backend in backends:  # the warehouse last: the embedded stores may share its connection
            if backend is not None:
                backend.close()


def open_warehouse(settings: Settings, *, writable: bool) -> Warehouse:
    """Snowflake when its settings are present, else the embedded DuckDB file."""
    from .backends.snowflake import SnowflakeWarehouse, snowflake_configured

    if snowflake_configured(settings):
        return SnowflakeWarehouse(settings)
    problem = settings.esc_problem()
    if problem:
        # Snowflake settings may live in the ESC environment we could not open: answering from the
        # embedded warehouse instead would be answering from the wrong data.
        raise ConfigError(
            f"The warehouse settings are unknown because Pulumi ESC environment {settings.esc_ref} could not be "
            f"opened: {problem}",
            hint=""
            if "What to do:" in problem
            else "Fix the ESC problem, or unset SOPHIA_ESC_ENV to use local settings only.",
        )
    from .backends.duckdb import DuckDBWarehouse

    return DuckDBWarehouse.from_settings(settings, writable=writable)


def probe_warehouse(settings: Settings) -> str:
    """`sophia doctor`'s check: open the configured warehouse read-only and ask its version."""
    warehouse = open_warehouse(settings, writable=False)
    try:
        return f"{warehouse.ping()} — {warehouse.describe()}"
    finally:
        warehouse.close()
