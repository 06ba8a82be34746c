"""The `MemoryStore` interface both memory backends implement, and the rules they share.

A memory is a short text with tags, a source, an author and a UTC timestamp, stored with the
embedding model that made its vector. Methods are blocking and are called from worker threads.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sophia_shared.embedding import EmbeddingModelMismatch, check_same_model
from sophia_shared.errors import ConfigError, InputError

MAX_TEXT_CHARS = 4_000
MAX_TAGS = 10
MAX_TAG_CHARS = 40
MAX_FIELD_CHARS = 200  # source and author
# Lower-case after normalising; no commas or spaces, so a tag list has one unambiguous text form.
_TAG = re.compile(rf"[a-z0-9][a-z0-9_.:/-]{{0,{MAX_TAG_CHARS - 1}}}")
# SOPHIA_MEMORY_TABLE: TABLE, SCHEMA.TABLE or DATABASE.SCHEMA.TABLE, unquoted parts only.
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")
TABLE_SETTING = "SOPHIA_MEMORY_TABLE"
DEFAULT_TABLE = "AI_MEMORY.MEMORIES"


@dataclass(frozen=True)
class Memory:
    id: str
    text: str
    tags: tuple[str, ...]
    source: str
    author: str
    created_at: dt.datetime  # timezone-aware, UTC
    model: str
    score: float | None = None  # cosine similarity to the query, when recalled by meaning

    @classmethod
    def new(cls, text: str, *, tags: Sequence[str], source: str, author: str, model: str) -> Memory:
        """A memory about to be stored: its fields checked, a fresh id, the time now (UTC)."""
        return cls(
            id=str(uuid.uuid4()),
            text=check_text(text),
            tags=normalize_tags(tags),
            source=check_field(source, "source"),
            author=check_field(author, "author"),
            created_at=utc_now(),
            model=model,
        )


@dataclass(frozen=True)
class RecallRequest:
    """What to recall: best match to `query` first or, without one, newest first; filters apply to both."""

    query: str = ""
    tags_all: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    since: dt.datetime | None = None  # UTC; memories created at or after it
    limit: int = 10
    offset: int = 0


@dataclass(frozen=True)
class RecallPage:
    memories: list[Memory]
    has_more: bool


class MemoryStore(Protocol):
    backend: str  # "embedded" or "snowflake"

    @property
    def model(self) -> str:
        """The embedding model new memories and queries use."""
        ...

    def describe(self) -> str:
        """One line saying where memories live (no secrets)."""
        ...

    def remember(self, text: str, *, tags: Sequence[str], source: str, author: str) -> Memory:
        """Store one memory (second gate: refuses unless SOPHIA_MEMORY_ALLOW_WRITE=1)."""
        ...

    def recall(self, request: RecallRequest) -> RecallPage:
        """Memories matching the filters, best (or newest) first; refuses to compare across models."""
        ...

    def forget_ids(self, ids: Sequence[str]) -> list[str]:
        """Delete these memories; returns the ids that existed and are now gone (second gate)."""
        ...

    def count_tagged(self, tags: Sequence[str]) -> int:
        """How many memories carry every one of `tags`."""
        ...

    def forget_tagged(self, tags: Sequence[str]) -> int:
        """Delete every memory carrying all of `tags`; returns how many (second gate)."""
        ...

    def close(self) -> None: ...


# -- rules both stores apply -------------------------------------------------------------------


def normalize_tags(tags: Sequence[str], *, argument: str = "tags") -> tuple[str, ...]:
    """Tags lower-cased, trimmed, de-duplicated and sorted; InputError naming the one that is not a tag."""
    cleaned = tuple(sorted({t.strip().lower() for t in tags if t.strip()}))
    if len(cleaned) > MAX_TAGS:
        raise InputError(f"{argument} has {len(cleaned)} tags; at most {MAX_TAGS} are allowed.")
    for tag in cleaned:
        if not _TAG.fullmatch(tag):
            raise InputError(
                f"{tag!r} in {argument} is not a valid tag.",
                hint=f"A tag is 1–{MAX_TAG_CHARS} letters, digits or _ . : / - (no spaces or commas), "
                "e.g. emea, q3-2025, decision.",
            )
    return cleaned


def check_text(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise InputError("A memory needs some text.", hint="Say the fact or decision to remember in a sentence.")
    if len(cleaned) > MAX_TEXT_CHARS:
        raise InputError(
            f"The memory is {len(cleaned):,} characters; at most {MAX_TEXT_CHARS:,} are kept.",
            hint="Remember the decision or fact itself in a few sentences, or split it into several memories.",
        )
    return cleaned


def check_field(value: str, name: str) -> str:
    cleaned = value.strip()
    if len(cleaned) > MAX_FIELD_CHARS:
        raise InputError(f"{name} is {len(cleaned)} characters; at most {MAX_FIELD_CHARS} are allowed.")
    return cleaned


def table_parts(table: str) -> tuple[str, ...]:
    """SOPHIA_MEMORY_TABLE split into its parts, upper-cased as Snowflake stores unquoted names."""
    name = table.strip() or DEFAULT_TABLE
    if not _TABLE_NAME.fullmatch(name):
        raise ConfigError(
            f"{TABLE_SETTING} must be TABLE, SCHEMA.TABLE or DATABASE.SCHEMA.TABLE with plain identifiers "
            f"(letters, digits, _ and $), not {table!r}.",
            hint=f"Set {TABLE_SETTING} to a name such as {DEFAULT_TABLE}, or unset it.",
        )
    return tuple(part.upper() for part in name.split("."))


def refuse_mixed_models(stored: Sequence[str], incoming: str, where: str) -> None:
    """The shared model rule, with a hint that fits a memory store rather than a vector index."""
    for model in stored:
        try:
            check_same_model(model, incoming, where)
        except EmbeddingModelMismatch as exc:
            raise EmbeddingModelMismatch(
                exc.message,
                hint=f"Memories embedded by {model!r} cannot be compared with {incoming!r} vectors. Point "
                f"{TABLE_SETTING} (or the data directory) at a new memory table for {incoming!r}, or re-embed "
                "the old memories with it.",
            ) from None


def tag_key(tags: Sequence[str]) -> str:
    """Tags as one text, `,a,b,`: a tag matches with a plain substring test for `,tag,` on any SQL engine."""
    return "," + ",".join(tags) + "," if tags else ""


def tags_of_key(key: str | None) -> tuple[str, ...]:
    return tuple(t for t in (key or "").split(",") if t)


def utc_now() -> dt.datetime:
    # Microseconds dropped: both stores keep the same precision, so a round trip compares equal.
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored timestamp (naive values are UTC by convention) as an aware UTC datetime."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def naive_utc(value: dt.datetime) -> dt.datetime:
    """How both stores keep timestamps: naive, in UTC (TIMESTAMP / TIMESTAMP_NTZ)."""
    return as_utc(value).replace(tzinfo=None)
