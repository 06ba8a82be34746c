"""The secrets-sync workflow: it loads, runs weekly and by hand with OIDC, and runs a command our CLI accepts."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import sophia_cli.main as cli_main

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "sync-secrets-to-esc.yml"
# Found at import, before the test fixtures point HOME elsewhere; `go install` puts it in ~/go/bin.
ACTIONLINT = shutil.which("actionlint") or shutil.which("actionlint", path=os.path.expanduser("~/go/bin"))


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


def test_only_the_default_branch_can_run_it_in_a_protected_environment() -> None:
    """Every secret and a Pulumi token reach the job: a dispatch from another branch's code must not run it."""
    job = workflow()["jobs"]["sync"]
    guard = job["if"]
    assert "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)" in guard
    # Only `schedule` (always the default branch, and no `repository` in its event) may bypass the comparison.
    assert guard.replace("github.event_name == 'schedule' || ", "") == (
        "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
    )
    assert job["environment"] == "esc-sync"
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "repo:<owner>/<repo>:environment:esc-sync" in text  # how to restrict the Pulumi OIDC trust policy


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed")
def test_actionlint_accepts_it() -> None:
    assert ACTIONLINT is not None
    done = subprocess.run([ACTIONLINT, str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
