"""Drives each Sophia image with a real MCP client over `docker run -i --rm` (scripts/docker-ci.sh runs it).

Per server: initialize, tools/list, real tool calls (BI on a mounted demo warehouse, offline; AI offline;
data and infrastructure against the vendor fakes on 127.0.0.1), the process is not root, SIGTERM ends it
within a second. Per image: no build tools left, OCI labels, no canary secret in any layer, the config or
`docker history`. Then image sizes and cold start (`docker run` → initialize) against the host.

    uv run --frozen --dev python -m tests.docker.smoke --docker-host unix:///tmp/sophia-docker/docker.sock \
        --work /tmp/sophia-docker/smoke --build-canary … --run-canary … business-intelligence …
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

REPO_ROOT = Path(__file__).resolve().parents[2]
SIGTERM_BUDGET_SECONDS = 1.0
COLD_START_RUNS = 3
SCAN_CHUNK = 1 << 22
# The servers with a scenario below; tests/docker/test_packaging.py keeps it equal to the registered ones.
SCENARIOS = ("business-intelligence", "ai-intelligence", "data-intelligence", "infrastructure")


class SmokeFailure(AssertionError):
    """A check on an image failed; the message says which and why."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


@dataclass(frozen=True)
class Docker:
    """The docker CLI pointed at the CI engine (the stdio client passes no DOCKER_HOST to its child)."""

    cli: str
    host: str

    def argv(self, *args: str) -> list[str]:
        return [self.cli, "-H", self.host, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise SmokeFailure(f"docker {' '.join(args[:3])} failed ({done.returncode}): {done.stderr.strip()[:500]}")
        return done


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call_ok(client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    result = await client.call_tool(tool, arguments)
    check(not result.is_error, f"{tool} answered an error: {text_of(result)[:400]}")
    return result


Exercise = Callable[[Client], Awaitable[str]]


@dataclass
class Case:
    """One server's scenario: how its container runs and the real calls it must answer."""

    server: str
    expected_tools: set[str]
    exercise: Exercise
    network: str = "none"  # "none" proves the calls need no network
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        return f"sophia-{self.server}"


@dataclass
class Outcome:
    server: str
    summary: str = ""
    sigterm_seconds: float = 0.0
    exit_code: str = ""
    uid: str = ""
    size_bytes: int = 0
    docker_starts: list[float] = field(default_factory=list)
    host_starts: list[float] = field(default_factory=list)


# ---- the scenarios -------------------------------------------------------------------------------------


def business_intelligence_case(work: Path, uid: int, gid: int) -> Case:
    """The demo warehouse made on the host and mounted on /data; memory written and recalled offline."""
    import duckdb

    from sophia_business_intelligence.demo_data import load_demo_dataset

    data = work / "bi-data"
    shutil.rmtree(data, ignore_errors=True)  # no memory left from an earlier run
    data.mkdir(parents=True)
    warehouse = data / "warehouse.duckdb"
    load_demo_dataset(warehouse, force=True)
    with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
        row = con.execute("SELECT COUNT(*) FROM CRM.DEALS").fetchone()
    deals = int(row[0]) if row else -1
    for path in (data, *data.iterdir()):
        os.chown(path, uid, gid)  # the image's non-root user owns the mounted data directory
    note = f"docker smoke {uuid.uuid4().hex[:8]}: the EMEA numbers are restated in January"

    async def exercise(client: Client) -> str:
        counted = await call_ok(client, "warehouse_query", {"sql": "SELECT COUNT(*) AS N FROM CRM.DEALS"})
        structured = counted.structured_content or {}
        check(structured.get("rows") == [[deals]], f"warehouse_query counted {structured.get('rows')}, host {deals}")
        await call_ok(client, "memory_remember", {"text": note, "tags": ["docker-smoke"]})
        recalled = await call_ok(client, "memory_recall", {"query": "what about the EMEA numbers?", "top_k": 1})
        check(note in text_of(recalled), f"memory_recall did not find the note: {text_of(recalled)[:300]}")
        return f"warehouse_query counted {deals} deals on the mounted warehouse; memory remembered and recalled"

    return Case(
        "business-intelligence",
        {"warehouse_query", "memory_recall", "memory_remember", "vector_search"},
        exercise,
        env={"SOPHIA_MEMORY_ALLOW_WRITE": "1", "SOPHIA_VECTOR_BACKEND": "embedded"},
        volumes=[f"{data}:/data"],
    )


def ai_intelligence_case() -> Case:
    async def exercise(client: Client) -> str:
        embedded = await call_ok(client, "llm_embed", {"texts": ["pricing pushback", "a discount request"]})
        structured = embedded.structured_content or {}
        check(structured.get("dimension") == 384, f"llm_embed gave {structured.get('dimension')}-d vectors, not 384")
        prompt = {"prompt": "Summarise the slipped deals.", "output_tokens": 200}
        estimate = await call_ok(client, "llm_estimate", prompt)
        check("$" in text_of(estimate) or "USD" in text_of(estimate), "llm_estimate shows no cost")
        return "llm_embed gave 384-d local MiniLM vectors with no network; llm_estimate priced a prompt"

    return Case("ai-intelligence", {"llm_embed", "llm_estimate", "llm_chat"}, exercise)


def data_intelligence_case(base_url: str, key: str, seen: Callable[[], int]) -> Case:
    async def exercise(client: Client) -> str:
        before = seen()
        searched = await call_ok(client, "web_search", {"query": "EU fintechs hiring ML engineers", "max_results": 3})
        check(seen() > before, "web_search did not reach the Tavily fake")
        check("EU fintechs hiring ML engineers" in text_of(searched), "web_search results are not the fake's")
        return "web_search answered from the Tavily fake on 127.0.0.1"

    return Case(
        "data-intelligence",
        {"web_search", "web_fetch", "leads_find"},
        exercise,
        network="host",
        env={"SOPHIA_TAVILY_BASE_URL": base_url, "TAVILY_API_KEY": key},
    )


def infrastructure_case(base_url: str, key: str, kubernetes_plugin: Path | None) -> Case:
    """gpu_types against the Lambda fake; with a built Kubernetes plugin, stack_list drives the image's
    Pulumi CLI on the local file backend in /data, offline (without it Pulumi would download the plugin)."""
    env = {"SOPHIA_LAMBDA_BASE_URL": base_url, "LAMBDA_API_KEY": key}
    volumes = []
    if kubernetes_plugin is not None:
        env["SOPHIA_PULUMI_KUBERNETES_PLUGIN"] = "/opt/plugins/pulumi-resource-kubernetes"
        volumes.append(f"{kubernetes_plugin}:/opt/plugins/pulumi-resource-kubernetes:ro")

    async def exercise(client: Client) -> str:
        listed = await call_ok(client, "gpu_types", {})
        check("H100" in text_of(listed), f"gpu_types did not list the fake's types: {text_of(listed)[:300]}")
        if kubernetes_plugin is None:
            return "gpu_types listed the Lambda fake's GPU types (stack_list skipped: no built Kubernetes plugin)"
        stacks = await call_ok(client, "stack_list", {})
        backend = "file:///data/infra/pulumi/backend"
        check(backend in text_of(stacks), f"stack_list did not use the local backend in /data: {stacks_line(stacks)}")
        listed_stacks = stacks_line(stacks)
        return f"gpu_types listed the Lambda fake's GPU types; stack_list ran the image's Pulumi CLI: {listed_stacks}"

    return Case("infrastructure", {"gpu_types", "stack_list"}, exercise, network="host", env=env, volumes=volumes)


def stacks_line(result: CallToolResult) -> str:
    return " ".join(text_of(result).split())[:120]


@contextlib.contextmanager
def cases(
    servers: Sequence[str], work: Path, uid: int, gid: int, kubernetes_plugin: Path | None
) -> Iterator[list[Case]]:
    from tests.fakes.lambda_cloud import API_KEY, FakeLambda
    from tests.fakes.tavily import VALID_KEY, FakeTavily
    from tests.fakes.vendor_app import serve

    tavily, lambda_cloud = FakeTavily(), FakeLambda()
    with serve(tavily) as tavily_url, serve(lambda_cloud) as lambda_url:
        made: dict[str, Callable[[], Case]] = {
            "business-intelligence": lambda: business_intelligence_case(work, uid, gid),
            "ai-intelligence": ai_intelligence_case,
            "data-intelligence": lambda: data_intelligence_case(tavily_url, VALID_KEY, lambda: len(tavily.calls)),
            "infrastructure": lambda: infrastructure_case(lambda_url, API_KEY, kubernetes_plugin),
        }
        check(set(made) == set(SCENARIOS), "SCENARIOS and the scenarios made here differ")
        unknown = sorted(set(servers) - set(made))
        check(not unknown, f"no smoke scenario for {unknown}: add one in tests/docker/smoke.py")
        yield [made[name]() for name in servers]


# ---- driving one container -----------------------------------------------------------------------------


def docker_run_parameters(docker: Docker, image: str, name: str, case: Case, extra_env: dict[str, str]) -> Any:
    args = ["run", "-i", "--rm", "--name", name, "--network", case.network]
    for key, value in {**case.env, **extra_env}.items():
        args += ["-e", f"{key}={value}"]
    for volume in case.volumes:
        args += ["-v", volume]
    return StdioServerParameters(command=docker.cli, args=[*docker.argv(*args, image)[1:]])


async def drive(docker: Docker, image: str, case: Case, run_canary: str, errlog: TextIO, outcome: Outcome) -> None:
    name = f"sophia-smoke-{case.server}-{uuid.uuid4().hex[:6]}"
    # A run-time secret named like a real one (the infrastructure server's Docker Hub token) that no call here
    # uses; PULUMI_ACCESS_TOKEN would switch the Pulumi backend to Pulumi Cloud.
    params = docker_run_parameters(docker, image, name, case, {"DOCKER_TOKEN": run_canary})
    async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=120) as client:
        check(client.server_info is not None and client.server_info.name == f"sophia-{case.server}", "wrong server")
        tools = {t.name for t in (await client.list_tools()).tools}
        missing = case.expected_tools - tools
        check(not missing, f"tools/list lacks {sorted(missing)} (has {len(tools)} tools)")
        outcome.summary = f"{len(tools)} tools; " + await case.exercise(client)
        status = docker.run("exec", name, "cat", "/proc/1/status").stdout
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        outcome.uid = fields.get("Uid", "?").split()[0]
        check(outcome.uid not in ("0", "?"), f"PID 1 runs as uid {outcome.uid}")
        cmdline = docker.run("exec", name, "cat", "/proc/1/cmdline").stdout.replace("\0", " ")
        check(case.command in cmdline, f"PID 1 is not the server: {cmdline!r}")
        # SIGTERM while this client still holds the server's stdin open.
        outcome.sigterm_seconds, outcome.exit_code = await anyio.to_thread.run_sync(sigterm, docker, name)


def sigterm(docker: Docker, name: str) -> tuple[float, str]:
    """SIGTERM while the client still holds stdin open; seconds until the container stopped, and its exit code."""
    waiter = subprocess.Popen(docker.argv("wait", name), stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)  # `docker wait` is attached before the signal
    started = time.perf_counter()
    docker.run("kill", "--signal", "TERM", name)
    try:
        out, _ = waiter.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        waiter.kill()
        return 10.0, "still running"
    return time.perf_counter() - started, out.strip()


async def initialize_seconds(params: StdioServerParameters, errlog: TextIO) -> float:
    started = time.perf_counter()
    async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=120) as client:
        elapsed = time.perf_counter() - started
        check(client.server_info is not None, "no server info after initialize")
    return elapsed


