"""Pulumi ESC's evaluator for local files: YAML environments in, evaluated values and secret marks out.

What works offline follows ESC's semantics and is checked against ESC's own evaluator fixtures
(tests/unit/test_esc_fixtures.py): `imports` (later imports override earlier ones, the
environment's own values override its imports, objects merge deeply, `{name: {merge: false}}`
only names an import), `${path.to.value}` interpolation (also `${imports.name…}`,
`${environments.project.env…}` and `${context…}`, with cycle detection), `$${` to write `${`
literally, `fn::secret`, `fn::final`, `fn::join`, `fn::split`, `fn::concat`, `fn::toJSON`,
`fn::fromJSON`, `fn::toBase64`, `fn::fromBase64` and `fn::toString`. What needs Pulumi Cloud
(providers `fn::open::*`, `fn::rotate::*`, encrypted `fn::secret: {ciphertext: …}`) is refused.

A problem in one value never stops the rest: like ESC, the value becomes unknown and a
`Diagnostic` says where (file, line, value path) and why. Diagnostics never quote a value.
Environment names resolve to `<directory>/<name>.yaml`, one directory for the whole evaluation,
as ESC's names are global to an organisation rather than relative to the importing environment.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .esc_document import ValuePath, dotted_path


@dataclass(frozen=True)
class Value:
    """One evaluated value: `raw` is a JSON scalar, a list of Values or a dict of Values."""

    raw: Any = None
    secret: bool = False
    unknown: bool = False
    final: bool = False
    # Keys an object only inherits from an import: ESC's fn::toString leaves them out (its quirk, kept).
    inherited: frozenset[str] = frozenset()


UNKNOWN_VALUE = Value(unknown=True)
Provider = Callable[[Value], Value]


class ProviderError(Exception):
    """Raised by a provider given to the evaluator; its message becomes the value's diagnostic."""


@dataclass(frozen=True)
class Diagnostic:
    """A problem with one value (or one import) of one environment; never holds a value."""

    environment: str
    file: Path | None
    line: int | None
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}" if self.file is not None else f"environment {self.environment}"
        if self.line is not None:
            where += f", line {self.line}"
        subject = f"{self.path}: " if self.path else ""
        return f"{where}: {subject}{self.message}"


class EscLoadError(Exception):
    """The root file cannot be read, is not YAML, or does not have ESC's shape."""

    def __init__(self, file: Path, line: int | None, problem: str, *, kind: str) -> None:
        super().__init__(problem)
        self.file = file
        self.line = line
        self.problem = problem
        # "read", "yaml", "shape", "size" (too many values: YAML aliases), "depth" (nested too deeply) or
        # "chain" (references or imports chained too deeply)
        self.kind = kind


@dataclass(frozen=True)
class Evaluation:
    values: Mapping[str, Value]
    diagnostics: tuple[Diagnostic, ...]


