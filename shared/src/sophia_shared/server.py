"""The server factory every Sophia server uses.

It owns what must be identical across servers: stderr logging, lifespan-owned state, the write
gate, tool annotations, error formatting and redaction of everything a tool returns.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Annotated, Any, Generic, TypeVar, get_type_hints, overload

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel

from .errors import ConfigError, SophiaError
from .gate import (
    ToolSelection,
    select_tools,
    tools_exclude_variable,
    tools_variable,
    write_gate_variable,
    writes_allowed,
)
from .logs import configure_logging
from .output import RESULT_CEILING_BYTES
from .redaction import redact, redact_obj
from .setting_specs import SettingSpec
from .settings import Settings

log = logging.getLogger(__name__)

StateT = TypeVar("StateT")


class ToolResult(BaseModel):
    """Base of every tool's structured result; `render_text` is the short human rendering."""

    def render_text(self) -> str:
        return self.model_dump_json(indent=2)


@dataclass(frozen=True)
class ToolDef:
    """A tool as the suite knows it: the function plus its safety annotations."""

    fn: Callable[..., Awaitable[ToolResult]]
    name: str
    title: str
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    writes: bool  # registered only when its write gate is on
    gate: str = ""  # the gate's key when not the server's own: "memory" → SOPHIA_MEMORY_ALLOW_WRITE

    @property
    def annotations(self) -> ToolAnnotations:
        # The title travels once, as the tool's own `title`.
        return ToolAnnotations(
            read_only_hint=self.read_only,
            destructive_hint=self.destructive,
            idempotent_hint=self.idempotent,
            open_world_hint=self.open_world,
        )


def sophia_tool(
    name: str,
    *,
    title: str,
    read_only: bool,
    destructive: bool = False,
    idempotent: bool = True,
    open_world: bool = False,
    writes: bool = False,
    gate: str = "",
) -> Callable[[Callable[..., Awaitable[Any]]], ToolDef]:
    """Declare a tool; its docstring is the description the LLM reads."""

    def decorate(fn: Callable[..., Awaitable[Any]]) -> ToolDef:
        if not (fn.__doc__ or "").strip():
            raise ValueError(f"tool {name} needs a docstring: it is the description an LLM reads")
        if gate and not writes:
            raise ValueError(f"tool {name}: a gate only applies to a tool that writes")
        return ToolDef(fn, name, title, read_only, destructive, idempotent, open_world, writes, gate)

    return decorate


def _as_mcp_function(tool: ToolDef) -> Callable[..., Awaitable[CallToolResult]]:
    """Wrap a tool so errors become redacted tool errors and results carry text + structure."""
    fn = tool.fn
    hints = get_type_hints(fn, include_extras=True)
    result_type = hints.pop("return")
    signature = inspect.signature(fn)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]

    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> CallToolResult:
        try:
            result = await fn(*args, **kwargs)
        except SophiaError as exc:
            log.info("tool %s: %s", tool.name, exc.message)
            raise ToolError(redact(exc.agent_message())) from None
        except ToolError as exc:
            raise ToolError(redact(str(exc))) from None
        except Exception as exc:
            log.exception("tool %s failed unexpectedly", tool.name)
            raise ToolError(
                redact(
                    f"{tool.name} failed unexpectedly ({type(exc).__name__}: {exc}). "
                    "This is a bug in the server; the stderr log has the details."
                )
            ) from None
        text = redact(result.render_text())
        structured = redact_obj(result.model_dump(mode="json"))
        size = len(text.encode()) + len(json.dumps(structured, ensure_ascii=False).encode())
        if size > RESULT_CEILING_BYTES:
            # A backstop, not the cap: tools page and cap themselves; one that forgets is a bug, named here.
            log.error("tool %s produced %d bytes, above the %d-byte ceiling", tool.name, size, RESULT_CEILING_BYTES)
            raise ToolError(
                f"{tool.name} produced a result of {size:,} bytes, above the suite's ceiling of "
                f"{RESULT_CEILING_BYTES:,} bytes, so it was not sent. Ask for less (a narrower filter, fewer "
                "rows or columns, a smaller page) and call it again; this is also a bug to report: the tool "
                "should have paged."
            )
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=Annotated[CallToolResult, result_type]
    )
    return call


