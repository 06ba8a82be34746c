"""One walk over every tool of every server: the conventions of PRODUCT.md, enforced."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mcp import Client

from sophia_ai_intelligence.server import SPEC as AI
from sophia_business_intelligence.server import SPEC as BI
from sophia_data_intelligence.server import SPEC as DATA
from sophia_infrastructure.server import SPEC as INFRA
from sophia_shared.server import ServerSpec, build_server, write_gate_variable
from sophia_shared.settings import Settings

SPECS: list[ServerSpec[Any]] = [BI, AI, DATA, INFRA]
NAME = re.compile(r"^[a-z][a-z0-9_]{2,40}$")
pytestmark = pytest.mark.anyio


def _all_gates_open() -> Settings:
    return Settings(environ={write_gate_variable(spec.key): "1" for spec in SPECS})


async def _tools(spec: ServerSpec[Any], settings: Settings) -> list[Any]:
    async with Client(build_server(spec, settings)) as client:
        return list((await client.list_tools()).tools)


def _walk(schema: Any, path: str = "$") -> list[str]:
    """Paths of every anyOf/oneOf/allOf inside a JSON schema."""
    found: list[str] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("anyOf", "oneOf"):
                found.append(f"{path}.{key}")
            found += _walk(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += _walk(value, f"{path}[{index}]")
    return found


async def test_every_tool_follows_the_suite_conventions() -> None:
    settings = _all_gates_open()
    seen: dict[str, str] = {}
    for spec in SPECS:
        tools = await _tools(spec, settings)
        assert len(tools) <= 20, f"{spec.name} lists {len(tools)} tools; clients cap the total"
        for tool in tools:
            where = f"{spec.name}/{tool.name}"
            assert NAME.match(tool.name), f"{where}: name must match {NAME.pattern}"
            assert tool.name not in seen, f"{where}: name also used by {seen.get(tool.name)}"
            seen[tool.name] = spec.name
            assert tool.description and len(tool.description) >= 40, f"{where}: needs a real description"
            properties = tool.input_schema.get("properties", {})
            for param, schema in properties.items():
                assert schema.get("description"), f"{where}: parameter {param} has no description"
            assert not _walk(tool.input_schema), f"{where}: anyOf/oneOf in input schema: {_walk(tool.input_schema)}"
            hints = tool.annotations
            assert hints is not None, f"{where}: no annotations"
            for hint in ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"):
                assert getattr(hints, hint) is not None, f"{where}: {hint} missing"
            assert tool.output_schema, f"{where}: must return structured content"
            if hints.read_only_hint:
                assert not hints.destructive_hint, f"{where}: read-only cannot be destructive"


async def test_write_tools_are_absent_unless_the_gate_is_on() -> None:
    closed = {t.name for t in await _tools(BI, Settings(environ={}))}
    opened = {t.name for t in await _tools(BI, Settings(environ={"SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE": "1"}))}
    assert "warehouse_execute" not in closed
    assert "warehouse_execute" in opened
    assert "warehouse_query" in closed
    writes = {t.name for t in BI.tools if t.writes}
    assert writes and not (writes & closed)


async def test_gate_needs_an_explicit_yes() -> None:
    for value in ("0", "", "no", "false"):
        names = {
            t.name for t in await _tools(BI, Settings(environ={"SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE": value}))
        }
        assert "warehouse_execute" not in names, value
