"""`sophia`: serve, tools, call, doctor, config, demo, bench."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Sequence

from sophia_shared.errors import SophiaError
from sophia_shared.redaction import redact

from .servers import all_servers, find_server


def _parser() -> argparse.ArgumentParser:
    servers = all_servers()
    names = ", ".join(e.key for e in servers)
    aliases = ", ".join(a for e in servers for a in e.aliases)
    parser = argparse.ArgumentParser(prog="sophia", description="The Sophia MCP suite.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run a server over stdio (what MCP clients launch)")
    p.add_argument("server", help=f"one of: {names} (or {aliases})")

    p = sub.add_parser("tools", help="list a server's tools through a real MCP client")
    p.add_argument("server")
    p.add_argument("--json", action="store_true", help="print the raw tool definitions")

    p = sub.add_parser("call", help="call one tool through a real MCP client over stdio")
    p.add_argument("server")
    p.add_argument("tool")
    p.add_argument("arguments", nargs="?", default="{}", help="tool arguments as a JSON object")
    p.add_argument("--json", action="store_true", help="print structured content as JSON")

    p = sub.add_parser("doctor", help="what is configured, from where, and whether it answers")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each backend")

    p = sub.add_parser("config", help="print a ready-to-paste MCP client config")
    p.add_argument("client", choices=["cursor", "claude"])
    p.add_argument("--uv", action="store_true", help="launch through `uv run` instead of the venv scripts")
    p.add_argument("--all", action="store_true", help="include servers that have no tools yet")

    p = sub.add_parser("demo", help="load the demo dataset and query it through the BI server")
    p.add_argument("--force", action="store_true", help="replace same-named tables the demo did not create")

    p = sub.add_parser("infra", help="infrastructure chores")
    p.add_argument("action", choices=["reap"], help="reap: terminate GPU instances whose lease has expired")

    p = sub.add_parser("bench", help="benchmark the BI server against a bare MCPServer")
    p.add_argument("--runs", type=int, default=7, help="cold starts per server")
    p.add_argument("--calls", type=int, default=200, help="trivial calls for the overhead ratio")

    for module in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{module}").register(sub)
    return parser


# Commands that live in a module of their own: each has `register(sub)`, which adds its parser and
# sets `handler` (a function of the parsed arguments returning the exit code). Keep their imports
# light: heavy ones go inside the handler.
COMMAND_MODULES: tuple[str, ...] = ()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except SophiaError as exc:
        print(redact(f"sophia {args.command}: {exc.agent_message()}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a CLI prints what failed, not a traceback
        print(redact(f"sophia {args.command}: {_describe_failure(exc)}"), file=sys.stderr)
        return 1


def _describe_failure(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    if "Timed out" in text:
        return f"{text}. The server did not answer in time: raise SOPHIA_CALL_TIMEOUT (seconds, default 300)."
    if isinstance(exc, OSError):
        return f"could not start or reach the server: {text}"
    return f"{type(exc).__name__}: {text}"


def _dispatch(args: argparse.Namespace) -> int:
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    if args.command == "serve":
        entry = find_server(args.server)
        importlib.import_module(entry.module).main()
        return 0
    if args.command == "tools":
        return asyncio.run(_tools(args.server, as_json=args.json))
    if args.command == "call":
        return asyncio.run(_call(args.server, args.tool, args.arguments, as_json=args.json))
    if args.command == "doctor":
        from .doctor import run_doctor

        return run_doctor(timeout=args.timeout)
    if args.command == "config":
        from .config import client_config

        print(json.dumps(client_config(args.client, use_uv=args.uv, include_empty=args.all), indent=2))
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return asyncio.run(run_demo(force=args.force))
    if args.command == "infra":
        return _reap()
    if args.command == "bench":
        from .bench import run_bench

        return run_bench(runs=args.runs, calls=args.calls)
    raise AssertionError(args.command)


def _reap() -> int:
    """`sophia infra reap` (cron-able): terminate expired leases; non-zero when one could not be."""
    import anyio

    from sophia_infrastructure.leases import reap_expired
    from sophia_infrastructure.server import SPEC
    from sophia_shared.settings import Settings

    lines = anyio.run(reap_expired, Settings(specs=SPEC.settings))
    for line in lines or ["No lease has expired."]:
        print(redact(line))
    return 1 if any("NOT terminated" in line for line in lines) else 0


async def _tools(name: str, *, as_json: bool) -> int:
    from .client import connect

    entry = find_server(name)
    async with connect(entry) as client:
        tools = (await client.list_tools()).tools
    if as_json:
        print(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools], indent=2))
        return 0
    print(f"{entry.mcp_name}: {len(tools)} tool(s)")
    for tool in tools:
        hints = tool.annotations
        flags = []
        if hints is not None:
            flags.append("read-only" if hints.read_only_hint else "writes")
            if hints.destructive_hint:
                flags.append("destructive")
            if hints.open_world_hint:
                flags.append("open-world")
        summary = (tool.description or "").strip().splitlines()[0] if tool.description else ""
        print(f"  {tool.name:<28} [{', '.join(flags)}] {summary}")
    return 0


async def _call(name: str, tool: str, raw_arguments: str, *, as_json: bool) -> int:
    from .client import connect, print_result

    try:
        arguments = json.loads(raw_arguments)
    except json.JSONDecodeError as exc:
        print(
            f"sophia call: the arguments are not valid JSON ({exc.msg} at column {exc.colno}). "
            """Pass one JSON object, e.g. '{"sql": "SELECT 1"}'.""",
            file=sys.stderr,
        )
        return 2
    if not isinstance(arguments, dict):
        print('sophia call: the arguments must be a JSON object, e.g. \'{"sql": "SELECT 1"}\'.', file=sys.stderr)
        return 2
    entry = find_server(name)
    async with connect(entry) as client:
        known = {t.name for t in (await client.list_tools()).tools}
        if tool not in known:
            listing = ", ".join(sorted(known)) or "none"
            print(f"sophia call: {entry.mcp_name} has no tool '{tool}'. Its tools: {listing}.", file=sys.stderr)
            return 2
        result = await client.call_tool(tool, arguments)
    print_result(result, as_json=as_json)
    return 1 if result.is_error else 0


if __name__ == "__main__":
    sys.exit(main())
