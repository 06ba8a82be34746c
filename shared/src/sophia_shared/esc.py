"""Pulumi ESC: open an environment (SDK first, `esc` CLI fallback) and read local ESC-format files.

(Being written; see settings.py for how it is used.)
"""

from __future__ import annotations

from pathlib import Path

from .settings import SourceValues


def open_esc_environment(ref: str, *, token: str, backend_url: str | None) -> SourceValues:
    raise NotImplementedError


def read_esc_file(path: Path) -> SourceValues:
    raise NotImplementedError
