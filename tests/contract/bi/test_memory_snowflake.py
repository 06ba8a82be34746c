"""The Snowflake memory store: the real connector on fakesnow's server, with test-only Cortex stand-ins.

fakesnow has neither the VECTOR type nor Cortex, so three stand-ins (TEST ONLY, installed straight
into fakesnow's DuckDB by the `cortex_stand_ins` fixture) let the store's own SQL run unchanged:
- `SNOWFLAKE.CORTEX.EMBED_TEXT_768(model, text)`: a DuckDB macro making a 768-d bag-of-words vector
  (hashed words), so texts sharing words are close. Its scores mean nothing beyond that.
- `VECTOR_COSINE_SIMILARITY`: fakesnow's sqlglot rewrites it to DuckDB's `list_cosine_distance`
  (a distance: it would invert the ranking); a macro of that name in the session's schema makes it
  the similarity again.
- `VECTOR(FLOAT, 768)` cannot be parsed by DuckDB: the store's CREATE TABLE is a fakesnow no-op and
  the fixture creates the same table with FLOAT[768]. What the store sends is asserted from the wire.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sophia_business_intelligence.backends.memory import open_memory_store
from sophia_business_intelligence.backends.memory.base import MemoryStore, RecallRequest, table_parts
from sophia_business_intelligence.backends.memory.snowflake import CORTEX_EMBED_MODEL, SnowflakeMemoryStore
from sophia_business_intelligence.backends.snowflake import SnowflakeWarehouse
from sophia_business_intelligence.settings import SETTINGS
from sophia_business_intelligence.tools.memory import forget, recall, remember
from sophia_shared.embedding import EmbeddingModelMismatch
from sophia_shared.errors import ConfigError, PolicyError
from sophia_shared.settings import Settings
from tests.fakes.snowflake_server import FakeSnowflakeServer

pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

GATE = "SOPHIA_MEMORY_ALLOW_WRITE"
EMBED_STAND_IN = (
    "CREATE OR REPLACE MACRO snowflake.cortex.embed_text_768(model, t) AS "
    "list_transform(range(768), i -> len(list_filter(string_split(lower(regexp_replace(t, '[^A-Za-z0-9 ]', '', 'g')), "
    "' '), w -> hash(w) % 768 = i)))::FLOAT[768]"
)
CREATE_TABLE_NOP = r"CREATE TABLE IF NOT EXISTS \S+ \(ID VARCHAR\(36\) .*EMBEDDING VECTOR\(FLOAT, 768\)"


def _fakesnow() -> Any:
    # By module name: the package attribute `fakesnow.server` is a function of the same name.
    return importlib.import_module("fakesnow.server").shared_fs


def _duck() -> Any:
    return _fakesnow().duck_conn


@pytest.fixture
def database() -> str:
    return f"MEM_{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture
def cortex_stand_ins(snowflake_server: FakeSnowflakeServer, database: str) -> Iterator[None]:
    """TEST ONLY: Cortex, VECTOR_COSINE_SIMILARITY and the VECTOR table, as described in the module doc."""
    duck = _duck()
    duck.execute("ATTACH IF NOT EXISTS ':memory:' AS snowflake")
    duck.execute("CREATE SCHEMA IF NOT EXISTS snowflake.cortex")
    duck.execute(EMBED_STAND_IN)
    duck.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {database}")
    duck.execute(
        f"CREATE OR REPLACE MACRO {database}.main.list_cosine_distance(a, b) AS array_cosine_similarity(a, b)::DOUBLE"
    )
    duck.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.AI_MEMORY")
    duck.execute(
        f"CREATE TABLE IF NOT EXISTS {database}.AI_MEMORY.MEMORIES (ID VARCHAR NOT NULL, TEXT VARCHAR NOT NULL, "
        "TAGS JSON, TAG_KEY VARCHAR NOT NULL, SOURCE VARCHAR NOT NULL, AUTHOR VARCHAR NOT NULL, "
        "CREATED_AT TIMESTAMP NOT NULL, MODEL VARCHAR NOT NULL, EMBEDDING FLOAT[768] NOT NULL)"
    )
    previous = _fakesnow().nop_regexes
    _fakesnow().nop_regexes = [CREATE_TABLE_NOP]
    try:
        yield
    finally:
        _fakesnow().nop_regexes = previous


def _settings(server: FakeSnowflakeServer, database: str, *, gate: str = "1", **extra: str) -> Settings:
    environ = server.settings_env(SNOWFLAKE_DATABASE=database, **extra) | {GATE: gate}
    return Settings(environ=environ, specs=SETTINGS)


@pytest.fixture
def store(snowflake_server: FakeSnowflakeServer, database: str, cortex_stand_ins: None) -> Iterator[MemoryStore]:
    settings = _settings(snowflake_server, database)
    warehouse = SnowflakeWarehouse(settings)
    memory = open_memory_store(settings, warehouse, writable=True)
    yield memory
    memory.close()
    warehouse.close()


FACTS = [
    ("Q3 numbers exclude the EMEA reseller deals.", ["emea", "q3", "decision"]),
    ("The weekly sales sync moved to Thursdays.", ["meetings"]),
    ("Churn is measured on logo count, not revenue.", ["definitions", "decision"]),
]


def test_remember_creates_the_schema_and_vector_table_then_embeds_in_the_insert(
    store: MemoryStore, snowflake_server: FakeSnowflakeServer
) -> None:
    result = remember(store, text=FACTS[0][0], tags=FACTS[0][1], source="finance call", author="ana")
    texts = snowflake_server.sql_texts()
    assert "CREATE SCHEMA IF NOT EXISTS AI_MEMORY" in texts
    create = next(t for t in texts if t.startswith("CREATE TABLE IF NOT EXISTS AI_MEMORY.MEMORIES"))
    assert "EMBEDDING VECTOR(FLOAT, 768) NOT NULL" in create and "CREATED_AT TIMESTAMP_NTZ" in create
    insert = next(s for s in snowflake_server.statements() if s["sqlText"].startswith("INSERT INTO AI_MEMORY"))
    assert "SNOWFLAKE.CORTEX.EMBED_TEXT_768(?, ?)" in insert["sqlText"]
    # Every value is bound: the memory text never becomes SQL text.
    assert FACTS[0][0] not in insert["sqlText"]
    bound = [b["value"] for b in insert["bindings"].values()]
    assert bound.count(FACTS[0][0]) == 2 and CORTEX_EMBED_MODEL in bound and result.id in bound
    assert json.loads(bound[2]) == ["decision", "emea", "q3"] and ",decision,emea,q3," in bound
    assert result.backend == "snowflake" and result.model == CORTEX_EMBED_MODEL
    row = _duck().execute(f"SELECT TEXT, MODEL, TAG_KEY FROM {_db(store)}.AI_MEMORY.MEMORIES").fetchall()
    assert row == [(FACTS[0][0], CORTEX_EMBED_MODEL, ",decision,emea,q3,")]


def _db(store: MemoryStore) -> str:
    assert isinstance(store, SnowflakeMemoryStore)
    return str(store.settings.get("SNOWFLAKE_DATABASE"))


def test_recall_ranks_by_cortex_similarity_computed_in_snowflake(
    store: MemoryStore, snowflake_server: FakeSnowflakeServer
) -> None:
    for text, tags in FACTS:
        remember(store, text=text, tags=tags, source="chat", author="ana")
    snowflake_server.clear()
    result = recall(store, query="what did we decide about the EMEA numbers")
    assert result.items[0].text == FACTS[0][0]
    assert result.items[0].score is not None and result.items[0].score > result.items[1].score  # type: ignore[operator]
    query = next(s for s in snowflake_server.statements() if "VECTOR_COSINE_SIMILARITY" in s["sqlText"])
    assert "WITH PROBE AS (SELECT SNOWFLAKE.CORTEX.EMBED_TEXT_768(?, ?) AS VEC)" in query["sqlText"]
    assert "what did we decide" not in query["sqlText"]
    assert [b["value"] for b in query["bindings"].values()][:3] == [
        CORTEX_EMBED_MODEL,
        "what did we decide about the EMEA numbers",
        CORTEX_EMBED_MODEL,
    ]


def test_recall_filters_by_all_tags_any_tags_and_since(store: MemoryStore) -> None:
    for text, tags in FACTS:
        remember(store, text=text, tags=tags, source="chat", author="ana")
    old = "Budgets are in EUR."
    remember(store, text=old, tags=["decision"], source="chat", author="ana")
    _duck().execute(
        f"UPDATE {_db(store)}.AI_MEMORY.MEMORIES SET CREATED_AT = TIMESTAMP '2020-01-01 00:00:00' WHERE TEXT = ?",
        [old],
    )
    decided = recall(store, query="numbers", tags=["decision"], top_k=10)
    assert {i.text for i in decided.items} == {FACTS[0][0], FACTS[2][0], old}
    both = recall(store, tags=["decision", "emea"])
    assert [i.text for i in both.items] == [FACTS[0][0]] and both.order == "newest-no-query"
    either = recall(store, tags_any=["meetings", "definitions"])
    assert {i.text for i in either.items} == {FACTS[1][0], FACTS[2][0]}
    recent = recall(store, tags=["decision"], since="2024-01-01")
    assert old not in {i.text for i in recent.items} and len(recent.items) == 2
    assert recent.items[0].created_at.endswith("+00:00")


def test_forget_by_ids_and_by_tags_with_confirm(store: MemoryStore) -> None:
    ids = [remember(store, text=t, tags=tags, source="", author="").id for t, tags in FACTS]
    gone = forget(store, ids=[ids[1], "no-such-id"], tags=[])
    assert gone.ids == [ids[1]] and gone.not_found == ["no-such-id"]
    with pytest.raises(PolicyError, match="it would delete 2 memories"):
        forget(store, ids=[], tags=["decision"])
    assert forget(store, ids=[], tags=["decision"], confirm=True).forgotten == 2
    assert recall(store).items == []


def test_recall_refuses_rows_embedded_by_another_model(store: MemoryStore) -> None:
    remember(store, text=FACTS[0][0], tags=[], source="", author="")
    _duck().execute(f"UPDATE {_db(store)}.AI_MEMORY.MEMORIES SET MODEL = 'e5-base-v2'")
    with pytest.raises(EmbeddingModelMismatch, match="e5-base-v2"):
        recall(store, query="EMEA")
    with pytest.raises(EmbeddingModelMismatch):
        remember(store, text="Another fact.", tags=[], source="", author="")


def test_recall_before_anything_was_remembered_finds_nothing(
    snowflake_server: FakeSnowflakeServer, database: str
) -> None:
    settings = _settings(snowflake_server, database, gate="0")
    warehouse = SnowflakeWarehouse(settings)
    store = open_memory_store(settings, warehouse, writable=False)
    try:
        assert store.recall(RecallRequest(query="")).memories == []
        assert store.count_tagged(["emea"]) == 0
    finally:
        store.close()
        warehouse.close()


def test_without_the_memory_gate_nothing_reaches_snowflake(
    snowflake_server: FakeSnowflakeServer, database: str
) -> None:
    settings = _settings(snowflake_server, database, gate="0")
    warehouse = SnowflakeWarehouse(settings)
    store = open_memory_store(settings, warehouse, writable=True)  # even if the caller said writable
    try:
        with pytest.raises(PolicyError, match=GATE):
            store.remember("Q3 excludes EMEA resellers.", tags=[], source="", author="")
        with pytest.raises(PolicyError, match=GATE):
            store.forget_tagged(["emea"])
    finally:
        store.close()
        warehouse.close()
    assert snowflake_server.requests == []  # not even a login


def test_the_memory_table_setting_is_validated_before_any_sql() -> None:
    assert table_parts("ai_memory.memories") == ("AI_MEMORY", "MEMORIES")
    assert table_parts("") == ("AI_MEMORY", "MEMORIES")
    assert table_parts("DB.S.T") == ("DB", "S", "T")
    for bad in ("A.B.C.D", 'AI_MEMORY."X"', "AI_MEMORY.MEMORIES; DROP TABLE X", "1ABC", "A..B"):
        with pytest.raises(ConfigError, match="SOPHIA_MEMORY_TABLE"):
            table_parts(bad)


def test_a_memory_table_in_another_database_is_created_where_the_setting_says(
    snowflake_server: FakeSnowflakeServer, database: str, cortex_stand_ins: None
) -> None:
    settings = _settings(snowflake_server, database, SOPHIA_MEMORY_TABLE=f"{database}.AI_MEMORY.MEMORIES")
    warehouse = SnowflakeWarehouse(settings)
    store = open_memory_store(settings, warehouse, writable=True)
    try:
        store.remember("Fiscal year starts in February.", tags=["finance"], source="", author="")
        found = store.recall(RecallRequest(query="when does the fiscal year start"))
    finally:
        store.close()
        warehouse.close()
    assert f"CREATE SCHEMA IF NOT EXISTS {database}.AI_MEMORY" in snowflake_server.sql_texts()
    assert [m.text for m in found.memories] == ["Fiscal year starts in February."]
    assert found.memories[0].created_at.tzinfo == dt.UTC