class LazyTools(Sequence[ToolDef]):
    """A server's tools, imported on first use: a server whose tool modules import heavy libraries (an
    HTTP stack, an extractor) still answers `initialize` without them."""

    def __init__(self, load: Callable[[], Sequence[ToolDef]]) -> None:
        self._load = load
        self._tools: tuple[ToolDef, ...] | None = None

    def _loaded(self) -> tuple[ToolDef, ...]:
        if self._tools is None:
            self._tools = tuple(self._load())
        return self._tools

    @overload
    def __getitem__(self, index: int) -> ToolDef: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ToolDef]: ...

    def __getitem__(self, index: int | slice) -> ToolDef | Sequence[ToolDef]:
        return self._loaded()[index]

    def __len__(self) -> int:
        return len(self._loaded())

    @property
    def loaded(self) -> bool:
        return self._tools is not None


def tool_names_in(module: ModuleType, *, exclude: Sequence[str] = ()) -> tuple[str, ...]:
    """The tool names a server's `names.py` defines (its upper-case string constants), known without
    importing the tools: `ServerSpec(tool_names=tool_names_in(names), write_tools=...)` lets allow-lists be
    checked before a lazy server loads its tool modules."""
    return tuple(
        value
        for key, value in vars(module).items()
        if key.isupper() and isinstance(value, str) and value not in exclude
    )


