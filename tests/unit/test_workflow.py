"""The secrets-sync workflow: it loads, runs weekly and by hand with OIDC, and runs a command our CLI accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import sophia_cli.main as cli_main

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "sync-secrets-to-esc.yml"


def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def test_it_runs_weekly_and_by_hand_with_oidc() -> None:
    data = workflow()
    triggers = data[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["schedule"][0]["cron"].split()[4] == "1"
    assert "workflow_dispatch" in triggers
    assert data["permissions"]["id-token"] == "write"
    steps = data["jobs"]["sync"]["steps"]
    assert any(str(step.get("uses", "")).startswith("pulumi/auth-actions@") for step in steps)


def test_the_command_it_runs_exists_with_those_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    step = next(s for s in workflow()["jobs"]["sync"]["steps"] if "sophia secrets export" in s.get("run", ""))
    line = next(line for line in step["run"].splitlines() if "sophia secrets export" in line)
    words = shlex.split(line.replace('"$ESC_ENVIRONMENT"', "acme/sophia/prod"))
    words = words[: words.index("<")]
    assert words[:3] == ["uv", "run", "sophia"]
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", tuple(dict.fromkeys((*cli_main.COMMAND_MODULES, "secrets"))))
    args = cli_main._parser().parse_args(words[3:])
    assert (args.secrets_command, args.from_json, args.apply, args.env) == ("export", "-", True, "acme/sophia/prod")
    # Secrets reach the command through a file on stdin, never its arguments; nothing echoes them.
    assert step["env"]["ALL_SECRETS"] == "${{ toJSON(secrets) }}"
    assert "ALL_SECRETS" not in line
    assert not any(word in step["run"] for word in ("echo $ALL_SECRETS", "set -x", 'cat "$secrets_file"'))


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not installed")
def test_actionlint_accepts_it() -> None:
    done = subprocess.run(["actionlint", str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
