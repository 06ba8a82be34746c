"""The real Pulumi CLI for tests, a hermetic backend, and an inline program whose resources are local files.

`pulumi_cli` finds the CLI built by scripts/build-pulumi.sh (SOPHIA_PULUMI_CLI, PATH, or the build cache) and
skips with the reason when there is none, unless SOPHIA_REQUIRE_PULUMI=1 (CI), where a missing CLI fails.
The dynamic provider below runs in `pulumi-resource-pulumi-python`, a separate process that imports this
module by name, so the environment it gets puts the repository on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sophia_shared.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI_VERSION = "3.276.0"
PASSPHRASE = "test-passphrase-not-a-secret-elsewhere"
TEST_PROJECT = "sophia-test"


def _find_cli() -> Path | None:
    configured = os.environ.get("SOPHIA_PULUMI_CLI", "")
    candidates = [Path(configured)] if configured else []
    on_path = shutil.which("pulumi")
    if on_path:
        candidates.append(Path(on_path))
    tools = Path(os.environ.get("SOPHIA_TOOLS_DIR") or Path.home() / ".cache" / "sophia" / "tools")
    candidates.append(tools / f"pulumi-v{CLI_VERSION}" / "pulumi")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


# Resolved at import, before the suite's fixtures replace HOME and clear SOPHIA_* variables.
FOUND_CLI = _find_cli()
REQUIRE_PULUMI = os.environ.get("SOPHIA_REQUIRE_PULUMI") == "1"
KUBERNETES_PLUGIN_OVERRIDE = os.environ.get("SOPHIA_PULUMI_KUBERNETES_PLUGIN", "")


def missing_tool(reason: str) -> None:
    """Skip with the reason, or fail under SOPHIA_REQUIRE_PULUMI=1 (CI), where the tools must be there."""
    if REQUIRE_PULUMI:
        pytest.fail(f"SOPHIA_REQUIRE_PULUMI=1 but {reason}")
    pytest.skip(f"{reason}; SOPHIA_REQUIRE_PULUMI=1 turns this skip into a failure")


@pytest.fixture(scope="session")
def pulumi_cli() -> Path:
    if FOUND_CLI is None:
        missing_tool("the Pulumi CLI is not built: run scripts/build-pulumi.sh (or set SOPHIA_PULUMI_CLI)")
    assert FOUND_CLI is not None
    return FOUND_CLI


def pulumi_environ(tmp_path: Path, cli: Path, **extra: str) -> dict[str, str]:
    """Settings for a hermetic run: a temporary file:// backend, PULUMI_HOME and data dir."""
    backend = tmp_path / "backend"
    backend.mkdir(exist_ok=True)
    return {
        "SOPHIA_DATA_DIR": str(tmp_path / "data"),
        "SOPHIA_PULUMI_CLI": str(cli),
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
        **extra,
    }


