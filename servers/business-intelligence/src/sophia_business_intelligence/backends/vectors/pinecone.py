"""`PineconeVectorStore`: vector indexes on Pinecone through the official SDK 10.x (API 2026-07).

Two kinds of index. `create_index(model="<embedding model>")` makes a serverless index of vectors this
server embeds; the model is kept in the index tag `sophia-embedding-model` (Pinecone has no other
per-index metadata) and in every record's metadata, and vectors of another model are refused.
`create_index(model="pinecone:<hosted model>")`, e.g. "pinecone:llama-text-embed-v2", makes an
integrated-inference index: Pinecone embeds text itself (`upsert_texts`, `search_text`).

Retries: the SDK retries 408/429/5xx and connection errors itself (3 retries, jittered backoff,
honouring `Retry-After`); nothing here adds another layer. A 401/403 re-opens Pulumi ESC once
(key rotation) and retries with the key it then holds.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sophia_shared.embedding import check_same_model
from sophia_shared.errors import (
    AuthError,
    BackendError,
    InputError,
    PolicyError,
    SophiaError,
    missing_setting,
)
from sophia_shared.gate import require_write
from sophia_shared.settings import Settings, call_with_auth_refresh

from ...names import VECTOR_DESCRIBE_INDEX, VECTOR_LIST_INDEXES
from ...settings import SERVER_KEY
from .base import MODEL_KEY, TEXT_KEY, IndexInfo, Match, TextRecord, VectorRecord
from .filters import validate_filter, validate_metadata

if TYPE_CHECKING:
    from pinecone import Index, Pinecone
    from pinecone.models.indexes.index import IndexModel

log = logging.getLogger(__name__)
T = TypeVar("T")

MODEL_TAG = "sophia-embedding-model"  # index tag naming the model of the index's vectors
INTEGRATED_PREFIX = "pinecone:"  # model "pinecone:<hosted model>" asks for an integrated-inference index
DEFAULT_CONTROLLER_HOST = "https://api.pinecone.io"
# Serverless indexes are created here; Pinecone's own default, and the region of its free tier.
DEFAULT_CLOUD = "aws"
DEFAULT_REGION = "us-east-1"
DEFAULT_NAMESPACE = "__default__"  # the name the records API needs for the namespace "" addresses
DENSE_FIELD = "_values"  # the schema field the classic vectors API (upsert/query/fetch) reads and writes
METRICS = ("cosine", "dotproduct", "euclidean")

# Pinecone's documented limits.
MAX_VECTORS_PER_UPSERT = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_IDS_PER_REQUEST = 1000
MAX_TOP_K = 10_000
# Hosted embedding models take at most 96 texts per request (Pinecone's "upsert text" limits).
MAX_TEXTS_PER_UPSERT = 96
_ENVELOPE_BYTES = 16 * 1024  # room for the request envelope around the records
_MAX_TAG_VALUE = 120

_environment_noted = False


class PineconeVectorStore:
    """Pinecone indexes; blocking, called from worker threads. The API key is read at every call."""

    backend = "pinecone"

    def __init__(
        self,
        settings: Settings,
        *,
        writable: bool,
        ready_timeout: float = 60.0,
        poll_interval: float = 2.0,
        request_timeout: float = 30.0,
    ) -> None:
        self._settings = settings
        self._writable = writable
        self._ready_timeout = ready_timeout
        self._poll_interval = poll_interval
        self._request_timeout = request_timeout
        self._lock = threading.RLock()
        self._client: Pinecone | None = None
        self._client_for: tuple[str, str] = ("", "")  # (key, control host) the client was made with
        self._data: dict[str, Index] = {}  # index name → data-plane client on its described host

    # -- the protocol ----------------------------------------------------------------------------

    def describe(self) -> str:
        host = self._settings.get("PINECONE_CONTROLLER_HOST") or DEFAULT_CONTROLLER_HOST
        return f"Pinecone (control plane {host}; new serverless indexes in {DEFAULT_CLOUD}/{DEFAULT_REGION})"

    def list_indexes(self) -> list[IndexInfo]:
        models = self._call(lambda: list(self._pc().indexes.list()))
        return sorted((_info(m) for m in models), key=lambda i: i.name)

    def describe_index(self, name: str) -> IndexInfo:
        """The index with its record counts per namespace ('' is the default namespace)."""
        model = self._describe(name)
        if not model.status.ready:
            return _info(model)
        stats = self._data_call(name, lambda index: index.describe_index_stats())
        namespaces = {_public_namespace(ns): s.vector_count for ns, s in stats.namespaces.items()}
        return _info(model, record_count=stats.total_vector_count, namespaces=namespaces, dimension=stats.dimension)

    def create_index(self, name: str, *, dimension: int, metric: str, model: str) -> IndexInfo:
        """A serverless index in aws/us-east-1, or an integrated-inference one for model "pinecone:<hosted model>".

        Waits (bounded) until Pinecone reports it ready; `BackendError` "not ready yet" when it does not.
        """
        self._require_write(f"create Pinecone index {name}")
        if metric not in METRICS:
            raise InputError(f"Unknown metric {metric!r}.", hint=f"Use one of: {', '.join(METRICS)}.")
        _check_tag_value(model)
        tags = {MODEL_TAG: model} if model else None
        if model.startswith(INTEGRATED_PREFIX):
            hosted = model.removeprefix(INTEGRATED_PREFIX)
            if not hosted:
                raise InputError("No hosted model named.", hint="Use e.g. 'pinecone:llama-text-embed-v2'.")
            embed = {"model": hosted, "field_map": {"text": TEXT_KEY}, "metric": metric}
            self._call(
                lambda: self._pc().indexes.create_for_model(
                    name=name, cloud=DEFAULT_CLOUD, region=DEFAULT_REGION, embed=embed, tags=tags, timeout=-1
                ),
                index=name,
            )
        else:
            if dimension < 1:
                raise InputError(f"An index needs a dimension of at least 1, not {dimension}.")
            schema = {"fields": {DENSE_FIELD: {"type": "dense_vector", "dimension": dimension, "metric": metric}}}
            deployment = {"deployment_type": "managed", "cloud": DEFAULT_CLOUD, "region": DEFAULT_REGION}
            self._call(
                lambda: self._pc().indexes.create(
                    name=name, schema=schema, deployment=deployment, tags=tags, timeout=-1
                ),
                index=name,
            )
        return self._wait_until_ready(name)

    def delete_index(self, name: str) -> None:
        self._require_write(f"delete Pinecone index {name}")
        self._call(lambda: self._pc().indexes.delete(name, timeout=-1), index=name)
        self._forget(name)

    def upsert(self, name: str, records: Sequence[VectorRecord], *, namespace: str, model: str) -> int:
        """Insert or replace records by id, in requests of ≤ 1000 vectors and ≤ 2 MB; refuses another model."""
        self._require_write(f"upsert into Pinecone index {name}")
        if not model:
            raise InputError("Every vector must name the model that made it; no model was given.")
        _check_tag_value(model)
        described = self._describe(name)
        if not described.status.ready:
            raise _not_ready(name, described.status.state)
        info = _info(described)
        if info.integrated:
            raise InputError(
                f"Pinecone index {name} embeds text itself (integrated inference, {info.model}).",
                hint="Upsert texts to it, not vectors.",
            )
        check_same_model(info.model, model, f"Pinecone index {name}")
        vectors = [_vector_body(record, model, info.dimension) for record in records]
        if not vectors:
            return 0
        if not info.model:
            # The first vectors decide the index's model; the tag makes later mismatches refusable.
            self._call(lambda: self._pc().indexes.configure(name, tags={MODEL_TAG: model}), index=name)
        done = self._send_batches(
            name, vectors, MAX_VECTORS_PER_UPSERT, lambda batch, index: index.upsert(vectors=batch, namespace=namespace)
        )
        return sum(answer.upserted_count for answer in done)

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
        """The `top_k` (≤ 10,000) nearest records with their metadata; refuses a query vector of another model."""
        _check_top_k(top_k)
        checked = validate_filter(filter) if filter else None
        info = _info(self._describe(name))
        check_same_model(info.model, model, f"Pinecone index {name}")
        query = [float(v) for v in vector]
        answer = self._data_call(
            name,
            lambda index: index.query(
                vector=query,
                top_k=top_k,
                namespace=namespace,
                filter=checked,
                include_metadata=True,
                include_values=include_values,
            ),
        )
        return [
            Match(m.id, float(m.score or 0.0), dict(m.metadata or {}), list(m.values or ()) if include_values else ())
            for m in answer.matches
        ]

    def upsert_texts(self, name: str, records: Sequence[TextRecord], *, namespace: str) -> int:
        """Integrated-inference indexes only: Pinecone embeds each record's text (≤ 96 records a request)."""
        self._require_write(f"upsert into Pinecone index {name}")
        info = _info(self._describe(name))
        if not info.integrated:
            raise InputError(
                f"Pinecone index {name} does not embed text itself; it holds vectors of {info.model or 'any model'}.",
                hint="Upsert vectors made with the index's model.",
            )
        bodies = [_text_body(record, info.model) for record in records]
        target = namespace or DEFAULT_NAMESPACE
        done = self._send_batches(
            name,
            bodies,
            MAX_TEXTS_PER_UPSERT,
            lambda batch, index: index.upsert_records(records=batch, namespace=target),
        )
        return sum(answer.record_count for answer in done)

    def search_text(
        self, name: str, *, text: str, top_k: int, namespace: str, filter: Mapping[str, Any]
    ) -> list[Match]:
        """Integrated-inference indexes only: Pinecone embeds `text` with the index's model and searches."""
        _check_top_k(top_k)
        checked = validate_filter(filter) if filter else None
        info = _info(self._describe(name))
        if not info.integrated:
            raise InputError(
                f"Pinecone index {name} does not embed text itself.",
                hint="Embed the text with the index's model and search by vector.",
            )
        target = namespace or DEFAULT_NAMESPACE
        answer = self._data_call(
            name,
            lambda index: index.search(namespace=target, top_k=top_k, inputs={"text": text}, filter=checked),
        )
        return [Match(hit.id, float(hit.score), dict(hit.fields)) for hit in answer.result.hits]

    def fetch(self, name: str, ids: Sequence[str], *, namespace: str) -> list[VectorRecord]:
        """The records among `ids` that exist, in the order asked."""
        found: dict[str, VectorRecord] = {}
        answers = self._send_batches(
            name, list(ids), MAX_IDS_PER_REQUEST, lambda batch, index: index.fetch(ids=batch, namespace=namespace)
        )
        for answer in answers:
            for record_id, vector in answer.vectors.items():
                found[record_id] = VectorRecord(record_id, list(vector.values or ()), dict(vector.metadata or {}))
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    def delete(self, name: str, *, ids: Sequence[str], filter: Mapping[str, Any], namespace: str) -> int | None:
        """Delete by ids or by filter (exactly one); None, as Pinecone does not say how many went."""
        self._require_write(f"delete records from Pinecone index {name}")
        if bool(ids) == bool(filter):
            raise InputError("Give exactly one of ids or filter.")
        if filter:
            checked = validate_filter(filter)
            self._data_call(name, lambda index: index.delete(filter=checked, namespace=namespace))
            return None
        self._send_batches(
            name, list(ids), MAX_IDS_PER_REQUEST, lambda batch, index: index.delete(ids=batch, namespace=namespace)
        )
        return None

    def ping(self) -> str:
        count = self._call(lambda: sum(1 for _ in self._pc().indexes.list()))
        return f"Pinecone answered: {count} index(es)."

    def close(self) -> None:
        with self._lock:
            self._close_clients()

    # -- clients ---------------------------------------------------------------------------------

    def _pc(self) -> Pinecone:
        """The control-plane client for the key the settings hold now (a rotated key makes a new one)."""
        key = self._settings.get("PINECONE_API_KEY")
        if not key:
            raise missing_setting("PINECONE_API_KEY", "Pinecone vector indexes")
        host = self._settings.get("PINECONE_CONTROLLER_HOST") or DEFAULT_CONTROLLER_HOST
        with self._lock:
            if self._client is None or self._client_for != (key, host):
                self._close_clients()
                _note_environment(self._settings)
                from pinecone import Pinecone, RetryConfig

                # The SDK's own retry policy, with the wait capped so one tool call cannot hang for minutes.
                retry = RetryConfig(max_retries=3, backoff_factor=0.25, max_wait=10.0)
                self._client = Pinecone(api_key=key, host=host, timeout=self._request_timeout, retry_config=retry)
                self._client_for = (key, host)
            return self._client

    def _close_clients(self) -> None:
        for index in self._data.values():
            index.close()
        self._data.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    def _data_plane(self, name: str) -> Index:
        """The data-plane client on the index's described host (cached until a 404 says it moved)."""
        pc = self._pc()
        with self._lock:
            cached = self._data.get(name)
        if cached is not None:
            return cached
        model = pc.indexes.describe(name)
        if not model.status.ready or not model.host:
            raise _not_ready(name, model.status.state)
        index = pc.index(host=model.host)
        with self._lock:
            self._data[name] = index
        return index

    def _forget(self, name: str) -> None:
        with self._lock:
            index = self._data.pop(name, None)
        if index is not None:
            index.close()

    # -- calls -----------------------------------------------------------------------------------

    def _call(self, action: Callable[[], T], *, index: str = "") -> T:
        """Run an SDK call: a rejected key re-opens ESC once and retries; SDK errors become ours."""
        try:
            return call_with_auth_refresh(self._settings, action, _is_auth_failure)
        except SophiaError:
            raise
        except Exception as exc:
            raise translate_error(exc, index=index, key=self._settings.get("PINECONE_API_KEY") or "") from exc

    def _data_call(self, name: str, operation: Callable[[Index], T]) -> T:
        from pinecone.errors.exceptions import NotFoundError

        def attempt() -> T:
            try:
                return operation(self._data_plane(name))
            except NotFoundError:
                # The index may have been deleted and re-created on a new host: describe it again, once.
                self._forget(name)
                return operation(self._data_plane(name))

        return self._call(attempt, index=name)

    def _send_batches(
        self, name: str, items: list[Any], max_count: int, send: Callable[[list[Any], Index], T]
    ) -> list[T]:
        """`send` the items to the index's data plane in requests of ≤ `max_count` items and ≤ 2 MB."""
        return [self._data_call(name, functools.partial(send, batch)) for batch in _batches(items, max_count)]

    def _describe(self, name: str) -> IndexModel:
        return self._call(lambda: self._pc().indexes.describe(name), index=name)

    def _require_write(self, action: str) -> None:
        require_write(self._settings, SERVER_KEY, action)
        if not self._writable:
            raise PolicyError(
                f"Refused to {action}: this vector store was opened read-only.",
                hint="Writes are enabled when the server starts with its write gate open.",
            )

    def _wait_until_ready(self, name: str) -> IndexInfo:
        deadline = time.monotonic() + self._ready_timeout
        while True:
            model = self._describe(name)
            if model.status.ready:
                return _info(model)
            if model.status.state in ("InitializationFailed", "Failed", "Terminating", "Disabled"):
                raise BackendError(
                    f"Pinecone index {name} did not start: its state is {model.status.state}.",
                    hint="Delete it and create it again; if that fails too, check the Pinecone console.",
                )
            if time.monotonic() >= deadline:
                raise _not_ready(name, model.status.state, created=True)
            time.sleep(self._poll_interval)


