"""The vector tools' logic on the embedded store and the real local embedder, and through MCP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.duckdb import DuckDBWarehouse
from sophia_business_intelligence.backends.vectors import open_vector_store
from sophia_business_intelligence.backends.vectors.base import VectorStore
from sophia_business_intelligence.demo_data import load_demo_dataset
from sophia_business_intelligence.server import SPEC
from sophia_business_intelligence.tools import vectors
from sophia_business_intelligence.tools.vector_load import LoadRequest, load_batches
from sophia_shared.embedding import Embedder
from sophia_shared.embedding.minilm import local_embedder
from sophia_shared.errors import InputError, PolicyError
from sophia_shared.server import build_server
from sophia_shared.settings import Settings

GATE = "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    load_demo_dataset(path)
    return path


def _settings(path: Path, **extra: str) -> Settings:
    environ = {"SOPHIA_DUCKDB_PATH": str(path), "SOPHIA_DATA_DIR": str(path.parent), **extra}
    return Settings(environ=environ, specs=SPEC.all_settings())


@pytest.fixture
def store(warehouse_path: Path) -> Iterator[tuple[DuckDBWarehouse, VectorStore]]:
    settings = _settings(warehouse_path, **{GATE: "1"})
    wh = DuckDBWarehouse.from_settings(settings, writable=True)
    vs = open_vector_store(settings, wh, writable=True)
    yield wh, vs
    vs.close()
    wh.close()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return local_embedder()


def _items(*pairs: tuple[str, str, dict[str, Any]]) -> list[vectors.UpsertItem]:
    return [vectors.UpsertItem(id=i, text=t, metadata=m) for i, t, m in pairs]


def test_a_text_finds_its_paraphrase_first_and_filters_narrow_it(
    store: tuple[DuckDBWarehouse, VectorStore], embedder: Embedder
) -> None:
    _, vs = store
    vectors.create_index(vs, embedder, name="notes", model="local", metric="cosine")
    vectors.upsert_texts(
        vs,
        embedder,
        index="notes",
        namespace="",
        items=_items(
            ("a", "The customer says our price is far too high and wants a discount.", {"region": "EMEA"}),
            ("b", "Their security team needs a data residency review.", {"region": "NA"}),
            ("c", "Finance froze all new spending until next year.", {"region": "EMEA"}),
        ),
    )
    found = vectors.search(
        vs, embedder, index="notes", text="pricing pushback", vector=[], top_k=3, filter={}, namespace=""
    )
    assert found.hits[0].id == "a"
    assert found.hits[0].text.startswith("The customer says our price")
    assert found.hits[0].score > found.hits[-1].score
    narrowed = vectors.search(
        vs, embedder, index="notes", text="pricing pushback", vector=[], top_k=3, filter={"region": "NA"}, namespace=""
    )
    assert [h.id for h in narrowed.hits] == ["b"]


def test_upserting_the_same_ids_replaces_rather_than_duplicates(
    store: tuple[DuckDBWarehouse, VectorStore], embedder: Embedder
) -> None:
    _, vs = store
    vectors.create_index(vs, embedder, name="dups", model="local", metric="cosine")
    for text in ("first version", "second version"):
        vectors.upsert_texts(vs, embedder, index="dups", namespace="", items=_items(("x", text, {})))
    described = vectors.describe_index(vs, "dups")
    assert described.index.record_count == 1
    fetched = vectors.fetch(vs, index="dups", ids=["x", "nope"], namespace="")
    assert fetched.records[0].text == "second version" and fetched.missing == ["nope"]


def test_loading_demo_transcripts_is_batched_idempotent_and_searchable(
    store: tuple[DuckDBWarehouse, VectorStore], embedder: Embedder
) -> None:
    wh, vs = store
    vectors.create_index(vs, embedder, name="transcripts", model="local", metric="cosine")
    request = LoadRequest(
        index="transcripts",
        sql="SELECT CALL_ID, TRANSCRIPT, DEAL_ID, SENTIMENT FROM CALLS.TRANSCRIPTS",
        params=[],
        id_column="call_id",
        text_column="TRANSCRIPT",
        metadata_columns=["DEAL_ID", "SENTIMENT"],
        namespace="calls",
        max_rows=10_000,
        batch_size=32,
    )
    steps = list(load_batches(wh, vs, embedder, request, CancelToken()))
    again = list(load_batches(wh, vs, embedder, request, CancelToken()))
    total = steps[-1].rows_read
    assert total == again[-1].rows_read and len(steps) >= total // 32
    assert vectors.describe_index(vs, "transcripts").index.namespaces["calls"] == total
    hits = vectors.search(
        vs, embedder, index="transcripts", text="the customer wants a discount because we cost too much",
        vector=[], top_k=5, filter={"SENTIMENT": "negative"}, namespace="calls",
    )  # fmt: skip
    assert hits.hits and all(h.metadata["SENTIMENT"] == "negative" for h in hits.hits)
    assert "discount" in hits.hits[0].text


def test_a_load_refuses_a_query_the_guard_refuses_and_a_missing_column(
    store: tuple[DuckDBWarehouse, VectorStore], embedder: Embedder
) -> None:
    wh, vs = store
    vectors.create_index(vs, embedder, name="t2", model="local", metric="cosine")
    base = dict(index="t2", params=[], metadata_columns=[], namespace="", max_rows=10, batch_size=5)
    with pytest.raises(PolicyError):
        list(
            load_batches(
                wh,
                vs,
                embedder,
                LoadRequest(sql="DELETE FROM CRM.DEALS", id_column="a", text_column="b", **base),
                CancelToken(),
            )
        )  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no single column 'NOPE'"):
        list(
            load_batches(
                wh,
                vs,
                embedder,
                LoadRequest(sql="SELECT 1 AS A, 'x' AS B", id_column="A", text_column="NOPE", **base),
                CancelToken(),
            )
        )  # type: ignore[arg-type]


def test_deleting_an_index_needs_its_name_as_confirmation(
    store: tuple[DuckDBWarehouse, VectorStore], embedder: Embedder
) -> None:
    _, vs = store
    vectors.create_index(vs, embedder, name="keep", model="local", metric="cosine")
    with pytest.raises(InputError, match="confirm='keep'"):
        vectors.delete_index(vs, name="keep", confirm="yes")
    assert [i.name for i in vectors.list_indexes(vs).items] == ["keep"]
    vectors.delete_index(vs, name="keep", confirm="keep")
    assert vectors.list_indexes(vs).items == []


def test_bad_names_and_ambiguous_searches_are_refused_with_the_fix() -> None:
    for bad in ("Upper", "-x", "x" * 46, "a_b"):
        with pytest.raises(InputError, match="not a valid index name"):
            vectors.check_index_name(bad)


@pytest.mark.anyio
async def test_write_tools_appear_only_with_the_gate_and_search_works_over_mcp(warehouse_path: Path) -> None:
    async with Client(build_server(SPEC, _settings(warehouse_path))) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        listed = await client.call_tool("vector_list_indexes", {})
    assert {"vector_search", "vector_list_indexes", "vector_fetch", "vector_describe_index"} <= names
    assert not {"vector_create_index", "vector_upsert", "vector_load_from_warehouse"} & names
    assert not listed.is_error and listed.structured_content["items"] == []
    async with Client(build_server(SPEC, _settings(warehouse_path, **{GATE: "1"}))) as client:
        created = await client.call_tool("vector_create_index", {"name": "calls"})
        loaded = await client.call_tool(
            "vector_load_from_warehouse",
            {"index": "calls", "sql": "SELECT CALL_ID, TRANSCRIPT FROM CALLS.TRANSCRIPTS", "id_column": "CALL_ID",
             "text_column": "TRANSCRIPT", "batch_size": 50},
        )  # fmt: skip
        found = await client.call_tool("vector_search", {"index": "calls", "text": "security review of data residency"})
    assert not created.is_error, created.content[0].text
    assert not loaded.is_error, loaded.content[0].text
    assert loaded.structured_content["upserted"] > 50 and loaded.structured_content["batches"] >= 2
    assert "residency" in found.structured_content["hits"][0]["text"]
    assert "<<<" in found.content[0].text  # texts are delimited as data


@pytest.mark.anyio
async def test_loading_reports_progress_after_every_batch(warehouse_path: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with Client(build_server(SPEC, _settings(warehouse_path, **{GATE: "1"}))) as client:
        await client.call_tool("vector_create_index", {"name": "progress"})
        loaded = await client.call_tool(
            "vector_load_from_warehouse",
            {"index": "progress", "sql": "SELECT MESSAGE_ID, TEXT FROM TEAM.MESSAGES", "id_column": "MESSAGE_ID",
             "text_column": "TEXT", "batch_size": 10},
            progress_callback=progress,
        )  # fmt: skip
    assert not loaded.is_error, loaded.content[0].text
    batches = loaded.structured_content["batches"]
    assert len(seen) == batches >= 3
    assert [v for v, _, _ in seen] == sorted(v for v, _, _ in seen)
    assert seen[-1][0] == loaded.structured_content["rows_read"]
    assert "loaded into progress" in (seen[-1][2] or "")
