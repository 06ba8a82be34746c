"""Pinecone's metadata filter language: what `validate_filter` refuses and what `compile_filter` matches."""

from __future__ import annotations

from typing import Any

import pytest

from sophia_business_intelligence.backends.vectors.filters import (
    MAX_IN_VALUES,
    MAX_METADATA_BYTES,
    compile_filter,
    validate_filter,
    validate_metadata,
)
from sophia_shared.errors import InputError

RECORDS: dict[str, dict[str, Any]] = {
    "a": {"genre": "drama", "year": 2019, "rating": 4.5, "free": True, "tags": ["new", "hd"]},
    "b": {"genre": "comedy", "year": 2021, "rating": 3.0, "free": False, "tags": ["hd"]},
    "c": {"genre": "documentary", "year": 2020, "free": True},
    "d": {"genre": "drama", "year": 2023.0, "rating": 5, "tags": []},
    "e": {"year": 1, "genre": "1"},  # the number 1 and the string "1" are different values
    "f": {},
}

# Each filter with the ids it must match, worked out by hand from RECORDS.
CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, set(RECORDS)),
    ({"genre": "drama"}, {"a", "d"}),
    ({"genre": {"$eq": "drama"}}, {"a", "d"}),
    ({"year": 2023}, {"d"}),  # an int matches the same number stored as a float
    ({"year": 1}, {"e"}),
    ({"genre": 1}, set()),
    ({"free": True}, {"a", "c"}),
    ({"free": 1}, set()),  # booleans are not numbers
    ({"genre": {"$ne": "drama"}}, {"b", "c", "e"}),  # records lacking the field do not match $ne
    ({"free": {"$ne": True}}, {"b"}),
    ({"year": {"$gt": 2020}}, {"b", "d"}),
    ({"year": {"$gte": 2020}}, {"b", "c", "d"}),
    ({"year": {"$lt": 2020}}, {"a", "e"}),
    ({"year": {"$lte": 2020}}, {"a", "c", "e"}),
    ({"year": {"$gte": 2019, "$lt": 2021}}, {"a", "c"}),  # operators on one field are ANDed
    ({"genre": {"$gt": 0}}, set()),  # a string never compares as a number
    ({"genre": {"$in": ["drama", "comedy"]}}, {"a", "b", "d"}),
    ({"year": {"$in": [2019, 2020.0]}}, {"a", "c"}),
    ({"genre": {"$nin": ["drama", "comedy"]}}, {"c", "e"}),  # nor $nin
    ({"tags": "hd"}, {"a", "b"}),  # a list field takes on each of its values
    ({"tags": {"$in": ["new", "4k"]}}, {"a"}),
    ({"$and": [{"tags": "new"}, {"tags": "hd"}]}, {"a"}),
    ({"$and": [{"tags": "hd"}, {"tags": "4k"}]}, set()),
    ({"tags": {"$ne": "hd"}}, {"d"}),
    ({"tags": {"$nin": ["new"]}}, {"b", "d"}),
    ({"rating": {"$exists": True}}, {"a", "b", "d"}),
    ({"rating": {"$exists": False}}, {"c", "e", "f"}),
    ({"genre": "drama", "year": {"$gt": 2020}}, {"d"}),  # fields side by side are ANDed
    ({"$or": [{"genre": "comedy"}, {"year": {"$lt": 2000}}]}, {"b", "e"}),
    ({"$and": [{"free": True}, {"$or": [{"genre": "drama"}, {"year": 2020}]}]}, {"a", "c"}),
    ({"$or": [{"$and": [{"genre": "drama"}, {"rating": {"$gte": 5}}]}, {"genre": "1"}]}, {"d", "e"}),
]


