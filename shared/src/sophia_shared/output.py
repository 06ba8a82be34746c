"""JSON-safe values, row and byte caps, and opaque paging cursors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from .errors import InputError

DEFAULT_MAX_BYTES = 200_000
# The factory's backstop: no tool result (structured + text) may exceed this, whatever the tool does.
RESULT_CEILING_BYTES = 1_000_000
ItemT = TypeVar("ItemT")


def json_safe(value: Any) -> Any:
    """Convert a database or vendor value to something JSON can carry without loss.

    Decimal becomes a string (no float rounding), timestamps ISO-8601, bytes base64, NaN/inf a string.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return _decimal_text(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return json_safe(value.tolist())
    return str(value)


def _decimal_text(value: decimal.Decimal) -> str:
    # Drivers hand back NUMBER(38,10) zero as 0E-10 and scaled integers as 1E+3: show plain digits,
    # unless that would take far more characters than the exponent form.
    exponent = value.as_tuple().exponent  # "n", "N" or "F" when not finite
    if isinstance(exponent, int) and abs(exponent) <= 100:
        return format(value, "f")
    return str(value)


@dataclass(frozen=True)
class Cursor:
    """Where a paged result continues; bound to the request it came from by a digest."""

    digest: str
    offset: int
    handle: str = ""  # a backend's own result id (e.g. a Snowflake query id), when it can resume

    def encode(self) -> str:
        raw = json.dumps({"d": self.digest, "o": self.offset, "h": self.handle}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, *, digest: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            issued_for, offset, handle = data["d"], data["o"], data.get("h", "")
            if not (isinstance(issued_for, str) and type(offset) is int and isinstance(handle, str)):
                raise TypeError("cursor fields have the wrong types")
            cursor = cls(digest=issued_for, offset=offset, handle=handle)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise InputError(
                "The cursor is not one this server issued.",
                hint="Pass the `next_cursor` value from the previous result unchanged, or omit it.",
            ) from exc
        if cursor.digest != digest or cursor.offset < 0:
            raise InputError(
                "The cursor belongs to a different request.",
                hint="Repeat the same request with the cursor, or omit the cursor to start over.",
            )
        return cursor


def request_digest(*parts: object) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def cap_rows(rows: list[list[Any]], *, max_rows: int, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[int, bool]:
    """How many of `rows` fit in both caps, and whether anything was cut."""
    size = 2
    for index, row in enumerate(rows):
        if index >= max_rows:
            return index, True
        size += len(json.dumps(row, default=str)) + 1
        if size > max_bytes and index > 0:
            return index, True
    return len(rows), False


def clip_cells(rows: list[list[Any]], *, max_chars: int) -> tuple[list[list[Any]], int]:
    """Cut text values longer than `max_chars` (one huge value must not blow the byte cap)."""
    clipped = 0
    out: list[list[Any]] = []
    for row in rows:
        new_row = []
        for value in row:
            if isinstance(value, str) and len(value) > max_chars:
                value = value[:max_chars] + f"…[clipped {len(value) - max_chars:,} chars]"
                clipped += 1
            new_row.append(value)
        out.append(new_row)
    return out, clipped


class Page(BaseModel, Generic[ItemT]):
    """The one shape of every list-like result: some items, whether more exist, and how to get them."""

    items: list[ItemT]
    truncated: bool = Field(description="True when more items exist; pass next_cursor back as cursor to continue.")
    next_cursor: str = Field(description="Opaque cursor for the next page; empty when this page is the last.")


@dataclass(frozen=True)
class PageSlice(Generic[ItemT]):
    items: list[ItemT]
    offset: int
    truncated: bool
    next_cursor: str


def page_of(
    items: Sequence[ItemT],
    *,
    cursor: str,
    request: Sequence[object],
    page_size: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> PageSlice[ItemT]:
    """The page of `items` a cursor points at, capped by count and bytes, with the cursor for the next one.

    The cursor is bound to `request` (the tool's name and arguments), so it only continues that request.
    """
    digest = request_digest(*request, page_size)
    start = Cursor.decode(cursor, digest=digest).offset if cursor else 0
    window = [json_safe(item.model_dump() if isinstance(item, BaseModel) else item) for item in items[start:]]
    kept, cut = cap_rows([[w] for w in window], max_rows=page_size, max_bytes=max_bytes)
    truncated = cut or start + kept < len(items)
    next_cursor = Cursor(digest, start + kept).encode() if truncated else ""
    return PageSlice(list(items[start : start + kept]), start, truncated, next_cursor)
