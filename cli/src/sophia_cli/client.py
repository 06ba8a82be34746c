"""A real MCP client over stdio: what `sophia tools`, `call`, `demo` and the benchmark use."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TextIO

from mcp import Client, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

from sophia_shared.errors import InputError

from .servers import ServerEntry, child_environment


def server_parameters(entry: ServerEntry, env: dict[str, str] | None = None) -> StdioServerParameters:
    command = entry.command()
    return StdioServerParameters(command=command[0], args=command[1:], env=child_environment(env))


@asynccontextmanager
async def connect(
    entry: ServerEntry, env: dict[str, str] | None = None, *, quiet: bool = True, errlog: TextIO | None = None
) -> AsyncIterator[Client]:
    """Spawn the server and hand back an initialized client; its stderr goes to ours unless quiet."""
    params = server_parameters(entry, env)
    if quiet and "SOPHIA_LOG_LEVEL" not in params.env:  # type: ignore[operator]
        params.env["SOPHIA_LOG_LEVEL"] = "WARNING"  # type: ignore[index]
    raw_timeout = os.environ.get("SOPHIA_CALL_TIMEOUT", "300")
    try:
        timeout = float(raw_timeout)
    except ValueError:
        raise InputError(f"SOPHIA_CALL_TIMEOUT must be a number of seconds, not {raw_timeout!r}.") from None
    transport = stdio_client(params, errlog=errlog or sys.stderr)
    async with Client(transport, read_timeout_seconds=timeout) as client:
        yield client


def result_text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def print_result(result: CallToolResult, *, as_json: bool) -> None:
    if as_json:
        payload: dict[str, Any] = {"isError": bool(result.is_error)}
        if result.structured_content is not None:
            payload["structuredContent"] = result.structured_content
        payload["text"] = result_text(result)
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        stream = sys.stderr if result.is_error else sys.stdout
        print(result_text(result), file=stream)
