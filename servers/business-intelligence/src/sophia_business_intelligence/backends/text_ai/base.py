"""The `TextAI` interface (Cortex on Snowflake, local models on the embedded warehouse) and its results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from ..base import CancelToken

TextFunction = Literal["sentiment", "summarize", "translate", "classify", "extract_answer", "embed"]
TEXT_FUNCTIONS: tuple[str, ...] = get_args(TextFunction)


@dataclass(frozen=True)
class TextSelection:
    """Which texts to run on: literal `texts`, or the `text_column` of a read-only `sql` query."""

    texts: tuple[str, ...] = ()
    sql: str = ""
    text_column: str = ""
    params: tuple[Any, ...] = ()
    offset: int = 0  # rows already processed by earlier pages
    max_rows: int = 20


@dataclass(frozen=True)
class TextTask:
    """One single-text function and its arguments."""

    function: TextFunction
    source_language: str = ""
    target_language: str = ""
    categories: tuple[str, ...] = ()
    question: str = ""
    embed_model: str = ""


@dataclass(frozen=True)
class CompletionTask:
    prompt: str
    model: str
    system: str = ""
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Usage:
    """Tokens the model reported; Snowflake reports them for COMPLETE only."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass(frozen=True)
class TextOutcome:
    """One input row and what the function made of it; only the fields of that function are set."""

    text: str
    columns: dict[str, Any] = field(default_factory=dict)  # the query's other columns, to tell rows apart
    score: float | None = None
    label: str | None = None
    labels: tuple[str, ...] = ()
    output: str | None = None
    answers: tuple[dict[str, Any], ...] = ()
    vector: tuple[float, ...] = ()
    usage: Usage | None = None


@dataclass(frozen=True)
class TextRun:
    """A page of outcomes and where they came from."""

    rows: list[TextOutcome]
    has_more: bool
    engine: str  # e.g. "Snowflake Cortex AI_SENTIMENT", "local VADER (vaderSentiment)"
    model: str = ""  # the model that answered, when one is named (embed, complete)
    dimension: int = 0  # vector length for embed
    via: str = "sql"  # "sql", "rest" or "local"


class TextAI(Protocol):
    """Runs Cortex-style text functions over texts or query rows; blocking work goes to worker threads."""

    kind: str  # "snowflake-cortex" or "local"

    async def run(self, task: TextTask, selection: TextSelection, cancel: CancelToken) -> TextRun: ...

    async def complete(self, task: CompletionTask, selection: TextSelection | None, cancel: CancelToken) -> TextRun:
        """One completion of `task.prompt`, or one per row with the row's text appended as data."""
        ...

    def close(self) -> None: ...


def find_column(names: list[str], wanted: str) -> int:
    """Index of `wanted` among a result's column names: exact, else case-insensitive if unambiguous."""
    from sophia_shared.errors import InputError

    if wanted in names:
        return names.index(wanted)
    bare = wanted[1:-1].replace('""', '"') if len(wanted) >= 2 and wanted[0] == wanted[-1] == '"' else wanted
    matches = [i for i, name in enumerate(names) if name.lower() == bare.lower()]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(names[:50]) or "(none)"
    raise InputError(
        f"The query has no column {wanted!r}" + (" (several differ only in case)." if matches else "."),
        hint=f"Set text_column to one of the query's result columns: {shown}.",
    )
