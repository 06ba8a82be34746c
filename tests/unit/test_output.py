"""Results are JSON-safe without loss, capped by rows and bytes, and paged with cursors bound to a request."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import importlib.util
import json
import math
import uuid

import pytest

from sophia_shared.errors import InputError
from sophia_shared.output import Cursor, cap_rows, json_safe, page_of, request_digest


def roundtrips(value: object) -> object:
    """json_safe's output must survive a strict JSON encoder unchanged."""
    safe = json_safe(value)
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe
    return safe


# -- json_safe -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (decimal.Decimal("12345678901234567890.123456789012345678"), "12345678901234567890.123456789012345678"),
        (decimal.Decimal("0.10"), "0.10"),
        (decimal.Decimal("-7"), "-7"),
        # NUMBER(38,10) zero and scaled integers come back from drivers in exponent form.
        (decimal.Decimal("0E-10"), "0.0000000000"),
        (decimal.Decimal("1E+3"), "1000"),
        (decimal.Decimal("NaN"), "NaN"),
        (decimal.Decimal("-Infinity"), "-Infinity"),
    ],
)
def test_decimal_becomes_an_exact_string(value: decimal.Decimal, expected: str) -> None:
    safe = roundtrips(value)
    assert safe == expected
    if value.is_finite():
        assert decimal.Decimal(str(safe)) == value


def test_huge_decimal_exponent_stays_compact() -> None:
    assert roundtrips(decimal.Decimal("1E+5000")) == "1E+5000"


def test_timestamps_are_iso_8601() -> None:
    tz = dt.timezone(dt.timedelta(hours=2))
    assert roundtrips(dt.datetime(2026, 3, 31, 23, 59, 58, 123456, tzinfo=tz)) == "2026-03-31T23:59:58.123456+02:00"
    assert roundtrips(dt.datetime(2026, 3, 31, 8, 0)) == "2026-03-31T08:00:00"
    assert roundtrips(dt.date(2026, 1, 2)) == "2026-01-02"
    assert roundtrips(dt.time(9, 30, 15)) == "09:30:15"
    assert roundtrips(dt.timedelta(hours=1, minutes=2)) == "1:02:00"


def test_bytes_become_base64() -> None:
    raw = bytes(range(256))
    for value in (raw, bytearray(raw), memoryview(raw)):
        assert base64.b64decode(roundtrips(value)) == raw  # type: ignore[arg-type]


def test_non_finite_floats_become_strings() -> None:
    assert roundtrips(float("nan")) == "nan"
    assert roundtrips(float("inf")) == "inf"
    assert roundtrips(-math.inf) == "-inf"
    assert roundtrips(1.5) == 1.5


def test_plain_json_values_pass_through_unchanged() -> None:
    for value in (None, True, False, 0, -3, "text", 2.25):
        assert json_safe(value) is value


def test_nested_structures_are_converted_all_the_way_down() -> None:
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {
        "rows": [(1, decimal.Decimal("2.50"), dt.date(2026, 1, 1)), [b"\x00\x01", float("nan")]],
        key: {"tags": frozenset({"a"}), 7: None},
    }
    assert roundtrips(value) == {
        "rows": [[1, "2.50", "2026-01-01"], ["AAE=", "nan"]],
        str(key): {"tags": ["a"], "7": None},
    }


def test_objects_with_tolist_are_converted_like_numpy_values() -> None:
    class FakeArray:
        def tolist(self) -> list[object]:
            return [1, 2.5, float("nan"), [decimal.Decimal("3")]]

    assert roundtrips(FakeArray()) == [1, 2.5, "nan", ["3"]]


@pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="numpy is not installed")
def test_numpy_arrays_and_scalars_become_plain_json() -> None:
    import numpy as np

    assert roundtrips(np.array([[1, 2], [3, 4]], dtype=np.int64)) == [[1, 2], [3, 4]]
    assert roundtrips(np.float32(0.5)) == 0.5
    assert roundtrips(np.int64(7)) == 7
    assert roundtrips(np.bool_(True)) is True
    assert roundtrips(np.array([np.nan])) == ["nan"]


def test_unknown_objects_become_their_string_form() -> None:
    class Point:
        def __str__(self) -> str:
            return "POINT(1 2)"

    assert roundtrips(Point()) == "POINT(1 2)"


# -- cursors ---------------------------------------------------------------------------------------


