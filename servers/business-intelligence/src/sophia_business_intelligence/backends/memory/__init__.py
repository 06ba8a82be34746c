"""Long-term memory: where memories live (Snowflake table or embedded file) is chosen here, once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sophia_shared.settings import Settings

from .base import TABLE_SETTING, MemoryStore, table_parts

if TYPE_CHECKING:
    from ..base import Warehouse

__all__ = ["MemoryStore", "open_memory_store"]


def open_memory_store(settings: Settings, warehouse: Warehouse, *, writable: bool) -> MemoryStore:
    """Memories live beside the warehouse: in a Snowflake table on Snowflake, else in `<data dir>/memory.duckdb`.

    `writable` is the memory gate (SOPHIA_MEMORY_ALLOW_WRITE); nothing is opened or created here.
    """
    table = table_parts(settings.get(TABLE_SETTING) or "")
    if warehouse.kind == "snowflake":
        from .snowflake import SnowflakeMemorySession, SnowflakeMemoryStore, SqlRunner

        # The warehouse's own connection when it can run internal SQL; a second session until then.
        runner = warehouse if isinstance(warehouse, SqlRunner) else SnowflakeMemorySession(settings)
        return SnowflakeMemoryStore(settings, runner, writable=writable, table=table)
    from ..duckdb_config import DuckDBConfig
    from .embedded import MEMORY_FILE_NAME, EmbeddedMemoryStore

    path = DuckDBConfig.from_settings(settings).data_dir / MEMORY_FILE_NAME
    return EmbeddedMemoryStore(path, settings, writable=writable, table=table)