@dataclass
class ServerSpec(Generic[StateT]):
    """What a server is: its MCP name, tools, settings, health probe and the state its tools share.

    Everything outside the server (the CLI, `doctor`, `config`, the schema test, the test fixtures)
    learns about a server from this spec, found through the `sophia.servers` entry-point group.
    """

    name: str  # MCP name, "sophia-business-intelligence"
    key: str  # "business_intelligence": names the write-gate variable and the ESC group
    instructions: str
    tools: Sequence[ToolDef]
    # Every tool's name, known without importing the tools (from names.py): a lazy server's allow-lists are
    # then checked at startup without loading its tool modules. Empty: read from `tools`.
    tool_names: Sequence[str] = ()
    # Each write tool's name → the key of the gate it waits for ("" for the server's own), known without
    # importing the tools: an allow-list that keeps only gated tools is then refused at startup. None: read
    # from `tools` (a lazy server then loads its tools when an allow-list is set).
    write_tools: Mapping[str, str] | None = None
    make_state: Callable[[Settings], StateT] | None = None
    close_state: Callable[[StateT], Awaitable[None] | None] | None = None
    settings: Sequence[SettingSpec] = ()
    env_prefixes: Sequence[str] = ()  # vendor variable prefixes the server reads (SNOWFLAKE_, …)
    probe: Callable[[Settings], str] | None = None  # blocking health check for `sophia doctor`
    aliases: tuple[str, ...] = ()  # short names for the CLI: "bi"
    summary: str = ""  # one line for `sophia tools`/`config`
    version: str = field(default="0.1.0")

    def __post_init__(self) -> None:
        if self.tool_names and self.write_tools is None:
            raise ValueError(
                f"{self.name}: declare write_tools with tool_names, so allow-lists are checked against the write "
                "gates without importing the tools"
            )

    @property
    def cli_name(self) -> str:
        """`business-intelligence`: the name the CLI and the entry point use."""
        return self.key.replace("_", "-")

    @property
    def write_gate(self) -> str:
        return write_gate_variable(self.key)

    @property
    def tools_variable(self) -> str:
        return tools_variable(self.key)

    @property
    def tools_exclude_variable(self) -> str:
        return tools_exclude_variable(self.key)

    @property
    def has_write_tools(self) -> bool:
        return any(t.writes for t in self.tools)

    def gate_of(self, tool: ToolDef) -> str:
        """The key of the gate a write tool waits for: its own, or the server's."""
        return tool.gate or self.key

    def known_tool_names(self) -> tuple[str, ...]:
        """Every tool's name, gated ones included; from `tool_names` when declared (no tool import)."""
        if self.tool_names and not (isinstance(self.tools, LazyTools) and self.tools.loaded):
            return tuple(self.tool_names)
        return tuple(t.name for t in self.tools)

    def known_write_tools(self) -> dict[str, str]:
        """Each write tool's name → its gate's key; from `write_tools` when declared (no tool import)."""
        if self.write_tools is not None and not (isinstance(self.tools, LazyTools) and self.tools.loaded):
            return {name: gate or self.key for name, gate in self.write_tools.items()}
        return {t.name: self.gate_of(t) for t in self.tools if t.writes}

    def tool_selection(self, settings: Settings) -> ToolSelection:
        """The tools its allow-lists keep; a ConfigError (naming its tools) for an unknown name or none left."""
        return select_tools(settings, self.key, self.known_tool_names(), server=self.name, aliases=self.aliases)

    def check_startup(self, settings: Settings) -> ToolSelection:
        """The allow-lists' selection, or a ConfigError: an unknown name, nothing left, or only write tools
        whose gates are closed (the server would start and offer nothing)."""
        selection = self.tool_selection(settings)
        if selection.kept is None:
            return selection
        writes = self.known_write_tools()
        if any(name not in writes or writes_allowed(settings, writes[name]) for name in selection.kept):
            return selection  # a read tool, or a write tool whose gate is open: the server offers something
        closed = sorted({writes[name] for name in selection.kept})
        kept = ", ".join(sorted(selection.kept))
        lists = " and ".join(
            f"{v}={settings.get_local(v)}"
            for v in (self.tools_variable, self.tools_exclude_variable)
            if (settings.get_local(v) or "").strip()
        )
        variables = [write_gate_variable(key) for key in closed]
        raise ConfigError(
            f"{self.name}: {lists} {'leaves' if ' and ' not in lists else 'leave'} only write tools ({kept}), "
            f"and {' and '.join(variables)} {'is' if len(variables) == 1 else 'are'} not set to 1, so the server "
            "would offer no tool.",
            hint=f"Set {' and '.join(f'{v}=1' for v in variables)} (in the environment, the local ESC file or .env) "
            f"to offer {'it' if len(selection.kept) == 1 else 'them'}, or allow a read tool too; then restart "
            "the server.",
        )

    def all_settings(self) -> tuple[SettingSpec, ...]:
        """The server's declared settings, plus its allow-lists and one variable per write gate its tools use."""
        gates = dict.fromkeys(self.gate_of(t) for t in self.tools if t.writes)
        declared = tuple(
            SettingSpec(
                write_gate_variable(key),
                self.key,
                False,
                "Set to 1 to register the write tools."
                if key == self.key
                else f"Set to 1 to register the {key} write tools.",
                "0",
            )
            for key in gates
        )
        lists = (
            SettingSpec(
                self.tools_variable,
                self.key,
                False,
                "Only these tools are offered (comma-separated names or patterns like web_*; all when unset).",
            ),
            SettingSpec(self.tools_exclude_variable, self.key, False, "These tools are not offered (comma-separated)."),
        )
        return (*declared, *lists, *self.settings)

    def registered_tools(self, settings: Settings) -> list[ToolDef]:
        """The tools to list: write tools only when the write gate is on.

        The gate is read from local sources only (environment, local ESC-format file, `.env`): tools
        are listed while the server builds, before `initialize`, and an unreachable remote ESC would
        stall that (12 s observed). A gate kept only in remote ESC therefore does not open writes.
        """
        selection = self.tool_selection(settings)
        tools = [
            t for t in self.tools if t.name in selection and (not t.writes or writes_allowed(settings, self.gate_of(t)))
        ]
        if not tools and selection.kept is not None:
            # `check_startup` refuses this; reaching it means `write_tools` disagrees with the tools.
            log.error(
                "%s offers no tool: %s keeps only write tools and their write gate is off "
                "(its declared write_tools disagree with its tools: a bug).",
                self.name,
                self.tools_variable,
            )
        return tools

    def unlisted(self, settings: Settings) -> dict[str, str]:
        """Why each declared tool that is not offered is not: its allow-list, or its closed write gate."""
        reasons = dict(self.tool_selection(settings).left_out)
        for tool in self.tools:
            if tool.name not in reasons and tool.writes and not writes_allowed(settings, self.gate_of(tool)):
                variable = write_gate_variable(self.gate_of(tool))
                reasons[tool.name] = (
                    f"{tool.name} writes, so it is offered only when {variable}=1 (set in the environment, the "
                    "local ESC file or .env, then restart the server)."
                )
        return reasons


