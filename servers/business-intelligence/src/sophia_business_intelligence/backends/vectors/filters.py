"""Pinecone's metadata filter language, checked once for both vector backends and evaluated for the embedded one.

Semantics follow Pinecone's documentation: metadata is flat (string, number, boolean or list of
strings; no null); `{"k": v}` means `{"k": {"$eq": v}}`; several fields or operators in one object
are ANDed; a list-valued field "takes on" each of its values, so `$eq`/`$in` match when any element
matches. `$ne` and `$nin` do not match records that lack the field (Pinecone changed to this in
2024; reported by client libraries that had to add `$exists: false` arms to keep the old meaning).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sophia_shared.errors import InputError

__all__ = [
    "MAX_FILTER_DEPTH",
    "MAX_IN_VALUES",
    "MAX_KEY_LENGTH",
    "MAX_METADATA_BYTES",
    "Predicate",
    "compile_filter",
    "validate_filter",
    "validate_metadata",
]

Predicate = Callable[[Mapping[str, Any]], bool]

MAX_IN_VALUES = 10_000  # Pinecone: each $in / $nin accepts at most 10,000 values (400 otherwise)
MAX_METADATA_BYTES = 40 * 1024  # Pinecone: 40 KB of metadata per record
# Ours, not Pinecone's (it publishes none): deep or huge filters are mistakes, not queries.
MAX_FILTER_DEPTH = 8
MAX_KEY_LENGTH = 512

_EQUALITY = ("$eq", "$ne")
_RANGE = ("$gt", "$gte", "$lt", "$lte")
_MEMBERSHIP = ("$in", "$nin")
_FIELD_OPERATORS = (*_EQUALITY, *_RANGE, *_MEMBERSHIP, "$exists")
_LOGICAL = ("$and", "$or")
_OPERATOR_LIST = " ".join((*_FIELD_OPERATORS, *_LOGICAL))
_HINT = (
    'Write filters in Pinecone\'s language: {"field": value} or {"field": {"$op": value}} with '
    f'{_OPERATOR_LIST}, e.g. {{"$and": [{{"genre": "drama"}}, {{"year": {{"$gte": 2020}}}}]}}.'
)


def validate_filter(filter: Mapping[str, Any]) -> dict[str, Any]:
    """A normalised copy (every condition an explicit operator); `InputError` naming the offending path."""
    if not isinstance(filter, Mapping):
        raise _refuse("filter", f"must be an object, not {_kind(filter)}")
    return _clauses(filter, "filter", depth=1)


def compile_filter(filter: Mapping[str, Any]) -> Predicate:
    """Validate once, then a predicate over one record's metadata with Pinecone's semantics."""
    return _compile_clauses(validate_filter(filter))


def validate_metadata(metadata: Mapping[str, Any], *, where: str = "metadata") -> dict[str, Any]:
    """Metadata Pinecone would accept (flat; string, number, boolean or list of strings; ≤ 40 KB), as a copy."""
    if not isinstance(metadata, Mapping):
        raise _refuse(where, f"must be an object, not {_kind(metadata)}", hint=_METADATA_HINT)
    clean: dict[str, Any] = {}
    for key, value in metadata.items():
        path = f"{where}.{key}"
        _check_key(key, where)
        if isinstance(value, str) or _is_number(value) or isinstance(value, bool):
            clean[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            clean[key] = list(value)
        elif value is None:
            raise _refuse(path, "is null; null values are not stored", hint="Leave the key out instead.")
        else:
            raise _refuse(path, f"is {_kind(value)}", hint=_METADATA_HINT)
    size = len(json.dumps(clean, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise _refuse(
            where,
            f"is {size:,} bytes; at most {MAX_METADATA_BYTES:,} are allowed per record",
            hint="Keep long text out of metadata, or shorten it.",
        )
    return clean


_METADATA_HINT = "Metadata values must be a string, a finite number, a boolean or a list of strings (no nesting)."


# -- validation ------------------------------------------------------------------------------------


def _clauses(filter: Mapping[str, Any], path: str, *, depth: int) -> dict[str, Any]:
    if depth > MAX_FILTER_DEPTH:
        raise _refuse(path, f"nests $and/$or deeper than {MAX_FILTER_DEPTH} levels", hint="Flatten the filter.")
    clean: dict[str, Any] = {}
    for key, value in filter.items():
        if not isinstance(key, str):
            raise _refuse(path, f"has a non-string key {key!r}")
        if key in _LOGICAL:
            clean[key] = _logical(key, value, f"{path}.{key}", depth=depth)
        elif key.startswith("$"):
            where = "here" if key in _FIELD_OPERATORS else "in Pinecone's filter language"
            raise _refuse(
                f"{path}.{key}",
                f"is not an operator allowed {where}; only $and and $or combine clauses, and field operators "
                'go inside a field: {"year": {"$gt": 2020}}',
            )
        else:
            _check_key(key, path)
            clean[key] = _conditions(value, f"{path}.{key}")
    return clean


def _logical(operator: str, value: Any, path: str, *, depth: int) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple) or not value:
        raise _refuse(path, f"must be a non-empty list of filter objects, not {_kind(value)}")
    clauses = []
    for i, clause in enumerate(value):
        if not isinstance(clause, Mapping) or not clause:
            raise _refuse(f"{path}[{i}]", f"must be a non-empty filter object, not {_kind(clause)}")
        clauses.append(_clauses(clause, f"{path}[{i}]", depth=depth + 1))
    return clauses


def _conditions(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {"$eq": _equality_value(value, path)}
    if not value:
        raise _refuse(path, 'has an empty condition; give a value or an operator such as {"$eq": …}')
    clean: dict[str, Any] = {}
    for operator, operand in value.items():
        where = f"{path}.{operator}"
        if operator in _EQUALITY:
            clean[operator] = _equality_value(operand, where)
        elif operator in _RANGE:
            if not _is_number(operand):
                raise _refuse(where, f"compares numbers only, not {_kind(operand)}")
            clean[operator] = operand
        elif operator in _MEMBERSHIP:
            clean[operator] = _membership_values(operand, where)
        elif operator == "$exists":
            if not isinstance(operand, bool):
                raise _refuse(where, f"takes true or false, not {_kind(operand)}")
            clean[operator] = operand
        elif operator in _LOGICAL:
            raise _refuse(
                where,
                'cannot sit inside a field; put $and/$or above the fields: {"$or": [{"a": 1}, {"b": 2}]}',
            )
        elif isinstance(operator, str) and operator.startswith("$"):
            raise _refuse(where, "is not an operator in Pinecone's filter language")
        else:
            raise _refuse(
                where,
                "looks like a nested field; metadata is flat, so a field's object may only hold operators",
            )
    return clean


def _equality_value(value: Any, path: str) -> str | float | bool:
    if isinstance(value, str | bool) or _is_number(value):
        return value  # type: ignore[no-any-return]
    if value is None:
        raise _refuse(path, 'is null; metadata has no nulls: use {"$exists": false} for a missing field')
    if isinstance(value, list | tuple):
        raise _refuse(path, 'is a list; to match any of several values use {"$in": [...]}')
    raise _refuse(path, f"must be a string, number or boolean, not {_kind(value)}")


def _membership_values(value: Any, path: str) -> list[str | float]:
    if not isinstance(value, list | tuple):
        raise _refuse(path, f"takes a list of strings or numbers, not {_kind(value)}")
    if not value:
        raise _refuse(path, "has an empty list; give at least one value")
    if len(value) > MAX_IN_VALUES:
        raise _refuse(
            path,
            f"has {len(value):,} values; Pinecone allows at most {MAX_IN_VALUES:,} per $in/$nin",
            hint="Filter on a broader field (a group or tenant), split the query, or use namespaces.",
        )
    for i, item in enumerate(value):
        if not (isinstance(item, str) or _is_number(item)):
            raise _refuse(f"{path}[{i}]", f"must be a string or a number, not {_kind(item)}")
    return list(value)


def _check_key(key: Any, path: str) -> None:
    if not isinstance(key, str) or not key:
        raise _refuse(path, "has an empty or non-string field name")
    if key.startswith("$"):
        raise _refuse(f"{path}.{key}", "is a field name starting with '$', which is reserved for operators")
    if len(key) > MAX_KEY_LENGTH:
        raise _refuse(path, f"has a field name of {len(key)} characters; at most {MAX_KEY_LENGTH} are allowed")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number" if math.isfinite(value) else f"{value!r} (not a finite number)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _refuse(path: str, problem: str, *, hint: str = _HINT) -> InputError:
    return InputError(f"Invalid metadata filter: {path} {problem}.", hint=hint)


# -- evaluation ------------------------------------------------------------------------------------

# Values are compared by (kind, value) so that True never equals 1 and "1" never equals 1; numbers
# compare as floats, as Pinecone stores every number as a 64-bit float.
_Key = tuple[str, Any]


def _key(value: Any) -> _Key:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    return ("s", value)


def _compile_clauses(clean: Mapping[str, Any]) -> Predicate:
    parts: list[Predicate] = []
    for key, value in clean.items():
        if key == "$and":
            parts.append(_all([_compile_clauses(c) for c in value]))
        elif key == "$or":
            parts.append(_any([_compile_clauses(c) for c in value]))
        else:
            parts.extend(_compile_condition(key, op, operand) for op, operand in value.items())
    return _all(parts)


def _all(parts: Sequence[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    return lambda metadata: all(p(metadata) for p in parts)


def _any(parts: Sequence[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    return lambda metadata: any(p(metadata) for p in parts)


def _compile_condition(field: str, operator: str, operand: Any) -> Predicate:
    if operator == "$exists":
        wanted = bool(operand)
        return lambda metadata: (field in metadata) is wanted
    if operator in _RANGE:
        return _range(field, operator, float(operand))
    keys = frozenset(_key(v) for v in operand) if operator in _MEMBERSHIP else frozenset({_key(operand)})
    positive = operator in ("$eq", "$in")

    def matches(metadata: Mapping[str, Any]) -> bool:
        if field not in metadata:
            return False  # $ne/$nin too: Pinecone does not match records lacking the field
        stored = metadata[field]
        hit = any(_key(v) in keys for v in stored) if isinstance(stored, list) else _key(stored) in keys
        return hit if positive else not hit

    return matches


def _range(field: str, operator: str, bound: float) -> Predicate:
    compare: Callable[[float], bool] = {
        "$gt": lambda x: x > bound,
        "$gte": lambda x: x >= bound,
        "$lt": lambda x: x < bound,
        "$lte": lambda x: x <= bound,
    }[operator]

    def matches(metadata: Mapping[str, Any]) -> bool:
        stored = metadata.get(field)
        return isinstance(stored, int | float) and not isinstance(stored, bool) and compare(float(stored))

    return matches
