"""Where the vendors' published contracts live (`<repo>/specs/`, see its README): the one place that knows."""

from __future__ import annotations

from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"


def spec_path(*parts: str) -> Path:
    """`SPECS_DIR / parts`, which must exist: a missing spec fails loudly rather than running zero cases."""
    path = SPECS_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"Spec file {path} is missing. The fakes are built from the vendors' contracts copied into "
            f"{SPECS_DIR}; restore it from the commit named in that vendor's SOURCE.txt."
        )
    return path
