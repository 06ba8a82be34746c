"""The local ESC-format file: Pulumi ESC's YAML layout, read without Pulumi ESC.

Values are literals or `{fn::secret: literal}`. What only Pulumi ESC can evaluate (encrypted
`fn::secret: {ciphertext: …}`, other `fn::` functions, imports) is skipped with a warning that names
the line; `${…}` interpolation is not evaluated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .esc_document import EscDocument, ValuePath, dotted_path, source_values
from .sources import SourceValues

if TYPE_CHECKING:
    import yaml

log = logging.getLogger(__name__)


def read_esc_file(path: Path, *, groups: Iterable[str]) -> SourceValues:
    """The settings a local ESC-format file offers: `values:` with `environmentVariables` and `groups`."""
    import yaml  # only when the file exists: most servers start without one

    group_names = tuple(groups)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Could not read the local ESC file {path}: {exc}.",
            hint="Fix or remove the file, or point SOPHIA_ESC_FILE elsewhere.",
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        document = _file_document(loader, root, path, group_names)
    except yaml.YAMLError as exc:
        # Only the problem and its line: YAML's own message quotes the line, which may hold a secret.
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(
            f"The local ESC file {where} is not valid YAML: {problem}.",
            hint="Fix the YAML (it must have a top-level `values:` mapping), or point SOPHIA_ESC_FILE elsewhere.",
        ) from None
    finally:
        loader.dispose()
    return source_values("file", document, groups=group_names)


def _file_document(loader: yaml.SafeLoader, root: yaml.Node | None, path: Path, groups: tuple[str, ...]) -> EscDocument:
    import yaml

    def line(node: yaml.Node) -> int:
        return node.start_mark.line + 1

    def pairs(node: yaml.MappingNode) -> dict[str, yaml.Node]:
        return {str(loader.construct_object(key)): value for key, value in node.value}

    def not_a_mapping(node: yaml.Node, what: str) -> ConfigError:
        layout = ", ".join(("environmentVariables", *groups))
        return ConfigError(
            f"The local ESC file {path}, line {line(node)}: {what} must be a mapping.",
            hint=f"Use the ESC layout: `values:` with a mapping per block ({layout}).",
        )

    if root is None:
        return EscDocument({})
    if not isinstance(root, yaml.MappingNode):
        raise not_a_mapping(root, "the document")
    top = pairs(root)
    if "imports" in top:
        log.warning("The local ESC file %s has `imports:`; imports are resolved by Pulumi ESC only.", path)
    values_node = top.get("values")
    if values_node is None or (isinstance(values_node, yaml.ScalarNode) and values_node.tag.endswith(":null")):
        return EscDocument({})
    if not isinstance(values_node, yaml.MappingNode):
        raise not_a_mapping(values_node, "`values`")

    secrets: set[ValuePath] = set()
    skip = object()

    def skipped(node: yaml.Node, where: ValuePath, why: str, hint: str) -> object:
        warning = ConfigError(f"The local ESC file {path}, line {line(node)}: {dotted_path(where)} {why}", hint=hint)
        log.warning("%s", warning.agent_message())
        return skip

    def convert(node: yaml.Node, where: ValuePath) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_object(node)
        if isinstance(node, yaml.SequenceNode):
            items = [convert(item, (*where, index)) for index, item in enumerate(node.value)]
            return [item for item in items if item is not skip]
        assert isinstance(node, yaml.MappingNode)
        fields = pairs(node)
        functions = [key for key in fields if key.startswith("fn::")]
        if functions == ["fn::secret"] and len(fields) == 1:
            argument = fields["fn::secret"]
            if isinstance(argument, yaml.ScalarNode):
                secrets.add(where)
                return loader.construct_object(argument)
            if isinstance(argument, yaml.MappingNode) and "ciphertext" in pairs(argument):
                return skipped(
                    node,
                    where,
                    "is encrypted (fn::secret ciphertext), which only Pulumi ESC can decrypt; skipped.",
                    "Put the plaintext under `fn::secret:` in this local file, or use Pulumi ESC "
                    "(SOPHIA_ESC_ENV) for encrypted values.",
                )
        if functions:
            return skipped(
                node,
                where,
                f"uses {functions[0]}, which only Pulumi ESC evaluates; skipped.",
                "Use a literal or `{fn::secret: literal}` in the local file, or use Pulumi ESC (SOPHIA_ESC_ENV).",
            )
        converted = {key: convert(item, (*where, key)) for key, item in fields.items()}
        return {key: item for key, item in converted.items() if item is not skip}

    converted = convert(values_node, ())
    return EscDocument(converted if isinstance(converted, dict) else {}, frozenset(secrets))
