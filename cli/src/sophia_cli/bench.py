"""`sophia bench`: the BI server against a bare one-tool `MCPServer` on the same interpreter.

Raw JSON-RPC over the child's pipes, so the client adds nothing to either side. Prints ratios
(machines are noisy; the targets in PRODUCT.md are ratios too).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from .bench_probes import SLEEP_SECONDS

PROTOCOL = "2025-11-25"


class Child:
    """A server process spoken to in newline-delimited JSON-RPC."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self._id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, *, notify: bool = False) -> int:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if not notify:
            self._id += 1
            message["id"] = self._id
        stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        stdin.write((json.dumps(message) + "\n").encode())
        stdin.flush()
        return self._id

    def receive(self) -> dict[str, Any]:
        while True:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError("server exited")
            message = json.loads(line)
            if "id" in message:
                return dict(message)

    def initialize(self) -> None:
        self.send(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "sophia-bench", "version": "0"},
            },
        )
        self.receive()
        self.send("notifications/initialized", notify=True)

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.send("tools/call", {"name": tool, "arguments": arguments})
        return self.receive()

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _cold_start(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    child = Child(argv, env)
    child.initialize()
    elapsed = time.perf_counter() - started
    child.close()
    return elapsed


def _per_call(child: Child, tool: str, calls: int) -> float:
    for _ in range(10):
        child.call(tool, {"text": "warm"})
    started = time.perf_counter()
    for index in range(calls):
        child.call(tool, {"text": f"ping {index}"})
    return (time.perf_counter() - started) / calls


def _concurrent(child: Child, tool: str, arguments: dict[str, Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        child.send("tools/call", {"name": tool, "arguments": arguments})
    for _ in range(n):
        child.receive()
    return time.perf_counter() - started


def run_bench(*, runs: int, calls: int) -> int:
    env = dict(os.environ)
    workdir = Path(tempfile.mkdtemp(prefix="sophia-bench-"))
    env["SOPHIA_DUCKDB_PATH"] = str(workdir / "bench.duckdb")
    env["SOPHIA_LOG_LEVEL"] = "WARNING"
    env.pop("SNOWFLAKE_ACCOUNT", None)
    from sophia_business_intelligence.demo_data import load_demo_dataset

    load_demo_dataset(workdir / "bench.duckdb")
    py = sys.executable
    bare = [py, "-m", "sophia_cli.bench_servers", "bare"]
    bi = [py, "-m", "sophia_business_intelligence.server"]
    bi_probe = [py, "-m", "sophia_cli.bench_servers", "bi"]

    print(f"sophia bench — {runs} cold starts each, {calls} sequential calls, Python {sys.version.split()[0]}")
    bare_starts, bi_starts = [], []
    _cold_start(bare, env), _cold_start(bi, env)  # warm the OS file cache
    for _ in range(runs):  # interleaved so drift hits both alike
        bare_starts.append(_cold_start(bare, env))
        bi_starts.append(_cold_start(bi, env))
    b, s = statistics.median(bare_starts), statistics.median(bi_starts)
    print(
        f"cold start (spawn → initialize)   bare {b * 1000:7.1f} ms   BI {s * 1000:7.1f} ms   "
        f"ratio {s / b:.2f}  (target ≤ 1.15)"
    )

    bare_child, bi_child = Child(bare, env), Child(bi_probe, env)
    try:
        bare_child.initialize()
        bi_child.initialize()
        bare_call = _per_call(bare_child, "echo", calls)
        bi_call = _per_call(bi_child, "bench_echo", calls)
        print(
            f"per-call overhead (trivial tool)  bare {bare_call * 1000:7.2f} ms   BI {bi_call * 1000:7.2f} ms   "
            f"ratio {bi_call / bare_call:.2f}  (target ≤ 1.2)"
        )

        one = _concurrent(bi_child, "bench_sleep", {}, 1)
        twenty = _concurrent(bi_child, "bench_sleep", {}, 20)
        print(
            f"20 concurrent slow calls          one {one * 1000:7.1f} ms   twenty {twenty * 1000:7.1f} ms   "
            f"ratio {twenty / one:.2f}  (target ≈ 1; each call blocks a worker {SLEEP_SECONDS:.1f} s)"
        )

        query = {"sql": "SELECT OWNER, SUM(AMOUNT) FROM CRM.DEALS GROUP BY OWNER"}
        _concurrent(bi_child, "warehouse_query", query, 1)
        q_one = _concurrent(bi_child, "warehouse_query", query, 1)
        q_twenty = _concurrent(bi_child, "warehouse_query", query, 20)
        print(
            f"warehouse_query on DuckDB         one {q_one * 1000:7.1f} ms   twenty {q_twenty * 1000:7.1f} ms   "
            f"ratio {q_twenty / q_one:.2f}  (information: CPU-bound on 2 cores)"
        )
        print(
            f"idle memory (RSS)                 bare {bare_child.rss_mib():6.1f} MiB   "
            f"BI after queries {bi_child.rss_mib():6.1f} MiB"
        )
    finally:
        bare_child.close()
        bi_child.close()
    idle = Child(bi, env)
    idle.initialize()
    time.sleep(0.2)
    print(f"idle memory, BI after initialize  {idle.rss_mib():6.1f} MiB")
    idle.close()
    _tools_list_sizes(env)
    _vector_figures()
    from .bench_fetch import fetch_throughput

    figures = fetch_throughput()
    print(
        f"built-in fetch (local {figures['page_kib']:.0f} KiB article)  {figures['pages_per_second']:6.1f} pages/s   "
        f"{figures['ms_per_page']:.1f} ms each   (extraction {figures['extract_ms']:.1f} ms)"
    )
    _cold_starts_of_the_other_servers(env)
    from .bench_ai import ai_figures

    for line in ai_figures(Child, sys.executable, env):
        print(line)
    from .bench_infra import infra_figures

    for line in infra_figures(Child, env):
        print(line)
    return 0


def _cold_starts_of_the_other_servers(env: dict[str, str], runs: int = 5) -> None:
    """Cold start of every registered server against the bare one, interleaved (target ≤ 1.15)."""
    from sophia_shared.registry import registered_servers

    bare = [sys.executable, "-m", "sophia_cli.bench_servers", "bare"]
    for server in registered_servers():
        argv = [sys.executable, "-m", server.module]
        _cold_start(argv, env)
        bare_times, times = [], []
        for _ in range(runs):
            bare_times.append(_cold_start(bare, env))
            times.append(_cold_start(argv, env))
        b, t = statistics.median(bare_times), statistics.median(times)
        print(f"cold start {server.spec.name:<29} {t * 1000:7.1f} ms   bare {b * 1000:7.1f} ms   ratio {t / b:.2f}")


def _tools_list_sizes(env: dict[str, str]) -> None:
    """What each server's tools/list costs a client's context, every gate open (target ≤ 1.5 KB a tool)."""
    from sophia_shared.gate import write_gate_variable
    from sophia_shared.registry import registered_servers

    for server in registered_servers():
        spec = server.spec
        gates = {write_gate_variable(spec.gate_of(t)): "1" for t in spec.tools if t.writes}
        if not spec.tools:
            continue
        child = Child([sys.executable, "-m", server.module], {**env, **gates})
        try:
            child.initialize()
            child.send("tools/list")
            tools = child.receive()["result"]["tools"]
        finally:
            child.close()
        size = len(json.dumps(tools, separators=(",", ":"), ensure_ascii=False).encode())
        print(
            f"tools/list {spec.name:<29} {len(tools):3d} tools  {size / 1024:6.1f} KB  "
            f"{size / len(tools) / 1024:.2f} KB a tool  (target ≤ 1.5)"
        )


def _vector_figures() -> None:
    """Local vector search against plain numpy, and the local embedder's throughput."""
    from .bench_embedding import embedding_throughput
    from .bench_vectors import vector_search_ratio

    search = vector_search_ratio()
    print(
        f"exact top-10, 100k × 384 vectors   numpy {search['numpy_ms']:7.1f} ms   embedded store "
        f"{search['store_ms']:7.1f} ms   ratio {search['ratio']:.2f}  (target ≤ 2)"
    )
    embedding = embedding_throughput(1000)
    print(
        f"local embedder (MiniLM int8)      {embedding['sentences_per_second']:7.0f} sentences/s   "
        f"{embedding['ms_per_sentence']:.1f} ms each   (load + warm-up {embedding['load_and_warm_up_seconds']:.1f} s)"
    )
