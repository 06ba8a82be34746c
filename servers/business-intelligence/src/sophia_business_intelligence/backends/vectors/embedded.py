"""Vector indexes inside a DuckDB file (schema SOPHIA_VECTORS), searched exactly in numpy.

Rows live in DuckDB, so they persist with the warehouse and need no second service; searches run
over a float32 matrix cached per (index, namespace) and dropped when that index changes. Names,
ids and filters follow Pinecone's rules, so what works here works on Pinecone.

Scores, as Pinecone reports them: cosine similarity (stored vectors are unit-normalised),
dot product, or for euclidean the squared distance, where lower is nearer and comes first.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from sophia_shared.embedding import check_same_model
from sophia_shared.errors import BackendError, InputError, PolicyError
from sophia_shared.gate import require_write, write_gate_variable
from sophia_shared.settings import Settings

from ...names import VECTOR_CREATE_INDEX, VECTOR_LIST_INDEXES
from ...settings import SERVER_KEY
from ..duckdb import DuckDBConfig, DuckDBWarehouse
from .base import MODEL_KEY, IndexInfo, Match, TextRecord, VectorRecord
from .filters import compile_filter, validate_filter, validate_metadata

__all__ = ["SCHEMA", "VECTORS_FILE_NAME", "EmbeddedVectorStore"]

SCHEMA = "SOPHIA_VECTORS"
VECTORS_FILE_NAME = "vectors.duckdb"  # beside the data, when the warehouse is Snowflake
METRICS = ("cosine", "dotproduct", "euclidean")
# Pinecone's limits, kept so an index built here can move to Pinecone unchanged.
MAX_DIMENSION = 20_000
MAX_TOP_K = 10_000
MAX_ID_LENGTH = 512
MAX_NAMESPACE_LENGTH = 512
MAX_IDS_PER_CALL = 1_000
_INDEX_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?")

_INDEXES = f"{SCHEMA}.INDEXES"
_RECORDS = f"{SCHEMA}.RECORDS"
_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {_INDEXES} (name VARCHAR PRIMARY KEY, dimension INTEGER NOT NULL, "
    "metric VARCHAR NOT NULL, model VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {_RECORDS} (index_name VARCHAR NOT NULL, namespace VARCHAR NOT NULL, "
    'id VARCHAR NOT NULL, "values" FLOAT[] NOT NULL, metadata VARCHAR NOT NULL, model VARCHAR NOT NULL, '
    "updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (index_name, namespace, id))",
)
_IN_NAMESPACE = "index_name = ? AND namespace = ?"

# The matrices cached for search; least recently used namespaces go first beyond this many bytes.
_CACHE_BYTES = 1 << 30
_MASKS_PER_MATRIX = 16
# Below this share of matching rows a filtered search scores only those rows; above it, it scores
# all rows and discards the rest. Measured at 100k × 384 (numpy, 2 cores): gathering 5% of rows
# took ~3 ms against ~8 ms for scoring all; gathering 30% took ~20 ms.
_GATHER_BELOW = 0.15

_TEXT_REFUSAL = (
    "Only Pinecone integrated-inference indexes embed text themselves; the tools embed text with the local "
    "model for this store."
)


@dataclass(frozen=True)
class _Index:
    name: str
    dimension: int
    metric: str
    model: str
    created_at: datetime | None


@dataclass
class _Matrix:
    """One namespace of one index, ready for search: row i is `ids[i]`."""

    ids: list[str]
    vectors: npt.NDArray[np.float32]  # (n, dimension), C-contiguous
    raw_metadata: list[str]
    squared_norms: npt.NDArray[np.float32] | None = None  # euclidean only
    parsed: list[dict[str, Any]] | None = None
    masks: OrderedDict[str, npt.NDArray[np.bool_]] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes)

    def metadata(self, row: int) -> dict[str, Any]:
        if self.parsed is not None:
            return self.parsed[row]
        return dict(json.loads(self.raw_metadata[row]))

    def mask(self, filter: dict[str, Any]) -> npt.NDArray[np.bool_]:
        """Rows matching a validated filter; kept, as agents repeat the same filter across searches."""
        key = json.dumps(filter, sort_keys=True)
        with self.lock:
            found = self.masks.get(key)
            if found is not None:
                self.masks.move_to_end(key)
                return found
            if self.parsed is None:
                self.parsed = [dict(json.loads(raw)) for raw in self.raw_metadata]
            predicate = compile_filter(filter)
            mask = np.fromiter((predicate(m) for m in self.parsed), dtype=np.bool_, count=len(self.parsed))
            self.masks[key] = mask
            while len(self.masks) > _MASKS_PER_MATRIX:
                self.masks.popitem(last=False)
            return mask


class EmbeddedVectorStore:
    """Indexes in a DuckDB file: the warehouse's own, or `<data dir>/vectors.duckdb` beside Snowflake."""

    backend = "embedded"

    def __init__(self, database: DuckDBWarehouse, *, settings: Settings, writable: bool, owns_database: bool) -> None:
        self._database = database
        self._settings = settings
        self.writable = writable
        self._owns_database = owns_database
        self._lock = threading.RLock()  # writes, table creation and cache loads; searches run outside it
        self._tables_exist = False
        self._cache: OrderedDict[tuple[str, str], _Matrix] = OrderedDict()
        self._catalog: dict[str, _Index] = {}  # rows of INDEXES already read; emptied by every write

    @classmethod
    def for_warehouse(cls, settings: Settings, warehouse: object, *, writable: bool) -> EmbeddedVectorStore:
        """In the embedded warehouse's own file and connection; else in `<data dir>/vectors.duckdb`."""
        if isinstance(warehouse, DuckDBWarehouse):
            # The file is attached read-only unless the warehouse may write: the store cannot either.
            return cls(warehouse, settings=settings, writable=writable and warehouse.writable, owns_database=False)
        config = DuckDBConfig.from_settings(settings)
        own = DuckDBConfig.checked(**(config.model_dump() | {"path": config.data_dir / VECTORS_FILE_NAME}))
        return cls(DuckDBWarehouse(own, writable=writable), settings=settings, writable=writable, owns_database=True)

    @property
    def path(self) -> str:
        return str(self._database.path)

    def describe(self) -> str:
        mode = "read-write" if self.writable else "read-only"
        return f"embedded vector indexes in {self._database.path} (schema {SCHEMA}, {mode})"

    # -- connection ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        import duckdb

        cur = self._database.internal_cursor()
        try:
            yield cur
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BackendError(f"The embedded vector store failed: {first}") from exc
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[Any]:
        """The write gate, then one transaction under the store's lock, with the tables in place."""
        self._require_writable(action)
        with self._lock, self._cursor() as cur:
            if not self._tables_exist:
                for statement in _DDL:
                    _run(cur, statement)
                self._tables_exist = True
            _run(cur, "BEGIN TRANSACTION")
            try:
                yield cur
                _run(cur, "COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    _run(cur, "ROLLBACK")
                raise
            finally:
                self._catalog.clear()

    def _require_writable(self, action: str) -> None:
        if self.writable:
            return
        require_write(self._settings, SERVER_KEY, action)
        # The gate is open now but the file was opened read-only when it was closed.
        variable = write_gate_variable(SERVER_KEY)
        raise PolicyError(
            f"Refused to {action}: the vector store was opened read-only.",
            hint=f"Restart the server with {variable}=1 so the file is opened for writing.",
        )

    def _ready(self) -> bool:
        """Whether the tables exist; reading never creates them, so a read-only file stays untouched."""
        if self._tables_exist:
            return True
        if self._owns_database and not self._database.path.exists():
            return False
        with self._cursor() as cur:
            row = _one(
                cur,
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                "AND upper(schema_name) = ? AND upper(table_name) IN ('INDEXES', 'RECORDS')",
                [SCHEMA],
            )
        self._tables_exist = bool(row and row[0] == 2)
        return self._tables_exist

    # -- catalog -------------------------------------------------------------------------------

    def list_indexes(self) -> list[IndexInfo]:
        if not self._ready():
            return []
        with self._cursor() as cur:
            rows = _run(cur, f"SELECT name, dimension, metric, model, created_at FROM {_INDEXES} ORDER BY name")
            counts = self._counts(cur, None)
        return [self._info(_Index(*row), counts.get(row[0], {})) for row in rows]

    def describe_index(self, name: str) -> IndexInfo:
        index = self._index(name)
        with self._cursor() as cur:
            counts = self._counts(cur, name)
        return self._info(index, counts.get(name, {}))

    def create_index(self, name: str, *, dimension: int, metric: str, model: str) -> IndexInfo:
        action = f"create vector index {name!r}"
        self._require_writable(action)
        _check_index_name(name)
        if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= MAX_DIMENSION:
            raise InputError(f"dimension must be a whole number from 1 to {MAX_DIMENSION:,}, not {dimension!r}.")
        if metric not in METRICS:
            raise InputError(f"Unknown metric {metric!r}.", hint="Use cosine, dotproduct or euclidean.")
        with self._transaction(action) as cur:
            if _one(cur, f"SELECT 1 FROM {_INDEXES} WHERE name = ?", [name]):
                raise InputError(
                    f"A vector index named {name!r} already exists.",
                    hint=f"Use it, delete it first, or choose another name ({VECTOR_LIST_INDEXES} lists them).",
                )
            _run(cur, f"INSERT INTO {_INDEXES} VALUES (?, ?, ?, ?, now())", [name, dimension, metric, model or ""])
        return self.describe_index(name)

    def delete_index(self, name: str) -> None:
        action = f"delete vector index {name!r}"
        self._require_writable(action)
        self._index(name)
        with self._transaction(action) as cur:
            _run(cur, f"DELETE FROM {_RECORDS} WHERE index_name = ?", [name])
            _run(cur, f"DELETE FROM {_INDEXES} WHERE name = ?", [name])
            self._forget(name)

    def _index(self, name: str) -> _Index:
        found = self._catalog.get(name)
        if found is not None:
            return found
        row = None
        if self._ready():
            with self._cursor() as cur:
                row = _one(
                    cur, f"SELECT name, dimension, metric, model, created_at FROM {_INDEXES} WHERE name = ?", [name]
                )
        if row is None:
            raise InputError(
                f"There is no vector index named {name!r} in the embedded store.",
                hint=f"{VECTOR_LIST_INDEXES} lists the indexes; {VECTOR_CREATE_INDEX} creates one.",
            )
        with self._lock:
            self._catalog[name] = index = _Index(*row)
        return index

    def _counts(self, cur: Any, name: str | None) -> dict[str, dict[str, int]]:
        where, params = ("WHERE index_name = ?", [name]) if name is not None else ("", [])
        rows = _run(
            cur, f"SELECT index_name, namespace, count(*) FROM {_RECORDS} {where} GROUP BY ALL ORDER BY ALL", params
        )
        counts: dict[str, dict[str, int]] = {}
        for index_name, namespace, count in rows:
            counts.setdefault(index_name, {})[namespace] = int(count)
        return counts

    def _info(self, index: _Index, namespaces: Mapping[str, int]) -> IndexInfo:
        detail = {"created_at": index.created_at.isoformat() if index.created_at else "", "schema": SCHEMA}
        return IndexInfo(
            name=index.name,
            dimension=index.dimension,
            metric=index.metric,
            model=index.model,
            backend=self.backend,
            record_count=sum(namespaces.values()),
            namespaces=dict(namespaces),
            detail=detail,
        )

    # -- records -------------------------------------------------------------------------------

    def upsert(self, name: str, records: Sequence[VectorRecord], *, namespace: str, model: str) -> int:
        action = f"upsert into vector index {name!r}"
        self._require_writable(action)
        _check_namespace(namespace)
        if not model:
            raise InputError("Name the embedding model that made these vectors: every stored vector records it.")
        index = self._index(name)
        check_same_model(index.model, model, f"Vector index {name!r}")
        latest = {_check_id(r.id): r for r in records}  # a repeated id: the last one wins, as in one upsert each
        if not latest:
            return 0
        ids = list(latest)
        vectors = _matrix([r.values for r in latest.values()], index, what="record")
        metadata = [_stored_metadata(r, model) for r in latest.values()]
        rows = np.empty(len(ids), dtype=object)
        rows[:] = list(vectors)  # one float32 array per row: DuckDB scans them as FLOAT[] without copying to Python
        with self._transaction(action) as cur:
            # Re-read inside the transaction: another thread may have set the model since.
            current = _one(cur, f"SELECT model FROM {_INDEXES} WHERE name = ?", [name])
            if current is None:
                raise InputError(f"The vector index {name!r} was deleted meanwhile.")
            check_same_model(str(current[0]), model, f"Vector index {name!r}")
            if not current[0]:
                _run(cur, f"UPDATE {_INDEXES} SET model = ? WHERE name = ?", [model, name])
            cur.register("sophia_incoming_ids", np.array(ids, dtype=object))
            cur.register("sophia_incoming_values", rows)
            cur.register("sophia_incoming_metadata", np.array(metadata, dtype=object))
            try:
                # Delete then insert: DuckDB's INSERT OR REPLACE is ~2× slower on large batches.
                _run(
                    cur,
                    f"DELETE FROM {_RECORDS} WHERE {_IN_NAMESPACE} AND id IN (SELECT column0 FROM sophia_incoming_ids)",
                    [name, namespace],
                )
                _run(
                    cur,
                    f"INSERT INTO {_RECORDS} SELECT ?, ?, i.column0, v.column0, m.column0, ?, now() "
                    "FROM sophia_incoming_ids i POSITIONAL JOIN sophia_incoming_values v "
                    "POSITIONAL JOIN sophia_incoming_metadata m",
                    [name, namespace, model],
                )
            finally:
                for view in ("sophia_incoming_ids", "sophia_incoming_values", "sophia_incoming_metadata"):
                    cur.unregister(view)
            self._forget(name)
        return len(ids)

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
        """The `top_k` nearest records, nearest first; refuses a query vector of another model."""
        _check_namespace(namespace)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise InputError(f"top_k must be a whole number from 1 to {MAX_TOP_K:,}, not {top_k!r}.")
        checked = validate_filter(filter) if filter else {}
        index = self._index(name)
        check_same_model(index.model, model, f"Vector index {name!r}")
        query = _matrix([vector], index, what="query vector")[0]
        matrix = self._matrix(index, namespace)
        rows = self._nearest(matrix, index.metric, query, top_k, checked)
        return [
            Match(
                id=matrix.ids[row],
                score=float(score),
                metadata=matrix.metadata(row),
                values=matrix.vectors[row].tolist() if include_values else (),
            )
            for row, score in rows
        ]

    def _nearest(
        self, matrix: _Matrix, metric: str, query: npt.NDArray[np.float32], top_k: int, filter: dict[str, Any]
    ) -> list[tuple[int, float]]:
        """(row, score) of the nearest rows, nearest first."""
        total = len(matrix.ids)
        if total == 0:
            return []
        candidates: npt.NDArray[np.intp] | None = None
        if filter:
            mask = matrix.mask(filter)
            selected = int(np.count_nonzero(mask))
            if selected == 0:
                return []
            if selected < total * _GATHER_BELOW:
                candidates = np.flatnonzero(mask)
                scores = _scores(matrix, metric, query, candidates)
            else:
                scores = _scores(matrix, metric, query, None)
                # Ranked below every real score, and cut off below.
                scores[~mask] = np.inf if metric == "euclidean" else -np.inf
            available = selected
        else:
            scores = _scores(matrix, metric, query, None)
            available = total
        k = min(top_k, available)
        # Rank by "higher is nearer" throughout; euclidean distances are negated for it.
        ranked = -scores if metric == "euclidean" else scores
        cut = len(ranked) - k
        top = np.argpartition(ranked, cut)[cut:] if cut > 0 else np.arange(len(ranked))
        top = top[np.argsort(-ranked[top], kind="stable")][:k]
        rows = candidates[top] if candidates is not None else top
        return [(int(row), float(scores[i])) for row, i in zip(rows, top, strict=True)]

    def _matrix(self, index: _Index, namespace: str) -> _Matrix:
        key = (index.name, namespace)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
            loaded = self._load(index, namespace)
            self._cache[key] = loaded
            while len(self._cache) > 1 and sum(m.nbytes for m in self._cache.values()) > _CACHE_BYTES:
                self._cache.popitem(last=False)
            return loaded

    def _load(self, index: _Index, namespace: str) -> _Matrix:
        with self._cursor() as cur:
            # Values come back flat (one float32 column), which is ~3× faster than a list per row.
            keys = _run(
                cur,
                f'SELECT id, metadata, "values"[1] FROM {_RECORDS} WHERE {_IN_NAMESPACE} ORDER BY id',
                [index.name, namespace],
            )
            flat = cur.execute(
                f'SELECT unnest("values") AS v FROM (SELECT "values" FROM {_RECORDS} '
                f"WHERE {_IN_NAMESPACE} ORDER BY id)",
                [index.name, namespace],
            ).fetchnumpy()["v"]
        n, dimension = len(keys), index.dimension
        vectors = np.ascontiguousarray(np.asarray(flat, dtype=np.float32).reshape(n, dimension))
        if n and not np.array_equal(vectors[:, 0], np.array([k[2] for k in keys], dtype=np.float32)):
            raise BackendError(f"The vectors of index {index.name!r} came back out of order; search again.")
        squared = np.einsum("ij,ij->i", vectors, vectors) if index.metric == "euclidean" else None
        return _Matrix([k[0] for k in keys], vectors, [k[1] for k in keys], squared_norms=squared)

    def _forget(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == name]:
                del self._cache[key]

    def upsert_texts(self, name: str, records: Sequence[TextRecord], *, namespace: str) -> int:
        raise InputError(_TEXT_REFUSAL)

    def search_text(
        self, name: str, *, text: str, top_k: int, namespace: str, filter: Mapping[str, Any]
    ) -> list[Match]:
        raise InputError(_TEXT_REFUSAL)

    def fetch(self, name: str, ids: Sequence[str], *, namespace: str) -> list[VectorRecord]:
        """The records found among `ids` (at most 1,000), in the order asked; missing ids are left out."""
        _check_namespace(namespace)
        wanted = _check_ids(ids)
        self._index(name)
        with self._cursor() as cur:
            rows = _run(
                cur,
                f'SELECT id, "values", metadata FROM {_RECORDS} WHERE {_IN_NAMESPACE} AND list_contains(?, id)',
                [name, namespace, wanted],
            )
        found = {row[0]: VectorRecord(row[0], [float(v) for v in row[1]], json.loads(row[2])) for row in rows}
        return [found[i] for i in dict.fromkeys(wanted) if i in found]

    def delete(self, name: str, *, ids: Sequence[str], filter: Mapping[str, Any], namespace: str) -> int | None:
        """Delete by ids or by filter (exactly one); the number of records deleted."""
        _check_namespace(namespace)
        if bool(ids) == bool(filter):
            raise InputError("Give either ids or a filter to delete by, not both and not neither.")
        action = f"delete records from vector index {name!r}"
        self._require_writable(action)
        checked = validate_filter(filter) if filter else {}
        wanted = _check_ids(ids) if ids else []
        index = self._index(name)
        with self._lock:  # the filter's matches and the delete see the same rows
            if checked:
                matrix = self._matrix(index, namespace)
                wanted = [matrix.ids[row] for row in np.flatnonzero(matrix.mask(checked))]
                if not wanted:
                    return 0
            with self._transaction(action) as cur:
                cur.register("sophia_doomed_ids", np.array(wanted, dtype=object))
                try:
                    row = _one(
                        cur,
                        f"DELETE FROM {_RECORDS} WHERE {_IN_NAMESPACE} "
                        "AND id IN (SELECT column0 FROM sophia_doomed_ids)",
                        [name, namespace],
                    )
                finally:
                    cur.unregister("sophia_doomed_ids")
                self._forget(name)
        return int(row[0]) if row else 0

    def ping(self) -> str:
        if self._owns_database and not self._database.path.exists():
            return f"no vector indexes yet ({self._database.path.name} is created by the first write)"
        with self._cursor() as cur:
            row = _one(cur, "SELECT version()")
        return f"DuckDB {row[0] if row else '?'} — {len(self.list_indexes())} vector index(es)"

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
        if self._owns_database:
            self._database.close()


# -- checks ----------------------------------------------------------------------------------------


def _run(cur: Any, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Every row: DuckDB refuses the cursor's next statement while a result is still unread."""
    return list(cur.execute(sql, list(params) if params else None).fetchall())


def _one(cur: Any, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
    rows = _run(cur, sql, params)
    return rows[0] if rows else None


def _check_index_name(name: str) -> None:
    if not isinstance(name, str) or not _INDEX_NAME.fullmatch(name):
        raise InputError(
            f"{name!r} is not a valid index name.",
            hint="Use 1–45 lowercase letters, digits and '-', not starting or ending with '-' (Pinecone's rule, "
            "so the index can move there).",
        )


def _check_namespace(namespace: str) -> None:
    if not isinstance(namespace, str) or len(namespace) > MAX_NAMESPACE_LENGTH or not _printable_ascii(namespace):
        raise InputError(
            f"Namespace {namespace!r} is not valid: use at most {MAX_NAMESPACE_LENGTH} ASCII characters "
            "('' is the default namespace)."
        )


def _check_id(record_id: str) -> str:
    if not isinstance(record_id, str) or not record_id or len(record_id) > MAX_ID_LENGTH:
        raise InputError(f"Record id {record_id!r} is not valid: use 1–{MAX_ID_LENGTH} ASCII characters.")
    if not _printable_ascii(record_id):
        raise InputError(f"Record id {record_id!r} is not valid: ids are ASCII (Pinecone's rule).")
    return record_id


def _check_ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise InputError("ids must be a list of record ids, not one string.")
    if not ids or len(ids) > MAX_IDS_PER_CALL:
        raise InputError(f"Give 1 to {MAX_IDS_PER_CALL:,} record ids per call, not {len(ids):,}.")
    return [_check_id(i) for i in ids]


def _printable_ascii(text: str) -> bool:
    return text.isascii() and "\0" not in text


def _matrix(rows: Sequence[Sequence[float]], index: _Index, *, what: str) -> npt.NDArray[np.float32]:
    """Rows as a C-contiguous float32 matrix of the index's width; cosine rows unit-normalised."""
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Each {what} must be a list of {index.dimension} numbers for index {index.name!r}.") from exc
    if matrix.ndim != 2 or matrix.shape[1] != index.dimension:
        got = matrix.shape[1] if matrix.ndim == 2 else "a different number of"
        raise InputError(
            f"Vector index {index.name!r} holds {index.dimension}-dimensional vectors; the {what} has {got} values.",
            hint="Embed with the index's model, or create an index of the right dimension.",
        )
    if not np.isfinite(matrix).all():
        raise InputError(f"The {what} contains NaN or infinite values.")
    if index.metric == "cosine":
        norms = np.linalg.norm(matrix, axis=1)
        if not norms.all():
            raise InputError(f"A {what} is all zeros, which has no direction to compare by cosine.")
        # The embedder's vectors are unit-length already; normalising again costs little and protects callers.
        matrix = matrix / norms[:, None]
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _stored_metadata(record: VectorRecord, model: str) -> str:
    metadata = validate_metadata(record.metadata, where=f"metadata of record {record.id!r}")
    if metadata.get(MODEL_KEY, model) != model:
        raise InputError(f"Record {record.id!r} sets the reserved metadata key {MODEL_KEY!r} to another model.")
    metadata[MODEL_KEY] = model  # every record says which model made it, as on Pinecone
    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))


def _scores(
    matrix: _Matrix, metric: str, query: npt.NDArray[np.float32], rows: npt.NDArray[np.intp] | None
) -> npt.NDArray[np.float32]:
    vectors = matrix.vectors if rows is None else matrix.vectors[rows]
    products: npt.NDArray[np.float32] = vectors @ query
    if metric != "euclidean":
        return products
    assert matrix.squared_norms is not None
    norms = matrix.squared_norms if rows is None else matrix.squared_norms[rows]
    # ‖v − q‖² = ‖v‖² − 2 v·q + ‖q‖², clipped at 0 against rounding.
    distances: npt.NDArray[np.float32] = np.maximum(norms - 2 * products + float(query @ query), 0)
    return distances
