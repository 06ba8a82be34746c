"""The engine without MCP against the real CLI: a replacement really replaces (new file made, old one deleted),
and the diff of a preview with a config override names the changed properties, then restores the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from sophia_infrastructure.pulumi.backend import resolve_backend
from sophia_infrastructure.pulumi.cli import find_cli
from sophia_infrastructure.pulumi.engine import Project, StackEngine
from tests import infra_pulumi_support as support
from tests.infra_pulumi_support import TEST_PROJECT, files_program, journal, settings_of

pulumi_cli, pulumi_env = support.pulumi_cli, support.pulumi_env  # fixtures

pytestmark = pytest.mark.slow


def test_replace_update_and_refresh_against_real_files(pulumi_env: dict[str, str], tmp_path: Path) -> None:
    settings = settings_of(pulumi_env)
    engine = StackEngine(find_cli(settings), resolve_backend(settings))
    files = tmp_path / "files"
    project = Project(TEST_PROJECT, tmp_path / "project", files_program, defaults=lambda _: {"dir": str(files)})
    engine.up(project, "dev")
    assert journal(files) == [("create", "f0.txt")]

    plan = engine.preview(project, "dev", config={"prefix": "g", "content": "bye"})
    (change,) = plan.changes
    assert change.op == "replace" and plan.counts == {"replace": 1}
    assert {(p.path, p.old, p.new) for p in change.properties} >= {("content", "hello", "bye")}
    assert engine.config(project, "dev") == {f"{TEST_PROJECT}:dir": str(files)}  # the override was undone

    engine.set_config(project, "dev", "prefix", "g", secret=False)
    done = engine.up(project, "dev")
    assert done.counts == {"replace": 1} and done.outputs["files"] == ["g0.txt"]
    assert journal(files)[1:] == [("create", "g0.txt"), ("delete", "f0.txt")]
    assert [p.name for p in files.glob("*.txt")] == ["g0.txt"]

    refreshed = engine.refresh(project, "dev")
    assert refreshed.operation == "refresh" and not refreshed.changes
    assert [h.kind for h in engine.history(project, "dev")] == ["refresh", "update", "update"]


def test_the_program_servers_traceback_becomes_one_warning_line(
    pulumi_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    settings = settings_of(pulumi_env)
    StackEngine(find_cli(settings), resolve_backend(settings))
    try:
        raise RuntimeError("failed to connect to all addresses\nsecond line")
    except RuntimeError:
        with caplog.at_level(logging.WARNING, logger="grpc._server"):
            logging.getLogger("grpc._server").exception("Exception calling application: %s", "x")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "RuntimeError failed to connect to all addresses" in record.getMessage()
    assert "second line" not in caplog.text and "Traceback" not in caplog.text
