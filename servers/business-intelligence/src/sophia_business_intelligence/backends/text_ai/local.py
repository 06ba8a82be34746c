"""Text functions on the embedded warehouse: sentiment with VADER and embed with the local MiniLM model.

The other Cortex functions need a language model this machine does not have; they refuse with what to
configure rather than return an invented answer.
"""

from __future__ import annotations

import threading
from typing import Any

from sophia_shared.errors import ConfigError, InputError
from sophia_shared.workers import run_blocking

from ...sql_guard import check_read_only
from ..base import CancelToken, Warehouse
from .base import CompletionTask, TextOutcome, TextRun, TextSelection, TextTask, find_column

VADER_ENGINE = "local VADER (vaderSentiment; compound score)"
# VADER's own thresholds for calling a compound score positive or negative.
VADER_POSITIVE, VADER_NEGATIVE = 0.05, -0.05
_SNOWFLAKE_SETUP = (
    "Configure Snowflake (SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and a credential such as SNOWFLAKE_TOKEN) so the "
    "server runs Snowflake Cortex; its role needs the SNOWFLAKE.CORTEX_USER database role."
)
_READ_KINDS = frozenset({"SELECT", "WITH", "VALUES"})


def vader_label(score: float) -> str:
    if score >= VADER_POSITIVE:
        return "positive"
    if score <= VADER_NEGATIVE:
        return "negative"
    return "neutral"


class LocalTextAI:
    """Sentiment and embeddings computed in this process over the embedded warehouse's rows."""

    kind = "local"

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._lock = threading.Lock()
        self._vader: Any = None

    def close(self) -> None:
        self._vader = None

    async def run(self, task: TextTask, selection: TextSelection, cancel: CancelToken) -> TextRun:
        if task.function not in ("sentiment", "embed"):
            raise ConfigError(
                f"{task.function} needs Snowflake Cortex; the embedded warehouse only runs sentiment (VADER) and "
                "embed (local MiniLM, 384-d) on this machine.",
                hint=_SNOWFLAKE_SETUP,
            )
        return await run_blocking(lambda: self._run(task, selection, cancel), on_cancel=cancel.cancel)

    async def complete(self, task: CompletionTask, selection: TextSelection | None, cancel: CancelToken) -> TextRun:
        raise ConfigError(
            "Completions need Snowflake Cortex; the embedded warehouse has no language model.",
            hint=_SNOWFLAKE_SETUP + " (Completions through the AI server's gateway are not wired to this tool.)",
        )

    def _run(self, task: TextTask, selection: TextSelection, cancel: CancelToken) -> TextRun:
        rows, has_more = self._rows(selection, cancel)
        texts = [text for text, _ in rows]
        if task.function == "sentiment":
            analyzer = self._analyzer()
            outcomes = []
            for text, columns in rows:
                score = float(analyzer.polarity_scores(text)["compound"])
                outcomes.append(TextOutcome(text=text, columns=columns, score=score, label=vader_label(score)))
            return TextRun(outcomes, has_more, VADER_ENGINE, via="local")
        from sophia_shared.embedding.minilm import local_embedder

        embedder = local_embedder()
        if task.embed_model and task.embed_model != embedder.model:
            raise InputError(
                f"The embedded warehouse embeds only with {embedder.model} ({embedder.dimension}-d), "
                f"not {task.embed_model!r}.",
                hint="Leave embed_model empty, or configure Snowflake to use Cortex embedding models.",
            )
        vectors: Any = embedder.embed(texts) if texts else []
        outcomes = [
            TextOutcome(text=text, columns=columns, vector=tuple(float(x) for x in vector))
            for (text, columns), vector in zip(rows, vectors, strict=True)
        ]
        return TextRun(outcomes, has_more, f"local embedder {embedder.model}", model=embedder.model,
                       dimension=embedder.dimension, via="local")  # fmt: skip

    def _analyzer(self) -> Any:
        with self._lock:
            if self._vader is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                self._vader = SentimentIntensityAnalyzer()
            return self._vader

    def _rows(self, selection: TextSelection, cancel: CancelToken) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        if not selection.sql:
            end = selection.offset + selection.max_rows
            return [(t, {}) for t in selection.texts[selection.offset : end]], len(selection.texts) > end
        checked = check_read_only(selection.sql, dialect=self.warehouse.dialect)
        if checked.statement_type not in _READ_KINDS:
            raise InputError(
                "sql must be a query that returns rows (SELECT, WITH … SELECT or VALUES), not "
                f"{checked.statement_type}.",
                hint="Select the text column (and any columns that identify the rows) from the table.",
            )
        page = self.warehouse.query(
            checked, params=list(selection.params), offset=selection.offset, max_rows=selection.max_rows,
            handle="", cancel=cancel,
        )  # fmt: skip
        names = [c.name for c in page.columns]
        index = find_column(names, selection.text_column)
        rows = [
            (
                "" if row[index] is None else str(row[index]),
                {name: value for i, (name, value) in enumerate(zip(names, row, strict=False)) if i != index},
            )
            for row in page.rows
        ]
        return rows, page.has_more