@pytest.mark.parametrize(("filter", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_compiled_filter_matches_the_hand_computed_ids(filter: dict[str, Any], expected: set[str]) -> None:
    predicate = compile_filter(filter)
    assert {rid for rid, metadata in RECORDS.items() if predicate(metadata)} == expected


def test_validate_filter_makes_every_condition_an_explicit_operator() -> None:
    clean = validate_filter({"genre": "drama", "$or": [{"year": 2020}, {"tags": {"$in": ("a", "b")}}]})
    assert clean == {"genre": {"$eq": "drama"}, "$or": [{"year": {"$eq": 2020}}, {"tags": {"$in": ["a", "b"]}}]}


def test_validate_filter_returns_a_copy() -> None:
    original = {"tags": {"$in": ["a"]}}
    validate_filter(original)["tags"]["$in"].append("b")
    assert original == {"tags": {"$in": ["a"]}}


def test_in_accepts_exactly_the_pinecone_limit_of_values() -> None:
    assert len(validate_filter({"id": {"$in": list(range(MAX_IN_VALUES))}})["id"]["$in"]) == MAX_IN_VALUES


REFUSALS: list[tuple[Any, str]] = [
    (["genre"], "filter must be an object"),
    ({"$not": {"genre": "drama"}}, "filter.$not is not an operator allowed in Pinecone's filter language"),
    ({"$eq": "drama"}, "filter.$eq is not an operator allowed here"),
    ({"genre": None}, "filter.genre is null"),
    ({"genre": ["drama", "comedy"]}, 'filter.genre is a list; to match any of several values use {"$in"'),
    ({"genre": {"$eq": ["drama"]}}, "filter.genre.$eq is a list"),
    ({"genre": {"$ne": {"x": 1}}}, "filter.genre.$ne must be a string, number or boolean, not an object"),
    ({"genre": {}}, "filter.genre has an empty condition"),
    ({"year": {"$gt": "2020"}}, "filter.year.$gt compares numbers only, not a string"),
    ({"year": {"$lte": True}}, "filter.year.$lte compares numbers only, not a boolean"),
    ({"year": {"$gte": float("nan")}}, "filter.year.$gte compares numbers only"),
    ({"genre": {"$in": "drama"}}, "filter.genre.$in takes a list of strings or numbers, not a string"),
    ({"genre": {"$nin": []}}, "filter.genre.$nin has an empty list"),
    ({"genre": {"$in": ["a", True]}}, "filter.genre.$in[1] must be a string or a number, not a boolean"),
    ({"genre": {"$in": ["a", None]}}, "filter.genre.$in[1] must be a string or a number, not null"),
    ({"id": {"$in": list(range(MAX_IN_VALUES + 1))}}, "has 10,001 values; Pinecone allows at most 10,000"),
    ({"genre": {"$exists": "yes"}}, "filter.genre.$exists takes true or false, not a string"),
    ({"genre": {"$regex": "dr.*"}}, "filter.genre.$regex is not an operator in Pinecone's filter language"),
    ({"genre": {"$or": [{"$eq": "a"}]}}, "filter.genre.$or cannot sit inside a field"),
    ({"author": {"name": "Ann"}}, "filter.author.name looks like a nested field; metadata is flat"),
    ({"$and": {"genre": "drama"}}, "filter.$and must be a non-empty list of filter objects, not an object"),
    ({"$or": []}, "filter.$or must be a non-empty list"),
    ({"$or": [{"genre": "a"}, {}]}, "filter.$or[1] must be a non-empty filter object"),
    ({"$and": [{"year": {"$gt": "x"}}]}, "filter.$and[0].year.$gt compares numbers only"),
    ({"": 1}, "filter has an empty or non-string field name"),
    ({"x" * 513: 1}, "has a field name of 513 characters; at most 512"),
]


@pytest.mark.parametrize(("filter", "message"), REFUSALS, ids=[m for _, m in REFUSALS])
def test_validate_filter_refuses_with_the_offending_path(filter: Any, message: str) -> None:
    with pytest.raises(InputError) as raised:
        validate_filter(filter)
    assert message in raised.value.message
    assert raised.value.hint  # every refusal says what to write instead


def test_validate_filter_refuses_nesting_deeper_than_the_limit() -> None:
    deep: dict[str, Any] = {"genre": "drama"}
    for _ in range(8):
        deep = {"$and": [deep]}
    with pytest.raises(InputError, match="deeper than 8 levels"):
        validate_filter(deep)


def test_compile_filter_refuses_what_validate_filter_refuses() -> None:
    with pytest.raises(InputError, match=r"filter\.year\.\$gt compares numbers only"):
        compile_filter({"year": {"$gt": "2020"}})


def test_validate_metadata_keeps_pinecone_value_types() -> None:
    metadata = {"s": "x", "i": 1, "f": 1.5, "b": False, "l": ("a", "b")}
    assert validate_metadata(metadata) == {"s": "x", "i": 1, "f": 1.5, "b": False, "l": ["a", "b"]}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"x": None}, "metadata.x is null"),
        ({"x": {"y": 1}}, "metadata.x is an object"),
        ({"x": [1, 2]}, "metadata.x is a list"),
        ({"x": float("inf")}, "metadata.x is inf (not a finite number)"),
        ({"$x": 1}, "metadata.$x is a field name starting with '$'"),
        ({"x": "é" * MAX_METADATA_BYTES}, "at most 40,960 are allowed per record"),
    ],
)
def test_validate_metadata_refuses_what_pinecone_would(metadata: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as raised:
        validate_metadata(metadata)
    assert message in raised.value.message