async def cold_starts(
    docker: Docker, image: str, case: Case, host_data: Path, outcome: Outcome, errlog: TextIO
) -> None:
    """`docker run` → initialize, and the same for the server started from the host's .venv, alternately."""
    quiet = {"SOPHIA_LOG_LEVEL": "WARNING"}
    in_docker = StdioServerParameters(
        command=docker.cli,
        args=docker.argv("run", "-i", "--rm", "--network", "none", "-e", "SOPHIA_LOG_LEVEL=WARNING", image)[1:],
    )
    on_host = StdioServerParameters(
        command=str(REPO_ROOT / ".venv" / "bin" / case.command),
        env={**quiet, "SOPHIA_DATA_DIR": str(host_data), "HOME": str(host_data), "PATH": os.environ["PATH"]},
        cwd=str(host_data),
    )
    for _ in range(COLD_START_RUNS):
        outcome.docker_starts.append(await initialize_seconds(in_docker, errlog))
        outcome.host_starts.append(await initialize_seconds(on_host, errlog))


# ---- checks on the image itself ------------------------------------------------------------------------


def check_image(docker: Docker, image: str, case: Case, version: str, canaries: dict[str, str], work: Path) -> int:
    config = docker.run("image", "inspect", image).stdout
    labels = docker.run(
        "image", "inspect", "--format", '{{index .Config.Labels "org.opencontainers.image.version"}}', image
    ).stdout.strip()
    check(labels == version, f"label org.opencontainers.image.version is {labels!r}, not {version}")
    volumes = docker.run("image", "inspect", "--format", "{{json .Config.Volumes}}", image).stdout
    if case.server == "business-intelligence":
        check('"/data"' in volumes, f"the BI image declares no /data volume: {volumes}")
    leftovers = docker.run(
        "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c",
        "for p in /src /root/.cache /app/.venv/bin/uv; do test -e $p && echo $p; done; command -v uv; true",
    ).stdout.split()  # fmt: skip
    check(not leftovers, f"build leftovers in the final image: {leftovers}")
    history = docker.run("history", "--no-trunc", image).stdout
    saved = work / f"{case.server}.tar"
    docker.run("save", "-o", str(saved), image, timeout=600)
    try:
        for label, canary in canaries.items():
            check(canary not in history, f"the {label} canary is in `docker history` of {image}")
            check(canary not in config, f"the {label} canary is in the config of {image}")
            check(not file_contains(saved, canary.encode()), f"the {label} canary is in a layer of {image}")
        return int(docker.run("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
    finally:
        saved.unlink(missing_ok=True)


def file_contains(path: Path, needle: bytes, chunk_size: int = SCAN_CHUNK) -> bool:
    """Whether `needle` occurs in the file: `docker save` writes layers as plain tars, so file contents
    and the image config appear verbatim."""
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            window = tail + chunk
            if needle in window:
                return True
            tail = window[-len(needle) :]
    return False


def scanner_finds_a_baked_secret(docker: Docker, work: Path) -> None:
    """Positive control: an image that bakes a build argument into a layer is caught by the same scan."""
    canary = f"pul-control-{uuid.uuid4().hex}"
    context = work / "control"
    context.mkdir(parents=True, exist_ok=True)
    dockerfile = 'FROM python:3.11-slim\nARG PULUMI_ACCESS_TOKEN\nRUN echo "$PULUMI_ACCESS_TOKEN" > /token\n'
    build = ["build", "--quiet", "--network", "none", "-t", "sophia-smoke/control", "-f", "-", str(context)]
    done = subprocess.run(
        docker.argv(*build[:-1], "--build-arg", f"PULUMI_ACCESS_TOKEN={canary}", build[-1]),
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )
    check(done.returncode == 0, f"building the control image failed: {done.stderr[-600:]}")
    saved = work / "control.tar"
    try:
        docker.run("save", "-o", str(saved), "sophia-smoke/control")
        check(file_contains(saved, canary.encode()), "the layer scan missed a secret baked into a control image")
        check(canary in docker.run("history", "--no-trunc", "sophia-smoke/control").stdout, "history scan missed it")
    finally:
        saved.unlink(missing_ok=True)
        docker.run("rmi", "-f", "sophia-smoke/control", check=False)


def pulumi_cli_version(docker: Docker, image: str) -> str:
    return docker.run("run", "--rm", "--network", "none", "--entrypoint", "pulumi", image, "version").stdout.strip()


# ---- the run -------------------------------------------------------------------------------------------


def image_user(docker: Docker, image: str) -> tuple[int, int]:
    user = docker.run("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    uid, _, gid = user.partition(":")
    check(uid.isdigit() and uid != "0", f"{image} declares user {user!r}, not a numeric non-root uid")
    return int(uid), int(gid or uid)


def report(outcomes: list[Outcome], base_bytes: int, base_is_standin: bool) -> None:
    print(
        "\nimage                          size    above base  SIGTERM  uid    "
        "docker→initialize        host→initialize  ratio"
    )
    for o in outcomes:
        docker_median, host_median = statistics.median(o.docker_starts), statistics.median(o.host_starts)
        print(
            f"sophia/{o.server:<23} {o.size_bytes / 1e6:4.0f} MB  {(o.size_bytes - base_bytes) / 1e6:6.0f} MB  "
            f"{o.sigterm_seconds:5.2f} s  {o.uid:<6} {docker_median:5.2f} s (first {o.docker_starts[0]:.2f} s)  "
            f"{host_median:10.2f} s    {docker_median / host_median:4.2f}×"
        )
    kind = "the TEST-ONLY stand-in" if base_is_standin else "the real image"
    print(f"base python:3.11-slim ({kind}): {base_bytes / 1e6:.0f} MB")
    print(f"cold start: medians of {COLD_START_RUNS} starts each; the host runs the same server from .venv")


def run_async(fn: Callable[..., Awaitable[None]], *args: Any) -> None:
    """`anyio.run`, with a failed check raised as itself rather than inside the task group's exception group."""
    try:
        anyio.run(fn, *args)
    except BaseExceptionGroup as group:
        failures, _ = group.split(SmokeFailure)
        first: BaseException | None = failures
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        if first is not None:
            raise first from None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("servers", nargs="+")
    parser.add_argument("--docker", default="/usr/bin/docker")
    parser.add_argument("--docker-host", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--pulumi-version", default="3.276.0")
    parser.add_argument("--kubernetes-plugin", type=Path, help="a built pulumi-resource-kubernetes (optional)")
    parser.add_argument("--build-canary", required=True)
    parser.add_argument("--run-canary", required=True)
    args = parser.parse_args(argv)
    docker = Docker(args.docker, args.docker_host)
    work: Path = args.work
    (work / "host-data").mkdir(parents=True, exist_ok=True)
    canaries = {"build-time": args.build_canary, "run-time": args.run_canary}

    scanner_finds_a_baked_secret(docker, work)
    uid, gid = image_user(docker, f"sophia/{args.servers[0]}:{args.version}")
    outcomes: list[Outcome] = []
    plugin: Path | None = (
        args.kubernetes_plugin if args.kubernetes_plugin and args.kubernetes_plugin.is_file() else None
    )
    with cases(args.servers, work, uid, gid, plugin) as scenarios:
        for case in scenarios:
            image = f"sophia/{case.server}:{args.version}"
            outcome = Outcome(case.server)
            check(image_user(docker, image) == (uid, gid), f"{image} runs as another user than the others")
            errlog = work / f"{case.server}.stderr.log"
            with errlog.open("w") as err:
                run_async(drive, docker, image, case, args.run_canary, err, outcome)
            check(args.run_canary not in errlog.read_text(errors="replace"), "the run-time canary is in the stderr log")
            check(
                outcome.sigterm_seconds < SIGTERM_BUDGET_SECONDS,
                f"SIGTERM took {outcome.sigterm_seconds:.2f} s to end the server (budget {SIGTERM_BUDGET_SECONDS} s)",
            )
            check(outcome.exit_code == "143", f"the server exited with {outcome.exit_code!r} on SIGTERM, not 143")
            if case.server == "infrastructure":
                version = pulumi_cli_version(docker, image)
                check(version == f"v{args.pulumi_version}", f"pulumi version in the image is {version!r}")
                outcome.summary += f"; pulumi {version} on PATH"
            with open(os.devnull, "w") as devnull:
                run_async(cold_starts, docker, image, case, work / "host-data", outcome, devnull)
            outcome.size_bytes = check_image(docker, image, case, args.version, canaries, work)
            print(
                f"ok  sophia/{case.server}: {outcome.summary}; uid {outcome.uid}; SIGTERM → exit "
                f"{outcome.exit_code} in {outcome.sigterm_seconds:.2f} s; no canary in layers or history",
                flush=True,
            )
            outcomes.append(outcome)
    base = docker.run("image", "inspect", "--format", "{{.Size}}", "python:3.11-slim").stdout.strip()
    standin = docker.run(
        "image", "inspect", "--format", '{{index .Config.Labels "org.sophia.test-only"}}', "python:3.11-slim"
    ).stdout.strip()
    report(outcomes, int(base), standin == "true")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SmokeFailure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
