"""The checked-in client configs (cursor/, claude/) are what `sophia config` prints, paths as placeholders.

After a change to the servers or to `sophia config`, regenerate them with
`UPDATE_CLIENT_EXAMPLES=1 uv run --dev pytest tests/unit/cli/test_client_examples.py`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from sophia_cli import config as config_module
from sophia_cli.config import client_config
from tests.conftest import REPO_ROOT

REPO_PLACEHOLDER = "/path/to/sophia-mcp-suite"
EXAMPLES = {
    "cursor/mcp.json": ("cursor", False),
    "cursor/mcp.docker.json": ("cursor", True),
    "claude/claude_desktop_config.json": ("claude", False),
    "claude/claude_desktop_config.docker.json": ("claude", True),
}


def placeholders(config: Any, root: Path) -> Any:
    """The checkout's absolute paths as the placeholders a reader replaces; the absolute uv as `uv`."""
    uv = shutil.which("uv")
    if isinstance(config, dict):
        return {k: placeholders(v, root) for k, v in config.items()}
    if isinstance(config, list):
        return [placeholders(v, root) for v in config]
    if isinstance(config, str):
        if uv and config == uv:
            return "uv"
        return config.replace(str(root), REPO_PLACEHOLDER)
    return config


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh checkout (no .env yet) whose default .env the examples show, not the test's isolated one."""
    root = tmp_path / "sophia-mcp-suite"
    root.mkdir()
    monkeypatch.setattr(config_module, "workspace_root", lambda: root)
    monkeypatch.delenv("SOPHIA_DOTENV", raising=False)
    return root


def printed(client: str, docker: bool, root: Path) -> dict[str, Any]:
    config: dict[str, Any] = placeholders(client_config(client, use_uv=not docker, docker=docker), root)
    return config


@pytest.mark.parametrize("relative", sorted(EXAMPLES))
def test_checked_in_example_matches_what_sophia_config_prints(relative: str, checkout: Path) -> None:
    client, docker = EXAMPLES[relative]
    path = REPO_ROOT / relative
    expected = printed(client, docker, checkout)
    if os.environ.get("UPDATE_CLIENT_EXAMPLES"):
        path.write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    assert path.is_file(), f"{relative} is missing: regenerate with UPDATE_CLIENT_EXAMPLES=1"
    assert json.loads(path.read_text(encoding="utf-8")) == expected, (
        f"{relative} is out of date with `sophia config`: regenerate with UPDATE_CLIENT_EXAMPLES=1 "
        "uv run --dev pytest tests/unit/cli/test_client_examples.py"
    )


def test_examples_hold_no_machine_path_and_no_secret_value() -> None:
    for relative in EXAMPLES:
        text = (REPO_ROOT / relative).read_text(encoding="utf-8")
        assert str(REPO_ROOT) not in text and str(Path.home()) not in text, relative
        config = json.loads(text)
        for name, server in config["mcpServers"].items():
            for key, value in server.get("env", {}).items():
                if "TOKEN" in key or "KEY" in key or "PASSWORD" in key:
                    assert value == "${env:" + key + "}", f"{relative}/{name}: {key} must be a reference"


def test_docker_examples_run_every_server_image_over_stdio() -> None:
    for relative in ("cursor/mcp.docker.json", "claude/claude_desktop_config.docker.json"):
        servers = json.loads((REPO_ROOT / relative).read_text(encoding="utf-8"))["mcpServers"]
        infra = servers["sophia-infrastructure"]
        assert infra["command"] == "docker"
        assert infra["args"][:3] == ["run", "-i", "--rm"] and infra["args"][-1] == "sophia/infrastructure:latest"
        assert {s["args"][-1] for s in servers.values()} == {
            "sophia/business-intelligence:latest",
            "sophia/ai-intelligence:latest",
            "sophia/data-intelligence:latest",
            "sophia/infrastructure:latest",
        }
