"""`sophia secrets export`: flat secrets (GitHub's `toJSON(secrets)`, a `.env`, the environment) into
the grouped Pulumi ESC layout, merged into an existing definition without dropping anything.

Every value is registered with the redactor the moment it is read, and nothing here prints a value:
the diff names keys only.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sophia_shared.errors import InputError
from sophia_shared.redaction import register_secret
from sophia_shared.secret_groups import esc_key, group_of, never_exported, normalize_name

MAX_INPUT_BYTES = 1_000_000
MAX_VALUE_BYTES = 64 * 1024
MAX_VARIABLES = 1000  # GitHub allows at most 1,000 organisation secrets
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
NOTHING_WRITTEN = "Nothing was written."


# -- reading the flat input --------------------------------------------------------------------


def variables_from_json(text: str, source: str) -> dict[str, str]:
    """A JSON object of name → string (what `toJSON(secrets)` prints)."""
    _check_size(len(text.encode("utf-8", errors="replace")), source)
    pairs: list[tuple[str, Any]] = []
    try:
        data = json.loads(text, object_pairs_hook=_collect_top_level(pairs))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). {NOTHING_WRITTEN}",
            hint="Pass one JSON object of NAME: value, e.g. the output of `toJSON(secrets)` in a workflow.",
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{source} is JSON but not an object of NAME: value. {NOTHING_WRITTEN}",
            hint='Pass one JSON object, e.g. {"TAVILY_API_KEY": "…"}.',
        )
    return validated(pairs, source)


def _collect_top_level(pairs: list[tuple[str, Any]]) -> Any:
    """An object_pairs_hook that records the outermost object's pairs (duplicates included)."""

    def hook(items: list[tuple[str, Any]]) -> dict[str, Any]:
        pairs.clear()
        pairs.extend(items)  # the outermost object is decoded last
        return dict(items)

    return hook


def variables_from_dotenv(path: Path) -> dict[str, str]:
    import io

    from dotenv.parser import parse_stream

    source = f"the .env file {path}"
    try:
        size = path.stat().st_size
        _check_size(size, source)
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"Cannot read {source}: {exc.strerror}. {NOTHING_WRITTEN}") from None
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 text. {NOTHING_WRITTEN}") from None
    pairs: list[tuple[str, Any]] = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = text[: text.find(binding.original.string)].count("\n") + 1 if binding.original.string else "?"
            raise InputError(f"{source}, line {line}, is not NAME=value. {NOTHING_WRITTEN}")
        if binding.key is not None:
            pairs.append((binding.key, binding.value))
    return validated(pairs, source)


def variables_from_environment(prefixes: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    wanted = tuple(p.upper() for p in prefixes if p)
    if not wanted:
        raise InputError("--from-env needs at least one prefix, e.g. --from-env TAVILY_ SNOWFLAKE_.")
    pairs = [(name, value) for name, value in sorted(environ.items()) if name.upper().startswith(wanted)]
    return validated(pairs, "the environment")


def validated(pairs: list[tuple[str, Any]], source: str) -> dict[str, str]:
    """Names normalised (`foo-bar` → FOO_BAR); every problem in one error, naming variables, never values."""
    if len(pairs) > MAX_VARIABLES:
        raise InputError(
            f"Cannot export {source}: {len(pairs)} variables (at most {MAX_VARIABLES}). {NOTHING_WRITTEN}",
            hint="Export fewer variables at a time.",
        )
    for _, value in pairs:  # before anything is printed (oversized values are refused, never shown)
        if isinstance(value, str) and len(value) <= MAX_VALUE_BYTES:
            register_secret(value)
    problems: list[str] = []
    seen: dict[str, str] = {}
    result: dict[str, str] = {}
    for name, value in pairs:
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{str(name)[:60]!r} is not a variable name")
            continue
        normal = normalize_name(name)
        if normal in seen:
            problems.append(f"{seen[normal]} and {name} are the same variable ({normal}) after normalisation")
            continue
        seen[normal] = name
        if value is None:
            problems.append(f"{name} has no value")
        elif not isinstance(value, str):
            problems.append(f"{name} is a JSON {_json_type(value)}, not a string")
        elif not value.strip():
            problems.append(f"{name} is empty")
        elif len(value.encode("utf-8", errors="replace")) > MAX_VALUE_BYTES:
            problems.append(f"{name} is longer than {MAX_VALUE_BYTES:,} bytes")
        elif "\x00" in value:
            problems.append(f"{name} contains a NUL character")
        else:
            result[normal] = value
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise InputError(
            f"Cannot export {source}: {shown}. {NOTHING_WRITTEN}",
            hint="Fix or remove those variables and run the command again.",
        )
    return result


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}.get(type(value), "value")


def _check_size(size: int, source: str) -> None:
    if size > MAX_INPUT_BYTES:
        raise InputError(
            f"{source} is {size:,} bytes; the most accepted is {MAX_INPUT_BYTES:,}. {NOTHING_WRITTEN}",
            hint="Export fewer variables at a time.",
        )


