"""TEST-ONLY stand-ins for Snowflake Cortex SQL functions, registered in fakesnow's in-process DuckDB.

fakesnow does not know Cortex. These DuckDB macros return the shapes Snowflake documents (not real model
output) so tests can check how we build the SQL, bind values and read the results:
- SNOWFLAKE.CORTEX.COMPLETE(model, messages, options) → JSON `{"choices": [{"messages": "<text>"}], …,
  "usage": {…}}` (`messages` is a string); AI_COMPLETE(…, show_details => TRUE) the same.
- SENTIMENT → a float in [-1, 1]; AI_SENTIMENT → `{"categories": [{"name": "overall", "sentiment": …}]}`.
- CLASSIFY_TEXT → `{"label"}`; AI_CLASSIFY → `{"labels": [...]}`; EXTRACT_ANSWER → `[{"answer", "score"}]`.
- EMBED_TEXT_768/1024 and AI_EMBED → an array of that many numbers.
The legacy functions live in a `SNOWFLAKE.CORTEX` schema as on Snowflake. DuckDB resolves unqualified
functions in the session's schema only, so the AI_* stand-ins are made in the test's database and schema.

Failures: a stand-in calls DuckDB's `error()` with a marked message, and `snowflake_errors` (a fixture
that patches fakesnow's cursor for the test) turns it into the ProgrammingError Snowflake would send,
with its error number, SQL state and text. Triggers: a text containing NO_ROLE (missing CORTEX_USER),
the model UNAVAILABLE_MODEL (model not in the region), the model TINY_MODEL (token limit), and
`install(..., ai_functions=False)` for an account without the AI_* functions ("Unknown function").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

MARK = "SNOWFLAKE-ERROR"
NO_ROLE = "[no-cortex-role]"
UNAVAILABLE_MODEL = "claude-unavailable-here"
TINY_MODEL = "tiny-context-model"
# Snowflake's wording for these failures (error number, SQL state, message).
PRIVILEGES_ERROR = (3001, "42501", "SQL access control error:\nInsufficient privileges to operate on schema 'CORTEX'")
REGION_ERROR = (
    100351,
    "P0000",
    "Request failed for external function COMPLETE$V6 with remote service error: 400 "
    f"'\"model {UNAVAILABLE_MODEL} is unavailable in your region\"'",
)
TOKENS_ERROR = (
    100351,
    "P0000",
    "Request failed for external function COMPLETE$V6 with remote service error: 400 '\"max tokens of 8192 exceeded\"'",
)


def _raise(error: tuple[int, str, str]) -> str:
    errno, sqlstate, message = error
    text = f"{MARK}|{errno}|{sqlstate}|{message}".replace("'", "''")
    return f"error('{text}')"


def _unknown(name: str) -> tuple[int, str, str]:
    return (2140, "42601", f"SQL compilation error:\nUnknown function {name}")


def _guarded(text_arg: str, body: str) -> str:
    return f"CASE WHEN contains({text_arg}, '{NO_ROLE}') THEN {_raise(PRIVILEGES_ERROR)} ELSE {body} END"


def _model_guarded(model_arg: str, body: str) -> str:
    return (
        f"CASE WHEN {model_arg} = '{UNAVAILABLE_MODEL}' THEN {_raise(REGION_ERROR)} "
        f"WHEN {model_arg} = '{TINY_MODEL}' THEN {_raise(TOKENS_ERROR)} ELSE {body} END"
    )


_SCORE = "(CASE WHEN t ILIKE '%good%' THEN 0.75 WHEN t ILIKE '%bad%' THEN -0.6 ELSE 0.0 END)::DOUBLE"
_LABEL = "CASE WHEN t ILIKE '%good%' THEN 'positive' WHEN t ILIKE '%bad%' THEN 'negative' ELSE 'neutral' END"
_COMPLETION = (
    "json_object('choices', json_array(json_object('messages', 'stand-in answer to: ' || {prompt})), "
    "'created', 1700000000, 'model', model, 'usage', json_object('prompt_tokens', length({prompt}), "
    "'completion_tokens', 7, 'total_tokens', length({prompt}) + 7))"
)


def _vector(size: str) -> str:
    # A unit vector whose first value depends on the text, so rows can be told apart.
    return (
        f"to_json(list_transform(range({size}), i -> CASE WHEN i = 0 THEN cos(length(t)) "
        "WHEN i = 1 THEN sin(length(t)) ELSE 0.0 END))"
    )


LEGACY_MACROS = {
    "SENTIMENT(t)": _guarded("t", _SCORE),
    "SUMMARIZE(t)": _guarded("t", "'Summary: ' || left(t, 24)"),
    "TRANSLATE(t, source, target)": _guarded("t", "'[' || source || '>' || target || '] ' || t"),
    "CLASSIFY_TEXT(t, categories)": _guarded("t", "json_object('label', json_extract_string(categories, '$[0]'))"),
    "EXTRACT_ANSWER(t, question)": _guarded(
        "t", "json_array(json_object('answer', split_part(t, ' ', 1), 'score', 0.87))"
    ),
    "EMBED_TEXT_768(model, t)": _guarded("t", _vector("768")),
    "EMBED_TEXT_1024(model, t)": _guarded("t", _vector("1024")),
    "COMPLETE(model, messages, options)": _model_guarded(
        "model",
        _guarded("messages::VARCHAR", _COMPLETION.format(prompt="json_extract_string(messages, '$[#-1].content')")),
    ),
}
AI_MACROS = {
    "AI_SENTIMENT(t)": _guarded(
        "t", f"json_object('categories', json_array(json_object('name', 'overall', 'sentiment', {_LABEL})))"
    ),
    "AI_TRANSLATE(t, source, target)": _guarded("t", "'[' || source || '>' || target || '] ' || t"),
    "AI_CLASSIFY(t, categories)": _guarded(
        "t", "json_object('labels', json_array(json_extract_string(categories, '$[1]')))"
    ),
    "AI_EMBED(model, t)": _guarded("t", _vector("CASE WHEN model LIKE '%-l-%' THEN 1024 ELSE 768 END")),
    "AI_COMPLETE(model, prompt, model_parameters := NULL, show_details := FALSE)": _model_guarded(
        "model", _guarded("prompt", _COMPLETION.format(prompt="prompt"))
    ),
}


def install(database: str, schema: str, *, ai_functions: bool = True) -> None:
    """Create the stand-ins: SNOWFLAKE.CORTEX.* once, AI_* in `database.schema` (which must exist)."""
    import sys

    import fakesnow.server  # noqa: F401 - the module; `fakesnow.server` the attribute is a function

    con = sys.modules["fakesnow.server"].shared_fs.duck_conn
    con.execute("ATTACH IF NOT EXISTS ':memory:' AS SNOWFLAKE")
    con.execute("CREATE SCHEMA IF NOT EXISTS SNOWFLAKE.CORTEX")
    for signature, body in LEGACY_MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO SNOWFLAKE.CORTEX.{signature} AS {body}")
    for signature, body in AI_MACROS.items():
        name = signature.split("(")[0]
        made = body if ai_functions else _raise(_unknown(name))
        con.execute(f'CREATE OR REPLACE MACRO "{database}"."{schema}".{signature} AS {made}')


@pytest.fixture
def snowflake_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While the test runs, a stand-in's marked `error()` reaches the client as Snowflake's own error."""
    import duckdb
    import snowflake.connector.errors
    from fakesnow.cursor import FakeSnowflakeCursor

    original = FakeSnowflakeCursor.execute

    def execute(self: FakeSnowflakeCursor, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except duckdb.InvalidInputException as exc:
            found = re.search(rf"{MARK}\|(\d+)\|(\w+)\|(.*)", str(exc), re.DOTALL)
            if found is None:
                raise
            errno, sqlstate, message = int(found[1]), found[2], found[3]
            raise snowflake.connector.errors.ProgrammingError(msg=message, errno=errno, sqlstate=sqlstate) from None

    monkeypatch.setattr(FakeSnowflakeCursor, "execute", execute)
    yield