def build_server(spec: ServerSpec[Any], settings: Settings | None = None) -> MCPServer[Any]:
    """An `MCPServer` with the spec's tools; state is made lazily in the lifespan (no I/O)."""
    # The declared settings, not `all_settings()`: that walks the tools (and may import them); a write
    # gate or an allow-list resolves without being declared.
    settings = settings or Settings(specs=spec.settings)
    spec.check_startup(settings)  # a bad allow-list fails here, before the server starts

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[Any]:
        state = spec.make_state(settings) if spec.make_state else settings
        try:
            yield state
        finally:
            if spec.close_state is not None and state is not None:
                outcome = spec.close_state(state)
                if inspect.isawaitable(outcome):
                    await outcome

    server = SophiaServer(
        lambda: spec.registered_tools(settings),
        lambda: spec.unlisted(settings),
        name=spec.name,
        instructions=spec.instructions,
        version=spec.version,
        lifespan=lifespan,
    )
    return server


class SophiaServer(MCPServer[Any]):
    """An `MCPServer` that registers its tools on first use (tools/list or tools/call), not while it
    starts: building a tool's schemas costs a few milliseconds each, and `initialize` need not wait
    for twenty of them. Registration runs once, on the event loop, so concurrent first calls agree."""

    def __init__(
        self,
        tools: Callable[[], Sequence[ToolDef]],
        unlisted: Callable[[], Mapping[str, str]] = dict,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._pending: Callable[[], Sequence[ToolDef]] | None = tools
        self._unlisted = unlisted

    def _register_tools(self) -> None:
        pending, self._pending = self._pending, None
        for tool in pending() if pending is not None else ():
            self.add_tool(
                _as_mcp_function(tool),
                name=tool.name,
                title=tool.title,
                description=inspect.cleandoc(tool.fn.__doc__ or ""),
                annotations=tool.annotations,
            )
            _compact_schemas(self, tool.name)

    async def list_tools(self) -> list[Any]:
        self._register_tools()
        return await super().list_tools()

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        self._register_tools()
        if self._tool_manager.get_tool(name) is None:
            # A tool the server has but does not offer: say why, rather than "Unknown tool".
            reason = self._unlisted().get(name)
            if reason is not None:
                raise ToolError(reason)
        return await super().call_tool(name, arguments, context)

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        self._register_tools()
        return super()._tool_input_schema(name)


def _compact_schemas(server: MCPServer[Any], name: str) -> None:
    """Trim what tools/list costs the client's context (the suite aims at ≤ 1.5 KB per tool).

    Inputs lose the `title` pydantic puts on every node and empty defaults (`""`, `[]`, `{}`: a parameter
    left out of `required` is already optional); their descriptions and real defaults stay, the LLM needs
    them. Outputs keep the result's own fields and their types; they lose titles, field descriptions (the
    tool description and the text rendering explain results), defaults, `required` (every field of a
    result is always sent), the `anyOf` wrapper around an optional value (`{"type": ["string", "null"]}`
    says the same) and the shapes of nested records (`$defs`: a nested model is typed `object`, an enum
    stays whole). Clients still validate structured content against what is left."""
    registered = server._tool_manager.get_tool(name)
    if registered is None:
        return
    registered.parameters = _trimmed(registered.parameters, drop=("title",), empty_defaults=True)
    metadata = registered.fn_metadata
    if metadata.output_schema is not None:
        flat = _without_refs(metadata.output_schema, metadata.output_schema.get("$defs", {}))
        metadata.output_schema = _trimmed(flat, drop=("title", "description", "default", "required"), nullable=True)


_EMPTY: tuple[Any, ...] = ("", [], {})


def _without_refs(schema: Any, defs: dict[str, Any]) -> Any:
    """`schema` with each `$ref` to a nested model typed `object`, other refs (enums) inlined, no `$defs`."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = defs.get(ref.removeprefix("#/$defs/"), {})
            inlined = {"type": "object"} if target.get("type", "object") == "object" else target
            return {**{k: v for k, v in schema.items() if k != "$ref"}, **inlined}
        return {key: _without_refs(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_without_refs(item, defs) for item in schema]
    return schema


def _trimmed(schema: Any, *, drop: tuple[str, ...], empty_defaults: bool = False, nullable: bool = False) -> Any:
    """`schema` without the `drop` keywords; keys of `properties`/`$defs` are names, never dropped."""

    def walk(node: Any, names: bool = False) -> Any:
        if isinstance(node, dict):
            if names:
                return {key: walk(value) for key, value in node.items()}
            trimmed = {
                key: walk(value, names=key in ("properties", "$defs"))
                for key, value in node.items()
                if key not in drop and not (empty_defaults and key == "default" and value in _EMPTY)
            }
            return _type_or_null(trimmed) if nullable else trimmed
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(schema)


def _type_or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`{"anyOf": [{"type": "string"}, {"type": "null"}]}` → `{"type": ["string", "null"]}`; others unchanged."""
    variants = schema.get("anyOf")
    if not isinstance(variants, list) or len(variants) != 2 or {"type": "null"} not in variants:
        return schema
    (value,) = [v for v in variants if v != {"type": "null"}]
    if (
        not isinstance(value.get("type"), str)
        or "enum" in value
        or "const" in value
        or set(value) & set(schema) - {"anyOf"}
    ):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**rest, **value, "type": [value["type"], "null"]}