# -- placing variables in groups ---------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    variable: str
    group: str
    key: str
    value: str = field(repr=False)

    @property
    def path(self) -> str:
        return f"{self.group}.{self.key}"


@dataclass(frozen=True)
class ExportPlan:
    placed: tuple[Placed, ...]
    unmatched: tuple[str, ...]  # no group: listed by name, left out
    withheld: tuple[str, ...]  # CI credentials: never exported


def plan_export(variables: Mapping[str, str]) -> ExportPlan:
    placed, unmatched, withheld = [], [], []
    for name in sorted(variables):
        group = group_of(name)
        if never_exported(name):
            withheld.append(name)
        elif group is None:
            unmatched.append(name)
        else:
            placed.append(Placed(name, group, esc_key(name), variables[name]))
    return ExportPlan(tuple(placed), tuple(unmatched), tuple(withheld))


# -- merging into a definition -----------------------------------------------------------------


@dataclass(frozen=True)
class MergeResult:
    definition: dict[str, Any]
    added: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept: int  # values already there that the input does not touch (other keys, groups, blocks)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed)


def parse_definition(text: str | None, where: str) -> dict[str, Any]:
    import yaml

    if text is None or not text.strip():
        return {}
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"The definition of {where} is not valid YAML{line}. {NOTHING_WRITTEN}") from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise InputError(f"The definition of {where} is not a YAML mapping. {NOTHING_WRITTEN}")
    return parsed


def merge(
    existing: Mapping[str, Any],
    plan: ExportPlan,
    where: str,
    *,
    current_values: Mapping[str, Any] | None = None,
) -> MergeResult:
    """`existing` with the plan's values set under `values.<group>.<key>` as `fn::secret`.

    Nothing else is touched. A key counts as unchanged when the opened environment
    (`current_values`) or a plaintext `fn::secret` in the definition already holds the same value;
    its definition node is then kept as it is (no needless new revision of an encrypted secret).
    """
    import copy

    definition = copy.deepcopy(dict(existing))
    values = definition.setdefault("values", {})
    if values is None:
        values = definition["values"] = {}
    if not isinstance(values, dict):
        raise InputError(f"`values` in the definition of {where} is not a mapping. {NOTHING_WRITTEN}")
    before = _count_leaves(values)
    added, changed, unchanged = [], [], []
    for item in plan.placed:
        block = values.setdefault(item.group, {})
        if block is None:
            block = values[item.group] = {}
        if not isinstance(block, dict):
            raise InputError(
                f"`values.{item.group}` in the definition of {where} is not a mapping, so {item.variable} "
                f"cannot be placed there. {NOTHING_WRITTEN}",
                hint=f"Fix `values.{item.group}` by hand (`esc env edit`), then run the command again.",
            )
        if item.key not in block:
            added.append(item.path)
        elif _same_value(block[item.key], item, current_values):
            unchanged.append(item.path)
            continue
        else:
            changed.append(item.path)
        block[item.key] = {"fn::secret": item.value}
    kept = before - len(changed) - len(unchanged)
    return MergeResult(definition, tuple(added), tuple(changed), tuple(unchanged), kept)


def _same_value(node: Any, item: Placed, current_values: Mapping[str, Any] | None) -> bool:
    if isinstance(node, dict) and set(node) == {"fn::secret"} and isinstance(node["fn::secret"], str):
        return bool(node["fn::secret"] == item.value)
    if current_values is not None:
        group = current_values.get(item.group)
        return isinstance(group, Mapping) and group.get(item.key) == item.value
    return False


def _count_leaves(node: Any) -> int:
    if isinstance(node, dict) and not any(str(k).startswith("fn::") for k in node):
        return sum(_count_leaves(v) for v in node.values())
    return 1


def render_definition(definition: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(definition), sort_keys=False, allow_unicode=True, width=10_000)


def diff_lines(result: MergeResult, plan: ExportPlan) -> list[str]:
    """The change by key name, never by value."""
    by_path = {item.path: item.variable for item in plan.placed}
    lines = [f"  + {path}  ({by_path[path]})" for path in result.added]
    lines += [f"  ~ {path}  ({by_path[path]})" for path in result.changed]
    summary = f"  {len(result.added)} added, {len(result.changed)} changed, {len(result.unchanged)} unchanged"
    lines.append(summary + f"; {result.kept} other value(s) kept as they are")
    return lines


def input_lines(plan: ExportPlan) -> list[str]:
    lines = []
    if plan.unmatched:
        lines.append(f"Left out (no group matches): {', '.join(plan.unmatched)}")
    if plan.withheld:
        lines.append(f"Never exported (CI credentials): {', '.join(plan.withheld)}")
    return lines


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, atomically (a reader sees old or new)."""
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
