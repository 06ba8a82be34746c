"""The embedded warehouse's settings as one typed value, read and checked in one place.

Defaults live only in the setting specs (`..settings.SETTINGS`); relative paths are resolved once,
against the working directory the server started in, so every message can show the absolute path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sophia_shared.errors import ConfigError
from sophia_shared.paths import data_dir
from sophia_shared.settings import Settings

from ..settings import SETTINGS

WAREHOUSE_FILE_NAME = "warehouse.duckdb"

# DuckDB's own size syntax (a number and a unit); a bare number or a percentage is refused by
# `max_temp_directory_size`, so neither is accepted for either size.
_SIZE_PATTERN = r"(?i)^\s*\d+(\.\d+)?\s*[KMGT]i?B\s*$"
_SIZE_FORM = "a size with a unit, such as 512MB, 2GB or 4GiB"

DuckDBSize = Annotated[str, Field(pattern=_SIZE_PATTERN)]

# field → (setting, accepted form), so a validation error names what the user set.
_VARIABLES: dict[str, tuple[str, str]] = {
    "statement_timeout_seconds": ("SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS", "a number of seconds above 0"),
    "memory_limit": ("SOPHIA_DUCKDB_MEMORY_LIMIT", _SIZE_FORM),
    "max_temp_size": ("SOPHIA_DUCKDB_MAX_TEMP_SIZE", _SIZE_FORM),
    "threads": ("SOPHIA_DUCKDB_THREADS", "a whole number of at least 1"),
}
_DEFAULTS = {spec.name: spec.default for spec in SETTINGS}


class DuckDBConfig(BaseModel):
    """Where the warehouse file is and how much time, memory, disk and CPU one server may use."""

    model_config = ConfigDict(frozen=True)

    path: Path
    data_dir: Path  # Sophia's own writable directory: DuckDB spills to a temp directory inside it
    statement_timeout_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    memory_limit: DuckDBSize
    max_temp_size: DuckDBSize
    threads: Annotated[int, Field(ge=1)]

    @property
    def temp_directory(self) -> Path:
        # One directory per process: DuckDB removes the directory it created when it closes.
        return self.data_dir / "duckdb-temp" / str(os.getpid())

    @classmethod
    def from_settings(cls, settings: Settings, *, cwd: Path | None = None) -> DuckDBConfig:
        """Read and check every SOPHIA_DUCKDB_* setting; ConfigError names the one that is wrong."""
        raw = {field: _value(settings, variable) for field, (variable, _) in _VARIABLES.items()}
        return cls.checked(path=duckdb_path(settings, cwd=cwd), data_dir=_data_dir(settings, cwd), **raw)

    @classmethod
    def for_path(cls, path: Path, **overrides: object) -> DuckDBConfig:
        """The defaults from the setting specs for one file (tests and tools that open a given file)."""
        raw: dict[str, object] = {field: _DEFAULTS[variable] for field, (variable, _) in _VARIABLES.items()}
        absolute = _absolute(path, None)
        return cls.checked(path=absolute, data_dir=absolute.parent, **(raw | overrides))

    @classmethod
    def checked(cls, **values: object) -> DuckDBConfig:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            field = str(exc.errors()[0]["loc"][0])
            variable, form = _VARIABLES.get(field, (field, "valid"))
            default = _DEFAULTS.get(variable)
            raise ConfigError(
                f"{variable} must be {form}, not {values.get(field)!r}.",
                hint=f"Set {variable} to {form}" + (f", or unset it to use {default}." if default else "."),
            ) from None


def duckdb_path(settings: Settings, *, cwd: Path | None = None) -> Path:
    """The warehouse file, absolute: SOPHIA_DUCKDB_PATH, else <data dir>/warehouse.duckdb."""
    explicit = settings.get("SOPHIA_DUCKDB_PATH")
    if explicit:
        return _absolute(Path(explicit), cwd)
    return _data_dir(settings, cwd) / WAREHOUSE_FILE_NAME


def _data_dir(settings: Settings, cwd: Path | None) -> Path:
    configured = settings.get("SOPHIA_DATA_DIR")
    return _absolute(Path(configured) if configured else data_dir(), cwd)


def _absolute(path: Path, cwd: Path | None) -> Path:
    # normpath, not resolve(): a symlinked data directory stays as the user wrote it.
    return Path(os.path.normpath((cwd or Path.cwd()) / path.expanduser()))


def _value(settings: Settings, variable: str) -> str:
    # A Settings built without this server's specs has no defaults: take them from the specs here.
    return (settings.get(variable) or _DEFAULTS[variable]).strip()
