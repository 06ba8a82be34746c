"""`sophia`: serve, tools, call, doctor, config, demo, bench."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from sophia_shared.errors import SophiaError
from sophia_shared.redaction import redact

from .servers import ServerEntry, all_servers, find_server


def _parser() -> argparse.ArgumentParser:
    servers = all_servers()
    names = ", ".join(e.key for e in servers)
    aliases = ", ".join(a for e in servers for a in e.aliases)
    parser = argparse.ArgumentParser(prog="sophia", description="The Sophia MCP suite.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run a server over stdio (what MCP clients launch)")
    p.add_argument("server", help=f"one of: {names} (or {aliases})")

    p = sub.add_parser("tools", help="list a server's tools through a real MCP client")
    p.add_argument("server", nargs="?", help=f"one of: {names} (or {aliases}); or --all")
    p.add_argument("--json", action="store_true", help="print the raw tool definitions (with --all: the figures)")
    p.add_argument(
        "--all",
        action="store_true",
        help="every server: tool count and the size of its tools/list (what it costs a client's context)",
    )
    p.add_argument(
        "--gates-open",
        action="store_true",
        help="open every write gate for the listing (the write tools count too)",
    )

    p = sub.add_parser("call", help="call one tool through a real MCP client over stdio")
    p.add_argument("server")
    p.add_argument("tool")
    p.add_argument("arguments", nargs="?", default="{}", help="tool arguments as a JSON object")
    p.add_argument("--json", action="store_true", help="print structured content as JSON")

    p = sub.add_parser("doctor", help="what is configured, from where, and whether it answers")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each backend")

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
COMMAND_MODULES: tuple[str, ...] = ("config", "bundle", "inspect", "secrets")


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
    from mcp.shared.exceptions import MCPError  # the client has imported mcp already
    from mcp.types import CONNECTION_CLOSED

    if isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED:
        # The server's stdio closed before it answered: it exited, and printed why on stderr (ours).
        return "the server exited at startup; its message is above"
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
        if args.all == bool(args.server):
            print("sophia tools: name one server, or pass --all for every server.", file=sys.stderr)
            return 2
        if args.all:
            return asyncio.run(_tool_costs(gates_open=args.gates_open, as_json=args.json))
        return asyncio.run(_tools(args.server, as_json=args.json, gates_open=args.gates_open))
    if args.command == "call":
        return asyncio.run(_call(args.server, args.tool, args.arguments, as_json=args.json))
    if args.command == "doctor":
        from .doctor import run_doctor

        return run_doctor(timeout=args.timeout)
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


def _gates(entry: ServerEntry) -> dict[str, str]:
    """Every write gate of a server, open: what `--gates-open` adds to its environment."""
    from sophia_shared.gate import write_gate_variable

    spec = entry.spec
    return {write_gate_variable(spec.gate_of(t)): "1" for t in spec.tools if t.writes}


def _wire_size(definition: Any) -> int:
    """Bytes of JSON as tools/list carries it (compact, UTF-8)."""
    return len(json.dumps(definition, separators=(",", ":"), ensure_ascii=False).encode())


async def _tool_costs(*, gates_open: bool, as_json: bool) -> int:
    """`sophia tools --all`: each server's tool count and tools/list size, per tool and in all, and the suite's."""
    from .client import connect

    rows: list[dict[str, Any]] = []
    failed = []
    for entry in all_servers():
        try:
            async with connect(entry, _gates(entry) if gates_open else None) as client:
                tools = (await client.list_tools()).tools
        except Exception as exc:  # one server that will not start (a bad allow-list) does not hide the rest
            failed.append(f"{entry.mcp_name}: did not start ({_describe_failure(exc)}).")
            continue
        definitions = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
        rows.append(
            {
                "server": entry.mcp_name,
                "tools": len(definitions),
                "bytes": _wire_size(definitions),
                "largest": sorted(((_wire_size(d), d["name"]) for d in definitions), reverse=True)[:3],
            }
        )
    count, size = sum(r["tools"] for r in rows), sum(r["bytes"] for r in rows)
    if as_json:
        figures = [{k: v for k, v in r.items() if k != "largest"} for r in rows]
        print(json.dumps({"gates_open": gates_open, "servers": figures, "tools": count, "bytes": size}, indent=2))
    else:
        print(f"tools/list cost per server ({'every write gate open' if gates_open else 'write gates as configured'})")
        print(f"  {'server':<30} {'tools':>5} {'total':>9} {'per tool':>9}  largest")
        for r in rows:
            largest = ", ".join(f"{name} {n / 1024:.1f}" for n, name in r["largest"])
            print(f"  {r['server']:<30} {r['tools']:>5} {_kb(r['bytes'])} {_kb(r['bytes'], r['tools'])}  {largest}")
        print(f"  {'suite':<30} {count:>5} {_kb(size)} {_kb(size, count)}")
        print("Target: ≤ 1.5 KB per tool. Fewer tools: SOPHIA_<SERVER>_TOOLS / SOPHIA_<SERVER>_TOOLS_EXCLUDE.")
    for line in failed:
        print(redact(line), file=sys.stderr)
    return 1 if failed else 0


def _kb(size: int, per: int = 1) -> str:
    return f"{size / max(per, 1) / 1024:6.2f} KB"


async def _tools(name: str, *, as_json: bool, gates_open: bool = False) -> int:
    from .client import connect

    entry = find_server(name)
    async with connect(entry, _gates(entry) if gates_open else None) as client:
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
        # A tool the server has but does not offer (write gate, allow-list): the server says why.
        if tool not in known and tool not in entry.spec.known_tool_names():
            listing = ", ".join(sorted(known)) or "none"
            print(f"sophia call: {entry.mcp_name} has no tool '{tool}'. Its tools: {listing}.", file=sys.stderr)
            return 2
        result = await client.call_tool(tool, arguments)
    print_result(result, as_json=as_json)
    return 1 if result.is_error else 0


if __name__ == "__main__":
    sys.exit(main())