# -- shapes ---------------------------------------------------------------------------------------


def _info(
    model: IndexModel,
    *,
    record_count: int | None = None,
    namespaces: Mapping[str, int] | None = None,
    dimension: int | None = None,
) -> IndexInfo:
    from pinecone.models.indexes.schema import DenseVectorField, SemanticTextField

    tags = dict(model.tags or {})
    fields = model.schema.fields
    semantic = next((f for f in fields.values() if isinstance(f, SemanticTextField)), None)
    dense = fields.get(DENSE_FIELD)
    if not isinstance(dense, DenseVectorField):
        dense = next((f for f in fields.values() if isinstance(f, DenseVectorField)), None)
    if semantic is not None:
        # The SDK model drops the semantic field's dimension; the index stats carry it.
        shape = (dimension or 0, semantic.metric or "", f"{INTEGRATED_PREFIX}{semantic.model}")
    else:
        shape = (dense.dimension if dense else dimension or 0, dense.metric if dense else "", tags.get(MODEL_TAG, ""))
    detail = {
        "cloud": getattr(model.deployment, "cloud", ""),
        "region": getattr(model.deployment, "region", ""),
        "state": model.status.state,
        "deletion_protection": model.deletion_protection,
        "tags": tags,
    }
    return IndexInfo(
        name=model.name,
        dimension=shape[0],
        metric=shape[1],
        model=shape[2],
        backend="pinecone",
        ready=bool(model.status.ready),
        integrated=semantic is not None,
        host=model.host or "",
        record_count=record_count,
        namespaces=dict(namespaces or {}),
        detail=detail,
    )


