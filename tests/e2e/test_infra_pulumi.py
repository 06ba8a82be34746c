"""The infrastructure server over stdio with the real Pulumi CLI: engine events arrive as progress notifications,
and a cancelled MCP call cancels the running update (the CLI stops, the stack is left unlocked)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from sophia_infrastructure.names import STACK_CONFIG_SET, STACK_PREVIEW, STACK_UP
from tests import infra_pulumi_support as support
from tests.infra_pulumi_support import REPO_ROOT, journal, pulumi_environ

pulumi_cli = support.pulumi_cli  # fixture

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@asynccontextmanager
async def _server(tmp_path: Path, cli: Path, files: Path) -> AsyncIterator[Client]:
    env = {
        **os.environ,
        **pulumi_environ(tmp_path, cli),
        "SOPHIA_TEST_FILES_DIR": str(files),
        "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE": "1",
        "PYTHONPATH": str(REPO_ROOT),
        "SOPHIA_LOG_LEVEL": "WARNING",
    }
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "tests.infra_pulumi_server"], env=env, cwd=str(REPO_ROOT)
    )
    with (tmp_path / "server.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=120) as client:
            yield client


async def test_progress_and_cancellation_over_stdio(tmp_path: Path, pulumi_cli: Path) -> None:
    files = tmp_path / "files"
    seen: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with _server(tmp_path, pulumi_cli, files) as client:
        # Five resources one after another, 4 s each: the whole update would take over 20 s.
        await client.call_tool(STACK_CONFIG_SET, {"stack": "dev", "key": "delay", "value": "4"})
        started = time.perf_counter()
        with pytest.raises(MCPError):  # the client gives up and sends notifications/cancelled
            await client.call_tool(STACK_UP, {"stack": "dev"}, read_timeout_seconds=8.0, progress_callback=progress)
        # SIGINT makes the CLI finish the resource in flight and stop; give it that long.
        for _ in range(100):
            if not _cli_running(pulumi_cli):
                break
            await anyio.sleep(0.1)
        assert not _cli_running(pulumi_cli), "the pulumi CLI still runs after the cancel"
        assert time.perf_counter() - started < 16
        created = [f for op, f in journal(files) if op == "create"]
        assert 1 <= len(created) < 5, created
        await anyio.sleep(4.5)
        assert [f for op, f in journal(files) if op == "create"] == created, "the update went on after the cancel"
        assert "up sophia-dev: create ai" in seen  # progress arrived over stdio before the cancel

        # The stack is not left locked: the next operation runs and sees what is still to do.
        after = await client.call_tool(STACK_PREVIEW, {"stack": "dev"})
        assert not after.is_error, after.content
        assert after.structured_content["counts"].get("create") == 5 - len(created)


def _cli_running(cli: Path) -> bool:
    """Whether a `pulumi up` started (through the server) by this test process still runs."""
    parents: dict[int, int] = {}
    argv: dict[int, list[bytes]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
    mine = {os.getpid()}
    for _ in range(4):  # test → server → CLI (and whatever the CLI starts)
        mine |= {pid for pid, parent in parents.items() if parent in mine}
    return any(argv[pid][:1] == [str(cli).encode()] and b"up" in argv[pid] for pid in mine if pid in argv)
