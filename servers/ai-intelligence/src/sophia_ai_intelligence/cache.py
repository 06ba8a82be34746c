"""Our response cache in front of the gateway (the open-source gateway's semantic mode does nothing).

Exact: the sha256 of model + messages + the parameters that change the answer. Semantic: the cosine
similarity of the local embedder's vectors of the *last user message*, compared only among entries
whose everything-else is identical (model, parameters, system prompt and the other turns), so a
paraphrased question hits but the same question in another conversation or to another model does not.
One SQLite file in the data dir, shared safely by several server processes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sophia_shared.errors import ConfigError, InputError
from sophia_shared.settings import Settings

from .gateway.base import ChatRequest, ChatResult
from .state_db import ai_state_dir, create_schema, open_state_db

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from sophia_shared.embedding import Embedder

__all__ = [
    "CACHE_MODES",
    "CacheLookup",
    "CacheMode",
    "CacheStats",
    "CacheStatus",
    "ResponseCache",
    "open_cache",
    "semantic_parts",
]

CacheMode = Literal["off", "exact", "semantic"]
CacheStatus = Literal["off", "miss", "hit", "semantic_hit"]
CACHE_MODES: tuple[CacheMode, ...] = ("off", "exact", "semantic")

# Newest candidates compared per semantic lookup: bounds memory and time on a long-lived cache.
MAX_SEMANTIC_CANDIDATES = 20_000
_RECENT_VECTORS = 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    result TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    embed_model TEXT,
    embedding BLOB,
    created_at REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_scope ON entries (scope, created_at);
CREATE INDEX IF NOT EXISTS entries_created ON entries (created_at);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
);
"""
_COUNTERS = (
    "hits",
    "semantic_hits",
    "misses",
    "saved_input_tokens",
    "saved_output_tokens",
    "saved_cost_usd",
    "unknown_cost_hits",
)


@dataclass(frozen=True)
class CacheLookup:
    status: CacheStatus
    key: str  # the exact key of the request looked up
    result: ChatResult | None = None  # the cached answer on a hit
    similarity: float | None = None  # on a semantic hit (1.0 is never reported for an exact hit)
    cached_prompt: str = ""  # the cached request's last user message, on a semantic hit
    age_seconds: float | None = None
    cost_usd: float | None = None  # what the cached call cost when it was made (None = unknown)


@dataclass(frozen=True)
class CacheStats:
    path: str
    entries: int  # stored, expired ones included until the next store purges them
    live_entries: int  # within the TTL
    hits: int
    semantic_hits: int
    misses: int
    saved_input_tokens: int
    saved_output_tokens: int
    saved_cost_usd: float  # over hits whose original cost is known
    unknown_cost_hits: int
    bytes: int  # the database file and its write-ahead log
    ttl_seconds: int
    similarity: float

    @property
    def hit_rate(self) -> float | None:
        looked = self.hits + self.semantic_hits + self.misses
        return (self.hits + self.semantic_hits) / looked if looked else None


def semantic_parts(request: ChatRequest) -> tuple[str, list[dict[str, str]]] | None:
    """(the last user message, the other messages with its place marked), or None without a user message."""
    for index in range(len(request.messages) - 1, -1, -1):
        message = request.messages[index]
        if message.role == "user":
            context = [{"role": m.role, "content": m.content} for m in request.messages]
            context[index] = {"role": "user", "content": "\x00query"}
            return message.content, context
    return None


