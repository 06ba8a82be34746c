"""Text AI for the BI tools: Snowflake Cortex when the warehouse is Snowflake, local models otherwise."""

from __future__ import annotations

from sophia_shared.settings import Settings

from ..base import Warehouse
from .base import TextAI


def open_text_ai(settings: Settings, warehouse: Warehouse) -> TextAI:
    """Cortex over the Snowflake warehouse's connection, or VADER + MiniLM beside the embedded one."""
    if warehouse.kind == "snowflake":
        from .snowflake_cortex import SnowflakeCortex

        return SnowflakeCortex(settings, warehouse)
    from .local import LocalTextAI

    return LocalTextAI(warehouse)


__all__ = ["TextAI", "open_text_ai"]
