"""The embedded warehouse's settings: defaults from the specs, one clear error per bad value, absolute paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from sophia_business_intelligence.backends.duckdb import DuckDBConfig, DuckDBWarehouse, duckdb_path
from sophia_business_intelligence.settings import SETTINGS
from sophia_shared.errors import ConfigError
from sophia_shared.settings import Settings

DEFAULTS = {spec.name: spec.default for spec in SETTINGS}


def _settings(tmp_path: Path, env: dict[str, str], *, specs: bool = True) -> Settings:
    environ = {"SOPHIA_DOTENV": str(tmp_path / "no.env"), **env}
    return Settings(environ=environ, cwd=tmp_path, specs=SETTINGS if specs else ())


@pytest.mark.parametrize("with_specs", [True, False])
def test_unset_values_take_the_defaults_declared_in_the_setting_specs(tmp_path: Path, with_specs: bool) -> None:
    config = DuckDBConfig.from_settings(_settings(tmp_path, {"SOPHIA_DATA_DIR": str(tmp_path)}, specs=with_specs))
    assert config.statement_timeout_seconds == float(DEFAULTS["SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS"])
    assert config.memory_limit == DEFAULTS["SOPHIA_DUCKDB_MEMORY_LIMIT"]
    assert config.max_temp_size == DEFAULTS["SOPHIA_DUCKDB_MAX_TEMP_SIZE"]
    assert config.threads == int(DEFAULTS["SOPHIA_DUCKDB_THREADS"])
    assert config.path == tmp_path / "warehouse.duckdb"


def test_set_values_are_used(tmp_path: Path) -> None:
    config = DuckDBConfig.from_settings(
        _settings(
            tmp_path,
            {
                "SOPHIA_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
                "SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS": "2.5",
                "SOPHIA_DUCKDB_MEMORY_LIMIT": "512mb",
                "SOPHIA_DUCKDB_MAX_TEMP_SIZE": "10 GiB",
                "SOPHIA_DUCKDB_THREADS": "3",
            },
        )
    )
    assert (config.statement_timeout_seconds, config.memory_limit, config.max_temp_size, config.threads) == (
        2.5,
        "512mb",
        "10 GiB",
        3,
    )


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS", "soon", "a number of seconds above 0"),
        ("SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS", "0", "a number of seconds above 0"),
        ("SOPHIA_DUCKDB_STATEMENT_TIMEOUT_SECONDS", "inf", "a number of seconds above 0"),
        ("SOPHIA_DUCKDB_MEMORY_LIMIT", "2048", "a size with a unit"),
        ("SOPHIA_DUCKDB_MEMORY_LIMIT", "80%", "a size with a unit"),
        ("SOPHIA_DUCKDB_MAX_TEMP_SIZE", "lots", "a size with a unit"),
        ("SOPHIA_DUCKDB_THREADS", "0", "a whole number of at least 1"),
        ("SOPHIA_DUCKDB_THREADS", "2.5", "a whole number of at least 1"),
    ],
)
def test_an_invalid_value_names_the_variable_and_the_accepted_form(
    tmp_path: Path, variable: str, value: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        DuckDBConfig.from_settings(_settings(tmp_path, {variable: value}))
    assert caught.value.message.startswith(f"{variable} must be {accepted}")
    assert caught.value.message.endswith(f"not {value!r}.")
    assert variable in caught.value.hint


def test_a_relative_warehouse_path_resolves_against_the_starting_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = _settings(tmp_path, {"SOPHIA_DUCKDB_PATH": "sub/../relative.duckdb"})
    config = DuckDBConfig.from_settings(settings)
    assert config.path == tmp_path / "relative.duckdb"
    assert duckdb_path(settings) == config.path
    with pytest.raises(ConfigError) as caught:
        DuckDBWarehouse(config).ping()
    assert f"no warehouse at {tmp_path / 'relative.duckdb'} yet" in caught.value.message


def test_a_relative_data_dir_resolves_against_the_starting_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = DuckDBConfig.from_settings(_settings(tmp_path, {"SOPHIA_DATA_DIR": "data"}))
    assert config.path == tmp_path / "data" / "warehouse.duckdb"
    assert config.temp_directory.is_relative_to(tmp_path / "data")
