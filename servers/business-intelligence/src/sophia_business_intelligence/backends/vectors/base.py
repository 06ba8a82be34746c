"""The `VectorStore` interface both vector backends implement; tools never branch on which one they got.

Methods are blocking and are called from worker threads. Filters use Pinecone's metadata filter
language (`$eq $ne $in $nin $gt $gte $lt $lte $exists $and $or`), validated once by `filters.py`, so a
filter that works on the embedded store works on Pinecone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Metadata key every stored vector carries: the embedding model that made it.
MODEL_KEY = "sophia_model"
# Metadata key that holds the source text of a record, when the caller gave text.
TEXT_KEY = "text"


@dataclass(frozen=True)
class IndexInfo:
    name: str
    dimension: int
    metric: str  # "cosine", "dotproduct" or "euclidean"
    model: str  # the embedding model whose vectors the index holds ("" until the first upsert)
    backend: str  # "embedded" or "pinecone"
    ready: bool = True
    integrated: bool = False  # Pinecone integrated inference: the index embeds text itself
    host: str = ""
    record_count: int | None = None
    namespaces: Mapping[str, int] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)  # backend-specific extras (cloud, region, tags…)


@dataclass(frozen=True)
class VectorRecord:
    id: str
    values: Sequence[float]
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TextRecord:
    """A record for an index that embeds text itself (Pinecone integrated inference)."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    id: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    values: Sequence[float] = ()


class VectorStore(Protocol):
    backend: str  # "embedded" or "pinecone"

    def describe(self) -> str:
        """One line saying where the indexes live (no secrets)."""
        ...

    def list_indexes(self) -> list[IndexInfo]: ...

    def describe_index(self, name: str) -> IndexInfo:
        """The index with its record counts; `InputError` naming the list tool when it does not exist."""
        ...

    def create_index(self, name: str, *, dimension: int, metric: str, model: str) -> IndexInfo: ...

    def delete_index(self, name: str) -> None: ...

    def upsert(self, name: str, records: Sequence[VectorRecord], *, namespace: str, model: str) -> int:
        """Insert or replace records by id; refuses vectors of another model than the index's. Returns the count."""
        ...

    def query(
        self,
        name: str,
        *,
        vector: Sequence[float],
        top_k: int,
        namespace: str,
        filter: Mapping[str, Any],
        model: str,
        include_values: bool = False,
    ) -> list[Match]:
        """The `top_k` nearest records, nearest first (cosine/dot: highest score; euclidean: lowest distance);
        refuses a query vector of another model."""
        ...

    def upsert_texts(self, name: str, records: Sequence[TextRecord], *, namespace: str) -> int:
        """Integrated-inference indexes only (the index embeds the text); others raise `InputError`."""
        ...

    def search_text(
        self, name: str, *, text: str, top_k: int, namespace: str, filter: Mapping[str, Any]
    ) -> list[Match]:
        """Integrated-inference indexes only: search by text the index embeds itself."""
        ...

    def fetch(self, name: str, ids: Sequence[str], *, namespace: str) -> list[VectorRecord]: ...

    def delete(self, name: str, *, ids: Sequence[str], filter: Mapping[str, Any], namespace: str) -> int | None:
        """Delete by ids or by filter (exactly one of them); the count when the backend knows it."""
        ...

    def ping(self) -> str: ...

    def close(self) -> None: ...
