"""Suite-wide fixtures: isolated settings, a clean redactor, a per-test data directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sophia_shared.redaction import REDACTOR
from sophia_shared.registry import all_env_prefixes, all_setting_specs
from sophia_shared.setting_specs import is_secret_name

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
        if _leaks_into_tests(name):
            monkeypatch.delenv(name, raising=False)


# Every variable a server reads is found through the registry (declared settings and vendor
# prefixes), so a developer's exported SNOWFLAKE_ACCOUNT or PORTKEY_API_KEY never reaches a test.
_DECLARED = frozenset(s.name for s in all_setting_specs())
_PREFIXES = ("SOPHIA_", "PULUMI_", *all_env_prefixes())


def _leaks_into_tests(name: str) -> bool:
    return name in _DECLARED or name.startswith(_PREFIXES) or is_secret_name(name)


@pytest.fixture
def no_esc_cli_or_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer `esc` CLI on PATH (it would change which ESC path is taken) and no proxy for 127.0.0.1."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


pytest_plugins = ["tests.fakes.snowflake_server", "tests.fakes.portkey_gateway"]
