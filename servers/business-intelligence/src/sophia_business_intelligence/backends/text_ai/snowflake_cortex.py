"""Cortex on Snowflake: the SQL functions over the user's rows or texts, and REST for single completions.

We write the SQL; the user's part (a read-only query) is checked by `sql_guard` on its own and again
inside the statement we compose, and every value (texts, model, languages, categories, row caps) is a
bound `?` parameter. `SOPHIA_CORTEX_FUNCTIONS` picks the family:

| function       | ai (default)                      | legacy (SNOWFLAKE.CORTEX.*)               |
|----------------|-----------------------------------|-------------------------------------------|
| complete       | AI_COMPLETE(…, show_details=>TRUE) | COMPLETE(model, [messages], {options})    |
| sentiment      | AI_SENTIMENT → a label            | SENTIMENT → a score in [-1, 1]            |
| summarize      | SUMMARIZE (no per-row AI_ form)   | SUMMARIZE                                 |
| translate      | AI_TRANSLATE(text, from, to)      | TRANSLATE(text, from, to)                 |
| classify       | AI_CLASSIFY → {labels}            | CLASSIFY_TEXT → {label}                   |
| extract_answer | EXTRACT_ANSWER (no AI_ form)      | EXTRACT_ANSWER → [{answer, score}]        |
| embed          | AI_EMBED(model, text)             | EMBED_TEXT_768 / EMBED_TEXT_1024          |

Single completions (no rows) go to the Cortex REST endpoint when the credential is a PAT or a key
pair (the REST API accepts only those): no virtual warehouse runs. Everything else runs as SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sophia_shared.errors import ConfigError, InputError, SophiaError
from sophia_shared.settings import Settings
from sophia_shared.workers import run_blocking

from ...names import WAREHOUSE_DESCRIBE_TABLE
from ...sql_guard import CheckedStatement, check_read_only
from ..base import CancelToken, RowPage, Warehouse
from ..snowflake import quote_identifier
from .base import CompletionTask, TextOutcome, TextRun, TextSelection, TextTask, Usage, find_column

FAMILIES = ("ai", "legacy")
DEFAULT_EMBED_MODEL = "snowflake-arctic-embed-m-v1.5"
# VENDOR-NOTES §6: the legacy embed functions are split by vector length.
EMBED_DIMENSIONS: dict[str, int] = {
    "snowflake-arctic-embed-m-v1.5": 768,
    "snowflake-arctic-embed-m": 768,
    "e5-base-v2": 768,
    "snowflake-arctic-embed-l-v2.0": 1024,
    "snowflake-arctic-embed-l-v2.0-8k": 1024,
    "nv-embed-qa-4": 1024,
    "multilingual-e5-large": 1024,
    "voyage-multilingual-2": 1024,
}
RESULT = '"SOPHIA_RESULT"'
_READ_KINDS = frozenset({"SELECT", "WITH", "VALUES"})
_QUERY_ROLE_HINT = (
    "Ask an administrator to run GRANT DATABASE ROLE SNOWFLAKE.CORTEX_USER TO ROLE <your role>, "
    "or set SNOWFLAKE_ROLE to a role that has it."
)


def function_family(settings: Settings) -> str:
    """`ai` or `legacy`, from SOPHIA_CORTEX_FUNCTIONS."""
    family = (settings.get("SOPHIA_CORTEX_FUNCTIONS") or "ai").strip().lower()
    if family not in FAMILIES:
        raise ConfigError(
            f"SOPHIA_CORTEX_FUNCTIONS is {family!r}; it must be ai or legacy.",
            hint="Set SOPHIA_CORTEX_FUNCTIONS=ai (AI_COMPLETE, AI_SENTIMENT, …) or legacy (SNOWFLAKE.CORTEX.*).",
        )
    return family


# -- the function call for each family ---------------------------------------------------------


def function_call(task: TextTask, family: str, text: str) -> tuple[str, list[Any], str]:
    """The SQL call on the text expression `text`, its bound values (in order) and its name."""
    f = task.function
    legacy = family == "legacy"
    if f == "sentiment":
        name = "SNOWFLAKE.CORTEX.SENTIMENT" if legacy else "AI_SENTIMENT"
        return f"{name}({text})", [], name
    if f == "summarize":
        return f"SNOWFLAKE.CORTEX.SUMMARIZE({text})", [], "SNOWFLAKE.CORTEX.SUMMARIZE"
    if f == "translate":
        if not task.target_language:
            raise InputError("translate needs target_language.", hint="Pass a language code such as 'en' or 'de'.")
        name = "SNOWFLAKE.CORTEX.TRANSLATE" if legacy else "AI_TRANSLATE"
        return f"{name}({text}, ?, ?)", [task.source_language, task.target_language], name
    if f == "classify":
        if not 2 <= len(task.categories) <= 100:
            raise InputError(
                "classify needs 2 to 100 categories.", hint="Pass categories=['label one', 'label two', …]."
            )
        name = "SNOWFLAKE.CORTEX.CLASSIFY_TEXT" if legacy else "AI_CLASSIFY"
        return f"{name}({text}, PARSE_JSON(?)::ARRAY)", [json.dumps(list(task.categories))], name
    if f == "extract_answer":
        if not task.question.strip():
            raise InputError("extract_answer needs a question.", hint="Pass question='…'.")
        return f"SNOWFLAKE.CORTEX.EXTRACT_ANSWER({text}, ?)", [task.question], "SNOWFLAKE.CORTEX.EXTRACT_ANSWER"
    if f == "embed":
        model = task.embed_model or DEFAULT_EMBED_MODEL
        if not legacy:
            return f"AI_EMBED(?, {text})", [model], "AI_EMBED"
        dimension = EMBED_DIMENSIONS.get(model)
        if dimension is None:
            raise InputError(
                f"{model!r} is not a Cortex embedding model this server knows.",
                hint="Use one of: " + ", ".join(EMBED_DIMENSIONS) + " (or SOPHIA_CORTEX_FUNCTIONS=ai for AI_EMBED).",
            )
        name = f"SNOWFLAKE.CORTEX.EMBED_TEXT_{dimension}"
        return f"{name}(?, {text})", [model], name
    raise InputError(f"Unknown Cortex function {f!r}.")


def completion_call(task: CompletionTask, family: str, prompt: str) -> tuple[str, list[Any], str]:
    """The COMPLETE call that returns JSON with `choices` and `usage`; `prompt` is a SQL text expression."""
    options: dict[str, Any] = {}
    if task.temperature is not None:
        options["temperature"] = task.temperature
    if task.max_tokens is not None:
        options["max_tokens"] = task.max_tokens
    if family == "legacy":
        # With an options object the prompt must be a message array, and the answer is JSON with usage.
        messages, values = [], []
        if task.system:
            messages.append("OBJECT_CONSTRUCT('role', 'system', 'content', ?)")
            values.append(task.system)
        messages.append(f"OBJECT_CONSTRUCT('role', 'user', 'content', {prompt})")
        call = f"SNOWFLAKE.CORTEX.COMPLETE(?, ARRAY_CONSTRUCT({', '.join(messages)}), PARSE_JSON(?))"
        return call, [task.model, *values, "__PROMPT__", json.dumps(options)], "SNOWFLAKE.CORTEX.COMPLETE"
    # AI_COMPLETE's single-string form has no system role: the instruction leads the prompt.
    call = "AI_COMPLETE(model => ?, prompt => {p}, model_parameters => PARSE_JSON(?), show_details => TRUE)"
    return call.format(p=prompt), [task.model, "__PROMPT__", json.dumps(options)], "AI_COMPLETE"


def _placed(values: list[Any], prompt_values: list[Any]) -> list[Any]:
    """`values` with the prompt's own bound values put where the prompt expression sits."""
    i = values.index("__PROMPT__")
    return [*values[:i], *prompt_values, *values[i + 1 :]]


