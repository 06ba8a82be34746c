"""PineconeVectorStore through the real pinecone SDK 10.x against the spec-built fake on 127.0.0.1:
index lifecycle, namespaces, filters, the model tag, integrated inference and request batching."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sophia_business_intelligence.backends.vectors.base import MODEL_KEY, TEXT_KEY, TextRecord, VectorRecord
from sophia_business_intelligence.backends.vectors.pinecone import (
    MAX_REQUEST_BYTES,
    MODEL_TAG,
    PineconeVectorStore,
)
from sophia_business_intelligence.names import VECTOR_LIST_INDEXES
from sophia_business_intelligence.settings import SETTINGS
from sophia_shared.embedding import EmbeddingModelMismatch
from sophia_shared.errors import InputError
from sophia_shared.settings import Settings
from tests.fakes.pinecone_server import (
    DEFAULT_NAMESPACE,
    FakePinecone,
    record_sdk_retry_sleeps,
    run_fake_pinecone,
    settings_env,
)

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
OTHER_MODEL = "text-embedding-3-small"
HOSTED = "pinecone:llama-text-embed-v2"


@pytest.fixture(autouse=True)
def _hermetic(no_esc_cli_or_proxy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    record_sdk_retry_sleeps(monkeypatch)


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with run_fake_pinecone() as server:
        yield server


@pytest.fixture
def store(fake: FakePinecone) -> Iterator[PineconeVectorStore]:
    vectors = PineconeVectorStore(
        Settings(environ=settings_env(fake), specs=SETTINGS), writable=True, ready_timeout=5, poll_interval=0.01
    )
    yield vectors
    vectors.close()


def unit(*values: float) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


DEALS = [
    VectorRecord("acme", unit(1, 0, 0, 0), {"stage": "Won", "amount": 250_000, TEXT_KEY: "Acme renewal"}),
    VectorRecord("globex", unit(1, 1, 0, 0), {"stage": "Lost", "amount": 40_000, TEXT_KEY: "Globex pilot"}),
    VectorRecord("initech", unit(0, 1, 0, 0), {"stage": "Negotiation", "amount": 120_000, TEXT_KEY: "Initech"}),
    VectorRecord("umbrella", unit(0, 0, 1, 0), {"stage": "Lost", "amount": 900_000, "tags": ["eu", "pharma"]}),
]


# -- lifecycle ---------------------------------------------------------------------------------------


def test_full_lifecycle_create_upsert_query_fetch_delete(store: PineconeVectorStore, fake: FakePinecone) -> None:
    created = store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    assert (created.name, created.dimension, created.metric, created.model) == ("deals", 4, "cosine", MODEL)
    assert created.ready and not created.integrated and created.backend == "pinecone"
    assert created.detail["cloud"] == "aws" and created.detail["region"] == "us-east-1"
    assert created.host.startswith(fake.url)  # the data plane points back at the same server
    assert [i.name for i in store.list_indexes()] == ["deals"]

    assert store.upsert("deals", DEALS, namespace="", model=MODEL) == 4
    described = store.describe_index("deals")
    assert described.record_count == 4 and dict(described.namespaces) == {"": 4}

    matches = store.query("deals", vector=unit(1, 0.1, 0, 0), top_k=2, namespace="", filter={}, model=MODEL)
    assert [m.id for m in matches] == ["acme", "globex"]
    assert matches[0].score > matches[1].score
    assert matches[0].metadata[MODEL_KEY] == MODEL and matches[0].metadata["stage"] == "Won"
    assert matches[0].values == ()

    fetched = store.fetch("deals", ["initech", "missing", "acme"], namespace="")
    assert [r.id for r in fetched] == ["initech", "acme"]
    assert fetched[1].values == pytest.approx(unit(1, 0, 0, 0))
    assert fetched[1].metadata[TEXT_KEY] == "Acme renewal"

    assert store.delete("deals", ids=["acme", "globex"], filter={}, namespace="") is None
    assert [r.id for r in store.fetch("deals", ["acme", "globex", "initech"], namespace="")] == ["initech"]

    store.delete_index("deals")
    assert store.list_indexes() == []
    with pytest.raises(InputError) as missing:
        store.describe_index("deals")
    assert VECTOR_LIST_INDEXES in missing.value.agent_message()


def test_create_sends_a_2026_07_schema_and_tags_the_model(store: PineconeVectorStore, fake: FakePinecone) -> None:
    store.create_index("deals", dimension=384, metric="dotproduct", model=MODEL)
    (create,) = [c for c in fake.calls if c.method == "POST" and c.path == "/indexes"]
    assert create.headers["x-pinecone-api-version"] == "2026-07"
    assert create.json["schema"] == {
        "fields": {"_values": {"type": "dense_vector", "dimension": 384, "metric": "dotproduct"}}
    }
    assert create.json["deployment"] == {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}
    assert fake.indexes["deals"].tags == {MODEL_TAG: MODEL}


def test_query_returns_values_only_when_asked(store: PineconeVectorStore) -> None:
    store.create_index("deals", dimension=4, metric="euclidean", model=MODEL)
    store.upsert("deals", DEALS, namespace="", model=MODEL)
    matches = store.query(
        "deals", vector=unit(0, 0, 1, 0), top_k=1, namespace="", filter={}, model=MODEL, include_values=True
    )
    assert matches[0].id == "umbrella" and matches[0].score == pytest.approx(0.0)  # euclidean: a distance
    assert list(matches[0].values) == pytest.approx(unit(0, 0, 1, 0))


def test_upsert_replaces_records_by_id(store: PineconeVectorStore) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    store.upsert("deals", DEALS, namespace="", model=MODEL)
    store.upsert("deals", [VectorRecord("acme", unit(0, 0, 0, 1), {"stage": "Churned"})], namespace="", model=MODEL)
    (acme,) = store.fetch("deals", ["acme"], namespace="")
    assert acme.metadata == {"stage": "Churned", MODEL_KEY: MODEL}
    assert store.describe_index("deals").record_count == 4


# -- namespaces and filters ----------------------------------------------------------------------------


def test_namespaces_keep_records_apart(store: PineconeVectorStore, fake: FakePinecone) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    store.upsert("deals", DEALS[:3], namespace="emea", model=MODEL)
    store.upsert("deals", DEALS[3:], namespace="amer", model=MODEL)
    store.upsert("deals", DEALS[:1], namespace="", model=MODEL)

    assert dict(store.describe_index("deals").namespaces) == {"emea": 3, "amer": 1, "": 1}
    amer = store.query("deals", vector=unit(1, 0, 0, 0), top_k=10, namespace="amer", filter={}, model=MODEL)
    assert [m.id for m in amer] == ["umbrella"]
    assert store.fetch("deals", ["globex"], namespace="amer") == []
    assert [r.id for r in store.fetch("deals", ["globex"], namespace="emea")] == ["globex"]
    assert set(fake.indexes["deals"].namespaces) == {"emea", "amer", DEFAULT_NAMESPACE}


def test_query_applies_metadata_filters(store: PineconeVectorStore, fake: FakePinecone) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    store.upsert("deals", DEALS, namespace="", model=MODEL)
    flt = {"stage": {"$in": ["Lost", "Negotiation"]}, "amount": {"$gte": 100_000}}
    matches = store.query("deals", vector=unit(1, 1, 1, 0), top_k=10, namespace="", filter=flt, model=MODEL)
    assert sorted(m.id for m in matches) == ["initech", "umbrella"]
    (query,) = [c for c in fake.calls if c.path.endswith("/query")]
    assert query.json["filter"] == flt and query.json["includeMetadata"] is True

    either = {"$or": [{"stage": "Won"}, {"tags": {"$in": ["pharma"]}}]}
    matches = store.query("deals", vector=unit(1, 1, 1, 0), top_k=10, namespace="", filter=either, model=MODEL)
    assert sorted(m.id for m in matches) == ["acme", "umbrella"]


def test_delete_by_filter_removes_only_matching_records(store: PineconeVectorStore) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    store.upsert("deals", DEALS, namespace="", model=MODEL)
    assert store.delete("deals", ids=[], filter={"stage": {"$eq": "Lost"}}, namespace="") is None
    left = store.fetch("deals", [r.id for r in DEALS], namespace="")
    assert [r.id for r in left] == ["acme", "initech"]


def test_delete_needs_exactly_one_of_ids_or_filter(store: PineconeVectorStore, fake: FakePinecone) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    before = len(fake.calls)
    for ids, flt in [([], {}), (["acme"], {"stage": "Won"})]:
        with pytest.raises(InputError, match="exactly one of ids or filter"):
            store.delete("deals", ids=ids, filter=flt, namespace="")
    assert len(fake.calls) == before


# -- the embedding model -------------------------------------------------------------------------------


def test_upsert_of_another_model_is_refused_before_anything_is_sent(
    store: PineconeVectorStore, fake: FakePinecone
) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    with pytest.raises(EmbeddingModelMismatch) as refused:
        store.upsert("deals", DEALS, namespace="", model=OTHER_MODEL)
    assert MODEL in refused.value.message and OTHER_MODEL in refused.value.message
    assert not [c for c in fake.calls if c.path.endswith("/vectors/upsert")]


def test_query_with_a_vector_of_another_model_is_refused(store: PineconeVectorStore, fake: FakePinecone) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    with pytest.raises(EmbeddingModelMismatch):
        store.query("deals", vector=unit(1, 0, 0, 0), top_k=1, namespace="", filter={}, model=OTHER_MODEL)
    assert not [c for c in fake.calls if c.path.endswith("/query")]


def test_first_upsert_tags_an_untagged_index_with_its_model(store: PineconeVectorStore, fake: FakePinecone) -> None:
    created = store.create_index("deals", dimension=4, metric="cosine", model="")
    assert created.model == "" and fake.indexes["deals"].tags == {}
    store.upsert("deals", DEALS[:1], namespace="", model=MODEL)
    assert fake.indexes["deals"].tags == {MODEL_TAG: MODEL}
    assert store.describe_index("deals").model == MODEL
    with pytest.raises(EmbeddingModelMismatch):
        store.upsert("deals", DEALS[1:], namespace="", model=OTHER_MODEL)


def test_vectors_of_the_wrong_dimension_are_refused_with_the_record_named(store: PineconeVectorStore) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    with pytest.raises(InputError, match="'short' has 2 values; the index holds 4-d vectors"):
        store.upsert("deals", [VectorRecord("short", [0.1, 0.2])], namespace="", model=MODEL)


# -- integrated inference ------------------------------------------------------------------------------


NOTES = [
    TextRecord("n1", "Quarterly pipeline revenue grew in EMEA", {"region": "emea", "year": 2024}),
    TextRecord("n2", "Support tickets about login failures", {"region": "amer", "year": 2024}),
    TextRecord("n3", "Pipeline revenue forecast for next quarter", {"region": "amer", "year": 2025}),
]


def test_integrated_index_embeds_texts_itself(store: PineconeVectorStore, fake: FakePinecone) -> None:
    created = store.create_index("notes", dimension=0, metric="cosine", model=HOSTED)
    assert created.integrated and created.model == HOSTED and created.metric == "cosine"
    (create,) = [c for c in fake.calls if c.path == "/indexes/create-for-model"]
    assert create.json["embed"] == {"model": "llama-text-embed-v2", "field_map": {"text": TEXT_KEY}, "metric": "cosine"}
    assert (create.json["cloud"], create.json["region"]) == ("aws", "us-east-1")

    assert store.upsert_texts("notes", NOTES, namespace="") == 3
    (upsert,) = [c for c in fake.calls if c.path.endswith("/upsert")]
    assert upsert.path.endswith(f"/records/namespaces/{DEFAULT_NAMESPACE}/upsert")
    assert upsert.headers["content-type"].startswith("application/x-ndjson")

    described = store.describe_index("notes")
    assert described.dimension == 1024 and described.record_count == 3 and dict(described.namespaces) == {"": 3}

    hits = store.search_text("notes", text="pipeline revenue", top_k=2, namespace="", filter={})
    assert {h.id for h in hits} == {"n1", "n3"}
    assert hits[0].metadata[TEXT_KEY].lower().count("pipeline revenue") == 1
    assert hits[0].metadata[MODEL_KEY] == HOSTED

    filtered = store.search_text(
        "notes", text="pipeline revenue", top_k=5, namespace="", filter={"year": {"$gt": 2024}}
    )
    assert [h.id for h in filtered] == ["n3"]
    (fetched,) = store.fetch("notes", ["n2"], namespace="")
    assert fetched.metadata["region"] == "amer" and len(fetched.values) == 1024


def test_integrated_and_vector_indexes_refuse_each_others_operations(store: PineconeVectorStore) -> None:
    store.create_index("notes", dimension=0, metric="cosine", model=HOSTED)
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    with pytest.raises(InputError, match="embeds text itself"):
        store.upsert("notes", DEALS, namespace="", model=MODEL)
    with pytest.raises(InputError, match="does not embed text itself"):
        store.upsert_texts("deals", NOTES, namespace="")
    with pytest.raises(InputError, match="does not embed text itself"):
        store.search_text("deals", text="revenue", top_k=3, namespace="", filter={})


def test_text_records_may_not_use_reserved_metadata_keys(store: PineconeVectorStore) -> None:
    store.create_index("notes", dimension=0, metric="cosine", model=HOSTED)
    with pytest.raises(InputError, match="reserved"):
        store.upsert_texts("notes", [TextRecord("x", "hello", {TEXT_KEY: "other"})], namespace="")


# -- request limits ------------------------------------------------------------------------------------


def test_upsert_sends_at_most_1000_vectors_per_request(store: PineconeVectorStore, fake: FakePinecone) -> None:
    store.create_index("many", dimension=4, metric="cosine", model=MODEL)
    records = [VectorRecord(f"r{n}", unit(1, n % 7 + 1, 0, 1)) for n in range(2500)]
    assert store.upsert("many", records, namespace="", model=MODEL) == 2500
    sizes = [len(c.json["vectors"]) for c in fake.calls if c.path.endswith("/vectors/upsert")]
    assert sizes == [1000, 1000, 500]
    assert store.describe_index("many").record_count == 2500


def test_upsert_keeps_every_request_under_2_mb(store: PineconeVectorStore, fake: FakePinecone) -> None:
    store.create_index("wide", dimension=1536, metric="cosine", model=MODEL)
    records = [
        VectorRecord(f"r{n}", [((n * 31 + i) % 997) / 997.123456789 for i in range(1536)], {"note": "x" * 2000})
        for n in range(200)
    ]
    assert store.upsert("wide", records, namespace="", model=MODEL) == 200
    bodies = [c.body for c in fake.calls if c.path.endswith("/vectors/upsert")]
    assert len(bodies) > 1 and all(len(b) <= MAX_REQUEST_BYTES for b in bodies)
    assert fake.indexes["wide"].record_count() == 200


def test_upsert_texts_sends_at_most_96_records_per_request(store: PineconeVectorStore, fake: FakePinecone) -> None:
    store.create_index("notes", dimension=0, metric="cosine", model=HOSTED)
    records = [TextRecord(f"t{n}", f"note number {n} about revenue") for n in range(200)]
    assert store.upsert_texts("notes", records, namespace="ops") == 200
    lines = [len(c.body.splitlines()) for c in fake.calls if c.path.endswith("/upsert")]
    assert lines == [96, 96, 8]


def test_top_k_above_10000_is_refused_before_any_request(store: PineconeVectorStore, fake: FakePinecone) -> None:
    with pytest.raises(InputError, match="top_k"):
        store.query("deals", vector=[1.0], top_k=10_001, namespace="", filter={}, model=MODEL)
    assert fake.calls == []


def test_describe_names_the_control_plane_and_no_secret(store: PineconeVectorStore, fake: FakePinecone) -> None:
    line = store.describe()
    assert fake.url in line and "us-east-1" in line
    assert "pcsk" not in line
    assert store.ping() == "Pinecone answered: 0 index(es)."
