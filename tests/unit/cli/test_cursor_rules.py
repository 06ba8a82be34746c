"""Cursor rules (cursor/rules/*.mdc): one per server, valid MDC front matter, only real tool names."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from sophia_shared.registry import registered_servers
from tests.conftest import REPO_ROOT

RULES = REPO_ROOT / "cursor" / "rules"
SPECS: list[Any] = [s.spec for s in registered_servers()]
SEED_COMMANDS = (
    "Scale Sophia AI infrastructure for high business intelligence workload",
    "Optimize costs for current AI usage patterns across all services",
    "Generate business leads for enterprise software companies using data intelligence",
    "Analyze Sophia AI performance metrics and provide optimization recommendations",
    "Deploy new Pinecone index for customer segmentation analysis",
)


def front_matter(text: str) -> tuple[dict[str, str], str]:
    """Cursor's MDC: a `---` block of `key: value` lines, then the markdown body."""
    match = re.match(r"\A---\n(.*?)\n---\n(.*)\Z", text, re.DOTALL)
    assert match, "an .mdc rule starts with a --- front-matter block"
    fields = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        assert sep, f"front-matter line without a colon: {line!r}"
        fields[key.strip()] = value.strip()
    return fields, match.group(2)


def rule_of(spec: Any) -> Path:
    return RULES / f"{spec.name}.mdc"


def test_every_server_has_a_rule_and_every_rule_a_server() -> None:
    assert {p.name for p in RULES.glob("*.mdc")} == {f"{s.name}.mdc" for s in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_rule_front_matter_lets_the_agent_pick_it(spec: Any) -> None:
    fields, body = front_matter(rule_of(spec).read_text(encoding="utf-8"))
    assert set(fields) == {"description", "globs", "alwaysApply"}
    assert fields["alwaysApply"] in ("true", "false")
    assert len(fields["description"]) >= 40, "the agent decides from the description whether to read the rule"
    assert spec.name in fields["description"]
    assert body.lstrip().startswith(f"# {spec.name}")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_rule_teaches_every_tool_of_its_server(spec: Any) -> None:
    text = rule_of(spec).read_text(encoding="utf-8")
    missing = [t.name for t in spec.tools if f"`{t.name}`" not in text]
    assert not missing, f"{rule_of(spec).name} does not mention: {missing}"
    if spec.has_write_tools:
        assert spec.write_gate in text, "the rule names the write gate the user must set"


def test_every_tool_shaped_name_in_the_rules_is_registered() -> None:
    registered = {t.name for spec in SPECS for t in spec.tools}
    parameters = {p for spec in SPECS for t in spec.tools for p in inspect.signature(t.fn).parameters}
    prefixes = sorted({name.split("_", 1)[0] + "_" for name in registered})
    checked = 0
    for path in sorted(RULES.glob("*.mdc")):
        text = path.read_text(encoding="utf-8")
        mentioned = {m for p in prefixes for m in re.findall(rf"\b{p}[a-z0-9_]+\b", text)}
        unknown = sorted(mentioned - registered - parameters)
        assert not unknown, f"{path.name} names tools that do not exist: {unknown}"
        checked += len(mentioned)
    assert checked >= len(registered), "a green run must mean names were checked"


def test_the_seed_commands_are_worked_examples() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in RULES.glob("*.mdc"))
    missing = [c for c in SEED_COMMANDS if f'"{c}"' not in text]
    assert not missing, f"seed commands without a worked example: {missing}"
