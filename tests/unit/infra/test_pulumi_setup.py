"""Finding the CLI, choosing the backend, reading engine events and the scale rule, without running the CLI
(a few tiny shell scripts stand in for broken or old binaries)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from sophia_infrastructure.pulumi.backend import resolve_backend
from sophia_infrastructure.pulumi.changes import EventLog, property_changes
from sophia_infrastructure.pulumi.cli import find_cli
from sophia_infrastructure.pulumi.engine import check_language_host, directory_project
from sophia_infrastructure.server import probe_pulumi
from sophia_infrastructure.settings import SETTINGS
from sophia_infrastructure.suite.topology import workload
from sophia_infrastructure.tools.stacks import scale_target
from sophia_shared.errors import ConfigError, InputError, NotConfigured, PolicyError
from sophia_shared.settings import Settings


def _settings(tmp_path: Path, **values: str) -> Settings:
    return Settings(environ={"SOPHIA_DATA_DIR": str(tmp_path / "data"), **values}, specs=SETTINGS)


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No CLI on PATH or in the build cache; the data dir under tmp_path."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("SOPHIA_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setenv("SOPHIA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the default PULUMI_HOME is ~/.pulumi
    return tmp_path


def test_missing_cli_names_the_build_script_and_the_installer(isolated: Path) -> None:
    with pytest.raises(NotConfigured) as caught:
        find_cli(_settings(isolated))
    text = caught.value.agent_message()
    assert "scripts/build-pulumi.sh" in text and "installer" in text and "SOPHIA_PULUMI_CLI" in text
    assert str(isolated / "tools" / "pulumi-v3.276.0" / "pulumi") in text
    with pytest.raises(NotConfigured) as probed:  # `sophia doctor` shows the server as off, with the hint
        probe_pulumi(_settings(isolated))
    assert "scripts/build-pulumi.sh" in probed.value.agent_message()


def test_a_cli_without_a_version_or_too_old_is_refused(isolated: Path) -> None:
    _script(isolated / "bin" / "pulumi", "echo ''")
    with pytest.raises(NotConfigured, match="did not report a version"):
        find_cli(_settings(isolated))
    old = _script(isolated / "old-pulumi", "echo v3.10.0")
    with pytest.raises(NotConfigured, match=r"v3\.10\.0; Sophia needs"):
        find_cli(_settings(isolated, SOPHIA_PULUMI_CLI=str(old)))


def test_the_setting_wins_over_path_and_the_version_is_read(isolated: Path) -> None:
    _script(isolated / "bin" / "pulumi", "echo v3.200.0")
    chosen = isolated / "mine"
    chosen.mkdir()
    _script(chosen / "pulumi", "echo v3.276.0")
    assert find_cli(_settings(isolated)).version == "3.200.0"
    found = find_cli(_settings(isolated, SOPHIA_PULUMI_CLI=str(chosen)))  # a directory holding `pulumi` works too
    assert (found.path, found.version) == (chosen / "pulumi", "3.276.0")


def test_zero_keys_means_a_local_backend_with_a_generated_passphrase(isolated: Path) -> None:
    backend = resolve_backend(_settings(isolated))
    root = isolated / "data" / "infra" / "pulumi"
    assert (backend.kind, backend.url) == ("local", f"file://{root / 'backend'}")
    passphrase = Path(backend.env["PULUMI_CONFIG_PASSPHRASE_FILE"])
    assert passphrase.parent == root and stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert len(passphrase.read_text()) >= 32
    assert resolve_backend(_settings(isolated)).env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(passphrase)  # kept
    assert backend.env["PULUMI_SKIP_UPDATE_CHECK"] == "true"
    assert "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION" not in backend.env  # real users get plugins downloaded
    offline = resolve_backend(_settings(isolated, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true"))
    assert offline.env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert "generated" in backend.describe() and passphrase.read_text() not in backend.describe()


def test_backend_choice_follows_the_settings(isolated: Path) -> None:
    token = "pul-0123456789abcdef"
    cloud = resolve_backend(_settings(isolated, PULUMI_ACCESS_TOKEN=token))
    assert (cloud.kind, cloud.url, cloud.env["PULUMI_ACCESS_TOKEN"]) == ("cloud", "https://api.pulumi.com", token)
    assert token not in cloud.describe() and token not in repr(cloud)
    s3 = resolve_backend(_settings(isolated, PULUMI_BACKEND_URL="s3://bucket/state", PULUMI_CONFIG_PASSPHRASE="pw"))
    assert (s3.kind, s3.url, s3.env["PULUMI_CONFIG_PASSPHRASE"]) == ("self-managed", "s3://bucket/state", "pw")
    with pytest.raises(ConfigError, match="PULUMI_ACCESS_TOKEN is not set"):
        resolve_backend(_settings(isolated, PULUMI_BACKEND_URL="https://pulumi.example.com"))
    with pytest.raises(ConfigError, match="not a backend Sophia knows"):
        resolve_backend(_settings(isolated, PULUMI_BACKEND_URL="ftp://state"))


@pytest.mark.parametrize(
    ("name", "current", "replicas", "factor", "expected"),
    [
        ("data", 3, 1, 0, 1),  # the floor of a workload without an autoscaler
        ("data", 3, 5, 0, 5),
        ("data", 3, 0, 0.2, 1),
        ("gateway", 3, 3, 0, 3),  # the HPA's minimum
        ("gateway", 3, 10, 0, 10),  # and maximum
        ("gateway", 4, 0, 2.5, 10),
    ],
)
def test_scale_target_inside_the_bounds(name: str, current: int, replicas: int, factor: float, expected: int) -> None:
    assert scale_target(workload(name), current, replicas=replicas, factor=factor) == expected


@pytest.mark.parametrize(("name", "replicas"), [("gateway", 2), ("gateway", 11)])
def test_scale_target_refuses_one_past_the_bounds(name: str, replicas: int) -> None:
    with pytest.raises(PolicyError, match="3–10"):
        scale_target(workload(name), 3, replicas=replicas)


def test_scale_target_needs_exactly_one_of_replicas_or_factor() -> None:
    for replicas, factor in ((0, 0), (4, 1.5)):
        with pytest.raises(InputError, match="exactly one"):
            scale_target(workload("data"), 3, replicas=replicas, factor=factor)


def _step(op: str, urn: str, old: dict[str, object] | None, new: dict[str, object] | None) -> SimpleNamespace:
    meta = SimpleNamespace(
        op=op,
        urn=urn,
        type="kubernetes:apps/v1:Deployment",
        old=SimpleNamespace(inputs=old) if old is not None else None,
        new=SimpleNamespace(inputs=new) if new is not None else None,
        diffs=None,
        detailed_diff=None,
    )
    return SimpleNamespace(resource_pre_event=SimpleNamespace(metadata=meta))


def test_events_become_one_change_per_resource_with_the_property_diff() -> None:
    urn = "urn:pulumi:sophia-dev::sophia-ai::kubernetes:apps/v1:Deployment::sophia-data"
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2"}
    old = {"spec": {"replicas": 3}, "token": secret, "__provider": "x" * 9000}
    new = {"spec": {"replicas": 5}, "token": secret, "__provider": "y" * 9000}
    progress: list[tuple[int, str]] = []
    log = EventLog("preview", "sophia-dev", lambda done, message: progress.append((done, message)))
    log(_step("update", urn, old, new))
    replaced = urn.replace("sophia-data", "sophia-bi")
    for op in ("create-replacement", "replace", "delete-replaced"):
        log(_step(op, replaced, {"a": 1}, {"a": 2}))
    log(_step("same", urn.replace("sophia-data", "sophia-ai"), {"a": 1}, {"a": 1}))
    changes = {c.name: c for c in log.changes()}
    assert set(changes) == {"sophia-data", "sophia-bi"}
    (diff,) = changes["sophia-data"].properties
    assert (diff.path, diff.old, diff.new) == ("spec", '{"replicas": 3}', '{"replicas": 5}')
    assert changes["sophia-bi"].op == "replace"
    assert log.counts() == {"update": 1, "replace": 1, "same": 1}
    assert progress[0] == (0, "preview sophia-dev: update sophia-data")


def test_detailed_diff_paths_and_secrets_are_masked() -> None:
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2"}
    meta = SimpleNamespace(
        old=SimpleNamespace(inputs={"spec": {"replicas": 3}, "data": secret}),
        new=SimpleNamespace(inputs={"spec": {"replicas": 5}, "data": {**secret, "value": "hunter3"}}),
        detailed_diff={
            "spec.replicas": SimpleNamespace(diff_kind=SimpleNamespace(value="update")),
            "data": SimpleNamespace(diff_kind=SimpleNamespace(value="update")),
        },
        diffs=["spec", "data"],
    )
    found = {c.path: (c.old, c.new) for c in property_changes(meta)}
    assert found == {"spec.replicas": ("3", "5"), "data": ("[secret]", "[secret]")}


def test_a_project_directory_needs_a_manifest_and_its_language_host(isolated: Path) -> None:
    cli = SimpleNamespace(directory=isolated / "bin", has_plugin=lambda name: False)
    with pytest.raises(InputError, match=r"no Pulumi\.yaml"):
        directory_project(cli, str(isolated))  # type: ignore[arg-type]
    (isolated / "Pulumi.yaml").write_text("name: shop\nruntime:\n  name: python\n")
    # Reading the project needs no language host; running its program does.
    project = directory_project(cli, str(isolated))  # type: ignore[arg-type]
    assert (project.name, project.work_dir, project.program, project.runtime) == ("shop", isolated, None, "python")
    with pytest.raises(NotConfigured) as caught:
        check_language_host(cli, project)  # type: ignore[arg-type]
    assert "pulumi-language-python" in caught.value.message
    found = SimpleNamespace(directory=isolated / "bin", has_plugin=lambda name: name == "pulumi-language-python")
    check_language_host(found, project)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="relative path"):
        directory_project(cli, "shop")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="does not exist"):
        directory_project(cli, str(isolated / "gone"))  # type: ignore[arg-type]


def test_no_secret_environment_leaks_from_the_probe(isolated: Path) -> None:
    cli = _script(isolated / "bin" / "pulumi", "echo v3.276.0")
    report = probe_pulumi(_settings(isolated, PULUMI_CONFIG_PASSPHRASE="correct-horse-battery"))
    assert f"v3.276.0 at {cli}" in report and "self-managed" not in report and "embedded local backend" in report
    assert "correct-horse-battery" not in report and os.environ.get("PULUMI_CONFIG_PASSPHRASE") is None
