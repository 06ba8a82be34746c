"""Cortex through SQL on fakesnow's server, with TEST-ONLY stand-in functions (tests/fakes/cortex_sql.py).

The stand-ins return Snowflake's documented shapes, not model output: these tests prove the SQL we build,
what we bind, how we read each shape, how we page, and what a user is told when Snowflake refuses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.snowflake import SnowflakeWarehouse
from sophia_business_intelligence.backends.text_ai import open_text_ai
from sophia_business_intelligence.backends.text_ai.snowflake_cortex import SnowflakeCortex
from sophia_business_intelligence.settings import SETTINGS
from sophia_business_intelligence.sql_guard import check_write
from sophia_business_intelligence.tools.cortex import run_cortex_complete, run_cortex_text
from sophia_shared.errors import ConfigError, InputError, PolicyError
from sophia_shared.settings import Settings
from tests.fakes import cortex_sql
from tests.fakes.cortex_sql import NO_ROLE, TINY_MODEL, UNAVAILABLE_MODEL, snowflake_errors  # noqa: F401
from tests.fakes.snowflake_server import FakeSnowflakeServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning"),
]
NOTES = [(1, "A good call, they loved it"), (2, "bad news: budget frozen"), (3, "neutral check-in"),
         (4, "good progress"), (5, "bad timing again")]  # fmt: skip


class Account:
    """A fresh database on the fake with a NOTES table and the stand-ins installed."""

    def __init__(self, server: FakeSnowflakeServer, family: str) -> None:
        self.server = server
        self.database = f"CORTEX_{uuid.uuid4().hex[:8].upper()}"
        env = server.settings_env(
            SNOWFLAKE_DATABASE=self.database,
            SNOWFLAKE_SCHEMA="S",
            SOPHIA_CORTEX_FUNCTIONS=family,
            SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE="1",
        )
        self.settings = Settings(environ=env, specs=SETTINGS)
        self.warehouse = SnowflakeWarehouse(self.settings)
        self.warehouse.ping()  # fakesnow creates the database and schema at login
        self._write("CREATE TABLE NOTES (ID INT, BODY VARCHAR)")
        self._write("INSERT INTO NOTES VALUES " + ", ".join("(?, ?)" for _ in NOTES), [v for r in NOTES for v in r])

    def _write(self, sql: str, params: list[Any] | None = None) -> None:
        self.warehouse.execute_write(check_write(sql, dialect="snowflake"), params=params or [], cancel=CancelToken())

    def cortex(self, *, ai_functions: bool = True) -> SnowflakeCortex:
        cortex_sql.install(self.database, "S", ai_functions=ai_functions)
        ai = open_text_ai(self.settings, self.warehouse)
        assert isinstance(ai, SnowflakeCortex)
        return ai

    def last_statement(self) -> dict[str, Any]:
        return self.server.statements()[-1]


@pytest.fixture
def account(snowflake_server: FakeSnowflakeServer) -> Iterator[Account]:
    made = Account(snowflake_server, "ai")
    yield made
    made.warehouse.close()


@pytest.fixture
def legacy(snowflake_server: FakeSnowflakeServer) -> Iterator[Account]:
    made = Account(snowflake_server, "legacy")
    yield made
    made.warehouse.close()


def bound(statement: dict[str, Any]) -> list[Any]:
    bindings = statement.get("bindings") or {}
    return [bindings[str(i)]["value"] for i in range(1, len(bindings) + 1)]


# -- building, binding and reading -----------------------------------------------------------------


async def test_sentiment_over_a_query_wraps_it_and_keeps_the_other_columns(account: Account) -> None:
    result = await run_cortex_text(
        account.cortex(), CancelToken(), function="sentiment",
        sql="SELECT id, body FROM notes WHERE id <= ? ORDER BY id", text_column="body", params=[3],
    )  # fmt: skip
    assert [(i.columns["ID"], i.label) for i in result.items] == [(1, "positive"), (2, "negative"), (3, "neutral")]
    assert result.items[1].text == "bad news: budget frozen"
    assert result.engine == "Snowflake Cortex AI_SENTIMENT" and result.via == "sql"
    sent = account.last_statement()
    assert 'AI_SENTIMENT(q."BODY")' in sent["sqlText"]
    assert "SELECT id, body FROM notes WHERE id <= ? ORDER BY id" in sent["sqlText"]
    assert bound(sent) == ["3", "20", "0"]  # the user's value, then the row cap and offset


async def test_legacy_sentiment_of_literal_texts_binds_them_and_returns_scores(legacy: Account) -> None:
    texts = ["good'; DROP TABLE notes; --", "bad day", "plain"]
    result = await run_cortex_text(legacy.cortex(), CancelToken(), function="sentiment", texts=texts)
    assert [(i.text, i.score) for i in result.items] == [(texts[0], 0.75), (texts[1], -0.6), (texts[2], 0.0)]
    sent = legacy.last_statement()
    assert "SNOWFLAKE.CORTEX.SENTIMENT(column2)" in sent["sqlText"]
    assert "DROP" not in sent["sqlText"] and texts[0] in bound(sent)


async def test_translate_binds_both_languages(account: Account) -> None:
    result = await run_cortex_text(
        account.cortex(), CancelToken(), function="translate", texts=["Hallo"], source_language="de",
        target_language="en",
    )  # fmt: skip
    assert result.items[0].output == "[de>en] Hallo"
    assert "AI_TRANSLATE(column2, ?, ?)" in account.last_statement()["sqlText"]


async def test_classify_reads_labels_from_ai_classify_and_label_from_classify_text(
    account: Account, legacy: Account
) -> None:
    categories = ["renewal", "churn risk"]
    new = await run_cortex_text(
        account.cortex(), CancelToken(), function="classify", texts=["x"], categories=categories
    )
    old = await run_cortex_text(legacy.cortex(), CancelToken(), function="classify", texts=["x"], categories=categories)
    assert (new.items[0].label, new.items[0].labels) == ("churn risk", ["churn risk"])
    assert (old.items[0].label, old.items[0].labels) == ("renewal", ["renewal"])
    assert json.dumps(categories) in bound(legacy.last_statement())


async def test_extract_answer_reads_the_array_of_answers_and_scores(account: Account) -> None:
    result = await run_cortex_text(
        account.cortex(), CancelToken(), function="extract_answer", texts=["Acme signs Friday"], question="Who?"
    )
    assert result.items[0].answers == [{"answer": "Acme", "score": 0.87}]
    assert "SNOWFLAKE.CORTEX.EXTRACT_ANSWER(column2, ?)" in account.last_statement()["sqlText"]


async def test_embed_picks_768_or_1024_by_model_in_both_families(account: Account, legacy: Account) -> None:
    small = await run_cortex_text(account.cortex(), CancelToken(), function="embed", texts=["a", "bb"])
    large = await run_cortex_text(
        legacy.cortex(), CancelToken(), function="embed", texts=["a"], embed_model="snowflake-arctic-embed-l-v2.0"
    )
    assert (small.dimension, len(small.items[1].vector), small.model) == (768, 768, "snowflake-arctic-embed-m-v1.5")
    assert small.items[0].vector[:2] != small.items[1].vector[:2]  # one vector per text, in order
    assert (large.dimension, large.engine) == (1024, "Snowflake Cortex SNOWFLAKE.CORTEX.EMBED_TEXT_1024")


async def test_legacy_embed_refuses_a_model_of_unknown_dimension(legacy: Account) -> None:
    with pytest.raises(InputError, match="mystery") as caught:
        await run_cortex_text(legacy.cortex(), CancelToken(), function="embed", texts=["a"], embed_model="mystery")
    assert "snowflake-arctic-embed-m-v1.5" in caught.value.hint


async def test_complete_reads_the_messages_string_and_reports_tokens(account: Account) -> None:
    result = await run_cortex_complete(account.cortex(), CancelToken(), prompt="Say hi", model="llama3.1-8b")
    item = result.items[0]
    assert item.output == "stand-in answer to: Say hi" and result.via == "sql"
    assert result.usage is not None and result.usage.total_tokens == len("Say hi") + 7
    assert "show_details => TRUE" in account.last_statement()["sqlText"]
    assert bound(account.last_statement())[:2] == ["llama3.1-8b", "Say hi"]


async def test_legacy_complete_per_row_sends_messages_and_options_and_sums_tokens(legacy: Account) -> None:
    result = await run_cortex_complete(
        legacy.cortex(), CancelToken(), prompt="Summarise:", model="mistral-large2", system="Be brief.",
        max_tokens=50, sql="SELECT id, body FROM notes ORDER BY id", text_column="BODY", max_rows=2,
    )  # fmt: skip
    assert [i.output for i in result.items] == [
        "stand-in answer to: Summarise:\n\nA good call, they loved it",
        "stand-in answer to: Summarise:\n\nbad news: budget frozen",
    ]
    assert result.usage is not None
    assert result.usage.total_tokens == sum(i.usage.total_tokens for i in result.items if i.usage)
    assert result.truncated and result.next_cursor
    completion = next(s for s in legacy.server.statements() if "COMPLETE" in s["sqlText"])
    assert "SNOWFLAKE.CORTEX.COMPLETE(?, ARRAY_CONSTRUCT(OBJECT_CONSTRUCT('role', 'system'" in completion["sqlText"]
    assert bound(completion)[:4] == [
        "mistral-large2",
        "Be brief.",
        "Summarise:\n\n",
        '{"temperature": 0.0, "max_tokens": 50}',
    ]


async def test_pages_continue_with_the_cursor_and_stop_at_the_end(account: Account) -> None:
    ai = account.cortex()
    args: dict[str, Any] = {"function": "sentiment", "sql": "SELECT id, body FROM notes ORDER BY id",
                            "text_column": "body", "max_rows": 3}  # fmt: skip
    first = await run_cortex_text(ai, CancelToken(), **args)
    second = await run_cortex_text(ai, CancelToken(), **args, cursor=first.next_cursor)
    assert [i.columns["ID"] for i in first.items] == [1, 2, 3] and first.truncated
    assert [i.columns["ID"] for i in second.items] == [4, 5] and not second.truncated
    model_calls = [s for s in account.server.statements() if "AI_SENTIMENT" in s["sqlText"]]
    assert len(model_calls) == 2  # the "more rows?" probe never calls the model


# -- what the user is told -------------------------------------------------------------------------


@pytest.mark.usefixtures("snowflake_errors")
async def test_a_role_without_cortex_user_is_told_to_get_the_database_role(account: Account) -> None:
    with pytest.raises(ConfigError) as caught:
        await run_cortex_text(account.cortex(), CancelToken(), function="sentiment", texts=[f"hi {NO_ROLE}"])
    assert "CORTEX_USER" in caught.value.message and "Insufficient privileges" in caught.value.message
    assert "GRANT DATABASE ROLE SNOWFLAKE.CORTEX_USER" in caught.value.hint


@pytest.mark.usefixtures("snowflake_errors")
async def test_an_account_without_ai_functions_is_told_to_use_legacy(account: Account) -> None:
    with pytest.raises(ConfigError) as caught:
        await run_cortex_text(account.cortex(ai_functions=False), CancelToken(), function="sentiment", texts=["x"])
    assert "AI_SENTIMENT" in caught.value.message
    assert "SOPHIA_CORTEX_FUNCTIONS=legacy" in caught.value.hint


@pytest.mark.usefixtures("snowflake_errors")
async def test_a_model_missing_in_the_region_suggests_cross_region_or_another_model(account: Account) -> None:
    with pytest.raises(ConfigError) as caught:
        await run_cortex_complete(account.cortex(), CancelToken(), prompt="hi", model=UNAVAILABLE_MODEL)
    assert "CORTEX_ENABLED_CROSS_REGION" in caught.value.hint and "SOPHIA_CORTEX_MODEL" in caught.value.hint


@pytest.mark.usefixtures("snowflake_errors")
async def test_a_token_limit_says_to_send_less(legacy: Account) -> None:
    with pytest.raises(InputError, match="token limit"):
        await run_cortex_complete(legacy.cortex(), CancelToken(), prompt="hi", model=TINY_MODEL)


async def test_the_users_query_is_checked_by_the_guard_before_anything_runs(account: Account) -> None:
    ai = account.cortex()
    before = len(account.server.statements())
    with pytest.raises(PolicyError):
        await run_cortex_text(ai, CancelToken(), function="sentiment", sql="DELETE FROM notes", text_column="body")
    with pytest.raises(PolicyError):
        await run_cortex_text(
            ai, CancelToken(), function="sentiment", sql="SELECT body FROM notes; DROP TABLE notes", text_column="body"
        )
    with pytest.raises(InputError, match="returns rows"):
        await run_cortex_text(ai, CancelToken(), function="sentiment", sql="SHOW TABLES", text_column="name")
    assert len(account.server.statements()) == before


async def test_an_unknown_text_column_is_refused_with_the_columns_there_are(account: Account) -> None:
    with pytest.raises(InputError) as caught:
        await run_cortex_text(
            account.cortex(), CancelToken(), function="sentiment", sql="SELECT id, body FROM notes",
            text_column='body" FROM notes; --',
        )  # fmt: skip
    assert "ID, BODY" in caught.value.hint
    assert not any("AI_SENTIMENT" in s["sqlText"] for s in account.server.statements())
