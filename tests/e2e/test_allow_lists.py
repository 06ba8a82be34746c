"""Allow-lists over real processes: a bad list stops the server at startup with its reason on stderr; a good
one changes what a real MCP client lists; `sophia tools --all` reports what each server costs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mcp import Client, StdioServerParameters, stdio_client

from sophia_shared.gate import tools_exclude_variable, tools_variable, write_gate_variable
from sophia_shared.registry import registered_servers

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
INFRA = next(s for s in registered_servers() if s.spec.key == "infrastructure")
DATA = next(s for s in registered_servers() if s.spec.key == "data_intelligence")


def start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start a server with stdin closed at once: a bad allow-list must stop it before it serves anything."""
    return subprocess.run(
        [sys.executable, "-m", module],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_an_unknown_tool_name_stops_the_server_with_the_reason_on_stderr() -> None:
    variable = tools_variable(INFRA.spec.key)
    done = start(INFRA.module, {variable: "gpu_types,gpu_typo"})

    assert done.returncode == 2
    assert done.stdout == ""  # nothing on the protocol stream
    assert f"sophia-infrastructure: {variable} names 'gpu_typo', which is not a tool of this server." in done.stderr
    assert "Its tools: " in done.stderr and "gpu_launch" in done.stderr  # gated tools are named too
    assert "Traceback" not in done.stderr


def test_excluding_every_tool_stops_the_server() -> None:
    variable = tools_exclude_variable(INFRA.spec.key)
    done = start(INFRA.module, {variable: "*"})

    assert done.returncode == 2
    assert "leave no tool to offer" in done.stderr


def test_an_allow_list_of_only_gated_tools_stops_the_server_naming_the_gate_to_set() -> None:
    """Never a silent empty server: `scrape_batch` alone with its gate off is a startup error, not 0 tools."""
    gate = write_gate_variable(DATA.spec.key)
    done = start(DATA.module, {tools_variable(DATA.spec.key): "scrape_batch", gate: "0"})

    assert done.returncode == 2
    assert done.stdout == ""
    assert "leaves only write tools (scrape_batch)" in done.stderr
    assert f"Set {gate}=1" in done.stderr
    assert "Traceback" not in done.stderr


def test_sophia_tools_says_the_server_exited_at_startup_rather_than_connection_closed() -> None:
    gate = write_gate_variable(DATA.spec.key)
    done = subprocess.run(
        [sys.executable, "-m", "sophia_cli.main", "tools", "data"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, tools_variable(DATA.spec.key): "scrape_batch", gate: "0"},
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert f"Set {gate}=1" in done.stderr  # the server's own message comes first
    assert lines[-1] == "sophia tools: the server exited at startup; its message is above"
    assert "Connection closed" not in done.stderr


async def test_a_real_client_sees_only_the_allowed_tools_and_cannot_call_the_others() -> None:
    env = {**os.environ, tools_variable(INFRA.spec.key): "gpu_types", "SOPHIA_LOG_LEVEL": "WARNING"}
    params = StdioServerParameters(command=sys.executable, args=["-m", INFRA.module], env=env)
    async with Client(stdio_client(params)) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        refused = await client.call_tool("gpu_instances", {})
    assert listed == ["gpu_types"]
    assert refused.is_error
    assert "SOPHIA_INFRASTRUCTURE_TOOLS does not list it" in refused.content[0].text


def test_sophia_tools_all_reports_each_servers_cost_and_the_suite_total() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sophia_cli.main", "tools", "--all", "--gates-open", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_name = {s["server"]: s for s in report["servers"]}
    assert set(by_name) == {s.spec.name for s in registered_servers()}
    for server in registered_servers():
        row = by_name[server.spec.name]
        assert row["tools"] == len(server.spec.tools)  # every gate open: every tool
        assert row["bytes"] > 200 * row["tools"]
    assert report["tools"] == sum(s["tools"] for s in report["servers"])
    assert report["bytes"] == sum(s["bytes"] for s in report["servers"])
    assert report["gates_open"] is True


def test_sophia_tools_needs_a_server_or_all() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sophia_cli.main", "tools"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--all" in done.stderr
