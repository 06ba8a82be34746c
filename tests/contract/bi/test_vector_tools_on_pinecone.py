"""The same vector tools the embedded store serves, over MCP, on Pinecone (the real SDK against the
spec-built fake): create, load from the warehouse, search by meaning, and the gate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from sophia_business_intelligence.demo_data import load_demo_dataset
from sophia_business_intelligence.server import SPEC
from sophia_shared.server import build_server
from sophia_shared.settings import Settings
from tests.fakes.pinecone_server import FakePinecone, record_sdk_retry_sleeps, run_fake_pinecone, settings_env

pytestmark = pytest.mark.anyio
GATE = "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"


@pytest.fixture(autouse=True)
def _hermetic(no_esc_cli_or_proxy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    record_sdk_retry_sleeps(monkeypatch)


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with run_fake_pinecone() as server:
        yield server


def _settings(fake: FakePinecone, tmp_path: Path, **extra: str) -> Settings:
    load_demo_dataset(tmp_path / "wh.duckdb")
    environ = {**settings_env(fake, write=False), "SOPHIA_DUCKDB_PATH": str(tmp_path / "wh.duckdb"), **extra}
    return Settings(environ=environ, specs=SPEC.all_settings())


async def test_the_vector_tools_run_unchanged_on_pinecone(fake: FakePinecone, tmp_path: Path) -> None:
    settings = _settings(fake, tmp_path, **{GATE: "1"})
    async with Client(build_server(SPEC, settings)) as client:
        created = await client.call_tool("vector_create_index", {"name": "calls"})
        loaded = await client.call_tool(
            "vector_load_from_warehouse",
            {"index": "calls", "sql": "SELECT CALL_ID, TRANSCRIPT, SENTIMENT FROM CALLS.TRANSCRIPTS",
             "id_column": "CALL_ID", "text_column": "TRANSCRIPT", "metadata_columns": ["SENTIMENT"]},
        )  # fmt: skip
        listed = await client.call_tool("vector_list_indexes", {})
        found = await client.call_tool(
            "vector_search",
            {
                "index": "calls",
                "text": "they want a discount, our quote is too high",
                "filter": {"SENTIMENT": "negative"},
            },
        )
    for result in (created, loaded, listed, found):
        assert not result.is_error, result.content[0].text
    assert listed.structured_content["backend"] == "pinecone"
    assert listed.structured_content["items"][0]["model"].startswith("sentence-transformers/all-MiniLM-L6-v2")
    assert loaded.structured_content["upserted"] == loaded.structured_content["rows_read"] > 100
    hits = found.structured_content["hits"]
    assert hits and all(h["metadata"]["SENTIMENT"] == "negative" for h in hits)
    assert "thirty percent above the other vendor" in hits[0]["text"]


async def test_without_the_gate_nothing_is_written_to_pinecone(fake: FakePinecone, tmp_path: Path) -> None:
    async with Client(build_server(SPEC, _settings(fake, tmp_path))) as client:
        names = {
            t.name for t in (await client.call_tool("vector_list_indexes", {})) and (await client.list_tools()).tools
        }
    assert "vector_create_index" not in names and "vector_upsert" not in names
    assert fake.mutating_calls() == []
