"""What the BI tools share for the life of the server: settings and the chosen warehouse."""

from __future__ import annotations

import threading

from sophia_shared.errors import ConfigError
from sophia_shared.gate import writes_allowed
from sophia_shared.settings import Settings

from .backends.base import Warehouse
from .settings import SERVER_KEY


class BIState:
    """Chooses and creates the warehouse on first use, so `initialize` never waits for a login."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._warehouse: Warehouse | None = None

    @property
    def allow_write(self) -> bool:
        # Local sources only, like the registration of the write tool itself.
        return writes_allowed(self.settings, SERVER_KEY)

    def warehouse(self) -> Warehouse:
        with self._lock:
            if self._warehouse is None:
                self._warehouse = open_warehouse(self.settings, writable=self.allow_write)
            return self._warehouse

    def close(self) -> None:
        with self._lock:
            if self._warehouse is not None:
                self._warehouse.close()
                self._warehouse = None


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
