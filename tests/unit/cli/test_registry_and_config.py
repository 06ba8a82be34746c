"""The CLI finds servers through the registry, and client configs carry what a client launch needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sophia_cli.config import client_config
from sophia_cli.servers import all_servers, find_server
from sophia_shared.errors import InputError
from sophia_shared.registry import all_setting_specs


def test_servers_are_found_by_name_alias_and_mcp_name() -> None:
    assert find_server("bi").mcp_name == "sophia-business-intelligence"
    assert find_server("sophia-infrastructure").key == "infrastructure"
    assert find_server("data_intelligence").key == "data-intelligence"
    with pytest.raises(InputError, match="no server called"):
        find_server("nope")


def test_every_setting_is_declared_once_by_exactly_one_owner() -> None:
    names = [s.name for s in all_setting_specs()]
    assert len(names) == len(set(names))
    owners = {s.name: s.group for s in all_setting_specs()}
    assert owners["SNOWFLAKE_ACCOUNT"] == "business_intelligence"
    assert owners["LAMBDA_API_KEY"] == "infrastructure"
    assert owners["SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"] == "business_intelligence"


def test_config_carries_the_data_location_and_gate_as_absolute_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOPHIA_DATA_DIR", "nc-data")
    monkeypatch.setenv("SOPHIA_DUCKDB_PATH", "~/wh.duckdb")
    monkeypatch.setenv("SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE", "1")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "hunter2-hunter2-secret")
    config = client_config("cursor")
    env = config["mcpServers"]["sophia-business-intelligence"]["env"]
    assert env["SOPHIA_DATA_DIR"] == str(tmp_path / "nc-data")
    assert env["SOPHIA_DUCKDB_PATH"] == str(Path("~/wh.duckdb").expanduser())
    assert env["SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE"] == "1"
    assert "hunter2-hunter2-secret" not in json.dumps(config)
    assert env["PULUMI_ACCESS_TOKEN"] == "${env:PULUMI_ACCESS_TOKEN}"


def test_config_leaves_out_servers_without_tools_unless_asked() -> None:
    empty = {e.mcp_name for e in all_servers() if not e.spec.tools}
    configured = set(client_config("claude")["mcpServers"])
    assert not empty & configured
    assert {e.mcp_name for e in all_servers() if e.spec.tools} <= configured
    assert empty <= set(client_config("claude", include_empty=True)["mcpServers"])
