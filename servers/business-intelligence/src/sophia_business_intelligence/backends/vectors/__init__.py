"""Vector indexes: one `VectorStore` protocol, embedded in the DuckDB file or on Pinecone."""

from __future__ import annotations

from sophia_shared.errors import ConfigError
from sophia_shared.settings import Settings

from .base import VectorStore

__all__ = ["BACKEND_CHOICES", "open_vector_store"]

BACKEND_CHOICES = ("auto", "embedded", "pinecone")


def open_vector_store(settings: Settings, warehouse: object, *, writable: bool) -> VectorStore:
    """SOPHIA_VECTOR_BACKEND decides; `auto` is Pinecone when PINECONE_API_KEY resolves, else embedded."""
    choice = (settings.get("SOPHIA_VECTOR_BACKEND") or "auto").strip().lower()
    if choice not in BACKEND_CHOICES:
        raise ConfigError(
            f"SOPHIA_VECTOR_BACKEND must be auto, embedded or pinecone, not {choice!r}.",
            hint="Set SOPHIA_VECTOR_BACKEND to auto, embedded or pinecone, or unset it to use auto.",
        )
    if choice == "pinecone" or (choice == "auto" and settings.get("PINECONE_API_KEY")):
        # Imported here: the Pinecone SDK is only loaded when it is used.
        from .pinecone import PineconeVectorStore

        return PineconeVectorStore(settings, writable=writable)
    from .embedded import EmbeddedVectorStore

    return EmbeddedVectorStore.for_warehouse(settings, warehouse, writable=writable)
