"""The embedded vector store's exact search against a bare numpy matrix product on the same data.

Target: the store's top-10 takes at most twice as long as `matrix @ q` plus `argpartition`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sophia_business_intelligence.backends.duckdb import DuckDBWarehouse
from sophia_business_intelligence.backends.vectors.base import VectorRecord
from sophia_business_intelligence.backends.vectors.embedded import EmbeddedVectorStore
from sophia_shared.settings import Settings

_MODEL = "bench-random"
_INDEX = "bench"


def vector_search_ratio(n: int = 100_000, dim: int = 384, k: int = 10, repeats: int = 5) -> dict[str, float]:
    """Median ms of the store's `query` and of plain numpy over the same unit vectors, and their ratio."""
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((repeats, dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory(prefix="sophia-bench-vectors-") as tmp:
        warehouse = DuckDBWarehouse(Path(tmp) / "warehouse.duckdb", writable=True)
        store = EmbeddedVectorStore(warehouse, settings=Settings(environ={}), writable=True, owns_database=True)
        try:
            store.create_index(_INDEX, dimension=dim, metric="cosine", model=_MODEL)
            started = time.perf_counter()
            store.upsert(_INDEX, [VectorRecord(f"v{i}", vectors[i]) for i in range(n)], namespace="", model=_MODEL)
            upsert_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            store.query(_INDEX, vector=queries[0], top_k=k, namespace="", filter={}, model=_MODEL)
            first_ms = (time.perf_counter() - started) * 1000  # loads the matrix into the cache
            # Interleaved, so a noisy neighbour slows both sides alike.
            store_times, numpy_times = [], []
            for q in queries:
                store_times.append(
                    _ms(partial(store.query, _INDEX, vector=q, top_k=k, namespace="", filter={}, model=_MODEL))
                )
                numpy_times.append(_ms(partial(_numpy_top_k, vectors, q, k)))
        finally:
            store.close()
    store_ms, numpy_ms = statistics.median(store_times), statistics.median(numpy_times)
    return {
        "store_ms": store_ms,
        "numpy_ms": numpy_ms,
        "ratio": store_ms / numpy_ms,
        "upsert_ms": upsert_ms,
        "first_query_ms": first_ms,
    }


def _numpy_top_k(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    scores = vectors @ query
    top = np.argpartition(scores, len(scores) - k)[len(scores) - k :]
    return top[np.argsort(-scores[top])]


def _ms(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    for name, value in vector_search_ratio().items():
        print(f"{name}: {value:.2f}")