def state_of(ctx: Context[Any, Any], kind: type[StateT]) -> StateT:
    """The lifespan state of the server handling this call."""
    state = ctx.request_context.lifespan_context
    if not isinstance(state, kind):
        raise TypeError(f"expected {kind.__name__} state, got {type(state).__name__}")
    return state


def _exit_on_signals() -> None:
    """Exit at once on SIGTERM/SIGINT: as PID 1 in a container the default SIGTERM is ignored, and a
    Ctrl-C in `sophia call` would otherwise print the server's traceback over the user's terminal."""
    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        signal.signal(signum, lambda *_, code=code: os._exit(code))


def progress_requested(ctx: Context[Any, Any]) -> bool:
    """Whether the caller asked for progress notifications on this request (a progress token)."""
    request = ctx.request_context
    if (request.meta or {}).get("progress_token") is not None:
        return True
    wire_meta = (request.params or {}).get("_meta") or {}
    if isinstance(wire_meta, dict) and wire_meta.get("progressToken") is not None:
        return True
    # The in-process client carries a callback, not a token; mcp is pinned (==2.3.0), so this private
    # look stays valid until the next deliberate upgrade.
    outbound = getattr(request.session, "_request_outbound", None)
    dispatch = getattr(outbound, "_inner", outbound)
    return any(getattr(dispatch, name, None) is not None for name in ("_on_progress", "_progress_token"))


def run_server(spec: ServerSpec[Any]) -> None:
    """Console-script entry point: stdio transport, logs on stderr."""
    _exit_on_signals()
    configure_logging()
    settings = Settings(specs=spec.settings)
    try:
        server = build_server(spec, settings)
    except ConfigError as exc:
        # A startup error the user reads in the client's server log: what is wrong and what to set.
        print(redact(exc.agent_message()), file=sys.stderr, flush=True)
        sys.exit(2)
    # The SDK reconfigures logging when it builds the server; put ours back on top.
    configure_logging()
    server.run()
