"""cortex_text and cortex_complete on the embedded warehouse: VADER and the local embedder, or a clear refusal."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.duckdb import DuckDBWarehouse
from sophia_business_intelligence.backends.text_ai import open_text_ai
from sophia_business_intelligence.backends.text_ai.base import TextAI
from sophia_business_intelligence.demo_data import load_demo_dataset
from sophia_business_intelligence.server import SPEC
from sophia_business_intelligence.tools.cortex import cortex_complete, cortex_text, run_cortex_complete, run_cortex_text
from sophia_shared.errors import ConfigError, InputError, PolicyError
from sophia_shared.settings import Settings

pytestmark = pytest.mark.anyio
SLIPPED_CALLS = (
    "SELECT t.call_id, t.sentiment AS demo_label, t.transcript FROM calls.transcripts t "
    "JOIN crm.deals d ON d.deal_id = t.deal_id WHERE d.slip_reason IS NOT NULL ORDER BY t.call_id"
)


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    load_demo_dataset(tmp_path / "wh.duckdb")
    return tmp_path / "wh.duckdb"


@pytest.fixture
def local(warehouse_path: Path) -> Iterator[TextAI]:
    warehouse = DuckDBWarehouse(warehouse_path)
    ai = open_text_ai(Settings(environ={}, specs=SPEC.all_settings()), warehouse)
    yield ai
    ai.close()
    warehouse.close()


async def test_embedded_sentiment_scores_each_slipped_deal_transcript_with_vader(local: TextAI) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    result = await run_cortex_text(
        local, CancelToken(), function="sentiment", sql=SLIPPED_CALLS, text_column="transcript", max_rows=200
    )
    assert result.via == "local" and "VADER" in result.engine and not result.truncated
    assert result.items and all(set(i.columns) == {"CALL_ID", "DEMO_LABEL"} for i in result.items)
    vader = SentimentIntensityAnalyzer()
    for item in result.items:
        assert item.score is not None
        assert item.score == vader.polarity_scores(item.text)["compound"]
        assert -1 <= item.score <= 1
        assert item.label == ("positive" if item.score >= 0.05 else "negative" if item.score <= -0.05 else "neutral")


async def test_embedded_sentiment_tells_negative_from_positive_text(local: TextAI) -> None:
    texts = ["This rollout is a disaster and the customer is furious.", "Great call, they love the product!"]
    result = await run_cortex_text(local, CancelToken(), function="sentiment", texts=texts)
    negative, positive = result.items
    assert negative.score is not None and negative.score < -0.5 and negative.label == "negative"
    assert positive.score is not None and positive.score > 0.5 and positive.label == "positive"


async def test_embedded_embed_returns_384_d_unit_vectors_named_by_model(local: TextAI) -> None:
    result = await run_cortex_text(
        local, CancelToken(), function="embed", sql="SELECT name, industry FROM crm.accounts ORDER BY name",
        text_column="NAME", max_rows=3,
    )  # fmt: skip
    assert result.dimension == 384 and "MiniLM" in result.model and result.truncated
    assert [i.text for i in result.items] == ["Bluefin Payments", "Cobalt Health", "Dunmore Logistics"]
    for item in result.items:
        assert len(item.vector) == 384
        assert math.isclose(math.sqrt(sum(v * v for v in item.vector)), 1.0, rel_tol=1e-4)


@pytest.mark.parametrize("function", ["summarize", "translate", "classify", "extract_answer"])
async def test_embedded_refuses_functions_that_need_a_model_and_says_what_to_configure(
    local: TextAI, function: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await run_cortex_text(local, CancelToken(), function=function, texts=["x"], target_language="en",  # type: ignore[arg-type]
                              categories=["a", "b"], question="q")  # fmt: skip
    assert "SNOWFLAKE_ACCOUNT" in caught.value.hint


async def test_embedded_complete_refuses_instead_of_inventing_an_answer(local: TextAI) -> None:
    with pytest.raises(ConfigError, match="Snowflake Cortex"):
        await run_cortex_complete(local, CancelToken(), prompt="Why did deals slip?", model="llama3.1-8b")


async def test_the_embedded_query_passes_the_sql_guard(local: TextAI) -> None:
    with pytest.raises(PolicyError):
        await run_cortex_text(local, CancelToken(), function="sentiment", sql="DELETE FROM crm.deals", text_column="x")


@pytest.mark.parametrize(
    ("texts", "sql", "text_column"),
    [([], "", ""), (["a"], "SELECT 1 AS x", "x"), ([], "SELECT 'a' AS x", "")],
)
async def test_texts_or_a_query_with_its_text_column_is_required(
    local: TextAI, texts: list[str], sql: str, text_column: str
) -> None:
    with pytest.raises(InputError):
        await run_cortex_text(local, CancelToken(), function="sentiment", texts=texts, sql=sql, text_column=text_column)


async def test_literal_texts_page_with_the_cursor(local: TextAI) -> None:
    texts = [f"text {i}" for i in range(5)]
    first = await run_cortex_text(local, CancelToken(), function="sentiment", texts=texts, max_rows=3)
    rest = await run_cortex_text(local, CancelToken(), function="sentiment", texts=texts, max_rows=3,
                                 cursor=first.next_cursor)  # fmt: skip
    assert [i.text for i in first.items + rest.items] == texts and not rest.truncated


async def test_the_tools_answer_through_mcp_with_the_text_delimited_as_data(warehouse_path: Path) -> None:
    spec = dataclasses.replace(SPEC, tools=[*SPEC.tools, cortex_text, cortex_complete])
    settings = Settings(environ={"SOPHIA_DUCKDB_PATH": str(warehouse_path)}, specs=spec.all_settings())
    from sophia_shared.server import build_server

    async with Client(build_server(spec, settings)) as client:
        ok = await client.call_tool("cortex_text", {"function": "sentiment", "texts": ["I love it"]})
        refused = await client.call_tool("cortex_complete", {"prompt": "hi"})
    assert ok.structured_content is not None and ok.structured_content["items"][0]["label"] == "positive"
    text = ok.content[0].text  # type: ignore[union-attr]
    assert "<<<warehouse data" in text and "I love it" in text
    assert refused.is_error and "SNOWFLAKE_ACCOUNT" in refused.content[0].text  # type: ignore[union-attr]


def test_the_tools_are_read_only_and_open_world_and_complete_is_not_idempotent() -> None:
    assert cortex_text.read_only and cortex_text.open_world and not cortex_text.writes
    assert cortex_complete.read_only and cortex_complete.open_world and not cortex_complete.idempotent