def _public_namespace(namespace: str) -> str:
    return "" if namespace == DEFAULT_NAMESPACE else namespace


def _vector_body(record: VectorRecord, model: str, dimension: int) -> dict[str, Any]:
    if dimension and len(record.values) != dimension:
        raise InputError(
            f"Record {record.id!r} has {len(record.values)} values; the index holds {dimension}-d vectors."
        )
    metadata = validate_metadata({**record.metadata, MODEL_KEY: model}, where=f"record {record.id!r} metadata")
    return {"id": record.id, "values": [float(v) for v in record.values], "metadata": metadata}


def _text_body(record: TextRecord, model: str) -> dict[str, Any]:
    reserved = {"_id", "id", TEXT_KEY, MODEL_KEY} & set(record.metadata)
    if reserved:
        raise InputError(f"Record {record.id!r} uses reserved metadata key(s): {', '.join(sorted(reserved))}.")
    if not record.text.strip():
        raise InputError(f"Record {record.id!r} has no text to embed.")
    # Pinecone keeps the text and the other fields as the record's metadata, under the same limits.
    fields = {TEXT_KEY: record.text, **record.metadata, MODEL_KEY: model}
    return {"_id": record.id, **validate_metadata(fields, where=f"record {record.id!r} fields")}


def _encoded(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _batches(items: list[Any], max_count: int) -> Iterator[list[Any]]:
    """Consecutive slices of ≤ `max_count` items whose JSON stays under Pinecone's 2 MB request limit."""
    batch: list[Any] = []
    size = _ENVELOPE_BYTES
    for item in items:
        item_size = len(_encoded(item)) + 1
        if batch and (len(batch) >= max_count or size + item_size > MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], _ENVELOPE_BYTES
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def _check_top_k(top_k: int) -> None:
    if not 1 <= top_k <= MAX_TOP_K:
        raise InputError(f"top_k must be between 1 and {MAX_TOP_K:,}, not {top_k}.")


def _check_tag_value(model: str) -> None:
    if len(model) > _MAX_TAG_VALUE or not (model.isascii() and model.isprintable()):
        raise InputError(
            f"The model id {model!r} cannot be stored as a Pinecone index tag "
            f"(at most {_MAX_TAG_VALUE} printable ASCII characters)."
        )


def _note_environment(settings: Settings) -> None:
    global _environment_noted
    if not _environment_noted and settings.get("PINECONE_ENVIRONMENT"):
        _environment_noted = True
        log.debug("PINECONE_ENVIRONMENT is set and ignored: the Pinecone SDK 10.x finds each index's host itself.")


def _not_ready(name: str, state: str, *, created: bool = False) -> BackendError:
    what = "was created but is" if created else "is"
    return BackendError(
        f"Pinecone index {name} {what} not ready yet (state: {state}); try again in a minute.",
        hint=f"Check it with {VECTOR_DESCRIBE_INDEX}; do not create it again.",
    )


# -- errors ---------------------------------------------------------------------------------------

_QUOTA_WORDS = ("quota", "pod limit", "storage", "upgrade", "max pods", "limit reached", "exceeds your")
AUTH_HINT = (
    "Check PINECONE_API_KEY: it must be a current key of the project that holds the indexes. If it was "
    "rotated, update it in Pulumi ESC (SOPHIA_ESC_ENV) or the environment."
)


def _ran_out(text: str) -> str | None:
    """What a quota message says ran out, or None when it is not about a quota."""
    lowered = text.lower()
    if not any(word in lowered for word in _QUOTA_WORDS):
        return None
    if "storage" in lowered or "full" in lowered:
        return "storage"
    if "pod" in lowered:
        return "pod quota"
    if "index" in lowered or "indexes" in lowered:
        return "index quota"
    return "quota"


def _is_auth_failure(exc: Exception) -> bool:
    """A rejected or unauthorised key (not a quota or deletion-protection 403)."""
    from pinecone.errors.exceptions import ForbiddenError, UnauthorizedError

    if isinstance(exc, UnauthorizedError):
        return True
    if isinstance(exc, ForbiddenError):
        lowered = exc.message.lower()
        return _ran_out(exc.message) is None and "deletion protection" not in lowered
    return False


def translate_error(exc: Exception, *, index: str = "", key: str = "") -> SophiaError:
    """An SDK exception as the suite's error, saying what to do; the API key never appears."""
    from pinecone.errors import exceptions as pe

    text = (exc.message if isinstance(exc, pe.PineconeError) else str(exc)).strip() or type(exc).__name__
    if key:
        text = text.replace(key, "[redacted]")
    where = f"Pinecone index {index}" if index else "Pinecone"
    if _is_auth_failure(exc):
        status = getattr(exc, "status_code", 401)
        return AuthError(f"Pinecone rejected the API key (HTTP {status}): {text}", hint=AUTH_HINT)
    if isinstance(exc, pe.NotFoundError):
        return InputError(
            f"Pinecone has no index named {index!r}." if index else f"Pinecone found nothing: {text}",
            hint=f"See the indexes that exist with {VECTOR_LIST_INDEXES}.",
        )
    if isinstance(exc, pe.ConflictError):
        return InputError(
            f"A Pinecone index named {index!r} already exists.",
            hint=f"Pick another name, or look at it with {VECTOR_DESCRIBE_INDEX}.",
        )
    ran_out = _ran_out(text) if isinstance(exc, pe.ApiError) else None
    if isinstance(exc, pe.PaymentRequiredError):
        return BackendError(
            f"Pinecone refused: the organization's billing blocks it ({text}).",
            hint="An organization owner must settle billing in the Pinecone console.",
        )
    if ran_out is not None and isinstance(exc, pe.ForbiddenError | pe.RateLimitError | pe.FailedPreconditionError):
        return BackendError(
            f"{where}: the project's {ran_out} ran out ({text}).",
            hint="Delete indexes or records you no longer need, or raise the plan's limits in the Pinecone console.",
        )
    if isinstance(exc, pe.ForbiddenError):  # deletion protection
        return InputError(f"{where}: {text}", hint="Turn deletion protection off in the Pinecone console first.")
    if isinstance(exc, pe.RateLimitError):
        wait = f"{exc.retry_after:g} seconds" if exc.retry_after is not None else "a minute"
        return BackendError(
            f"{where}: Pinecone is rate limiting requests, even after the SDK's retries ({text}).",
            hint=f"Retry after {wait}, with fewer or smaller requests.",
        )
    if isinstance(exc, pe.ServiceError):
        return BackendError(
            f"{where}: Pinecone failed with HTTP {exc.status_code} after the SDK's retries ({text}).",
            hint="This is on Pinecone's side; try again in a few minutes.",
        )
    if isinstance(exc, pe.ApiError) and exc.status_code in (400, 412, 413, 422):
        return InputError(f"{where}: Pinecone rejected the request: {text}")
    if isinstance(exc, pe.ApiError):
        return BackendError(f"{where}: Pinecone answered HTTP {exc.status_code}: {text}")
    if isinstance(exc, pe.PineconeTimeoutError):
        return BackendError(f"{where}: Pinecone did not answer in time ({text}).", hint="Try again shortly.")
    if isinstance(exc, pe.PineconeConnectionError):
        return BackendError(
            f"Could not reach Pinecone: {text}",
            hint="Is the network up? PINECONE_CONTROLLER_HOST overrides the control-plane URL.",
        )
    if isinstance(exc, pe.PineconeValueError | pe.PineconeTypeError):
        return InputError(f"{where}: {text}")
    return BackendError(f"{where}: the Pinecone call failed: {type(exc).__name__}: {text}")