@pytest.fixture
def pulumi_env(tmp_path: Path, pulumi_cli: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = pulumi_environ(tmp_path, pulumi_cli)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # The provider process imports this module; the CLI passes its environment on.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    yield env


def settings_of(env: dict[str, str]) -> Settings:
    from sophia_infrastructure.settings import SETTINGS

    return Settings(environ=env, specs=SETTINGS)


# --- a dynamic provider whose resources are files ------------------------------------------------

try:
    from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult
except ImportError:  # pragma: no cover - pulumi is a dependency of the infrastructure package
    ResourceProvider = object  # type: ignore[misc,assignment]


class FileProvider(ResourceProvider):  # type: ignore[misc]
    """A file per resource: `path` change replaces it, `content` change updates it in place. A resource whose
    `fail` prop is true fails to be written, as a real apply can (the preview still succeeds)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        _fail_if_asked(props)
        path = Path(props["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(props["content"]), encoding="utf-8")
        _journal(path, "create")
        delay = float(props.get("delay") or 0)
        if delay:
            import time

            time.sleep(delay)
        return CreateResult(id_=str(path), outs=dict(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("path", "content") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=["path"] if "path" in changed else [])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _fail_if_asked(news)
        path = Path(news["path"])
        path.write_text(str(news["content"]), encoding="utf-8")
        _journal(path, "update")
        return UpdateResult(outs=dict(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        path = Path(props["path"])
        path.unlink(missing_ok=True)
        _journal(path, "delete")


def _fail_if_asked(props: dict[str, Any]) -> None:
    if props.get("fail"):
        raise RuntimeError(f"refused to write {Path(props['path']).name}: the test asked this write to fail")


def _journal(path: Path, op: str) -> None:
    """Every provider call appends to a journal beside the files, so tests see what really ran."""
    with (path.parent / "journal.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps({"op": op, "file": path.name}) + "\n")


def journal(directory: Path) -> list[tuple[str, str]]:
    path = directory / "journal.jsonl"
    if not path.exists():
        return []
    return [(row["op"], row["file"]) for row in map(json.loads, path.read_text().splitlines())]


def files_program() -> None:
    """An inline program: `count` files named by `prefix` in `dir`, content from `content` (secret `token`
    feeds nothing visible), and outputs listing them."""
    import pulumi
    from pulumi.dynamic import Resource

    class File(Resource):
        def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
            super().__init__(FileProvider(), name, props, opts)

    config = pulumi.Config()
    directory = Path(config.require("dir"))
    count = config.get_int("count") or 1
    prefix = config.get("prefix") or "f"
    content = config.get("content") or "hello"
    delay = config.get_float("delay") or 0
    made = [
        File(f"file-{i}", {"path": str(directory / f"{prefix}{i}.txt"), "content": content, "delay": delay})
        for i in range(count)
    ]
    pulumi.export("files", [f"{prefix}{i}.txt" for i in range(len(made))])
    pulumi.export("count", count)
    token = config.get_secret("token")
    if token is not None:
        pulumi.export("token", token)


def workloads_program() -> None:
    """A stand-in for the suite's program with the same config keys: one file per workload whose content holds
    its replica count (`{workload}_replicas`, the topology's default when unset), created one after another
    (each waits `delay` seconds) so an update lasts long enough to be cancelled. A workload whose count equals
    `fail_replicas` fails to be written, so an up can be made to fail."""
    import pulumi
    from pulumi.dynamic import Resource

    from sophia_infrastructure.suite.topology import WORKLOADS

    class File(Resource):
        def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
            super().__init__(FileProvider(), name, props, opts)

    config = pulumi.Config()
    directory = Path(config.require("dir"))
    delay = config.get_float("delay") or 0
    fail_at = config.get_int("fail_replicas")
    previous: File | None = None
    for item in WORKLOADS.values():
        replicas = config.get_int(item.config_key) or item.replicas
        props = {
            "path": str(directory / f"{item.key}.yaml"),
            "content": f"replicas: {replicas}",
            "delay": delay,
            "fail": replicas == fail_at,
        }
        previous = File(item.key, props, pulumi.ResourceOptions(depends_on=[previous] if previous else []))
        pulumi.export(item.config_key, replicas)
    secret = config.get_secret("api_token")
    if secret is not None:
        pulumi.export("api_token", secret)


def workloads_suite(files: Path) -> Any:
    """A `suite` factory for InfraState: the sophia-ai project and its stack names, with `workloads_program`."""
    from sophia_infrastructure.pulumi.engine import Project, StackEngine
    from sophia_infrastructure.suite.topology import PROJECT, STACK_PREFIX

    def make(_engine: StackEngine, data_dir: Path) -> Project:
        return Project(
            name=PROJECT,
            work_dir=data_dir / "infra" / "pulumi" / PROJECT,
            program=workloads_program,
            stack_prefix=STACK_PREFIX,
            defaults=lambda _stack: {"dir": str(files)},
        )

    return make


# --- an in-process MCP client on the infrastructure server with the stand-in suite ----------------


def stand_in_client(env: dict[str, str], files: Path, *, writes: bool = True, states: list[Any] | None = None) -> Any:
    """An in-process `mcp.Client` on the real server spec, its suite program swapped for the stand-in."""
    from mcp import Client

    from sophia_infrastructure.server import SPEC
    from sophia_infrastructure.state import InfraState
    from sophia_shared.server import ServerSpec, build_server

    spec = ServerSpec(**{**SPEC.__dict__})

    def make(settings: Any) -> InfraState:
        state = InfraState(settings, suite=workloads_suite(files))
        if states is not None:
            states.append(state)
        return state

    spec.make_state = make
    environ = {**env, "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE": "1" if writes else "0"}
    return Client(build_server(spec, settings_of(environ)))


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


async def call_ok(client: Any, tool: str, args: dict[str, Any], **kwargs: Any) -> Any:
    """Call a tool and assert it succeeded (the failure message is the tool's text)."""
    result = await client.call_tool(tool, args, **kwargs)
    assert not result.is_error, text_of(result)
    return result
