"""The local ESC-format file (SOPHIA_ESC_FILE): Pulumi ESC's YAML, evaluated offline like ESC.

`esc_eval` does the evaluation (imports from the file's folder, `${…}` interpolation, `fn::secret`
and the other builtins); this module turns the result into settings. A file that cannot be read,
is not YAML or has the wrong shape is a ConfigError (the settings layer logs it and skips the
file). Anything wrong with one value, or what only Pulumi ESC can do (providers `fn::open::*`,
`fn::rotate::*`, encrypted `fn::secret: {ciphertext: …}`), is a warning naming file, line and
value path; that value is left out and the rest of the file still counts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .esc_document import EscDocument, ValuePath, source_values
from .sources import SourceValues

if TYPE_CHECKING:
    from .esc_eval import EscLoadError, Evaluation, Value

log = logging.getLogger(__name__)

_SKIP = object()


def read_esc_file(path: Path, *, groups: Iterable[str]) -> SourceValues:
    """The settings a local ESC-format file offers: `values:` with `environmentVariables` and `groups`."""
    from .esc_eval import EscLoadError, evaluate_file  # imports yaml: only when the file exists

    group_names = tuple(groups)
    try:
        evaluation = evaluate_file(path)
    except EscLoadError as exc:
        raise _load_error(path, exc, group_names) from None
    for diagnostic in evaluation.diagnostics:
        warning = ConfigError(f"The local ESC file {diagnostic}.", hint=diagnostic.hint)
        log.warning("%s", warning.agent_message())
    return source_values("file", esc_file_document(evaluation), groups=group_names)


def esc_file_document(evaluation: Evaluation) -> EscDocument:
    """The evaluated values as an EscDocument: unknown (failed or refused) values left out."""
    secrets: set[ValuePath] = set()

    def convert(value: Value, where: ValuePath) -> Any:
        if value.unknown:
            return _SKIP
        if value.secret:
            secrets.add(where)
        if isinstance(value.raw, list):
            items = [convert(item, (*where, index)) for index, item in enumerate(value.raw)]
            return [item for item in items if item is not _SKIP]
        if isinstance(value.raw, dict):
            fields = {key: convert(item, (*where, key)) for key, item in value.raw.items()}
            return {key: item for key, item in fields.items() if item is not _SKIP}
        return value.raw

    values = {key: convert(value, (key,)) for key, value in evaluation.values.items()}
    return EscDocument({key: value for key, value in values.items() if value is not _SKIP}, frozenset(secrets))


_SHAPE_HINTS = {
    "size": "Remove the YAML aliases (`*name` repeating an `&name` anchor, here inside each other): write each "
    "value out once. A settings file holds a few hundred values at most.",
    "depth": "Flatten the values: ESC settings need only `values:` → a block → key: value (a list or object "
    "under a key at most), not hundreds of nested levels.",
    "chain": "Shorten the chain of ${…} references or imports: point each reference at the final value.",
}


def _load_error(path: Path, exc: EscLoadError, groups: tuple[str, ...]) -> ConfigError:
    where = f"{exc.file}, line {exc.line}" if exc.line is not None else f"{exc.file}"
    if exc.kind == "read":
        return ConfigError(
            f"The local ESC file {path} {exc.problem}.",
            hint="Fix or remove the file, or point SOPHIA_ESC_FILE elsewhere.",
        )
    if exc.kind == "yaml":
        return ConfigError(
            f"The local ESC file {where} {exc.problem}.",
            hint="Fix the YAML (it must have a top-level `values:` mapping), or point SOPHIA_ESC_FILE elsewhere.",
        )
    if exc.kind in _SHAPE_HINTS:
        return ConfigError(f"The local ESC file {where}: {exc.problem}.", hint=_SHAPE_HINTS[exc.kind])
    layout = ", ".join(("environmentVariables", *groups))
    return ConfigError(
        f"The local ESC file {where}: {exc.problem}.",
        hint=f"Use the ESC layout: `values:` with a mapping per block ({layout}).",
    )