# -- parsing what Snowflake returns -------------------------------------------------------------


def parse_json_value(value: Any) -> Any:
    """VARIANT, OBJECT and ARRAY values arrive from the connector as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def outcome(task: TextTask, text: str, columns: dict[str, Any], value: Any) -> TextOutcome:
    """One row's result in the shape its function documents."""
    if value is None:
        return TextOutcome(text=text, columns=columns)
    f = task.function
    data = parse_json_value(value)
    if f == "sentiment":
        if isinstance(data, dict):  # AI_SENTIMENT: {"categories": [{"name": "overall", "sentiment": "…"}]}
            overall: dict[str, Any] = next((c for c in data.get("categories", []) if c.get("name") == "overall"), {})
            return TextOutcome(text=text, columns=columns, label=overall.get("sentiment"))
        return TextOutcome(text=text, columns=columns, score=float(data))
    if f in ("summarize", "translate"):
        return TextOutcome(text=text, columns=columns, output=str(data))
    if f == "classify":
        labels = data.get("labels") or ([data["label"]] if data.get("label") else [])
        return TextOutcome(text=text, columns=columns, label=labels[0] if labels else None, labels=tuple(labels))
    if f == "extract_answer":
        answers = tuple({"answer": a.get("answer"), "score": a.get("score")} for a in data or [])
        return TextOutcome(text=text, columns=columns, answers=answers)
    return TextOutcome(text=text, columns=columns, vector=tuple(float(x) for x in data))


