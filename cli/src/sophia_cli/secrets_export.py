"""`sophia secrets export`: flat secrets (GitHub's `toJSON(secrets)`, a `.env`, the environment) into
the grouped Pulumi ESC layout, merged into an existing definition without dropping anything.

Every value is registered with the redactor the moment it is read, and nothing here prints a value:
the diff names keys only.
"""

from __future__ import annotations

import json
import os
import re
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
MAX_DEFINITION_NODES = 200_000  # YAML aliases can expand a small definition enormously (as esc_eval caps)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # always fullmatch: `$` would let a trailing newline in
NOTHING_WRITTEN = "Nothing was written."


# -- reading the flat input --------------------------------------------------------------------


def read_stream(stream: Any, source: str) -> str:
    """At most MAX_INPUT_BYTES of a text or binary stream (stdin), refused beyond that without reading on."""
    handle = getattr(stream, "buffer", stream)
    data = handle.read(MAX_INPUT_BYTES + 1)
    raw = data if isinstance(data, bytes) else data.encode("utf-8", errors="surrogatepass")
    return _decoded(raw, source)


def read_file(path: Path, source: str) -> str:
    """A file's text, its size checked before it is read (and the read bounded for pipes and devices)."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if path.is_file():
                _check_size(size, source)
            raw = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"Cannot read {source}: {exc.strerror or exc}. {NOTHING_WRITTEN}") from None
    return _decoded(raw, source)


def _decoded(raw: bytes, source: str) -> str:
    """UTF-8 text; `raw` was read with a limit of MAX_INPUT_BYTES + 1, so a longer input's size is unknown."""
    if len(raw) > MAX_INPUT_BYTES:
        _check_size(len(raw), source, known=False)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 text. {NOTHING_WRITTEN}") from None


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
    except RecursionError:
        raise InputError(
            f"{source} is nested too deeply to be an object of NAME: value. {NOTHING_WRITTEN}",
            hint='Pass one flat JSON object, e.g. {"TAVILY_API_KEY": "…"}.',
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
    text = read_file(path, source)
    pairs: list[tuple[str, Any]] = []
    lines: list[int] = []
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        # The parser's line is where the binding's text starts, blank lines before the name included.
        line = binding.original.line + original[: len(original) - len(original.lstrip())].count("\n")
        if binding.error:
            raise InputError(f"{source}, line {line}, is not NAME=value. {NOTHING_WRITTEN}")
        if binding.key is not None:
            pairs.append((binding.key, binding.value))
            lines.append(line)
    return validated(pairs, source, lines=lines)


def variables_from_environment(prefixes: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    wanted = tuple(p.upper() for p in prefixes if p)
    if not wanted:
        raise InputError("--from-env needs at least one prefix, e.g. --from-env TAVILY_ SNOWFLAKE_.")
    pairs = [(name, value) for name, value in sorted(environ.items()) if name.upper().startswith(wanted)]
    return validated(pairs, "the environment")


def validated(pairs: list[tuple[str, Any]], source: str, *, lines: list[int] | None = None) -> dict[str, str]:
    """Names normalised (`foo-bar` → FOO_BAR); every problem in one error, naming variables, never values.

    `lines` (one per pair) are the input's line numbers, named when a variable is set twice.
    """
    if len(pairs) > MAX_VARIABLES:
        raise InputError(
            f"Cannot export {source}: {len(pairs)} variables (at most {MAX_VARIABLES}). {NOTHING_WRITTEN}",
            hint="Export fewer variables at a time.",
        )
    for _, value in pairs:  # before anything is printed (oversized values are refused, never shown)
        if isinstance(value, str) and len(value) <= MAX_VALUE_BYTES:
            register_secret(value)
    problems: list[str] = []
    seen: dict[str, tuple[str, int | None]] = {}
    result: dict[str, str] = {}
    for index, (name, value) in enumerate(pairs):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append(f"{str(name)[:60]!r} is not a variable name")
            continue
        normal = normalize_name(name)
        line = lines[index] if lines is not None else None
        if normal in seen:
            first, first_line = seen[normal]
            where = f" (lines {first_line} and {line})" if first_line is not None and line is not None else ""
            if first == name:
                problems.append(f"{name} is set twice{where}")
            else:
                problems.append(f"{first} and {name} are the same variable ({normal}) after normalisation{where}")
            continue
        seen[normal] = (name, line)
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


def _check_size(size: int, source: str, *, known: bool = True) -> None:
    if size > MAX_INPUT_BYTES:
        amount = f"{size:,} bytes" if known else f"more than {MAX_INPUT_BYTES:,} bytes"
        raise InputError(
            f"{source} is {amount}; the most accepted is {MAX_INPUT_BYTES:,}. {NOTHING_WRITTEN}",
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
#
# The definition is edited round-trip with ruamel.yaml (YAML 1.2, as ESC reads it): comments, quoting,
# anchors, flow style and key order stay; only `values.<group>.<key>` nodes are added or replaced.


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


def _yaml(indent: tuple[int, int, int] = (2, 2, 0)) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 1_000_000  # never fold a long line that was one line
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def parse_definition(text: str | None, where: str) -> dict[str, Any]:
    """The definition as a round-trip mapping (YAML 1.2 core: `NO`, `on` and `0755` stay as written)."""
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    if text is None or not text.strip():
        return CommentedMap()
    try:
        parsed = _yaml().load(text)
    except RecursionError:
        raise InputError(f"The definition of {where} is nested too deeply. {NOTHING_WRITTEN}") from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        reason = f": {problem}" if problem else ""
        raise InputError(f"The definition of {where} is not valid YAML{line}{reason}. {NOTHING_WRITTEN}") from None
    if parsed is None:
        return CommentedMap()
    if not isinstance(parsed, dict):
        raise InputError(f"The definition of {where} is not a YAML mapping. {NOTHING_WRITTEN}")
    _count_leaves(parsed, where)  # refuses an alias bomb before anything else walks it
    _keep_anchors(parsed)
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

    from ruamel.yaml.comments import CommentedMap

    definition = copy.deepcopy(existing)
    if not isinstance(definition, CommentedMap):
        definition = CommentedMap(definition)
    values = definition.get("values")
    if values is None:
        values = definition["values"] = CommentedMap()
    if not isinstance(values, dict):
        raise InputError(f"`values` in the definition of {where} is not a mapping. {NOTHING_WRITTEN}")
    before = _count_leaves(values, where)
    added, changed, unchanged = [], [], []
    for item in plan.placed:
        block = values.get(item.group)
        if block is None:
            block = values[item.group] = CommentedMap()
        if not isinstance(block, dict):
            raise InputError(
                f"`values.{item.group}` in the definition of {where} is not a mapping, so {item.variable} "
                f"cannot be placed there. {NOTHING_WRITTEN}",
                hint=f"Fix `values.{item.group}` by hand (`esc env edit`), then run the command again.",
            )
        old = block.get(item.key)
        if item.key not in block:
            added.append(item.path)
        elif _same_value(old, item, current_values):
            unchanged.append(item.path)
            continue
        else:
            changed.append(item.path)
        node = CommentedMap([("fn::secret", _secret_scalar(item.value))])
        if isinstance(old, CommentedMap) and old.fa.flow_style():
            node.fa.set_flow_style()  # `{fn::secret: …}` written inline stays inline
        block[item.key] = node
    kept = before - len(changed) - len(unchanged)
    return MergeResult(definition, tuple(added), tuple(changed), tuple(unchanged), kept)


def _secret_scalar(value: str) -> Any:
    """`value` quoted when a YAML 1.1 reader would take it for something else (`on`, `NO`, `0755`, `null`).

    ESC reads YAML 1.2 and keeps those as strings either way; quoting keeps older readers (PyYAML) right too.
    """
    import yaml
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return value if tag == "tag:yaml.org,2002:str" or "\n" in value else SingleQuotedScalarString(value)


def _same_value(node: Any, item: Placed, current_values: Mapping[str, Any] | None) -> bool:
    if isinstance(node, dict) and set(node) == {"fn::secret"} and isinstance(node["fn::secret"], str):
        return bool(node["fn::secret"] == item.value)
    if current_values is not None:
        group = current_values.get(item.group)
        return isinstance(group, Mapping) and group.get(item.key) == item.value
    return False


def _count_leaves(node: Any, where: str) -> int:
    """Leaf values under `node` (an `fn::` call counts as one), refusing more than MAX_DEFINITION_NODES.

    Aliases are walked as ESC expands them, so the walk is capped: a 1 kB "billion laughs" definition
    is refused in milliseconds instead of hanging.
    """
    leaves = visited = 0
    stack = [node]
    while stack:
        current = stack.pop()
        visited += 1
        if visited > MAX_DEFINITION_NODES:
            raise InputError(
                f"The definition of {where} has more than {MAX_DEFINITION_NODES:,} values once its YAML aliases "
                f"are expanded, so it is not merged into. {NOTHING_WRITTEN}",
                hint="Replace the nested aliases (&anchor / *alias) by hand, then run the command again.",
            )
        if isinstance(current, dict) and not any(str(k).startswith("fn::") for k in current):
            stack.extend(current.values())
        else:
            leaves += 1
    return leaves


def _keep_anchors(node: Any) -> None:
    """Mark every anchor to be written back, even one no alias refers to (ruamel drops those by default)."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        anchor = getattr(current, "anchor", None)
        if anchor is not None and getattr(anchor, "value", None):
            anchor.always_dump = True
        if isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


# (mapping, sequence, offset) layouts tried, most common first: `- x` at the key's column or indented.
_INDENTS = tuple(
    dict.fromkeys(
        (mapping, sequence, offset)
        for mapping in (2, 4, 3)
        for offset in (0, 2, mapping)
        for sequence in (offset + 2, max(mapping, offset + 2))
    )
)


def render_definition(definition: Mapping[str, Any], *, like: str | None = None) -> str:
    """The definition as YAML; with `like` (the text it was read from), in that text's indentation."""
    return _dump(definition, _indent_of(like) if like else _INDENTS[0])


def _dump(definition: Mapping[str, Any], indent: tuple[int, int, int]) -> str:
    import io

    out = io.StringIO()
    _yaml(indent).dump(definition, out)
    return out.getvalue()


def _indent_of(text: str) -> tuple[int, int, int]:
    """The indentation that writes `text` back unchanged (or with the fewest lines changed)."""
    parsed = _yaml().load(text)
    if parsed is None:
        return _INDENTS[0]
    _keep_anchors(parsed)
    original = text.splitlines()
    best, fewest = _INDENTS[0], None
    for indent in _INDENTS:
        rendered = _dump(parsed, indent)
        if rendered == text:
            return indent
        differing = _changed_lines(original, rendered.splitlines())
        if fewest is None or differing < fewest:
            best, fewest = indent, differing
    return best


def _changed_lines(before: list[str], after: list[str]) -> int:
    import difflib

    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    same = sum(block.size for block in matcher.get_matching_blocks())
    return max(len(before), len(after)) - same


def layout_changes(text: str | None) -> int:
    """How many lines of `text` the round trip itself rewrites (spacing it cannot keep); 0 when none."""
    if text is None or not text.strip():
        return 0
    parsed = _yaml().load(text)
    _keep_anchors(parsed)
    return _changed_lines(text.splitlines(), _dump(parsed, _indent_of(text)).splitlines())


def check_kept(before: str | None, after: str, result: MergeResult, plan: ExportPlan, where: str) -> None:
    """Refuse to write unless every value outside the exported keys reads back exactly as before (YAML 1.2)."""
    old = _plain(_yaml().load(before)) if before and before.strip() else {}
    new = _plain(_yaml().load(after))
    for tree in (old, new):
        values = tree.get("values") if isinstance(tree, dict) else None
        if isinstance(values, dict):
            for item in plan.placed:
                group = values.get(item.group)
                if isinstance(group, dict):
                    group.pop(item.key, None)
    new_values = new.get("values") if isinstance(new, dict) else None
    old_values = old.get("values") if isinstance(old, dict) else None
    if isinstance(new_values, dict):
        for item in plan.placed:  # groups the export created
            if new_values.get(item.group) == {} and not (isinstance(old_values, dict) and item.group in old_values):
                new_values.pop(item.group, None)
        if new_values == {} and not (isinstance(old, dict) and "values" in old):
            new.pop("values", None)
    if old != new:
        raise InputError(
            f"Merging into the definition of {where} would change values the export does not own "
            f"(a YAML construct the round trip cannot keep). {NOTHING_WRITTEN}",
            hint="Add the keys by hand (`esc env edit`), and report the definition's shape as a bug.",
        )
    written = _plain(_yaml().load(after)).get("values", {})
    for item in plan.placed:
        if item.path in result.unchanged:
            continue
        node = written.get(item.group, {}).get(item.key)
        if node != {"fn::secret": ("str", item.value)}:
            raise InputError(f"{item.path} would not read back as written. {NOTHING_WRITTEN}")


def _plain(node: Any) -> Any:
    """A round-trip tree as plain, comparable data (key order kept; tags kept as `(tag, value)`)."""
    from ruamel.yaml.comments import TaggedScalar

    if isinstance(node, dict):
        return {str(k) if isinstance(k, str) else repr(_plain(k)): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, TaggedScalar):
        return (str(node.tag), node.value)
    if isinstance(node, float):
        return ("float", repr(float(node)))  # repr: `.nan` equals itself
    for kind in (bool, int, str):
        if isinstance(node, kind):
            return (kind.__name__, kind(node))
    return node


def diff_lines(result: MergeResult, plan: ExportPlan, *, layout: int = 0) -> list[str]:
    """The change by key name, never by value; `layout`: lines whose spacing the round trip rewrites."""
    by_path = {item.path: item.variable for item in plan.placed}
    lines = [f"  + {path}  ({by_path[path]})" for path in result.added]
    lines += [f"  ~ {path}  ({by_path[path]})" for path in result.changed]
    summary = f"  {len(result.added)} added, {len(result.changed)} changed, {len(result.unchanged)} unchanged"
    lines.append(summary + f"; {result.kept} other value(s) kept as they are")
    if layout:
        lines.append(
            f"  (the rest of the definition is kept, comments included; {layout} line(s) of it get new spacing "
            "or indentation, with the same values)"
        )
    return lines


def input_lines(plan: ExportPlan) -> list[str]:
    lines = []
    if plan.unmatched:
        lines.append(f"Left out (no group matches): {', '.join(plan.unmatched)}")
    if plan.withheld:
        lines.append(f"Never exported (CI credentials): {', '.join(plan.withheld)}")
    return lines


def out_target(path: Path) -> Path:
    """Where `--out PATH` writes: the file a symlink points to (the link stays); refused before any work."""
    target = Path(os.path.realpath(path))
    shown = f"--out {path}" + (f" (a link to {target})" if target != path.absolute() else "")
    if target.is_dir():
        raise InputError(
            f"{shown} is a directory, not a file. {NOTHING_WRITTEN}",
            hint=f"Give a file path, e.g. --out {path / 'esc.yaml'}.",
        )
    if target.exists() and not target.is_file():
        raise InputError(f"{shown} is not a regular file. {NOTHING_WRITTEN}")
    if not target.parent.is_dir():
        raise InputError(
            f"{shown}: the folder {target.parent} does not exist. {NOTHING_WRITTEN}",
            hint=f"Create it first (mkdir -p {target.parent}) or give another path.",
        )
    return target
