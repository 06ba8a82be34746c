"""Embedding from the event loop: the blocking `embed` runs in a worker thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..workers import run_blocking

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from . import Embedder

__all__ = ["embed_async"]


async def embed_async(embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """`embedder.embed(texts)` in a worker thread, so a model load or a large batch never blocks the loop."""
    # A snapshot: the caller may mutate its list while the worker thread reads it.
    batch = list(texts)
    return await run_blocking(lambda: embedder.embed(batch))