def completion_outcome(text: str, columns: dict[str, Any], value: Any) -> TextOutcome:
    """COMPLETE's JSON: `{"choices": [{"messages": "<text>"}], "usage": {…}}` (`messages` is a string)."""
    data = parse_json_value(value)
    if not isinstance(data, dict):
        return TextOutcome(text=text, columns=columns, output=None if data is None else str(data))
    choice = (data.get("choices") or [{}])[0]
    answer = choice.get("messages")
    if answer is None:
        answer = (choice.get("message") or {}).get("content")
    return TextOutcome(text=text, columns=columns, output=answer, usage=usage_of(data.get("usage")))


def usage_of(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt, completion = int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0)
    return Usage(prompt, completion, int(data.get("total_tokens") or prompt + completion))


# -- errors -------------------------------------------------------------------------------------

_PRIVILEGES = re.compile(r"insufficient privileges|not authorized|access control", re.IGNORECASE)
_UNKNOWN_FUNCTION = re.compile(r"unknown (?:user-defined )?function\s+([\w.$]+)", re.IGNORECASE)
_REGION = re.compile(r"(?:unavailable|not available|not supported) in (?:your|this|the current) region", re.I)
_UNKNOWN_MODEL = re.compile(r"unknown model|invalid model|model\b[^.]*\b(?:does not exist|not found|unsupported)", re.I)
_TOKENS = re.compile(
    r"max(?:imum)?[ _](?:number of )?tokens|token limit|too many tokens|context (?:window|length)|"
    r"exceeds? the (?:model'?s? )?(?:maximum|limit)",
    re.IGNORECASE,
)
_INVALID_IDENTIFIER = re.compile(r"invalid identifier", re.IGNORECASE)


