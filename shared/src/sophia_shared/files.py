"""Writing a file so that a reader sees the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE = 0o600  # owner-only: the files we write may hold secrets or another tool's tokens


def write_atomically(path: Path, text: str, *, mode: int = PRIVATE) -> None:
    """Write `text` to a temporary file beside `path` with `mode`, then rename it over `path`."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), mode)
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
