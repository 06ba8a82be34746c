"""Engine events turned into what a person reads: one change per resource, with the properties that differ.

Plain data and pure functions over the Automation API's event objects (read by attribute, so this module
never imports `pulumi`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SECRET = "[secret]"  # noqa: S105 - the mask shown instead of a secret
# Pulumi's marker on a serialized secret value (the "4dabf1…" signature key).
_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 - a public marker, not a secret
VALUE_CHARS = 200
ROOT_TYPE = "pulumi:pulumi:Stack"

# The engine reports a replacement as several steps on one URN; a reader wants one word.
_OP_WORDS = {
    "create-replacement": "replace",
    "delete-replaced": "replace",
    "discard-replaced": "replace",
    "import-replacement": "replace",
    "replace": "replace",
    "discard": "delete",
}
QUIET_OPS = ("same", "read", "refresh")
_OP_RANK = {op: rank for rank, op in enumerate(("create", "replace", "update", "delete"))}
_RANK = {"same": 0, "read": 0, "refresh": 1, "import": 2, "create": 3, "update": 3, "delete": 3, "replace": 4}
CHANGE_OPS = ("create", "update", "replace", "delete")


def op_word(op: str) -> str:
    return _OP_WORDS.get(op, op)


def masked(value: Any) -> Any:
    """`value` with every secret replaced by "[secret]"."""
    if isinstance(value, Mapping):
        if _SECRET_SIG in value:
            return SECRET
        return {str(k): masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def short(value: Any, limit: int = VALUE_CHARS) -> str:
    """A value as compact JSON, clipped: diffs and summaries must stay small."""
    value = masked(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resource_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


@dataclass
class PropertyChange:
    path: str
    kind: str  # add, delete, update (with "-replace" when the change forces a replacement)
    old: str
    new: str


@dataclass
class ResourceChange:
    urn: str
    type: str
    op: str  # create, update, replace, delete, same, refresh, read, import
    properties: list[PropertyChange] = field(default_factory=list)
    failed: bool = False

    @property
    def name(self) -> str:
        return resource_name(self.urn)


def _lookup(values: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a property path like `spec.replicas` or `tags["a"]` (top-level key when deeper fails)."""
    if not values:
        return None
    current: Any = values
    for part in path.replace("[", ".").replace("]", "").replace('"', "").split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def property_changes(metadata: Any) -> list[PropertyChange]:
    """The changed properties of one step: the detailed diff when the provider gives one, else its diff keys."""
    old_inputs = getattr(getattr(metadata, "old", None), "inputs", None)
    new_inputs = getattr(getattr(metadata, "new", None), "inputs", None)
    detailed: Mapping[str, Any] = getattr(metadata, "detailed_diff", None) or {}
    changes: list[PropertyChange] = []
    if detailed:
        for path, diff in sorted(detailed.items()):
            kind = str(getattr(getattr(diff, "diff_kind", ""), "value", getattr(diff, "diff_kind", "")))
            changes.append(
                PropertyChange(path, kind, short(_lookup(old_inputs, path)), short(_lookup(new_inputs, path)))
            )
        return changes
    keys = getattr(metadata, "diffs", None) or sorted(
        k
        for k in {*(old_inputs or {}), *(new_inputs or {})}
        if not k.startswith("__") and (old_inputs or {}).get(k) != (new_inputs or {}).get(k)
    )
    if old_inputs is None or new_inputs is None:
        return []  # a create or a delete: every property changes, none is worth listing
    for key in keys:
        old, new = _lookup(old_inputs, key), _lookup(new_inputs, key)
        kind = "add" if old is None else "delete" if new is None else "update"
        changes.append(PropertyChange(key, kind, short(old), short(new)))
    return changes


ProgressCallback = Callable[[int, str], None]


class EventLog:
    """Collects one operation's engine events (called from the SDK's event thread) and reports progress."""

    def __init__(self, operation: str, stack: str, on_progress: ProgressCallback | None = None) -> None:
        self.operation = operation
        self.stack = stack
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._changes: dict[str, ResourceChange] = {}
        self._done = 0
        self.errors: list[str] = []
        self.summary: dict[str, int] = {}

    def __call__(self, event: Any) -> None:
        message = ""
        with self._lock:
            if (pre := getattr(event, "resource_pre_event", None)) is not None:
                message = self._pre(pre.metadata)
            elif (out := getattr(event, "res_outputs_event", None)) is not None:
                self._done += 1
                meta = out.metadata
                if _shown(meta.type) and op_word(_op(meta)) not in QUIET_OPS:
                    message = f"{self.operation} {self.stack}: {op_word(_op(meta))} {resource_name(meta.urn)} done"
            elif (failed := getattr(event, "res_op_failed_event", None)) is not None:
                change = self._changes.get(failed.metadata.urn)
                if change is not None:
                    change.failed = True
                message = f"{self.operation} {self.stack}: {resource_name(failed.metadata.urn)} failed"
            elif (diag := getattr(event, "diagnostic_event", None)) is not None:
                if diag.severity == "error":
                    self.errors.append(short(diag.message.strip(), 500))
            elif (summary := getattr(event, "summary_event", None)) is not None:
                self.summary = {op_word(str(k)): int(v) for k, v in (summary.resource_changes or {}).items()}
                message = f"{self.operation} {self.stack}: finished"
            done = self._done
        if message and self._on_progress is not None:
            self._on_progress(done, message)

    def _pre(self, meta: Any) -> str:
        op = op_word(_op(meta))
        known = self._changes.get(meta.urn)
        if known is None or _RANK.get(op, 1) > _RANK.get(known.op, 1):
            self._changes[meta.urn] = ResourceChange(
                urn=meta.urn, type=meta.type, op=op, properties=property_changes(meta)
            )
        if op in QUIET_OPS or not _shown(meta.type):
            return ""
        return f"{self.operation} {self.stack}: {op} {resource_name(meta.urn)}"

    def counts(self) -> dict[str, int]:
        """Resources per operation, counting what `changes` lists (not the stack or its providers)."""
        counts: dict[str, int] = {}
        for change in self.changes(include_same=True):
            word = "same" if change.op in QUIET_OPS else change.op
            counts[word] = counts.get(word, 0) + 1
        return counts

    def changes(self, *, include_same: bool = False) -> list[ResourceChange]:
        """Grouped by operation, then by type and name: the engine's event order varies between runs."""
        with self._lock:
            listed = [c for c in self._changes.values() if _shown(c.type) and (include_same or c.op not in QUIET_OPS)]
        return sorted(listed, key=lambda c: (_OP_RANK.get(c.op, len(_OP_RANK)), c.type, c.name))


def _shown(resource_type: str) -> bool:
    """The stack itself and default providers are bookkeeping, not resources a reader asked for."""
    return resource_type != ROOT_TYPE and not resource_type.startswith("pulumi:providers:")


def _op(meta: Any) -> str:
    op = getattr(meta, "op", "")
    return str(getattr(op, "value", op))