def actionable_error(exc: SophiaError, *, family: str, function: str, model: str = "") -> SophiaError:
    """A Snowflake failure of a Cortex call as what the user can do about it (else `exc` unchanged)."""
    text = exc.message
    said = text.removeprefix("Snowflake rejected the statement: ")
    if _PRIVILEGES.search(text) and ("CORTEX" in text.upper() or function.upper() in text.upper()):
        return ConfigError(
            f"The Snowflake role may not use Cortex: the SNOWFLAKE.CORTEX_USER database role is missing ({said}).",
            hint=_QUERY_ROLE_HINT,
        )
    unknown = _UNKNOWN_FUNCTION.search(text)
    if unknown:
        name = unknown.group(1).upper()
        if name.startswith("AI_") and family == "ai":
            return ConfigError(
                f"This Snowflake account does not know {name} ({said}).",
                hint="Set SOPHIA_CORTEX_FUNCTIONS=legacy to use the SNOWFLAKE.CORTEX.* functions instead.",
            )
        if name.startswith("SNOWFLAKE.CORTEX."):
            return ConfigError(
                f"{name} is not visible to this Snowflake role ({said}).",
                hint=_QUERY_ROLE_HINT + " Cortex must also be available in the account's region.",
            )
    if _REGION.search(text):
        return ConfigError(
            f"The model {model or 'asked for'} is not available in this Snowflake account's region ({said}).",
            hint="Pick another model (the model argument or SOPHIA_CORTEX_MODEL), or ask an ACCOUNTADMIN to allow "
            "cross-region inference: ALTER ACCOUNT SET CORTEX_ENABLED_CROSS_REGION = 'ANY_REGION'.",
        )
    if _UNKNOWN_MODEL.search(text):
        return InputError(
            f"Cortex does not know the model {model!r} ({said}).",
            hint="Pass another model name (see Snowflake's list of Cortex models), or set SOPHIA_CORTEX_MODEL.",
        )
    if _TOKENS.search(text):
        return InputError(
            f"The text is too long for the model's token limit ({said}).",
            hint="Select shorter texts (e.g. LEFT(col, 8000) in the query), fewer rows, or a lower max_tokens; "
            "or choose a model with a larger context window.",
        )
    if _INVALID_IDENTIFIER.search(text):
        return InputError(
            f"Snowflake did not accept a column name ({said}).",
            hint=f"text_column must be a result column of the query; check names with {WAREHOUSE_DESCRIBE_TABLE}.",
        )
    return exc


# -- the backend --------------------------------------------------------------------------------