def evaluate_file(
    path: Path,
    *,
    name: str | None = None,
    directory: Path | None = None,
    providers: Mapping[str, Provider] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Evaluate the environment in `path` (named `name`, default the file's stem).

    Imports and `${environments.…}` load `<directory>/<name>.yaml` (default: the file's folder).
    `providers` maps `fn::open::<name>` to a function (none by default: providers need Pulumi
    Cloud); `context` adds to `${context…}`, which always holds currentEnvironment/rootEnvironment.
    """
    root_name = name or path.stem
    evaluator = _Evaluator(directory or path.parent, root_name, providers or {}, context or {})
    return evaluator.evaluate_root(path)


# -- plain values ----------------------------------------------------------------------------------


def plain(value: Value) -> Any:
    """The JSON value of an evaluated value (unknowns as None)."""
    if isinstance(value.raw, list):
        return [plain(item) for item in value.raw]
    if isinstance(value.raw, dict):
        return {key: plain(item) for key, item in value.raw.items()}
    return value.raw


def from_plain(data: Any, *, secret: bool = False) -> Value:
    """A JSON value as an evaluated value, every part marked secret when `secret`."""
    if isinstance(data, list):
        return Value([from_plain(item, secret=secret) for item in data], secret=secret)
    if isinstance(data, dict):
        return Value({str(key): from_plain(item, secret=secret) for key, item in data.items()}, secret=secret)
    return Value(data, secret=secret)


def walk(value: Value, path: ValuePath = ()) -> Iterator[tuple[ValuePath, Value]]:
    """Every value inside `value` (itself first) with its path."""
    yield path, value
    if isinstance(value.raw, list):
        for index, item in enumerate(value.raw):
            yield from walk(item, (*path, index))
    elif isinstance(value.raw, dict):
        for key, item in value.raw.items():
            yield from walk(item, (*path, key))


def _contains_secret(value: Value) -> bool:
    return any(part.secret for _, part in walk(value))


def _contains_unknown(value: Value) -> bool:
    return any(part.unknown for _, part in walk(value))


def _deep_secret(value: Value) -> Value:
    if isinstance(value.raw, list):
        return replace(value, raw=[_deep_secret(item) for item in value.raw], secret=True)
    if isinstance(value.raw, dict):
        return replace(value, raw={key: _deep_secret(item) for key, item in value.raw.items()}, secret=True)
    return replace(value, secret=True)


def _type_name(value: Value) -> str:
    raw = value.raw
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "boolean"
    if isinstance(raw, int | float):
        return "number"
    if isinstance(raw, str):
        return "string"
    return "array" if isinstance(raw, list) else "object"


def _go_quote(text: str) -> str:
    """Go's strconv.Quote, which ESC's fn::toString uses for nested values."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
    escapes |= {"\t": "\\t", "\v": "\\v"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _number_text(number: int | float) -> str:
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        return str(int(number))
    return json.dumps(number)


def _to_string(value: Value) -> str:
    raw = value.raw
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return _number_text(raw)
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return ",".join(_go_quote(_to_string(item)) for item in raw)
    own = sorted(key for key in raw if key not in value.inherited)
    return ",".join(f"{_go_quote(key)}={_go_quote(_to_string(raw[key]))}" for key in own)


def _to_json(value: Value) -> str:
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- YAML with YAML 1.2 core scalars (as ESC reads it: `yes` and `on` stay strings) ---------------


class _CoreLoader(yaml.SafeLoader):
    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's class-level table, replaced


_CORE_SCALARS = {
    "tag:yaml.org,2002:null": (r"~|null|Null|NULL|", "~nN"),
    "tag:yaml.org,2002:bool": (r"true|True|TRUE|false|False|FALSE", "tTfF"),
    "tag:yaml.org,2002:int": (r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    "tag:yaml.org,2002:float": (
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN",
        "-+.0123456789",
    ),
}
for _tag, (_pattern, _first) in _CORE_SCALARS.items():
    _CoreLoader.add_implicit_resolver(
        _tag, re.compile(f"^(?:{_pattern})$"), [*_first, ""] if "~" in _first else [*_first]
    )


def _scalar(node: yaml.ScalarNode) -> Any:
    text: str = node.value
    tag = node.tag.rsplit(":", 1)[-1]
    if tag == "null":
        return None
    if tag == "bool":
        return text.lower() == "true"
    if tag == "int":
        lowered = text.lower()
        if lowered.startswith("0x"):
            return int(text, 16)
        if lowered.startswith("0o"):
            return int(text[2:], 8)
        return int(text)
    if tag == "float":
        lowered = text.lower().lstrip("+")
        if lowered in (".inf", "-.inf"):
            return float(lowered.replace(".", ""))
        if lowered == ".nan":
            return float("nan")
        return float(text)
    return text


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


# -- expressions -------------------------------------------------------------------------------------

Accessor = str | int


@dataclass(eq=False)
class _Expr:
    line: int
    path: ValuePath


@dataclass(eq=False)
class _Literal(_Expr):
    value: Any
    secret: bool = False


@dataclass(eq=False)
class _Invalid(_Expr):
    """Already diagnosed when loading: evaluates to unknown."""


@dataclass(eq=False)
class _Refused(_Expr):
    message: str
    hint: str


@dataclass(eq=False)
class _Symbol(_Expr):
    access: tuple[Accessor, ...]


@dataclass(eq=False)
class _Interpolate(_Expr):
    parts: list[tuple[str, tuple[Accessor, ...] | None]]


@dataclass(eq=False)
class _List(_Expr):
    items: list[_Expr]


@dataclass(eq=False)
class _Object(_Expr):
    fields: dict[str, _Expr]


@dataclass(eq=False)
class _Builtin(_Expr):
    name: str
    arg: _Expr


@dataclass(eq=False)
class _Open(_Expr):
    provider: str
    inputs: _Expr


class _EvalError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _AccessSyntaxError(Exception):
    pass


def _parse_access(text: str, start: int) -> tuple[tuple[Accessor, ...], int]:
    """Parse the accessors of `${…}` starting after `${`; returns them and the index after `}`."""
    accessors: list[Accessor] = []
    index = start
    expect_name = True
    while True:
        if index >= len(text):
            raise _AccessSyntaxError("missing closing brace '}' in interpolation")
        char = text[index]
        if char == "}" and not expect_name:
            break
        if char == "[":
            close = _subscript(text, index, accessors)
            index = close + 1
            expect_name = False
            continue
        if not expect_name:
            if char != ".":
                raise _AccessSyntaxError("expected '.', '[' or '}' after a property name in interpolation")
            index += 1
            expect_name = True
            continue
        end = index
        while end < len(text) and text[end] not in ".[}":
            end += 1
        if end == index:
            raise _AccessSyntaxError("property name must not be empty")
        if end >= len(text):
            raise _AccessSyntaxError("missing closing brace '}' in interpolation")
        accessors.append(text[index:end])
        index = end
        expect_name = False
    if isinstance(accessors[0], int):
        raise _AccessSyntaxError("the first accessor must be a property name or key subscript, not a numeric subscript")
    return tuple(accessors), index + 1


def _subscript(text: str, open_at: int, accessors: list[Accessor]) -> int:
    """Parse `[0]` or `["key"]` at `open_at`, append it to `accessors`, return the index of `]`."""
    index = open_at + 1
    if text[index : index + 1] == '"':
        key: list[str] = []
        index += 1
        while True:
            if index >= len(text):
                raise _AccessSyntaxError("key subscript is missing closing quote '\"'")
            char = text[index]
            if char == "\\" and index + 1 < len(text):
                key.append(text[index + 1])
                index += 2
                continue
            if char == '"':
                break
            key.append(char)
            index += 1
        if text[index + 1 : index + 2] != "]":
            raise _AccessSyntaxError("subscript is missing closing bracket ']'")
        accessors.append("".join(key))
        return index + 1
    close = index
    while close < len(text) and text[close] not in "]}":
        close += 1
    if close >= len(text) or text[close] != "]":
        raise _AccessSyntaxError("subscript is missing closing bracket ']'")
    digits = text[index:close]
    if not digits.isascii() or not digits.isdigit():
        raise _AccessSyntaxError("numeric subscript must be a positive base-10 integer")
    accessors.append(int(digits))
    return close


def _parse_template(text: str) -> list[tuple[str, tuple[Accessor, ...] | None]]:
    """A string as (literal text, access) parts; `$$` is a literal `$`."""
    parts: list[tuple[str, tuple[Accessor, ...] | None]] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("$$", index):
            literal.append("$")
            index += 2
        elif text.startswith("${", index):
            access, index = _parse_access(text, index + 2)
            parts.append(("".join(literal), access))
            literal = []
        else:
            literal.append(text[index])
            index += 1
    if literal or not parts:
        parts.append(("".join(literal), None))
    return parts


# -- loading one environment -------------------------------------------------------------------------

_RESERVED_KEYS = ("imports", "context")
_MAX_NODES = 200_000  # YAML aliases can expand a small file enormously
_TWO_ARGUMENTS = ("fn::join", "fn::split")
_ONE_ARGUMENT = ("fn::toJSON", "fn::fromJSON", "fn::toBase64", "fn::fromBase64", "fn::toString", "fn::final")
_NEEDS_CLOUD_HINT = "Use Pulumi ESC for this value (SOPHIA_ESC_ENV), or put a literal or `fn::secret: literal` here."


@dataclass
class _Import:
    name: str
    merge: bool
    line: int


@dataclass
class _Environment:
    name: str
    file: Path
    imports: list[_Import]
    values: _Object | None
    diagnostics: list[Diagnostic] = field(default_factory=list)


class _Parser:
    def __init__(self, name: str, file: Path) -> None:
        self.name = name
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.nodes = 0

    def diag(self, line: int | None, path: ValuePath, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(self.name, self.file, line, dotted_path(path), message, hint))

    def environment(self, root: yaml.Node | None) -> _Environment:
        env = _Environment(self.name, self.file, [], None, self.diagnostics)
        if root is None:
            return env
        if not isinstance(root, yaml.MappingNode):
            raise EscLoadError(self.file, _line(root), "the document must be a mapping", kind="shape")
        top: dict[str, yaml.Node] = {}
        for key, node in root.value:
            if isinstance(key, yaml.ScalarNode):
                top.setdefault(str(key.value), node)
        if "imports" in top:
            env.imports = self.imports(top["imports"])
        values = top.get("values")
        if values is None or (isinstance(values, yaml.ScalarNode) and _scalar(values) is None):
            return env
        if not isinstance(values, yaml.MappingNode):
            raise EscLoadError(self.file, _line(values), "`values` must be a mapping", kind="shape")
        parsed = self.expr(values, ())
        if not isinstance(parsed, _Object):
            self.diag(_line(values), (), "a builtin function call is not allowed at the top level of `values`")
            return env
        for key, _ in values.value:
            if isinstance(key, yaml.ScalarNode) and key.value in _RESERVED_KEYS and key.value in parsed.fields:
                del parsed.fields[key.value]
                self.diag(_line(key), (key.value,), f'"{key.value}" is a reserved key; the value is left out')
        env.values = parsed
        return env

    def imports(self, node: yaml.Node) -> list[_Import]:
        if isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.diag(_line(node), (), "`imports` must be a list of environment names")
            return []
        found: list[_Import] = []
        for item in node.value:
            if isinstance(item, yaml.ScalarNode) and isinstance(_scalar(item), str) and item.value:
                found.append(_Import(item.value, True, _line(item)))
                continue
            if isinstance(item, yaml.MappingNode) and len(item.value) == 1:
                key, options = item.value[0]
                merge: Any = True
                if isinstance(options, yaml.MappingNode):
                    for option_key, option in options.value:
                        if option_key.value == "merge" and isinstance(option, yaml.ScalarNode):
                            merge = _scalar(option)
                if isinstance(key, yaml.ScalarNode) and isinstance(merge, bool):
                    found.append(_Import(str(key.value), merge, _line(item)))
                    continue
            self.diag(_line(item), (), "each import must be a string or an object `{name: {merge: false}}`")
        return found

    def expr(self, node: yaml.Node, path: ValuePath) -> _Expr:
        line = _line(node)
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise EscLoadError(self.file, line, f"has more than {_MAX_NODES} values (YAML aliases?)", kind="size")
        if isinstance(node, yaml.ScalarNode):
            value = _scalar(node)
            if not isinstance(value, str) or "$" not in value:
                return _Literal(line, path, value)
            try:
                parts = _parse_template(value)
            except _AccessSyntaxError as exc:
                self.diag(line, path, f"{exc}; the value is left out")
                return _Invalid(line, path)
            if len(parts) == 1 and parts[0][1] is None:
                return _Literal(line, path, parts[0][0])
            if len(parts) == 1 and parts[0][0] == "" and parts[0][1] is not None:
                return _Symbol(line, path, parts[0][1])
            return _Interpolate(line, path, parts)
        if isinstance(node, yaml.SequenceNode):
            return _List(line, path, [self.expr(item, (*path, index)) for index, item in enumerate(node.value)])
        assert isinstance(node, yaml.MappingNode)
        if len(node.value) == 1:
            key, arg = node.value[0]
            if isinstance(key, yaml.ScalarNode) and str(key.value).startswith("fn::"):
                return self.builtin(str(key.value), arg, line, path)
        fields: dict[str, _Expr] = {}
        for key, item in node.value:
            if not isinstance(key, yaml.ScalarNode) or not isinstance(_scalar(key), str) or "${" in key.value:
                self.diag(_line(key), path, "object keys must be strings (no interpolation); the entry is left out")
                continue
            name = str(key.value)
            if name.startswith("fn::"):
                self.diag(_line(key), path, f"{name} must be the only key of its mapping; the entry is left out")
                continue
            if name in fields:
                self.diag(_line(key), (*path, name), f'duplicate key "{name}"; the first one is used')
                continue
            fields[name] = self.expr(item, (*path, name))
        return _Object(line, path, fields)

    def builtin(self, name: str, arg: yaml.Node, line: int, path: ValuePath) -> _Expr:
        if name == "fn::secret":
            if isinstance(arg, yaml.MappingNode) and any(key.value == "ciphertext" for key, _ in arg.value):
                return _Refused(
                    line,
                    path,
                    "is encrypted (fn::secret ciphertext), which only Pulumi ESC can decrypt",
                    "Put the plaintext under `fn::secret:` in this local file, or use Pulumi ESC (SOPHIA_ESC_ENV) "
                    "for encrypted values.",
                )
            value = _scalar(arg) if isinstance(arg, yaml.ScalarNode) else None
            if isinstance(value, str) and "${" not in value:
                return _Literal(line, path, value.replace("$$", "$"), secret=True)
            self.diag(
                line,
                path,
                "secret values must be string literals; the value is left out",
                'Write `fn::secret: "text"` (quote numbers; no ${…} inside a secret).',
            )
            return _Invalid(line, path)
        if name in _TWO_ARGUMENTS:
            if not isinstance(arg, yaml.SequenceNode) or len(arg.value) != 2:
                self.diag(line, path, f"the argument to {name} must be a two-valued list; the value is left out")
                return _Invalid(line, path)
            return _Builtin(line, path, name, self.expr(arg, path))
        if name == "fn::concat":
            if not isinstance(arg, yaml.SequenceNode):
                self.diag(line, path, "the argument to fn::concat must be an array of arrays; the value is left out")
                return _Invalid(line, path)
            return _Builtin(line, path, name, self.expr(arg, path))
        if name in _ONE_ARGUMENT:
            return _Builtin(line, path, name, self.expr(arg, path))
        if name.startswith("fn::open::"):
            return _Open(line, path, name.removeprefix("fn::open::"), self.expr(arg, path))
        if name == "fn::open":
            return self.long_open(arg, line, path)
        if name == "fn::rotate" or name.startswith("fn::rotate::"):
            return _Refused(
                line,
                path,
                f"uses {name}, which only Pulumi ESC evaluates (rotation needs Pulumi Cloud)",
                _NEEDS_CLOUD_HINT,
            )
        self.diag(line, path, f"{name} is not an ESC builtin function; the value is left out")
        return _Invalid(line, path)

    def long_open(self, arg: yaml.Node, line: int, path: ValuePath) -> _Expr:
        fields = {str(key.value): item for key, item in arg.value} if isinstance(arg, yaml.MappingNode) else {}
        provider = fields.get("provider")
        problem = None
        if provider is None:
            problem = "missing provider name ('provider')"
        elif "inputs" not in fields:
            problem = "missing provider inputs ('inputs')"
        elif not isinstance(provider, yaml.ScalarNode) or not isinstance(_scalar(provider), str):
            problem = "provider name must be a string literal"
        if problem is not None or provider is None:
            self.diag(line, path, f"fn::open: {problem}; the value is left out")
            return _Invalid(line, path)
        return _Open(line, path, str(provider.value), self.expr(fields["inputs"], path))


# -- evaluation ----------------------------------------------------------------------------------------


class _Cycle(Exception):
    pass


class _Evaluator:
    """One evaluation: the environments it loaded (by file) and every diagnostic, in order."""

    def __init__(self, directory: Path, root_name: str, providers: Mapping[str, Provider], context: Mapping[str, Any]):
        self.directory = directory
        self.root_name = root_name
        self.providers = providers
        self.context = context
        self.diagnostics: list[Diagnostic] = []
        self.loading: list[Path] = []
        self.done: dict[Path, Value] = {}

    def evaluate_root(self, path: Path) -> Evaluation:
        env = self.load(path, self.root_name)
        try:
            value = self.evaluate(env, path)
        except RecursionError:
            raise EscLoadError(
                path, None, "chains references or imports too deeply to evaluate", kind="chain"
            ) from None
        raw = value.raw if isinstance(value.raw, dict) else {}
        return Evaluation(raw, tuple(self.diagnostics))

    def load(self, path: Path, name: str) -> _Environment:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise EscLoadError(path, None, f"cannot be read ({problem})", kind="read") from None
        loader = _CoreLoader(text)
        parser = _Parser(name, path)
        try:
            return parser.environment(loader.get_single_node())
        except yaml.YAMLError as exc:
            # Only the problem and its line: YAML's own message quotes the line, which may hold a secret.
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            problem = getattr(exc, "problem", None) or type(exc).__name__
            line = mark.line + 1 if mark is not None else None
            raise EscLoadError(path, line, f"is not valid YAML: {problem}", kind="yaml") from None
        except RecursionError:
            raise EscLoadError(path, None, "nests values too deeply to read", kind="depth") from None
        finally:
            loader.dispose()

    def evaluate(self, env: _Environment, path: Path) -> Value:
        self.diagnostics.extend(env.diagnostics)
        self.loading.append(path.resolve())
        try:
            return _EnvironmentEvaluation(self, env).run()
        finally:
            self.loading.pop()

    def open_environment(self, name: str) -> Value:
        """The evaluated environment `name` (an import or `${environments.…}`)."""
        parts = name.split("/")
        if not name or "\\" in name or any(part in ("", ".", "..") for part in parts) or Path(name).is_absolute():
            raise _EvalError(f'"{name}" is not an environment name (use `name` or `project/name`)')
        candidates = [self.directory.joinpath(*parts[:-1], parts[-1] + suffix) for suffix in (".yaml", ".yml")]
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            raise _EvalError(
                f"environment {name} not found: there is no {candidates[0]}",
                f"Create {candidates[0]}, or remove the import or reference.",
            )
        key = path.resolve()
        if not key.is_relative_to(self.directory.resolve()):
            # A symbolic link (the file, or a folder on its way) leads out of the folder: refused like `..`.
            raise _EvalError(
                f'"{name}" is not an environment of this folder: a symbolic link leads outside {self.directory}',
                "Copy the file into the folder, or import it by a name inside the folder.",
            )
        if key in self.loading:
            raise _EvalError(f"cyclic import of {name}", "Remove one of the imports that lead back to it.")
        if key in self.done:
            return self.done[key]
        try:
            env = self.load(path, name)
        except EscLoadError as exc:
            where = f"{exc.file}, line {exc.line}" if exc.line is not None else f"{exc.file}"
            raise _EvalError(f"environment {name} ({where}) {exc.problem}") from None
        value = self.evaluate(env, path)
        self.done[key] = value
        return value

    def report(self, site: Diagnostic, message: str, hint: str = "") -> None:
        self.diagnostics.append(replace(site, message=message, hint=hint))


class _EnvironmentEvaluation:
    """The values of one environment: its imports merged, then its own values over them."""

    def __init__(self, evaluator: _Evaluator, env: _Environment) -> None:
        self.evaluator = evaluator
        self.env = env
        self.imports: dict[str, Value] = {}
        self.base: Value | None = None
        self.values = env.values or _Object(0, (), {})
        self.memo: dict[int, Value] = {}
        self.active: set[int] = set()

    def site(self, line: int | None, path: ValuePath) -> Diagnostic:
        return Diagnostic(self.env.name, self.env.file, line, dotted_path(path), "")

    def run(self) -> Value:
        for item in self.env.imports:
            try:
                imported = self.evaluator.open_environment(item.name)
            except _EvalError as exc:
                self.evaluator.report(self.site(item.line, ()), f"import {item.name}: {exc.message}", exc.hint)
                continue
            self.imports[item.name] = imported
            if item.merge:
                self.base = imported if self.base is None else self.merge(self.base, imported, item.line, ())
        return self.node(self.values, self.base, ())

    # Merging: ESC's rule is "later wins, objects merge deeply, a final value cannot be overridden".
    def merge(self, base: Value, override: Value, line: int | None, path: ValuePath) -> Value:
        if base.final:
            self.evaluator.report(self.site(line, path), "cannot override final value; the imported value is kept")
            return base
        if isinstance(base.raw, dict) and isinstance(override.raw, dict) and not (base.unknown or override.unknown):
            merged = dict(base.raw)
            for key, item in override.raw.items():
                merged[key] = self.merge(base.raw[key], item, line, (*path, key)) if key in base.raw else item
            return replace(override, raw=merged, inherited=frozenset(base.raw) - frozenset(override.raw))
        return override

    def node(self, expr: _Expr | None, base: Value | None, path: ValuePath) -> Value:
        """The value at `path`: its own expression merged over what the imports hold there."""
        if expr is None:
            return base if base is not None else UNKNOWN_VALUE
        key = id(expr)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            raise _Cycle
        self.active.add(key)
        try:
            if isinstance(expr, _Object):
                if base is not None and base.final:
                    self.evaluator.report(
                        self.site(expr.line, path), "cannot override final value; the imported value is kept"
                    )
                    value = base
                else:
                    inherited = base.raw if base is not None and isinstance(base.raw, dict) else {}
                    merged = dict(inherited)
                    for name, child in expr.fields.items():
                        merged[name] = self.node(child, inherited.get(name), (*path, name))
                    value = Value(merged, inherited=frozenset(inherited) - frozenset(expr.fields))
            else:
                value = self.expr(expr)
                if base is not None:
                    value = self.merge(base, value, expr.line, path)
        finally:
            self.active.discard(key)
        self.memo[key] = value
        return value

    def expr(self, expr: _Expr) -> Value:
        try:
            return self.evaluate(expr)
        except _EvalError as exc:
            self.evaluator.report(self.site(expr.line, expr.path), f"{exc.message}; the value is left out", exc.hint)
            return UNKNOWN_VALUE

    def evaluate(self, expr: _Expr) -> Value:
        if isinstance(expr, _Literal):
            return Value(expr.value, secret=expr.secret)
        if isinstance(expr, _Invalid):
            return UNKNOWN_VALUE
        if isinstance(expr, _Refused):
            raise _EvalError(expr.message, expr.hint)
        if isinstance(expr, _Object):
            return self.node(expr, None, expr.path)
        if isinstance(expr, _List):
            return Value([self.node(item, None, item.path) for item in expr.items])
        if isinstance(expr, _Symbol):
            return self.resolve(expr.access)
        if isinstance(expr, _Interpolate):
            return self.interpolate(expr)
        if isinstance(expr, _Builtin):
            return self.builtin(expr)
        assert isinstance(expr, _Open)
        return self.open(expr)

    # -- references -------------------------------------------------------------------------------

    def resolve(self, access: tuple[Accessor, ...]) -> Value:
        first = access[0]
        rest = access[1:]
        try:
            if first == "context":
                return self.index(self.context_value(), rest, ("context",))
            if first == "imports":
                return self.index(Value(dict(self.imports)), rest, ("imports",))
            if first == "environments":
                return self.environment_reference(rest)
            return self.walk(access)
        except _Cycle:
            raise _EvalError(f"cyclic reference to {_access_text(access)}") from None

    def walk(self, access: tuple[Accessor, ...]) -> Value:
        expr: _Expr | None = self.values
        base = self.base
        path: ValuePath = ()
        walked = 0
        # Walk into literal objects and lists without evaluating them: `${a.q}` inside `a` is no cycle.
        for accessor in access:
            if isinstance(expr, _List) and isinstance(accessor, int) and accessor < len(expr.items):
                expr, base = expr.items[accessor], None
            elif isinstance(expr, _Object):
                if isinstance(accessor, int):
                    raise _EvalError("cannot access an object property using an integer index")
                child_base = base.raw.get(accessor) if base is not None and isinstance(base.raw, dict) else None
                child_expr = expr.fields.get(accessor)
                if child_expr is None and child_base is None:
                    raise _EvalError(f'unknown property "{accessor}"')
                expr, base = child_expr, child_base
            else:
                break
            path = (*path, accessor)
            walked += 1
        return self.index(self.node(expr, base, path), access[walked:], path)

    def index(self, value: Value, access: tuple[Accessor, ...], path: ValuePath) -> Value:
        for accessor in access:
            if value.unknown:
                return UNKNOWN_VALUE
            raw = value.raw
            if isinstance(raw, dict):
                if isinstance(accessor, int):
                    raise _EvalError("cannot access an object property using an integer index")
                if accessor not in raw:
                    raise _EvalError(f'unknown property "{accessor}"')
                child = raw[accessor]
            elif isinstance(raw, list):
                if not isinstance(accessor, int):
                    raise _EvalError(f'cannot access an array element using a property name ("{accessor}")')
                if accessor >= len(raw):
                    raise _EvalError(f"array index {accessor} out of range (length {len(raw)})")
                child = raw[accessor]
            else:
                raise _EvalError(f"cannot access {_access_text((accessor,))} of a {_type_name(value)}")
            value = _deep_secret(child) if value.secret and not child.secret else child
            path = (*path, accessor)
        return value

    def context_value(self) -> Value:
        context: dict[str, Any] = dict(self.evaluator.context)
        context["currentEnvironment"] = {"name": self.env.name}
        context["rootEnvironment"] = {"name": self.evaluator.root_name}
        return from_plain(context)

    def environment_reference(self, access: tuple[Accessor, ...]) -> Value:
        if len(access) < 2 or not all(isinstance(part, str) for part in access[:2]):
            raise _EvalError("a reference to another environment is `${environments.<project>.<name>…}`")
        name = f"{access[0]}/{access[1]}"
        return self.index(self.evaluator.open_environment(name), access[2:], ("environments", name))

    def interpolate(self, expr: _Interpolate) -> Value:
        text: list[str] = []
        secret = False
        unknown = False
        for literal, access in expr.parts:
            text.append(literal)
            if access is None:
                continue
            value = self.resolve(access)
            if _contains_unknown(value):
                unknown = True
                continue
            secret = secret or _contains_secret(value)
            text.append(_to_string(value))
        if unknown:
            return UNKNOWN_VALUE
        return Value("".join(text), secret=secret)

    # -- builtins ----------------------------------------------------------------------------------

    def builtin(self, expr: _Builtin) -> Value:
        name = expr.name
        if name == "fn::final":
            return replace(self.node(expr.arg, None, expr.path), final=True)
        if name in _TWO_ARGUMENTS or name == "fn::concat":
            assert isinstance(expr.arg, _List)
            args = [self.node(item, None, expr.path) for item in expr.arg.items]
            if any(arg.unknown for arg in args):
                return UNKNOWN_VALUE
            if name == "fn::concat":
                return _concat(args)
            return _join(*args) if name == "fn::join" else _split(*args)
        arg = self.node(expr.arg, None, expr.path)
        if _contains_unknown(arg):
            return UNKNOWN_VALUE
        if name == "fn::toJSON":
            return Value(_to_json(arg), secret=_contains_secret(arg))
        if name == "fn::toString":
            return Value(_to_string(arg), secret=_contains_secret(arg))
        text = _expect_string(arg)
        if name == "fn::toBase64":
            return Value(base64.b64encode(text.encode("utf-8")).decode("ascii"), secret=arg.secret)
        if name == "fn::fromBase64":
            try:
                decoded = base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeError):
                raise _EvalError("the argument to fn::fromBase64 is not base64-encoded UTF-8 text") from None
            return Value(decoded, secret=arg.secret)
        assert name == "fn::fromJSON"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # The position only: the parser's context would quote the (possibly secret) text.
            raise _EvalError(
                f"the argument to fn::fromJSON is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        return from_plain(data, secret=arg.secret)

    def open(self, expr: _Open) -> Value:
        provider = self.evaluator.providers.get(expr.provider)
        if provider is None:
            raise _EvalError(
                f"uses fn::open::{expr.provider}, a provider only Pulumi ESC can run (it needs Pulumi Cloud)",
                _NEEDS_CLOUD_HINT,
            )
        inputs = self.node(expr.inputs, None, expr.path)
        if _contains_unknown(inputs):
            return UNKNOWN_VALUE
        try:
            return provider(inputs)
        except ProviderError as exc:
            raise _EvalError(f"fn::open::{expr.provider} failed: {exc}") from None


def _access_text(access: tuple[Accessor, ...]) -> str:
    text = ""
    for accessor in access:
        if isinstance(accessor, int):
            text += f"[{accessor}]"
        elif re.fullmatch(r"[^.\[\]\"}]+", accessor):
            text += f".{accessor}" if text else accessor
        else:
            text += "[" + json.dumps(accessor, ensure_ascii=False) + "]"
    return text


def _expect_string(value: Value) -> str:
    if not isinstance(value.raw, str):
        raise _EvalError(f"expected string, got {_type_name(value)}")
    return value.raw


def _expect_array(value: Value) -> list[Value]:
    if not isinstance(value.raw, list):
        raise _EvalError(f"expected array, got {_type_name(value)}")
    return value.raw


def _join(delimiter: Value, items: Value) -> Value:
    separator = _expect_string(delimiter)
    elements = _expect_array(items)
    if any(item.unknown for item in elements):
        return UNKNOWN_VALUE
    parts = [_expect_string(item) for item in elements]
    return Value(separator.join(parts), secret=_contains_secret(delimiter) or _contains_secret(items))


def _split(delimiter: Value, text: Value) -> Value:
    separator = _expect_string(delimiter)
    whole = _expect_string(text)
    pieces = list(whole) if separator == "" else whole.split(separator)
    secret = delimiter.secret or text.secret
    return Value([Value(piece, secret=secret) for piece in pieces], secret=secret)


def _concat(arrays: list[Value]) -> Value:
    items: list[Value] = []
    secret = False
    for array in arrays:
        items.extend(_expect_array(array))
        secret = secret or array.secret
    return Value(items, secret=secret)