class ResponseCache:
    """Cached answers by exact key or, in semantic mode, by a similar last user message; blocking."""

    WHAT = "AI response cache"

    def __init__(
        self,
        path: Path,
        *,
        ttl_seconds: int = 3600,
        similarity: float = 0.95,
        embedder_factory: Callable[[], Embedder] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_seconds < 1:
            raise InputError(f"The cache TTL must be at least 1 second, not {ttl_seconds}.")
        if not 0.0 < similarity <= 1.0:
            raise InputError(f"The semantic cache similarity must be in (0, 1], not {similarity}.")
        self.path = path
        self.ttl_seconds = ttl_seconds
        self.similarity = similarity
        self._embedder_factory = embedder_factory or _local_embedder
        self._clock = clock
        self._ready = False
        self._lock = threading.Lock()
        # A semantic miss is usually followed by storing the same prompt: embed it once.
        self._recent: OrderedDict[tuple[str, str], npt.NDArray[np.float32]] = OrderedDict()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, embedder_factory: Callable[[], Embedder] | None = None
    ) -> ResponseCache:
        """`<data dir>/ai/cache.sqlite3` with SOPHIA_AI_CACHE_TTL_SECONDS and SOPHIA_AI_CACHE_SIMILARITY."""
        similarity = settings.get_float("SOPHIA_AI_CACHE_SIMILARITY", minimum=0.0)
        if similarity <= 0 or similarity > 1:
            raise ConfigError(
                f"SOPHIA_AI_CACHE_SIMILARITY is {similarity:g}; it must be more than 0 and at most 1.",
                hint="Set it to a cosine similarity such as 0.95 (near-identical wording) or 0.85 (looser).",
            )
        return cls(
            ai_state_dir(settings) / "cache.sqlite3",
            ttl_seconds=settings.get_int("SOPHIA_AI_CACHE_TTL_SECONDS", minimum=1),
            similarity=similarity,
            embedder_factory=embedder_factory,
        )

    # -- keys --------------------------------------------------------------------------------------

    @staticmethod
    def key_for(request: ChatRequest) -> str:
        """sha256 of model + messages + answer-changing parameters (not the trace id), as canonical JSON."""
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        return _digest({"model": request.model, "messages": messages, **_parameters(request)})

    @staticmethod
    def _scope_for(request: ChatRequest, context: list[dict[str, str]]) -> str:
        return _digest({"model": request.model, "context": context, **_parameters(request)})

    # -- lookup and store --------------------------------------------------------------------------

    def lookup(self, request: ChatRequest, *, mode: CacheMode) -> CacheLookup:
        """The cached answer for `request` ("hit", "semantic_hit") or "miss"; "off" touches nothing."""
        if mode not in CACHE_MODES:
            raise InputError(f"cache mode must be one of {', '.join(CACHE_MODES)}, not {mode!r}.")
        key = self.key_for(request)
        if mode == "off":
            return CacheLookup(status="off", key=key)
        now = self._clock()
        fresh_after = now - self.ttl_seconds
        with self._db(write=False) as conn:
            row = conn.execute(
                "SELECT result, created_at, cost_usd FROM entries WHERE key = ? AND created_at >= ?",
                (key, fresh_after),
            ).fetchone()
        if row is not None:
            hit = CacheLookup(
                status="hit", key=key, result=_result_from(row[0]), age_seconds=now - row[1], cost_usd=row[2]
            )
            self._count(hit, hit_key=key)
            return hit
        if mode == "semantic":
            similar = self._semantic(request, key, now, fresh_after)
            if similar is not None:
                self._count(similar.lookup, hit_key=similar.cached_key)
                return similar.lookup
        missed = CacheLookup(status="miss", key=key)
        self._count(missed, hit_key=None)
        return missed

    def _semantic(self, request: ChatRequest, key: str, now: float, fresh_after: float) -> _SemanticFound | None:
        import numpy as np

        parts = semantic_parts(request)
        if parts is None:
            return None
        query, context = parts
        embedder = self._embedder_factory()
        vector = self._embed(embedder, query)
        scope = self._scope_for(request, context)
        with self._db(write=False) as conn:
            rows = conn.execute(
                "SELECT key, embedding FROM entries WHERE scope = ? AND embed_model = ? AND created_at >= ?"
                " AND embedding IS NOT NULL ORDER BY created_at DESC LIMIT ?",
                (scope, embedder.model, fresh_after, MAX_SEMANTIC_CANDIDATES),
            ).fetchall()
            vectors = [(k, np.frombuffer(blob, dtype="<f4")) for k, blob in rows]
            vectors = [(k, v) for k, v in vectors if v.shape == vector.shape]
            if not vectors:
                return None
            # Exact search: every candidate is compared; the vectors are unit length, so a dot is the cosine.
            sims = np.stack([v for _, v in vectors]) @ vector
            best = int(np.argmax(sims))
            similarity = float(sims[best])
            if similarity < self.similarity:
                return None
            cached_key = vectors[best][0]
            row = conn.execute(
                "SELECT result, prompt, created_at, cost_usd FROM entries WHERE key = ?", (cached_key,)
            ).fetchone()
        if row is None:  # cleared by another process between the two reads
            return None
        return _SemanticFound(
            CacheLookup(
                status="semantic_hit",
                key=key,
                result=_result_from(row[0]),
                similarity=round(min(similarity, 1.0), 4),
                cached_prompt=row[1],
                age_seconds=now - row[2],
                cost_usd=row[3],
            ),
            cached_key,
        )

    def store(self, request: ChatRequest, result: ChatResult, *, embed: bool, cost_usd: float | None = None) -> None:
        """Keep `result` for `request` (replacing an older answer); `embed` also makes it a semantic candidate."""
        key = self.key_for(request)
        parts = semantic_parts(request)
        prompt, context = parts if parts is not None else ("", [])
        embed_model: str | None = None
        blob: bytes | None = None
        if embed and parts is not None:
            embedder = self._embedder_factory()
            embed_model = embedder.model
            blob = self._embed(embedder, prompt).astype("<f4").tobytes()
        now = self._clock()
        with self._db(write=True) as conn:
            # Expired rows are dropped here, on the write path, so lookups stay read-only.
            conn.execute("DELETE FROM entries WHERE created_at < ?", (now - self.ttl_seconds,))
            conn.execute(
                "INSERT OR REPLACE INTO entries (key, scope, model, prompt, result, input_tokens, output_tokens,"
                " cost_usd, embed_model, embedding, created_at, hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    key,
                    self._scope_for(request, context),
                    request.model,
                    prompt,
                    json.dumps(asdict(result)),
                    result.input_tokens,
                    result.output_tokens,
                    cost_usd,
                    embed_model,
                    blob,
                    now,
                ),
            )

    # -- maintenance -------------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        fresh_after = self._clock() - self.ttl_seconds
        with self._db(write=False) as conn:
            entries, live = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(created_at >= ?), 0) FROM entries", (fresh_after,)
            ).fetchone()
            counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return CacheStats(
            path=str(self.path),
            entries=int(entries),
            live_entries=int(live),
            hits=int(counters.get("hits", 0)),
            semantic_hits=int(counters.get("semantic_hits", 0)),
            misses=int(counters.get("misses", 0)),
            saved_input_tokens=int(counters.get("saved_input_tokens", 0)),
            saved_output_tokens=int(counters.get("saved_output_tokens", 0)),
            saved_cost_usd=float(counters.get("saved_cost_usd", 0.0)),
            unknown_cost_hits=int(counters.get("unknown_cost_hits", 0)),
            bytes=size,
            ttl_seconds=self.ttl_seconds,
            similarity=self.similarity,
        )

    def clear(self, *, model: str = "", older_than_seconds: int = 0) -> int:
        """Delete entries (of `model`, older than the given age); an unfiltered clear also resets the counters."""
        if older_than_seconds < 0:
            raise InputError(f"older_than_seconds must be 0 or more, not {older_than_seconds}.")
        clauses = ["created_at <= ?"]
        params: list[float | str] = [self._clock() - older_than_seconds]
        if model:
            clauses.append("model = ?")
            params.append(model)
        with self._db(write=True) as conn:
            removed = conn.execute(f"DELETE FROM entries WHERE {' AND '.join(clauses)}", params).rowcount
            if not model and not older_than_seconds:
                conn.execute("DELETE FROM counters")
        return int(removed)

    # -- internals ---------------------------------------------------------------------------------

    @contextmanager
    def _db(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            with self._lock, open_state_db(self.path, self.WHAT, write=True) as conn:
                create_schema(conn, _SCHEMA)
                self._ready = True
        with open_state_db(self.path, self.WHAT, write=write) as conn:
            yield conn

    def _count(self, found: CacheLookup, *, hit_key: str | None) -> None:
        deltas: dict[str, float] = {}
        if found.status == "miss":
            deltas["misses"] = 1
        else:
            deltas["hits" if found.status == "hit" else "semantic_hits"] = 1
            result = found.result
            deltas["saved_input_tokens"] = (result.input_tokens or 0) if result else 0
            deltas["saved_output_tokens"] = (result.output_tokens or 0) if result else 0
            if found.cost_usd is None:
                deltas["unknown_cost_hits"] = 1
            else:
                deltas["saved_cost_usd"] = found.cost_usd
        with self._db(write=True) as conn:
            conn.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                list(deltas.items()),
            )
            if hit_key is not None:
                conn.execute("UPDATE entries SET hits = hits + 1 WHERE key = ?", (hit_key,))

    def _embed(self, embedder: Embedder, text: str) -> npt.NDArray[np.float32]:
        memo = (embedder.model, text)
        with self._lock:
            cached = self._recent.get(memo)
            if cached is not None:
                self._recent.move_to_end(memo)
                return cached
        vector: npt.NDArray[np.float32] = embedder.embed([text])[0]
        with self._lock:
            self._recent[memo] = vector
            while len(self._recent) > _RECENT_VECTORS:
                self._recent.popitem(last=False)
        return vector


def open_cache(settings: Settings) -> ResponseCache:
    """The server's cache (`ResponseCache.from_settings`); nothing is opened until the first call."""
    return ResponseCache.from_settings(settings)


@dataclass(frozen=True)
class _SemanticFound:
    lookup: CacheLookup
    cached_key: str


def _parameters(request: ChatRequest) -> dict[str, Any]:
    # trace_id only labels the call; everything else here can change the answer.
    return {"max_tokens": request.max_tokens, "temperature": request.temperature, "json_output": request.json_output}


def _digest(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _result_from(stored: str) -> ChatResult:
    # Only the fields ChatResult has now: an entry written by an older version still loads.
    known = {f.name for f in fields(ChatResult)}
    values = {k: v for k, v in json.loads(stored).items() if k in known}
    values["fallbacks"] = tuple(values.get("fallbacks", ()))
    return ChatResult(**values)


def _local_embedder() -> Embedder:
    from sophia_shared.embedding import local_embedder

    return local_embedder()
