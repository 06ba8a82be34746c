"""A Pinecone control and data plane (API 2026-07) in memory, built from specs/pinecone/2026-07/.

The real `pinecone` SDK 10.x talks to it over HTTP (`run_fake_pinecone()` serves it on 127.0.0.1).
Control plane: `GET/POST /indexes`, `GET/PATCH/DELETE /indexes/{index_name}`,
`POST /indexes/create-for-model`. Data plane, per index under the host that `describe` returns
(`<server>/hosts/<host id>`, so it points back at this server): `/vectors/upsert`, `/query`,
`/vectors/fetch`, `/vectors/delete`, `/describe_index_stats`, and for integrated-inference indexes
`/records/namespaces/{namespace}/upsert` (NDJSON) and `/records/namespaces/{namespace}/search`.

Every request must carry `Api-Key` (401 text/plain otherwise) and `X-Pinecone-Api-Version: 2026-07`;
every JSON request body is checked against the spec's request schema (400 when it does not conform),
so a test also proves what the SDK sends. Errors use the spec's envelopes: `ErrorResponse` on the
control plane and the records API, `rpcStatus` on the vectors API. Scores are exact (cosine,
dotproduct, squared euclidean, as Pinecone reports them); filters are Pinecone's filter language,
evaluated by the suite's `compile_filter`; integrated indexes embed text with a hashing
bag-of-words, a test stand-in, not a model.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jsonschema
import pytest
import yaml

from sophia_business_intelligence.backends.vectors.filters import compile_filter
from sophia_shared.errors import InputError
from tests.fakes.specs import spec_path
from tests.fakes.vendor_app import Call, Handler, Receive, Reply, Scope, Send, VendorApp, serve

API_VERSION = "2026-07"
VALID_KEY = "pcsk_fake_0123456789abcdef"
HOST_PREFIX = "/hosts"
DEFAULT_NAMESPACE = "__default__"  # what Pinecone calls the namespace "" addresses
MAX_REQUEST_BYTES = 2 * 1024 * 1024
# Hosted models the fake can stand in for, with the dimension Pinecone gives them.
HOSTED_MODELS = {"llama-text-embed-v2": 1024, "multilingual-e5-large": 1024}

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?$")
_CODES = {
    400: "INVALID_ARGUMENT",
    402: "PAYMENT_REQUIRED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "UNKNOWN",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    413: "PAYLOAD_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "SERVICE_UNAVAILABLE",
}
# rpcStatus carries gRPC status numbers.
_GRPC = {400: 3, 403: 7, 404: 5, 409: 6, 412: 9, 413: 8, 429: 8, 500: 13, 503: 14}
_scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("pinecone_fake_scope")


# -- the spec's schemas ------------------------------------------------------------------------------


@functools.cache
def _spec(plane: str) -> dict[str, Any]:
    path = spec_path("pinecone", API_VERSION, f"db_{plane}_{API_VERSION}.oas.yaml")
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def spec_validator(plane: str, schema_name: str) -> jsonschema.protocols.Validator:
    """A validator for `#/components/schemas/<schema_name>` of the control or data plane spec."""
    spec = _spec(plane)
    if schema_name not in spec["components"]["schemas"]:
        raise KeyError(f"{schema_name} is not a schema of the {plane} plane spec")
    schema = {"allOf": [{"$ref": f"#/components/schemas/{schema_name}"}], "components": spec["components"]}
    return jsonschema.Draft4Validator(schema)


class _Rejected(Exception):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "UNKNOWN")


def _conform(plane: str, schema_name: str, body: Any) -> None:
    error = jsonschema.exceptions.best_match(spec_validator(plane, schema_name).iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "body"
        raise _Rejected(400, f"Invalid request: {where}: {error.message}")


# -- the toy embedder and exact search -----------------------------------------------------------------


def toy_embedding(text: str, dimension: int) -> list[float]:
    """A deterministic stand-in for a hosted model: signed hashing of lower-cased words, L2-normalised."""
    vector = [0.0] * dimension
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "big") % dimension
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def score(metric: str, a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    if metric == "dotproduct":
        return dot
    if metric == "euclidean":
        return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


def filter_predicate(flt: Mapping[str, Any] | None) -> Callable[[Mapping[str, Any]], bool]:
    """Pinecone's filter language, evaluated by the suite's `compile_filter` (400 for a filter it refuses)."""
    if not flt:
        return lambda metadata: True
    try:
        return compile_filter(flt)
    except InputError as exc:
        raise _Rejected(400, f"Invalid filter: {exc.message}") from exc


# -- the store -----------------------------------------------------------------------------------------


@dataclass
class StoredRecord:
    values: list[float]
    metadata: dict[str, Any]


@dataclass
class FakeIndex:
    name: str
    host_id: str
    dimension: int
    metric: str
    cloud: str
    region: str
    tags: dict[str, str]
    fields: dict[str, Any]  # the IndexSchema fields as Pinecone reports them
    hosted_model: str = ""  # set for an integrated-inference index
    text_field: str = ""  # the record field the hosted model embeds
    deletion_protection: str = "disabled"
    describes_until_ready: int = 0
    namespaces: dict[str, dict[str, StoredRecord]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.describes_until_ready <= 0

    def namespace(self, name: str) -> dict[str, StoredRecord]:
        return self.namespaces.setdefault(name or DEFAULT_NAMESPACE, {})

    def record_count(self) -> int:
        return sum(len(records) for records in self.namespaces.values())


class FakePinecone(VendorApp):
    """The fake Pinecone API; `calls` records every request, the `VendorApp` fault switches apply."""

    def __init__(self, *, api_keys: tuple[str, ...] = (VALID_KEY,)) -> None:
        super().__init__()
        self.api_keys = set(api_keys)
        self.url = ""  # set by `run_fake_pinecone` once served
        self.indexes: dict[str, FakeIndex] = {}
        self.index_quota = 20  # creating more answers 403 "Increase your quota…", as Pinecone does
        self._not_ready_describes = 0
        routes: dict[str, Handler] = {
            "GET /indexes": self._list_indexes,
            "POST /indexes": self._create_index,
            "POST /indexes/create-for-model": self._create_for_model,
            "GET /indexes/{index_name}": self._describe_index,
            "PATCH /indexes/{index_name}": self._configure_index,
            "DELETE /indexes/{index_name}": self._delete_index,
            f"POST {HOST_PREFIX}/{{host_id}}/vectors/upsert": self._upsert,
            f"POST {HOST_PREFIX}/{{host_id}}/query": self._query,
            f"GET {HOST_PREFIX}/{{host_id}}/vectors/fetch": self._fetch,
            f"POST {HOST_PREFIX}/{{host_id}}/vectors/delete": self._delete,
            f"POST {HOST_PREFIX}/{{host_id}}/describe_index_stats": self._stats,
            f"POST {HOST_PREFIX}/{{host_id}}/records/namespaces/{{namespace}}/upsert": self._upsert_records,
            f"POST {HOST_PREFIX}/{{host_id}}/records/namespaces/{{namespace}}/search": self._search_records,
        }
        for spec, handler in routes.items():
            method, pattern = spec.split(" ", 1)
            self.route(method, pattern, self._checked(handler))

    # -- switches --------------------------------------------------------------------------------

    def not_ready_for(self, describes: int) -> None:
        """Indexes created from now on report `Initializing` for their first `describes` describes."""
        self._not_ready_describes = describes

    def mutating_calls(self) -> list[Call]:
        """Every request that could have changed something (all but reads)."""
        reads = ("/query", "/describe_index_stats", "/search")
        return [c for c in self.calls if c.method != "GET" and not c.path.endswith(reads)]

    # -- envelopes -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _scope.set(scope)  # lets `error_reply` pick the envelope of the plane the path is on
        try:
            await super().__call__(scope, receive, send)
        finally:
            _scope.reset(token)

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        if status == 401:
            return Reply(401, body=b"Invalid API Key", content_type="text/plain")  # UnauthorizedMessage
        scope = _scope.get(None)
        path = scope["path"] if scope is not None else ""
        known = code if code in _CODES.values() else _CODES.get(status, "UNKNOWN")
        if path.startswith(HOST_PREFIX + "/") and "/records/" not in path:
            return Reply(status, {"code": _GRPC.get(status, 2), "message": message, "details": []})
        return Reply(status, {"error": {"code": known, "message": message}, "status": status})

    def _checked(self, handler: Callable[[Call], Any]) -> Handler:
        def answer(call: Call) -> Any:
            if call.headers.get("api-key") not in self.api_keys:
                return self.error_reply(401, "UNAUTHENTICATED", "Invalid API Key")
            if call.headers.get("x-pinecone-api-version") != API_VERSION:
                got = call.headers.get("x-pinecone-api-version")
                return self.error_reply(400, "INVALID_ARGUMENT", f"Unsupported API version {got!r}.")
            try:
                return handler(call)
            except _Rejected as exc:
                return self.error_reply(exc.status, exc.code, exc.message)

        return answer

    # -- control plane ---------------------------------------------------------------------------

    def index_model(self, index: FakeIndex) -> dict[str, Any]:
        """The index as an `IndexModel` (2026-07)."""
        model: dict[str, Any] = {
            "name": index.name,
            "host": f"{self.url}{HOST_PREFIX}/{index.host_id}",
            "status": {"ready": index.ready, "state": "Ready" if index.ready else "Initializing"},
            "deployment": {"deployment_type": "managed", "cloud": index.cloud, "region": index.region},
            "schema": {"fields": index.fields},
            "deletion_protection": index.deletion_protection,
            "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
        }
        if index.tags:
            model["tags"] = dict(index.tags)
        return model

    def _index_named(self, name: str) -> FakeIndex:
        index = self.indexes.get(name)
        if index is None:
            raise _Rejected(404, f"Index {name} not found.")
        return index

    def _list_indexes(self, call: Call) -> Any:
        return {"indexes": [self.index_model(i) for i in self.indexes.values()]}

    def _describe_index(self, call: Call) -> Any:
        index = self._index_named(call.params["index_name"])
        answer = self.index_model(index)
        index.describes_until_ready -= 1
        return answer

    def _new_index(self, body: dict[str, Any], **kwargs: Any) -> FakeIndex:
        name = body.get("name") or f"index-{uuid.uuid4().hex[:8]}"
        if not _NAME.match(name):
            raise _Rejected(
                400,
                "Index name must contain only lowercase alphanumeric characters or hyphens, "
                "and must not begin or end with a hyphen.",
            )
        if name in self.indexes:
            raise _Rejected(409, "Resource already exists.")
        if len(self.indexes) >= self.index_quota:
            raise _Rejected(403, "Increase your quota or upgrade to create more indexes.")
        index = FakeIndex(
            name=name,
            host_id=f"{name}-{uuid.uuid4().hex[:7]}",  # a re-created index gets a new host
            tags=dict(body.get("tags") or {}),
            deletion_protection=body.get("deletion_protection") or "disabled",
            describes_until_ready=self._not_ready_describes,
            **kwargs,
        )
        self.indexes[name] = index
        return index

    def _create_index(self, call: Call) -> Any:
        body = call.json
        _conform("control", "CreateIndexRequest", body)
        dense = [(n, f) for n, f in body["schema"]["fields"].items() if f["type"] == "dense_vector"]
        if len(dense) != 1 or len(body["schema"]["fields"]) != 1:
            raise _Rejected(400, "This fake serves indexes with exactly one dense_vector field.")
        field_name, spec = dense[0]
        deployment = body.get("deployment") or {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}
        fields = {field_name: {"type": "dense_vector", "dimension": spec["dimension"], "metric": spec["metric"]}}
        index = self._new_index(
            body,
            dimension=spec["dimension"],
            metric=spec["metric"],
            cloud=deployment["cloud"],
            region=deployment["region"],
            fields=fields,
        )
        return Reply(201, self.index_model(index))

    def _create_for_model(self, call: Call) -> Any:
        body = call.json
        _conform("control", "CreateIndexForModelRequest", body)
        embed = body["embed"]
        model = embed["model"]
        if model not in HOSTED_MODELS:
            raise _Rejected(400, f"Model '{model}' is not supported for integrated inference.")
        text_field = embed["field_map"].get("text")
        if not text_field:
            raise _Rejected(400, "embed.field_map must map 'text' to the field to embed.")
        metric = embed.get("metric") or "cosine"
        dimension = embed.get("dimension") or HOSTED_MODELS[model]
        fields = {
            text_field: {
                "type": "semantic_text",
                "model": model,
                "dimension": dimension,
                "metric": metric,
                "write_parameters": {"input_type": "passage"},
                "read_parameters": {"input_type": "query"},
            }
        }
        index = self._new_index(
            body,
            dimension=dimension,
            metric=metric,
            cloud=body["cloud"],
            region=body["region"],
            fields=fields,
            hosted_model=model,
            text_field=text_field,
        )
        return Reply(201, self.index_model(index))

    def _configure_index(self, call: Call) -> Any:
        index = self._index_named(call.params["index_name"])
        body = call.json
        _conform("control", "ConfigureIndexRequest", body)
        for key, value in (body.get("tags") or {}).items():
            if value == "":
                index.tags.pop(key, None)  # Pinecone removes a tag set to ""
            else:
                index.tags[key] = value
        if "deletion_protection" in body:
            index.deletion_protection = body["deletion_protection"]
        return self.index_model(index)

    def _delete_index(self, call: Call) -> Any:
        index = self._index_named(call.params["index_name"])
        if index.deletion_protection == "enabled":
            raise _Rejected(
                403, "Deletion protection is enabled for this index. Disable deletion protection before retrying."
            )
        del self.indexes[index.name]
        return Reply(202, body=b"")

    # -- data plane ------------------------------------------------------------------------------

    def _hosted(self, call: Call) -> FakeIndex:
        for index in self.indexes.values():
            if index.host_id == call.params["host_id"]:
                return index
        raise _Rejected(404, "Index not found: this host serves no index.")

    def _json_body(self, call: Call, schema_name: str) -> dict[str, Any]:
        if len(call.body) > MAX_REQUEST_BYTES:
            raise _Rejected(413, f"Request size {len(call.body)} bytes exceeds the limit of {MAX_REQUEST_BYTES} bytes.")
        body = call.json
        _conform("data", schema_name, body)
        return body  # type: ignore[no-any-return]

    @staticmethod
    def _check_dimension(index: FakeIndex, values: list[float]) -> None:
        if len(values) != index.dimension:
            raise _Rejected(
                400, f"Vector dimension {len(values)} does not match the dimension of the index {index.dimension}"
            )

    def _upsert(self, call: Call) -> Any:
        index = self._hosted(call)
        body = self._json_body(call, "UpsertRequest")
        records = index.namespace(body.get("namespace", ""))
        for vector in body["vectors"]:
            self._check_dimension(index, vector["values"])
        for vector in body["vectors"]:
            records[vector["id"]] = StoredRecord(list(vector["values"]), dict(vector.get("metadata") or {}))
        return {"upsertedCount": len(body["vectors"])}

    def _ranked(
        self, index: FakeIndex, namespace: str, query: list[float], top_k: int, flt: Mapping[str, Any] | None
    ) -> list[tuple[str, float, StoredRecord]]:
        records = index.namespaces.get(namespace or DEFAULT_NAMESPACE, {})
        admits = filter_predicate(flt)
        scored = [
            (record_id, score(index.metric, query, record.values), record)
            for record_id, record in records.items()
            if admits(record.metadata)
        ]
        # Euclidean scores are distances: nearest first means smallest first.
        scored.sort(key=lambda item: item[1], reverse=index.metric != "euclidean")
        return scored[:top_k]

    def _query(self, call: Call) -> Any:
        index = self._hosted(call)
        body = self._json_body(call, "QueryRequest")
        namespace = body.get("namespace", "")
        if "id" in body:
            stored = index.namespace(namespace).get(body["id"])
            query = stored.values if stored else [0.0] * index.dimension
        else:
            query = body["vector"]
            self._check_dimension(index, query)
        matches = []
        for record_id, value, record in self._ranked(index, namespace, query, body["topK"], body.get("filter")):
            match: dict[str, Any] = {"id": record_id, "score": value}
            if body.get("includeValues"):
                match["values"] = record.values
            if body.get("includeMetadata") and record.metadata:
                match["metadata"] = record.metadata
            matches.append(match)
        return {"matches": matches, "namespace": namespace, "usage": {"readUnits": 1}}

    def _fetch(self, call: Call) -> Any:
        index = self._hosted(call)
        # `Call.query` keeps one value per name; `ids` repeats, so read the raw query string.
        query = parse_qs(_scope.get()["query_string"].decode(), keep_blank_values=True)
        ids = query.get("ids", [])
        if not ids:
            raise _Rejected(400, "ids: at least one id is required")
        if len(ids) > 1000:
            raise _Rejected(400, "ids: at most 1000 ids per request")
        namespace = query.get("namespace", [""])[0]
        records = index.namespaces.get(namespace or DEFAULT_NAMESPACE, {})
        vectors = {}
        for record_id in ids:
            if record_id in records:
                record = records[record_id]
                vector: dict[str, Any] = {"id": record_id, "values": record.values}
                if record.metadata:
                    vector["metadata"] = record.metadata
                vectors[record_id] = vector
        return {"vectors": vectors, "namespace": namespace, "usage": {"readUnits": 1}}

    def _delete(self, call: Call) -> Any:
        index = self._hosted(call)
        body = self._json_body(call, "DeleteRequest")
        records = index.namespace(body.get("namespace", ""))
        if body.get("deleteAll"):
            records.clear()
        elif "ids" in body:
            for record_id in body["ids"]:
                records.pop(record_id, None)
        else:
            admits = filter_predicate(body["filter"])
            for record_id in [i for i, r in records.items() if admits(r.metadata)]:
                del records[record_id]
        return {}

    def _stats(self, call: Call) -> Any:
        index = self._hosted(call)
        body = self._json_body(call, "DescribeIndexStatsRequest")
        admits = filter_predicate(body.get("filter"))
        counts = {
            namespace: sum(1 for r in records.values() if admits(r.metadata))
            for namespace, records in index.namespaces.items()
        }
        return {
            "namespaces": {ns: {"vectorCount": n} for ns, n in counts.items() if n},  # empty ones vanish
            "dimension": index.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(counts.values()),
            "metric": index.metric,
            "vectorType": "dense",
        }

    def _upsert_records(self, call: Call) -> Any:
        index = self._hosted(call)
        if not index.hosted_model:
            raise _Rejected(400, "Integrated inference is not configured for this index.")
        if call.headers.get("content-type", "").split(";")[0] != "application/x-ndjson":
            raise _Rejected(400, "Records must be sent as application/x-ndjson.")
        if len(call.body) > MAX_REQUEST_BYTES:
            raise _Rejected(413, "Request exceeds the 2 MB limit.")
        lines = [line for line in call.body.decode().splitlines() if line.strip()]
        if not lines or len(lines) > 1000:
            raise _Rejected(400, f"A request holds 1 to 1000 records, not {len(lines)}.")
        parsed = []
        for line in lines:
            record = json.loads(line)
            _conform("data", "UpsertRecord", record)
            text = record.get(index.text_field)
            if not isinstance(text, str) or not text:
                raise _Rejected(400, f"Record {record['_id']} is missing the text field '{index.text_field}'.")
            parsed.append(record)
        records = index.namespace(call.params["namespace"])
        for record in parsed:
            metadata = {k: v for k, v in record.items() if k != "_id"}
            records[record["_id"]] = StoredRecord(toy_embedding(record[index.text_field], index.dimension), metadata)
        return Reply(201, body=b"")

    def _search_records(self, call: Call) -> Any:
        index = self._hosted(call)
        body = self._json_body(call, "SearchRecordsRequest")
        if not index.hosted_model:
            raise _Rejected(400, "Integrated inference is not configured for this index.")
        query = body["query"]
        text = (query.get("inputs") or {}).get("text")
        if not isinstance(text, str) or not text:
            raise _Rejected(400, "query.inputs.text is required to search an integrated index.")
        vector = toy_embedding(text, index.dimension)
        wanted = body.get("fields")
        hits = []
        namespace = call.params["namespace"]
        for record_id, value, record in self._ranked(index, namespace, vector, query["top_k"], query.get("filter")):
            fields = {k: v for k, v in record.metadata.items() if wanted is None or k in wanted}
            hits.append({"_id": record_id, "_score": value, "fields": fields})
        tokens = len(re.findall(r"[a-z0-9]+", text.lower()))
        return {"result": {"hits": hits}, "usage": {"read_units": 1, "embed_total_tokens": tokens}}


@contextlib.contextmanager
def run_fake_pinecone(*, api_keys: tuple[str, ...] = (VALID_KEY,)) -> Iterator[FakePinecone]:
    """A `FakePinecone` served on 127.0.0.1; its `url` is the control-plane host."""
    app = FakePinecone(api_keys=api_keys)
    with serve(app) as url:
        app.url = url
        yield app


def settings_env(fake: FakePinecone, *, key: str = VALID_KEY, write: bool = True) -> dict[str, str]:
    """The environment a BI server needs to use `fake`: the key, the control host and (by default) the write gate."""
    env = {"PINECONE_API_KEY": key, "PINECONE_CONTROLLER_HOST": fake.url}
    if write:
        env["SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"] = "1"
    return env


def record_sdk_retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make the SDK's retry backoff instant and return the delays it chose (its documented test seam).

    Also refills the SDK's process-wide retry budget for 127.0.0.1, which earlier injected faults
    drain, so every test sees the SDK's full retry policy.
    """
    from pinecone._internal import http_client

    sleeps: list[float] = []
    monkeypatch.setattr(http_client, "_retry_sleep", sleeps.append)
    http_client.get_budget_registry()._reset()
    return sleeps
