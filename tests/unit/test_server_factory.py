"""The server factory's write gate: read from local sources only, so listing tools never waits on ESC."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from sophia_shared.errors import ConfigError
from sophia_shared.gate import write_gate_variable
from sophia_shared.server import ServerSpec, ToolResult, build_server, sophia_tool
from sophia_shared.settings import Settings, SourceValues

pytestmark = pytest.mark.anyio

GATE = write_gate_variable("demo")
ESC_ON = {"SOPHIA_ESC_ENV": "acme/sophia/dev", "PULUMI_ACCESS_TOKEN": "pul-factory-token-abcdef"}


class Echo(ToolResult):
    text: str


@sophia_tool("demo_read", title="Read", read_only=True)
async def demo_read(text: str) -> Echo:
    """Echo the text back; reads nothing."""
    return Echo(text=text)


@sophia_tool("demo_write", title="Write", read_only=False, writes=True)
async def demo_write(text: str) -> Echo:
    """Pretend to write the text; only listed when the write gate is on."""
    return Echo(text=text)


SPEC: ServerSpec[Any] = ServerSpec(
    name="sophia-demo", key="demo", instructions="A demo server.", tools=[demo_read, demo_write]
)


@dataclass
class UnreachableEsc:
    """An ESC opener standing in for an unreachable Pulumi: it counts calls and fails."""

    values: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    def __call__(self, ref: str, token: str, backend_url: str | None) -> SourceValues:
        self.calls += 1
        if self.values:
            return SourceValues(f"esc:{ref}", dict(self.values))
        raise ConfigError("Pulumi ESC unreachable at https://api.pulumi.com: timed out after 12 s.")


def make_settings(
    tmp_path: Path, environ: dict[str, str], esc: UnreachableEsc, *, esc_file: str = "", dotenv: str = ""
) -> Settings:
    (tmp_path / "esc.yaml").write_text(esc_file, encoding="utf-8")
    (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    paths = {"SOPHIA_ESC_FILE": str(tmp_path / "esc.yaml"), "SOPHIA_DOTENV": str(tmp_path / ".env")}
    return Settings({**paths, **ESC_ON, **environ}, cwd=tmp_path, esc_opener=esc)


async def listed(settings: Settings) -> set[str]:
    async with Client(build_server(SPEC, settings)) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def test_listing_tools_never_opens_esc(tmp_path: Path) -> None:
    esc = UnreachableEsc()
    settings = make_settings(tmp_path, {}, esc)

    assert await listed(settings) == {"demo_read"}
    assert esc.calls == 0


@pytest.mark.parametrize(
    ("environ", "esc_file", "dotenv"),
    [
        ({GATE: "1"}, "", ""),
        ({}, f"values:\n  environmentVariables:\n    {GATE}: 'true'\n", ""),
        ({}, "", f"{GATE}=yes\n"),
    ],
    ids=["env", "local-esc-file", "dotenv"],
)
async def test_write_gate_opens_from_each_local_source_without_esc(
    tmp_path: Path, environ: dict[str, str], esc_file: str, dotenv: str
) -> None:
    esc = UnreachableEsc()
    settings = make_settings(tmp_path, environ, esc, esc_file=esc_file, dotenv=dotenv)

    assert await listed(settings) == {"demo_read", "demo_write"}
    assert esc.calls == 0


async def test_write_gate_in_remote_esc_alone_does_not_open_writes(tmp_path: Path) -> None:
    esc = UnreachableEsc(values={GATE: "1"})
    settings = make_settings(tmp_path, {}, esc)

    assert await listed(settings) == {"demo_read"}
    assert esc.calls == 0


async def test_write_gate_set_to_false_keeps_writes_off(tmp_path: Path) -> None:
    esc = UnreachableEsc()
    settings = make_settings(tmp_path, {GATE: "0"}, esc, dotenv=f"{GATE}=1\n")

    assert await listed(settings) == {"demo_read"}


class Huge(ToolResult):
    blob: str


@sophia_tool("demo_huge", title="Huge", read_only=True)
async def demo_huge(size: int) -> Huge:
    """Return a blob of the given size, as a tool that forgot to page would."""
    return Huge(blob="x" * size)


async def test_a_result_above_the_ceiling_is_refused_and_names_the_tool() -> None:
    from sophia_shared.output import RESULT_CEILING_BYTES

    spec: ServerSpec[Any] = ServerSpec(name="sophia-demo", key="demo", instructions="A demo.", tools=[demo_huge])
    async with Client(build_server(spec, Settings(environ={}))) as client:
        small = await client.call_tool("demo_huge", {"size": 1000})
        huge = await client.call_tool("demo_huge", {"size": RESULT_CEILING_BYTES})
    assert not small.is_error
    assert huge.is_error
    text = huge.content[0].text
    assert "demo_huge produced a result of" in text and "ceiling" in text
    assert len(text) < 2_000


def test_require_write_refuses_unless_the_gate_is_on() -> None:
    from sophia_shared.errors import PolicyError
    from sophia_shared.gate import require_write

    with pytest.raises(PolicyError, match=GATE):
        require_write(Settings(environ={}), "demo", "launch an instance")
    with pytest.raises(PolicyError):
        require_write(Settings(environ={GATE: "no"}), "demo", "launch an instance")
    require_write(Settings(environ={GATE: "1"}), "demo", "launch an instance")
