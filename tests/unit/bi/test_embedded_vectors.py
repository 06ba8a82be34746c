"""The embedded vector store on real DuckDB files: where rows live, the write gate, the model rule, exact search."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from sophia_business_intelligence.backends.duckdb import DuckDBWarehouse
from sophia_business_intelligence.backends.vectors import open_vector_store
from sophia_business_intelligence.backends.vectors.base import MODEL_KEY, VectorRecord
from sophia_business_intelligence.backends.vectors.embedded import EmbeddedVectorStore
from sophia_business_intelligence.settings import SETTINGS
from sophia_shared.embedding import EmbeddingModelMismatch
from sophia_shared.errors import ConfigError, InputError, PolicyError
from sophia_shared.settings import Settings

MODEL = "test-model"
DIM = 8


def _settings(tmp_path: Path, *, write: bool = True, **env: str) -> Settings:
    environ = {
        "SOPHIA_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "SOPHIA_DATA_DIR": str(tmp_path / "data"),
        "SOPHIA_DOTENV": str(tmp_path / "no.env"),
        **env,
    }
    if write:
        environ["SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"] = "1"
    return Settings(environ=environ, cwd=tmp_path, specs=SETTINGS)


def _shared(tmp_path: Path, *, write: bool = True) -> tuple[EmbeddedVectorStore, DuckDBWarehouse]:
    settings = _settings(tmp_path, write=write)
    warehouse = DuckDBWarehouse.from_settings(settings, writable=write)
    store = open_vector_store(settings, warehouse, writable=write)
    assert isinstance(store, EmbeddedVectorStore)
    return store, warehouse


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store, warehouse = _shared(tmp_path)
    yield store
    store.close()
    warehouse.close()


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _records(vectors: np.ndarray, metadata: list[dict[str, Any]] | None = None) -> list[VectorRecord]:
    return [
        VectorRecord(f"r{i}", vectors[i].tolist(), (metadata or [{}] * len(vectors))[i]) for i in range(len(vectors))
    ]


def _table_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# -- where the rows live ---------------------------------------------------------------------------


def test_store_keeps_vectors_in_the_warehouse_file_under_its_own_schema(tmp_path: Path) -> None:
    store, warehouse = _shared(tmp_path)
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:3]), namespace="", model=MODEL)
    store.close()
    warehouse.close()
    rows = _table_rows(
        tmp_path / "warehouse.duckdb", "SELECT index_name, count(*) FROM SOPHIA_VECTORS.RECORDS GROUP BY 1"
    )
    assert rows == [("docs", 3)]
    assert not (tmp_path / "data" / "vectors.duckdb").exists()


def test_store_beside_snowflake_uses_vectors_duckdb_in_the_data_dir(tmp_path: Path) -> None:
    not_duckdb = object()  # any warehouse other than the embedded one, e.g. Snowflake
    store = open_vector_store(_settings(tmp_path), not_duckdb, writable=True)
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:2]), namespace="ns", model=MODEL)
    store.close()
    path = tmp_path / "data" / "vectors.duckdb"
    assert _table_rows(path, "SELECT name, dimension, metric, model FROM SOPHIA_VECTORS.INDEXES") == [
        ("docs", DIM, "cosine", MODEL)
    ]
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_indexes_and_records_persist_across_reopen(tmp_path: Path) -> None:
    vectors = _unit(np.random.default_rng(1).standard_normal((20, DIM)))
    first = open_vector_store(_settings(tmp_path), object(), writable=True)
    first.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    first.upsert("docs", _records(vectors, [{"n": i} for i in range(20)]), namespace="", model=MODEL)
    first.close()
    again = open_vector_store(_settings(tmp_path, write=False), object(), writable=False)
    try:
        assert again.describe_index("docs").record_count == 20
        best = again.query("docs", vector=vectors[7].tolist(), top_k=1, namespace="", filter={}, model=MODEL)
        assert best[0].id == "r7"
        assert best[0].metadata == {"n": 7, MODEL_KEY: MODEL}
    finally:
        again.close()


# -- the write gate ----------------------------------------------------------------------------------


def test_read_only_store_refuses_writes_before_creating_any_file(tmp_path: Path) -> None:
    store = open_vector_store(_settings(tmp_path, write=False), object(), writable=False)
    assert store.list_indexes() == []
    with pytest.raises(PolicyError, match="SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"):
        store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    with pytest.raises(PolicyError, match="Refused to upsert into vector index 'docs'"):
        store.upsert("docs", _records(np.eye(DIM)[:1]), namespace="", model=MODEL)
    with pytest.raises(PolicyError):
        store.delete("docs", ids=["r0"], filter={}, namespace="")
    with pytest.raises(PolicyError):
        store.delete_index("docs")
    store.close()
    assert not (tmp_path / "data" / "vectors.duckdb").exists()


def test_read_only_warehouse_serves_existing_indexes_but_refuses_upsert(tmp_path: Path) -> None:
    store, warehouse = _shared(tmp_path)
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:2]), namespace="", model=MODEL)
    store.close()
    warehouse.close()
    reader, read_only = _shared(tmp_path, write=False)
    try:
        assert [i.name for i in reader.list_indexes()] == ["docs"]
        with pytest.raises(PolicyError, match="writes are disabled"):
            reader.upsert("docs", _records(np.eye(DIM)[2:3]), namespace="", model=MODEL)
        assert reader.describe_index("docs").record_count == 2
    finally:
        reader.close()
        read_only.close()


def test_store_refuses_writes_when_opened_read_only_even_if_the_gate_opened_later(tmp_path: Path) -> None:
    store = open_vector_store(_settings(tmp_path, write=True), object(), writable=False)
    with pytest.raises(PolicyError, match="opened read-only"):
        store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.close()


# -- the model rule ----------------------------------------------------------------------------------


def test_first_upsert_sets_the_model_of_an_index_created_without_one(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model="")
    assert store.describe_index("docs").model == ""
    store.upsert("docs", _records(np.eye(DIM)[:1]), namespace="", model=MODEL)
    assert store.describe_index("docs").model == MODEL


def test_upsert_and_query_with_another_model_are_refused(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:2]), namespace="", model=MODEL)
    with pytest.raises(EmbeddingModelMismatch, match="'other-model' cannot be mixed in"):
        store.upsert("docs", _records(np.eye(DIM)[2:3]), namespace="", model="other-model")
    with pytest.raises(EmbeddingModelMismatch):
        store.query("docs", vector=np.eye(DIM)[0].tolist(), top_k=1, namespace="", filter={}, model="other-model")
    assert store.describe_index("docs").record_count == 2


def test_upsert_without_a_model_is_refused(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model="")
    with pytest.raises(InputError, match="Name the embedding model"):
        store.upsert("docs", _records(np.eye(DIM)[:1]), namespace="", model="")


def test_record_metadata_may_not_claim_another_model(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    record = VectorRecord("x", np.eye(DIM)[0].tolist(), {MODEL_KEY: "other"})
    with pytest.raises(InputError, match="reserved metadata key"):
        store.upsert("docs", [record], namespace="", model=MODEL)


def test_vectors_of_the_wrong_dimension_are_refused(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    with pytest.raises(InputError, match="holds 8-dimensional vectors; the record has 3 values"):
        store.upsert("docs", [VectorRecord("x", [1.0, 0.0, 0.0])], namespace="", model=MODEL)
    with pytest.raises(InputError, match="the query vector has 4 values"):
        store.query("docs", vector=[1.0, 0, 0, 0], top_k=1, namespace="", filter={}, model=MODEL)


# -- names and arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Docs", "-docs", "docs-", "my_docs", "", "a" * 46, "döcs"])
def test_index_names_follow_pinecone_rules(store: EmbeddedVectorStore, name: str) -> None:
    with pytest.raises(InputError, match="not a valid index name"):
        store.create_index(name, dimension=DIM, metric="cosine", model=MODEL)


def test_creating_an_existing_index_is_refused(store: EmbeddedVectorStore) -> None:
    store.create_index("a" * 45, dimension=DIM, metric="dotproduct", model=MODEL)
    with pytest.raises(InputError, match="already exists"):
        store.create_index("a" * 45, dimension=DIM, metric="cosine", model=MODEL)


def test_unknown_index_names_the_list_tool(store: EmbeddedVectorStore) -> None:
    with pytest.raises(InputError) as raised:
        store.describe_index("missing")
    assert "vector_list_indexes" in raised.value.hint


def test_text_methods_say_the_tools_embed_for_this_store(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    with pytest.raises(InputError, match="Only Pinecone integrated-inference indexes embed text themselves"):
        store.search_text("docs", text="hello", top_k=1, namespace="", filter={})
    with pytest.raises(InputError, match="embed text with the local model"):
        store.upsert_texts("docs", [], namespace="")


# -- search ------------------------------------------------------------------------------------------


def _reference(vectors: np.ndarray, query: np.ndarray, metric: str, keep: np.ndarray) -> list[tuple[str, float]]:
    if metric == "cosine":
        scores = _unit(vectors) @ (query / np.linalg.norm(query))
    elif metric == "dotproduct":
        scores = vectors @ query
    else:
        scores = ((vectors - query) ** 2).sum(axis=1)
    order = np.argsort(scores if metric == "euclidean" else -scores, kind="stable")
    return [(f"r{i}", float(scores[i])) for i in order if keep[i]]


@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
@pytest.mark.parametrize("share", [1.0, 0.5, 0.05], ids=["unfiltered", "half", "selective"])
def test_top_k_order_and_scores_match_brute_force_numpy(store: EmbeddedVectorStore, metric: str, share: float) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((400, DIM)).astype(np.float32)
    buckets = rng.random(400)
    store.create_index("docs", dimension=DIM, metric=metric, model=MODEL)
    store.upsert("docs", _records(vectors, [{"bucket": float(b)} for b in buckets]), namespace="", model=MODEL)
    filter = {} if share == 1.0 else {"bucket": {"$lt": share}}
    for query in rng.standard_normal((3, DIM)).astype(np.float32):
        got = store.query("docs", vector=query.tolist(), top_k=10, namespace="", filter=filter, model=MODEL)
        expected = _reference(vectors, query, metric, buckets < share)[:10]
        assert [m.id for m in got] == [e[0] for e in expected]
        assert [m.score for m in got] == pytest.approx([e[1] for e in expected], rel=1e-4, abs=1e-4)


def test_top_k_larger_than_the_matches_returns_every_match(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:3], [{"k": "a"}, {"k": "b"}, {"k": "a"}]), namespace="", model=MODEL)
    got = store.query("docs", vector=np.eye(DIM)[2].tolist(), top_k=50, namespace="", filter={"k": "a"}, model=MODEL)
    assert [m.id for m in got] == ["r2", "r0"]
    assert (
        store.query("docs", vector=np.eye(DIM)[0].tolist(), top_k=5, namespace="", filter={"k": "z"}, model=MODEL) == []
    )


def test_query_returns_values_only_when_asked(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="dotproduct", model=MODEL)
    store.upsert("docs", [VectorRecord("x", [2.0] + [0.0] * (DIM - 1))], namespace="", model=MODEL)
    vector = [1.0] + [0.0] * (DIM - 1)
    plain = store.query("docs", vector=vector, top_k=1, namespace="", filter={}, model=MODEL)
    full = store.query("docs", vector=vector, top_k=1, namespace="", filter={}, model=MODEL, include_values=True)
    assert plain[0].values == ()
    assert list(full[0].values) == [2.0] + [0.0] * (DIM - 1)
    assert full[0].score == pytest.approx(2.0)


def test_cosine_index_normalises_stored_vectors(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", [VectorRecord("x", [3.0, 4.0] + [0.0] * (DIM - 2))], namespace="", model=MODEL)
    [record] = store.fetch("docs", ["x"], namespace="")
    assert list(record.values)[:2] == pytest.approx([0.6, 0.8])
    with pytest.raises(InputError, match="all zeros"):
        store.upsert("docs", [VectorRecord("z", [0.0] * DIM)], namespace="", model=MODEL)


def test_search_sees_an_upsert_made_after_the_matrix_was_cached(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:2]), namespace="", model=MODEL)
    query = np.eye(DIM)[5].tolist()
    assert store.query("docs", vector=query, top_k=1, namespace="", filter={}, model=MODEL)[0].score < 0.5
    store.upsert("docs", [VectorRecord("new", query)], namespace="", model=MODEL)
    assert store.query("docs", vector=query, top_k=1, namespace="", filter={}, model=MODEL)[0].id == "new"


def test_namespaces_are_searched_and_counted_separately(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:3]), namespace="", model=MODEL)
    store.upsert("docs", [VectorRecord("other", np.eye(DIM)[0].tolist())], namespace="team-b", model=MODEL)
    info = store.describe_index("docs")
    assert info.namespaces == {"": 3, "team-b": 1}
    assert info.record_count == 4
    got = store.query("docs", vector=np.eye(DIM)[0].tolist(), top_k=5, namespace="team-b", filter={}, model=MODEL)
    assert [m.id for m in got] == ["other"]
    assert [i.record_count for i in store.list_indexes()] == [4]


# -- upsert, fetch, delete ---------------------------------------------------------------------------


def test_upsert_is_idempotent_and_replaces_records_by_id(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    records = _records(np.eye(DIM)[:4], [{"v": 1}] * 4)
    assert store.upsert("docs", records, namespace="", model=MODEL) == 4
    assert store.upsert("docs", records, namespace="", model=MODEL) == 4
    assert store.describe_index("docs").record_count == 4
    store.upsert("docs", [VectorRecord("r1", np.eye(DIM)[7].tolist(), {"v": 2})], namespace="", model=MODEL)
    [record] = store.fetch("docs", ["r1"], namespace="")
    assert record.metadata == {"v": 2, MODEL_KEY: MODEL}
    assert list(record.values) == pytest.approx(np.eye(DIM)[7].tolist())
    assert store.describe_index("docs").record_count == 4


def test_a_repeated_id_in_one_upsert_keeps_the_last_record(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    first, last = (
        VectorRecord("x", np.eye(DIM)[0].tolist(), {"v": 1}),
        VectorRecord("x", np.eye(DIM)[1].tolist(), {"v": 2}),
    )
    assert store.upsert("docs", [first, last], namespace="", model=MODEL) == 1
    assert store.fetch("docs", ["x"], namespace="")[0].metadata["v"] == 2


def test_fetch_returns_found_records_in_the_order_asked(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:3]), namespace="", model=MODEL)
    assert [r.id for r in store.fetch("docs", ["r2", "missing", "r0"], namespace="")] == ["r2", "r0"]


def test_delete_by_filter_removes_exactly_the_matching_records(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    metadata = [{"kind": "a"}, {"kind": "b"}, {"kind": "a", "keep": True}, {}]
    store.upsert("docs", _records(np.eye(DIM)[:4], metadata), namespace="", model=MODEL)
    store.query("docs", vector=np.eye(DIM)[0].tolist(), top_k=4, namespace="", filter={}, model=MODEL)  # cache it
    deleted = store.delete("docs", ids=[], filter={"kind": "a", "keep": {"$exists": False}}, namespace="")
    assert deleted == 1
    left = store.query("docs", vector=np.eye(DIM)[0].tolist(), top_k=10, namespace="", filter={}, model=MODEL)
    assert sorted(m.id for m in left) == ["r1", "r2", "r3"]


def test_delete_by_ids_counts_what_it_removed(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:3]), namespace="", model=MODEL)
    assert store.delete("docs", ids=["r0", "r2", "nope"], filter={}, namespace="") == 2
    assert store.describe_index("docs").record_count == 1


@pytest.mark.parametrize(("ids", "filter"), [([], {}), (["r0"], {"k": 1})])
def test_delete_needs_exactly_one_of_ids_and_filter(store: EmbeddedVectorStore, ids: list[str], filter: Any) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    with pytest.raises(InputError, match="either ids or a filter"):
        store.delete("docs", ids=ids, filter=filter, namespace="")


def test_delete_index_removes_its_records(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    store.upsert("docs", _records(np.eye(DIM)[:3]), namespace="", model=MODEL)
    store.delete_index("docs")
    assert store.list_indexes() == []
    store.create_index("docs", dimension=4, metric="cosine", model="another")
    assert store.describe_index("docs").record_count == 0


def test_concurrent_searches_during_upserts_never_fail(store: EmbeddedVectorStore) -> None:
    store.create_index("docs", dimension=DIM, metric="cosine", model=MODEL)
    rng = np.random.default_rng(5)
    store.upsert("docs", _records(rng.standard_normal((50, DIM))), namespace="", model=MODEL)
    errors: list[BaseException] = []

    def search() -> None:
        try:
            for _ in range(20):
                store.query(
                    "docs", vector=rng.standard_normal(DIM).tolist(), top_k=3, namespace="", filter={}, model=MODEL
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(10):
        store.upsert("docs", [VectorRecord(f"n{i}", rng.standard_normal(DIM).tolist())], namespace="", model=MODEL)
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.describe_index("docs").record_count == 60


# -- choosing the backend ----------------------------------------------------------------------------


def test_an_unknown_vector_backend_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SOPHIA_VECTOR_BACKEND must be auto, embedded or pinecone, not 'qdrant'"):
        open_vector_store(_settings(tmp_path, SOPHIA_VECTOR_BACKEND="qdrant"), object(), writable=False)


def test_auto_without_a_pinecone_key_and_embedded_with_one_choose_the_embedded_store(tmp_path: Path) -> None:
    auto = open_vector_store(_settings(tmp_path), object(), writable=False)
    forced = open_vector_store(
        _settings(tmp_path, SOPHIA_VECTOR_BACKEND="embedded", PINECONE_API_KEY="pc-test"), object(), writable=False
    )
    assert auto.backend == forced.backend == "embedded"
    auto.close()
    forced.close()
