"""An opened ESC environment as plain data, and how its values become settings.

Values reach settings two ways: the `environmentVariables` block (name → value as-is, wins on a
conflict) and the groups the caller names (`business_intelligence: {snowflake-password: …}` →
SNOWFLAKE_PASSWORD). Groups follow `secret_groups`, the table `sophia secrets export` writes with: a
vendor variable counts only in the group that table names for it, so what export writes is what is
read. A setting is one string: booleans become "true"/"false", numbers their JSON text; objects,
arrays, nulls and unknown (not yet resolvable) values are skipped, because no setting takes
structured data and a JSON-encoded object would only fail later, further away.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .secret_groups import group_of, group_variable
from .sources import SourceValues

log = logging.getLogger(__name__)

UNKNOWN_TEXT = "[unknown]"
SECRET_TEXT = "[secret]"  # noqa: S105 - the placeholder ESC prints for a redacted secret


class _Unknown:
    def __repr__(self) -> str:
        return UNKNOWN_TEXT


UNKNOWN: Any = _Unknown()  # a value ESC could not resolve (`unknown: true`)
ValuePath = tuple[str | int, ...]


@dataclass(frozen=True)
class EscDocument:
    """An environment's values as plain JSON (UNKNOWN for unresolved ones) and the paths marked secret."""

    values: Mapping[str, Any]
    secret_paths: frozenset[ValuePath] = frozenset()

    def is_secret(self, path: ValuePath) -> bool:
        # ESC's secrecy is inherited: everything inside a secret object is secret.
        return any(path[:length] in self.secret_paths for length in range(1, len(path) + 1))

    def reveal(self, *, redact: bool = False) -> dict[str, Any]:
        """What `esc open --format json` prints (secrets as "[secret]" when `redact`)."""

        def show(value: Any, path: ValuePath) -> Any:
            # Secret before unknown, as ESC does (fixture ciphertext-invalid: a secret that failed to decrypt).
            if redact and path in self.secret_paths:
                return SECRET_TEXT
            if value is UNKNOWN:
                return UNKNOWN_TEXT
            if isinstance(value, list):
                return [show(item, (*path, index)) for index, item in enumerate(value)]
            if isinstance(value, Mapping):
                return {key: show(item, (*path, key)) for key, item in value.items()}
            return value

        return {key: show(value, (key,)) for key, value in self.values.items()}


def document_from_properties(properties: Mapping[str, Any] | None) -> EscDocument:
    """Decode an `Environment.properties` map of ESC `Value` objects (value/secret/unknown/trace)."""
    secrets: set[ValuePath] = set()

    def decode(node: Any, path: ValuePath) -> Any:
        if not isinstance(node, Mapping):
            raise ValueError(f"ESC value at {dotted_path(path)} is not a Value object")
        if node.get("secret"):
            secrets.add(path)
        if node.get("unknown"):
            return UNKNOWN
        inner = node.get("value")
        if isinstance(inner, list):
            return [decode(item, (*path, index)) for index, item in enumerate(inner)]
        if isinstance(inner, Mapping):
            return {str(key): decode(item, (*path, str(key))) for key, item in inner.items()}
        return inner

    if properties is not None and not isinstance(properties, Mapping):
        raise ValueError("ESC environment properties are not an object")
    values = {str(key): decode(node, (str(key),)) for key, node in (properties or {}).items()}
    return EscDocument(values, frozenset(secrets))


def document_from_json(data: Mapping[str, Any]) -> EscDocument:
    """Decode `esc open --format json` output: plain values, no secret flags, unknowns as "[unknown]"."""

    def decode(value: Any) -> Any:
        if value == UNKNOWN_TEXT:
            return UNKNOWN
        if isinstance(value, list):
            return [decode(item) for item in value]
        if isinstance(value, Mapping):
            return {str(key): decode(item) for key, item in value.items()}
        return value

    return EscDocument({str(key): decode(value) for key, value in data.items()})


def dotted_path(path: ValuePath) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


def _setting_text(value: Any) -> str | None:
    """A value as a setting string, or None when it cannot be one (see the module docstring)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dt.date):  # an unquoted date in a YAML file
        return value.isoformat()
    return None


def source_values(
    label: str,
    document: EscDocument,
    *,
    groups: Iterable[str],
    expires_at: float = float("inf"),
    is_secret: Callable[[str, ValuePath], bool] | None = None,
) -> SourceValues:
    """The settings an ESC document offers: `environmentVariables` first, then `groups` in order."""
    secret_of = is_secret or (lambda _name, path: document.is_secret(path))
    values: dict[str, str] = {}
    secrets: set[str] = set()

    def offer(name: str, value: Any, path: ValuePath) -> None:
        if name in values:
            return
        text = _setting_text(value)
        if text is None:
            log.debug("ESC value %s is not a single string, number or boolean; not used.", dotted_path(path))
            return
        values[name] = text
        if secret_of(name, path):
            secrets.add(name)

    env_vars = document.values.get("environmentVariables")
    if isinstance(env_vars, Mapping):
        for name, value in env_vars.items():
            offer(name, value, ("environmentVariables", name))
    for group in groups:
        block = document.values.get(group)
        if not isinstance(block, Mapping):
            continue
        for key, value in block.items():
            variable = group_variable(key)
            if variable is None:
                log.debug("ESC key %s.%s does not name a variable; not used.", group, key)
                continue
            home = group_of(variable)
            if home is not None and home != group:
                log.debug("ESC key %s.%s belongs in group %s; not used.", group, key, home)
                continue
            offer(variable, value, (group, key))
    return SourceValues(label, values, frozenset(secrets), expires_at)
