"""`sophia bench`, infrastructure part: the server's cold start against a bare server, and a Pulumi preview
through our `stack_preview` tool against the same preview run directly with the Automation API.

Both previews use one inline program (a few dynamic-provider resources that are local files) on a temporary
file:// backend, so they need only the Pulumi CLI; without it the figures are skipped with the install hint.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pulumi.dynamic import CreateResult, ResourceProvider


class BenchFileProvider(ResourceProvider):
    """A resource that is a local file (the provider process imports this module by name)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        Path(props["path"]).write_text(str(props["content"]), encoding="utf-8")
        return CreateResult(id_=str(props["path"]), outs=dict(props))


def bench_program() -> None:
    import pulumi
    from pulumi.dynamic import Resource

    class BenchFile(Resource):
        def __init__(self, name: str, props: dict[str, Any]) -> None:
            super().__init__(BenchFileProvider(), name, props)

    directory = Path(pulumi.Config().require("dir"))
    for index in range(5):
        BenchFile(f"file-{index}", {"path": str(directory / f"{index}.txt"), "content": "x"})


@contextmanager
def _hermetic_environment(root: Path) -> Iterator[dict[str, str]]:
    """A temporary backend, PULUMI_HOME and data dir, set in os.environ for the duration."""
    values = {
        "SOPHIA_DATA_DIR": str(root / "data"),
        "PULUMI_BACKEND_URL": f"file://{root / 'backend'}",
        "PULUMI_CONFIG_PASSPHRASE": "bench-only",
        "PULUMI_HOME": str(root / "home"),
    }
    (root / "backend").mkdir(parents=True)
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def preview_ratio(runs: int = 3) -> dict[str, float]:
    """Median seconds of a preview through `stack_preview` (in-process MCP client) and directly."""
    import anyio
    from mcp import Client
    from pulumi import automation as auto

    from sophia_infrastructure.pulumi.engine import Project, StackEngine
    from sophia_infrastructure.server import SPEC
    from sophia_infrastructure.settings import SETTINGS
    from sophia_infrastructure.state import InfraState
    from sophia_shared.server import ServerSpec, build_server
    from sophia_shared.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="sophia-bench-pulumi-"))
    with _hermetic_environment(root):
        files = root / "files"
        files.mkdir()
        settings = Settings(specs=SETTINGS)

        def suite(_engine: StackEngine, data_dir: Path) -> Project:
            return Project(
                "sophia-bench",
                data_dir / "bench",
                bench_program,
                stack_prefix="",
                defaults=lambda _: {"dir": str(files)},
            )

        spec = ServerSpec(**{**SPEC.__dict__})
        spec.make_state = lambda s: InfraState(s, suite=suite)
        state = InfraState(settings, suite=suite)
        engine = state.stack_engine()
        project = state.project()
        engine.set_config(project, "tool", "dir", str(files), secret=False)  # both stacks exist before timing

        async def through_tool() -> float:
            async with Client(build_server(spec, settings)) as client:
                await client.call_tool("stack_preview", {"stack": "tool"})  # warm: imports, workspace
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    result = await client.call_tool("stack_preview", {"stack": "tool"})
                    times.append(time.perf_counter() - started)
                    if result.is_error:
                        raise RuntimeError(str(result.content))
                return statistics.median(times)

        tool_seconds = anyio.run(through_tool)
        (root / "direct").mkdir()
        direct_stack = auto.create_or_select_stack(
            "direct",
            project_name="sophia-bench",
            program=bench_program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(root / "direct"),
                env_vars=dict(engine.backend.env),
                pulumi_command=engine._pulumi_command(),
                project_settings=auto.ProjectSettings(name="sophia-bench", runtime="python"),
            ),
        )
        direct_stack.set_config("dir", auto.ConfigValue(str(files)))
        direct_stack.preview(on_event=lambda _: None)  # warm
        direct_seconds = _median(lambda: direct_stack.preview(on_event=lambda _: None), runs)
    return {"tool_s": tool_seconds, "direct_s": direct_seconds, "ratio": tool_seconds / direct_seconds}


def infra_figures(child: Any, env: dict[str, str], runs: int = 7) -> list[str]:
    """Lines for `sophia bench`: cold start vs bare, and the preview ratio (skipped without the CLI)."""
    from .bench import _cold_start

    bare = [sys.executable, "-m", "sophia_cli.bench_servers", "bare"]
    infra = [sys.executable, "-m", "sophia_infrastructure.server"]
    _cold_start(bare, env), _cold_start(infra, env)
    bare_times, infra_times = [], []
    for _ in range(runs):
        bare_times.append(_cold_start(bare, env))
        infra_times.append(_cold_start(infra, env))
    b, i = statistics.median(bare_times), statistics.median(infra_times)
    lines = [
        f"cold start infrastructure          bare {b * 1000:7.1f} ms   infra {i * 1000:7.1f} ms   "
        f"ratio {i / b:.2f}  (target ≤ 1.15; pulumi is imported on first stack call)"
    ]
    from sophia_infrastructure.pulumi.cli import find_cli
    from sophia_shared.errors import SophiaError
    from sophia_shared.settings import Settings

    try:
        find_cli(Settings())
    except SophiaError as exc:
        return [*lines, f"pulumi preview ratio               skipped: {exc.message.split('. ')[0]}"]
    figures = preview_ratio()
    lines.append(
        f"pulumi preview (5 resources)      direct {figures['direct_s'] * 1000:7.0f} ms   stack_preview "
        f"{figures['tool_s'] * 1000:7.0f} ms   ratio {figures['ratio']:.2f}  (Automation API vs our tool)"
    )
    return lines


if __name__ == "__main__":
    for line in infra_figures(None, {**os.environ, "SOPHIA_LOG_LEVEL": "WARNING"}):
        print(line)
