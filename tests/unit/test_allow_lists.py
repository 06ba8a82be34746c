"""Allow-lists: SOPHIA_<SERVER>_TOOLS / _TOOLS_EXCLUDE keep a server under a client's tool cap, checked at
startup against the server's tool names (without importing lazy tool modules), never silently empty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from sophia_shared.errors import ConfigError
from sophia_shared.gate import tools_exclude_variable, tools_variable, write_gate_variable
from sophia_shared.registry import registered_servers
from sophia_shared.server import LazyTools, ServerSpec, ToolDef, ToolResult, build_server, sophia_tool, tool_names_in
from sophia_shared.settings import Settings

pytestmark = pytest.mark.anyio

ALLOW, EXCLUDE, GATE = tools_variable("demo"), tools_exclude_variable("demo"), write_gate_variable("demo")


class Echo(ToolResult):
    text: str


@sophia_tool("demo_search", title="Search", read_only=True)
async def demo_search(text: str) -> Echo:
    """Search for the text; reads nothing."""
    return Echo(text=f"searched {text}")


@sophia_tool("demo_fetch", title="Fetch", read_only=True)
async def demo_fetch(text: str) -> Echo:
    """Fetch the text; reads nothing."""
    return Echo(text=f"fetched {text}")


@sophia_tool("demo_launch", title="Launch", read_only=False, writes=True)
async def demo_launch(text: str) -> Echo:
    """Pretend to launch; only listed when the write gate is on."""
    return Echo(text=f"launched {text}")


TOOLS = [demo_search, demo_fetch, demo_launch]
SPEC: ServerSpec[Any] = ServerSpec(
    name="sophia-demo", key="demo", instructions="A demo server.", tools=TOOLS, aliases=("dm",)
)


async def listed(environ: dict[str, str], spec: ServerSpec[Any] = SPEC) -> set[str]:
    async with Client(build_server(spec, Settings(environ=environ, specs=spec.all_settings()))) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


def test_the_variables_are_named_after_the_server_key() -> None:
    assert tools_variable("business_intelligence") == "SOPHIA_BUSINESS_INTELLIGENCE_TOOLS"
    assert tools_exclude_variable("business_intelligence") == "SOPHIA_BUSINESS_INTELLIGENCE_TOOLS_EXCLUDE"


async def test_without_allow_lists_every_tool_is_offered_as_before() -> None:
    assert await listed({}) == {"demo_search", "demo_fetch"}
    assert await listed({ALLOW: "", EXCLUDE: " "}) == {"demo_search", "demo_fetch"}


async def test_the_allow_list_keeps_only_the_named_tools() -> None:
    assert await listed({ALLOW: "demo_fetch"}) == {"demo_fetch"}
    # Commas or spaces, any case, patterns.
    assert await listed({ALLOW: " Demo_Fetch , demo_search "}) == {"demo_search", "demo_fetch"}
    assert await listed({ALLOW: "demo_s*"}) == {"demo_search"}


async def test_the_exclude_list_removes_tools_and_applies_after_the_allow_list() -> None:
    assert await listed({EXCLUDE: "demo_search"}) == {"demo_fetch"}
    assert await listed({ALLOW: "demo_*", EXCLUDE: "demo_fetch", GATE: "1"}) == {"demo_search", "demo_launch"}


async def test_write_gates_still_apply_to_allowed_write_tools() -> None:
    assert await listed({ALLOW: "demo_search,demo_launch"}) == {"demo_search"}
    assert await listed({ALLOW: "demo_search,demo_launch", GATE: "1"}) == {"demo_search", "demo_launch"}
    assert await listed({EXCLUDE: "demo_launch", GATE: "1"}) == {"demo_search", "demo_fetch"}


@pytest.mark.parametrize(
    ("environ", "variable", "named"),
    [
        ({ALLOW: "demo_search,demo_serch"}, ALLOW, "'demo_serch'"),
        ({EXCLUDE: "web_*"}, EXCLUDE, "'web_*'"),
        ({ALLOW: "demo_search", EXCLUDE: "nope"}, EXCLUDE, "'nope'"),
    ],
    ids=["typo", "pattern-matching-nothing", "unknown-exclude"],
)
def test_an_unknown_name_is_a_startup_error_naming_the_servers_tools(
    environ: dict[str, str], variable: str, named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        build_server(SPEC, Settings(environ=environ))
    message = raised.value.agent_message()
    assert f"sophia-demo: {variable} names {named}" in message
    assert "Its tools: demo_search, demo_fetch, demo_launch." in message  # gated tools are named too
    assert f"Fix {variable}" in message


@pytest.mark.parametrize(
    "environ",
    [
        {EXCLUDE: "demo_*"},
        {ALLOW: "demo_fetch", EXCLUDE: "demo_fetch"},
        {EXCLUDE: "demo_search demo_fetch demo_launch"},
    ],
    ids=["pattern", "allow-minus-exclude", "every-name"],
)
def test_excluding_everything_is_a_startup_error(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="leave no tool to offer") as raised:
        build_server(SPEC, Settings(environ=environ))
    assert "unset both variables" in raised.value.agent_message()


@pytest.mark.parametrize(
    "environ",
    [{ALLOW: "demo_launch"}, {ALLOW: "demo_l*"}, {EXCLUDE: "demo_search,demo_fetch"}],
    ids=["allow", "pattern", "exclude"],
)
def test_keeping_only_write_tools_with_their_gate_off_is_a_startup_error_naming_the_gate(
    environ: dict[str, str],
) -> None:
    """Never a silent empty server: the gate to set is named before the server answers anything."""
    with pytest.raises(ConfigError) as raised:
        build_server(SPEC, Settings(environ=environ))
    message = raised.value.agent_message()
    assert "leaves only write tools (demo_launch)" in message
    assert f"{GATE} is not set to 1, so the server would offer no tool" in message
    assert f"Set {GATE}=1" in message
    # With the gate on, the same lists are a working server offering the write tool.
    assert build_server(SPEC, Settings(environ={**environ, GATE: "1"})) is not None


async def test_the_gate_read_for_the_startup_check_is_the_one_registration_reads(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"{GATE}=1\n")
    environ = {ALLOW: "demo_launch", "SOPHIA_DOTENV": str(tmp_path / ".env")}
    assert await listed(environ) == {"demo_launch"}


@sophia_tool("demo_note", title="Note", read_only=False, writes=True, gate="notes")
async def demo_note(text: str) -> Echo:
    """Pretend to write a note; only listed when the notes gate is on."""
    return Echo(text=f"noted {text}")


def test_each_closed_gate_of_the_kept_write_tools_is_named() -> None:
    notes_gate = write_gate_variable("notes")
    spec: ServerSpec[Any] = ServerSpec(
        name="sophia-demo", key="demo", instructions="A demo server.", tools=[*TOOLS, demo_note]
    )
    with pytest.raises(ConfigError) as raised:
        build_server(spec, Settings(environ={ALLOW: "demo_launch,demo_note"}))
    message = raised.value.agent_message()
    assert f"{GATE} and {notes_gate} are not set to 1" in message
    assert f"Set {GATE}=1 and {notes_gate}=1" in message
    # One open gate is enough: the server offers that gate's tool.
    build_server(spec, Settings(environ={ALLOW: "demo_launch,demo_note", notes_gate: "1"}))
    with pytest.raises(ConfigError, match=f"{notes_gate} is not set to 1"):
        build_server(spec, Settings(environ={ALLOW: "demo_note", GATE: "1"}))


def test_an_alias_spelling_is_refused_rather_than_silently_ignored() -> None:
    with pytest.raises(ConfigError, match="SOPHIA_DM_TOOLS is set, but this server reads SOPHIA_DEMO_TOOLS"):
        build_server(SPEC, Settings(environ={"SOPHIA_DM_TOOLS": "demo_search"}))


@pytest.mark.parametrize(
    ("environ", "tool", "reason"),
    [
        ({EXCLUDE: "demo_fetch"}, "demo_fetch", f"demo_fetch is turned off on this server by {EXCLUDE}"),
        ({ALLOW: "demo_search"}, "demo_fetch", f"{ALLOW} does not list it"),
        ({ALLOW: "demo_search,demo_launch"}, "demo_launch", f"offered only when {GATE}=1"),
    ],
    ids=["excluded", "not-allowed", "gated"],
)
async def test_calling_a_tool_that_is_not_offered_fails_and_says_why(
    environ: dict[str, str], tool: str, reason: str
) -> None:
    async with Client(build_server(SPEC, Settings(environ=environ))) as client:
        result = await client.call_tool(tool, {"text": "x"})
        offered = await client.call_tool("demo_search", {"text": "x"})
    assert result.is_error
    assert reason in result.content[0].text
    assert "fetched" not in result.content[0].text and "launched" not in result.content[0].text
    assert not offered.is_error


async def test_the_allow_lists_are_read_from_the_local_esc_file_and_dotenv(tmp_path: Path) -> None:
    (tmp_path / "esc.yaml").write_text(f"values:\n  environmentVariables:\n    {ALLOW}: demo_fetch\n")
    (tmp_path / ".env").write_text(f"{EXCLUDE}=demo_search\n")
    environ = {"SOPHIA_ESC_FILE": str(tmp_path / "esc.yaml"), "SOPHIA_DOTENV": str(tmp_path / ".env")}
    assert await listed(environ) == {"demo_fetch"}
    (tmp_path / "esc.yaml").write_text("values: {}\n")
    assert await listed(environ) == {"demo_fetch"}  # the .env exclusion alone


def test_a_lazy_server_checks_its_allow_lists_without_importing_its_tools() -> None:
    def explode() -> list[ToolDef]:
        raise AssertionError("the tool modules were imported to check an allow-list")

    lazy: ServerSpec[Any] = ServerSpec(
        name="sophia-lazy",
        key="demo",
        instructions="A lazy demo.",
        tools=LazyTools(explode),
        tool_names=("demo_search", "demo_fetch", "demo_launch"),
        write_tools={"demo_launch": ""},
    )
    build_server(lazy, Settings(environ={ALLOW: "demo_fetch"}))  # valid: nothing imported
    with pytest.raises(ConfigError, match="'demo_fetsh'"):
        build_server(lazy, Settings(environ={ALLOW: "demo_fetsh"}))


def test_a_lazy_server_refuses_a_gated_only_allow_list_without_importing_its_tools() -> None:
    def explode() -> list[ToolDef]:
        raise AssertionError("the tool modules were imported to check an allow-list")

    lazy: ServerSpec[Any] = ServerSpec(
        name="sophia-lazy",
        key="demo",
        instructions="A lazy demo.",
        tools=LazyTools(explode),
        tool_names=("demo_search", "demo_fetch", "demo_launch"),
        write_tools={"demo_launch": ""},
    )
    with pytest.raises(ConfigError) as raised:
        build_server(lazy, Settings(environ={ALLOW: "demo_launch"}))
    assert f"Set {GATE}=1" in raised.value.agent_message()
    build_server(lazy, Settings(environ={ALLOW: "demo_launch", GATE: "1"}))
    build_server(lazy, Settings(environ={ALLOW: "demo_launch,demo_fetch"}))
    assert not lazy.tools.loaded  # type: ignore[attr-defined]


def test_a_lazy_server_must_declare_its_write_tools_with_its_tool_names() -> None:
    with pytest.raises(ValueError, match="declare write_tools"):
        ServerSpec(name="sophia-lazy", key="demo", instructions="x", tools=LazyTools(list), tool_names=("demo_a",))


def test_tool_names_in_reads_a_names_module() -> None:
    import types

    names = types.ModuleType("names")
    names.DEMO_SEARCH = "demo_search"  # type: ignore[attr-defined]
    names.DEMO_FETCH = "demo_fetch"  # type: ignore[attr-defined]
    names.DEMO_GATE = "memory"  # type: ignore[attr-defined]
    names.helper = "not a constant"  # type: ignore[attr-defined]
    assert tool_names_in(names, exclude=("memory",)) == ("demo_search", "demo_fetch")


def test_every_server_declares_its_allow_lists_as_settings() -> None:
    for server in registered_servers():
        spec = server.spec
        names = {s.name for s in spec.all_settings()}
        assert {tools_variable(spec.key), tools_exclude_variable(spec.key)} <= names, spec.name


def test_every_servers_declared_tool_names_are_its_tools() -> None:
    """A server that declares `tool_names` (to check allow-lists without importing its tools) keeps them true."""
    for server in registered_servers():
        spec = server.spec
        assert set(spec.known_tool_names()) == {t.name for t in spec.tools}, spec.name
        declared = spec.known_write_tools()
        assert declared == {t.name: spec.gate_of(t) for t in spec.tools if t.writes}, spec.name


@pytest.mark.parametrize("server", registered_servers(), ids=lambda s: s.spec.key)
async def test_each_real_server_honours_its_allow_list(server: Any) -> None:
    spec = server.spec
    first = next(t.name for t in spec.tools if not t.writes)
    assert await listed({tools_variable(spec.key): first}, spec) == {first}
    with pytest.raises(ConfigError, match=spec.tools[0].name):
        build_server(spec, Settings(environ={tools_variable(spec.key): "no_such_tool"}))


@pytest.mark.parametrize("server", registered_servers(), ids=lambda s: s.spec.key)
def test_each_real_server_refuses_an_allow_list_of_only_gated_tools(server: Any) -> None:
    spec = server.spec
    gated = next(t for t in spec.tools if t.writes)
    gate = write_gate_variable(spec.gate_of(gated))
    with pytest.raises(ConfigError) as raised:
        build_server(spec, Settings(environ={tools_variable(spec.key): gated.name}))
    assert f"Set {gate}=1" in raised.value.agent_message()
    build_server(spec, Settings(environ={tools_variable(spec.key): gated.name, gate: "1"}))
