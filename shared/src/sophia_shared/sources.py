"""What a settings source offers, and the `.env` source: the layer both `settings` and `esc_*` build on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceValues:
    """Values one source offers, and which of them the source itself marks secret."""

    label: str
    values: Mapping[str, str]
    secrets: frozenset[str] = frozenset()
    expires_at: float = float("inf")  # time.time() after which the source must be re-read


# Opens ESC environment `ref` with a token and an optional Pulumi backend URL.
EscOpener = Callable[[str, str, str | None], SourceValues]


def read_dotenv(path: Path) -> SourceValues:
    """A `.env` file's KEY=VALUE pairs (python-dotenv syntax); a missing or unreadable file offers nothing.

    Lines python-dotenv cannot parse are skipped with a warning that names the line, not its text.
    """
    if not path.is_file():
        return SourceValues("dotenv", {})
    try:
        # utf-8-sig: an editor's byte-order mark must not become part of the first key.
        # interpolate=False: `${…}` would read this process's environment rather than the settings
        # chain, and a password may well contain `$`.
        parsed = dotenv_values(path, encoding="utf-8-sig", interpolate=False)
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("Could not read %s: %s", path, exc)
        return SourceValues("dotenv", {})
    # A bare `KEY` line (no `=`) parses as None: it sets nothing.
    return SourceValues("dotenv", {key: value for key, value in parsed.items() if value is not None})