def test_cursor_round_trip() -> None:
    digest = request_digest("query", "select 1", {"limit": 10})
    cursor = Cursor(digest=digest, offset=500, handle="01b2c3d4-0000-query-id")
    token = cursor.encode()
    assert "=" not in token
    assert Cursor.decode(token, digest=digest) == cursor


def test_request_digest_is_stable_and_request_specific() -> None:
    assert request_digest("q", 1) == request_digest("q", 1)
    assert request_digest("q", 1) != request_digest("q", 2)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-cursor",
        "",
        "!!!!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'"text"').decode(),
        base64.urlsafe_b64encode(b'{"d": "abc"}').decode(),
        base64.urlsafe_b64encode(b'{"d": "abc", "o": "ten"}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe garbage").decode(),
        base64.urlsafe_b64encode(b'{"d": "abc", "o": 1.5}').decode(),
        base64.urlsafe_b64encode(b'{"d": "abc", "o": true}').decode(),
        base64.urlsafe_b64encode(b'{"d": "abc", "o": 1, "h": null}').decode(),
    ],
)
def test_malformed_cursor_is_an_input_error_with_a_hint(token: str) -> None:
    with pytest.raises(InputError, match="not one this server issued") as err:
        Cursor.decode(token, digest="abc")
    assert "next_cursor" in err.value.hint


def test_tampered_cursor_is_rejected() -> None:
    digest = request_digest("search", "fintech")
    token = Cursor(digest=digest, offset=20).encode()
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(InputError) as err:
        Cursor.decode(tampered, digest=digest)
    assert err.value.hint


def test_cursor_from_another_request_is_rejected() -> None:
    token = Cursor(digest=request_digest("query", "select 1"), offset=100).encode()
    with pytest.raises(InputError, match="different request") as err:
        Cursor.decode(token, digest=request_digest("query", "select 2"))
    assert "omit the cursor" in err.value.hint


def test_cursor_with_negative_offset_is_rejected() -> None:
    digest = request_digest("q")
    with pytest.raises(InputError):
        Cursor.decode(Cursor(digest=digest, offset=-5).encode(), digest=digest)


# -- caps ------------------------------------------------------------------------------------------


def test_cap_rows_by_row_count() -> None:
    rows = [[i, f"name-{i}"] for i in range(10)]
    assert cap_rows(rows, max_rows=3) == (3, True)
    assert cap_rows(rows, max_rows=10) == (10, False)
    assert cap_rows(rows, max_rows=50) == (10, False)
    assert cap_rows([], max_rows=5) == (0, False)


def test_cap_rows_by_bytes_keeps_the_json_within_the_cap() -> None:
    rows = [["x" * 100] for _ in range(50)]
    kept, truncated = cap_rows(rows, max_rows=1000, max_bytes=1_000)
    assert truncated
    assert 0 < kept < 50
    assert len(json.dumps(rows[:kept], separators=(",", ":"))) <= 1_000
    assert len(json.dumps(rows[: kept + 1], separators=(",", ":"))) > 1_000


def test_cap_rows_always_keeps_one_row_so_paging_advances() -> None:
    rows = [["y" * 5_000], ["z"]]
    assert cap_rows(rows, max_rows=10, max_bytes=100) == (1, True)


def test_cap_rows_counts_values_that_json_cannot_encode_natively() -> None:
    rows = [[decimal.Decimal("1.5"), dt.date(2026, 1, 1)]] * 3
    assert cap_rows(rows, max_rows=10) == (3, False)


def test_pages_walk_a_list_without_losing_or_repeating_items() -> None:
    items = [f"item-{i}" for i in range(25)]
    seen: list[str] = []
    cursor = ""
    while True:
        page = page_of(items, cursor=cursor, request=("tool", "arg"), page_size=10)
        seen += page.items
        if not page.truncated:
            assert page.next_cursor == ""
            break
        cursor = page.next_cursor
    assert seen == items


def test_a_page_cursor_only_continues_its_own_request() -> None:
    first = page_of(list(range(30)), cursor="", request=("tool", "a"), page_size=10)
    with pytest.raises(InputError, match="different request"):
        page_of(list(range(30)), cursor=first.next_cursor, request=("tool", "b"), page_size=10)


def test_the_byte_cap_cuts_a_page_of_large_items() -> None:
    items = ["x" * 1000 for _ in range(50)]
    page = page_of(items, cursor="", request=("t",), page_size=50, max_bytes=10_000)
    assert 5 <= len(page.items) < 50 and page.truncated
