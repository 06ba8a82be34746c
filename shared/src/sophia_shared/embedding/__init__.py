"""Text embedders: one small protocol, a local MiniLM model that needs no network, and cloud models
(Cortex, the AI gateway, Pinecone inference) behind the same interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..errors import InputError
from .minilm import MINILM_DIMENSION, MINILM_MODEL_ID, MiniLMEmbedder, local_embedder
from .off_loop import embed_async

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "MINILM_DIMENSION",
    "MINILM_MODEL_ID",
    "Embedder",
    "EmbeddingModelMismatch",
    "MiniLMEmbedder",
    "check_same_model",
    "embed_async",
    "local_embedder",
]


class Embedder(Protocol):
    """Turns texts into unit-length vectors; blocking (call it from a worker thread)."""

    @property
    def model(self) -> str:
        """A stable id of the model that made the vectors, stored beside every vector."""
        ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """An (n, dimension) float32 array, each row L2-normalised, in the order of `texts`."""
        ...


class EmbeddingModelMismatch(InputError):
    """Vectors from two models in one place: their similarities would mean nothing."""


def check_same_model(stored: str, incoming: str, where: str) -> None:
    """Refuse to mix models: a vector is only comparable with vectors of the same model."""
    if stored and incoming and stored != incoming:
        raise EmbeddingModelMismatch(
            f"{where} holds vectors made by {stored!r}; vectors made by {incoming!r} cannot be mixed in.",
            hint=f"Embed with {stored!r} (the index's model), or create a new index for {incoming!r}.",
        )
