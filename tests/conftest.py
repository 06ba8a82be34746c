"""Suite-wide fixtures: isolated settings, a clean redactor, a per-test data directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sophia_shared.redaction import REDACTOR

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_redactor() -> Iterator[None]:
    REDACTOR.clear()
    yield
    REDACTOR.clear()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's real ~/.config, .env or warehouse."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("SOPHIA_DOTENV", str(home / "no.env"))
    for name in list(os.environ):
        if name.startswith(("SNOWFLAKE_", "SOPHIA_ESC", "PULUMI_", "SOPHIA_DUCKDB", "SOPHIA_DATA_DIR")) or (
            name.endswith("_ALLOW_WRITE")
        ):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_esc_cli_or_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer `esc` CLI on PATH (it would change which ESC path is taken) and no proxy for 127.0.0.1."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


pytest_plugins = ["tests.fakes.snowflake_server"]