class SnowflakeCortex:
    """Cortex through the Snowflake warehouse's own connection (and REST for single completions)."""

    kind = "snowflake-cortex"

    def __init__(self, settings: Settings, warehouse: Warehouse) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.family = function_family(settings)
        self._rest: Any = None

    def close(self) -> None:
        self._rest = None  # its HTTP client is closed after each call

    # -- single-text functions ------------------------------------------------------------------

    async def run(self, task: TextTask, selection: TextSelection, cancel: CancelToken) -> TextRun:
        call = function_call(task, self.family, "{text}")
        model = task.embed_model or DEFAULT_EMBED_MODEL if task.function == "embed" else ""

        def work() -> TextRun:
            rows, has_more = self._rows(selection, call[0], call[1], cancel, task.function, model)
            outcomes = [outcome(task, text, columns, value) for text, columns, value in rows]
            dimension = len(next((o.vector for o in outcomes if o.vector), ()))
            return TextRun(outcomes, has_more, f"Snowflake Cortex {call[2]}", model=model, dimension=dimension)

        return await run_blocking(work, on_cancel=cancel.cancel)

    # -- completions ----------------------------------------------------------------------------

    async def complete(self, task: CompletionTask, selection: TextSelection | None, cancel: CancelToken) -> TextRun:
        if selection is None and self._rest_usable():
            return await self._complete_rest(task)
        call, values, name = completion_call(task, self.family, "{prompt}")
        lead = f"{task.system}\n\n" if task.system and self.family == "ai" else ""

        def work() -> TextRun:
            rows: list[tuple[str, dict[str, Any], Any]]
            if selection is None:
                sql = f"SELECT {call.format(prompt='?')} AS {RESULT}"
                params = _placed(values, [lead + task.prompt])
                page = self._query(sql, params, 1, cancel, name, task.model)
                rows = [("", {}, page.rows[0][-1] if page.rows else None)]
                has_more = False
            else:
                # The row's text follows the instruction as data; one model call per row.
                prompt = "? || COALESCE({text}::VARCHAR, '')"
                rows, has_more = self._rows(
                    selection, call.format(prompt=prompt), _placed(values, [lead + task.prompt + "\n\n"]),
                    cancel, name, task.model,
                )  # fmt: skip
            outcomes = [completion_outcome(text, columns, value) for text, columns, value in rows]
            return TextRun(outcomes, has_more, f"Snowflake Cortex {name}", model=task.model)

        return await run_blocking(work, on_cancel=cancel.cancel)

    def _rest_usable(self) -> bool:
        from .cortex_rest import rest_credentials_configured

        return rest_credentials_configured(self.settings)

    async def _complete_rest(self, task: CompletionTask) -> TextRun:
        from .cortex_rest import CortexRestClient

        client = CortexRestClient(self.settings)
        try:
            answer = await client.complete(task)
        finally:
            await client.aclose()
        row = TextOutcome(text="", output=answer.text, usage=answer.usage)
        return TextRun([row], False, "Snowflake Cortex REST inference:complete", model=answer.model or task.model,
                       via="rest")  # fmt: skip

    # -- SQL ------------------------------------------------------------------------------------

    def _query(
        self, sql: str, params: Sequence[Any], max_rows: int, cancel: CancelToken, function: str, model: str
    ) -> RowPage:
        checked = _checked(sql, self.warehouse.dialect, ours=True)
        try:
            return self.warehouse.query(checked, params=params, offset=0, max_rows=max_rows, handle="", cancel=cancel)
        except SophiaError as exc:
            raise actionable_error(exc, family=self.family, function=function, model=model) from None

    def _rows(
        self,
        selection: TextSelection,
        call: str,
        call_values: list[Any],
        cancel: CancelToken,
        function: str,
        model: str,
    ) -> tuple[list[tuple[str, dict[str, Any], Any]], bool]:
        """(text, other columns, function value) per row of this page, and whether more rows follow."""
        if not selection.sql:
            texts = list(selection.texts[selection.offset : selection.offset + selection.max_rows])
            if not texts:
                return [], False
            marks = ", ".join("(?, ?)" for _ in texts)
            sql = f"SELECT column1, {call.format(text='column2')} AS {RESULT} FROM VALUES {marks} ORDER BY 1"
            params = [*call_values, *(v for i, t in enumerate(texts) for v in (i, t))]
            page = self._query(sql, params, len(texts), cancel, function, model)
            values = {int(row[0]): row[-1] for row in page.rows}
            more = len(selection.texts) > selection.offset + len(texts)
            return [(t, {}, values.get(i)) for i, t in enumerate(texts)], more
        user = _checked(selection.sql, self.warehouse.dialect, ours=False).source
        # Learn the result's column names first (no model call), so the text column is quoted exactly.
        names = [c.name for c in self._query(f"SELECT * FROM ({user}) LIMIT 0", selection.params, 1, cancel,
                                             function, model).columns]  # fmt: skip
        index = find_column(names, selection.text_column)
        column = quote_identifier(names[index])
        text = f"q.{column}"
        sql = f"SELECT q.*, {call.format(text=text)} AS {RESULT} FROM (SELECT * FROM ({user}) LIMIT ? OFFSET ?) q"
        params = [*call_values, *selection.params, selection.max_rows, selection.offset]
        page = self._query(sql, params, selection.max_rows, cancel, function, model)
        rows = []
        for row in page.rows:
            columns = {name: value for i, (name, value) in enumerate(zip(names, row, strict=False)) if i != index}
            rows.append(("" if row[index] is None else str(row[index]), columns, row[-1]))
        more = False
        if len(rows) == selection.max_rows:
            # A cheap probe (no model call) rather than paying for one extra row.
            probe = f"SELECT 1 FROM ({user}) LIMIT 1 OFFSET ?"
            more = bool(self._query(probe, [*selection.params, selection.offset + len(rows)], 1, cancel,
                                    function, model).rows)  # fmt: skip
        return rows, more


def _checked(sql: str, dialect: str, *, ours: bool) -> CheckedStatement:
    """The guard's verdict; the user's part must be a query whose rows can be wrapped."""
    checked = check_read_only(sql, dialect=dialect)
    if not ours and checked.statement_type not in _READ_KINDS:
        raise InputError(
            f"sql must be a query that returns rows (SELECT, WITH … SELECT or VALUES), not {checked.statement_type}.",
            hint="Select the text column (and any columns that identify the rows) from the table.",
        )
    return checked
