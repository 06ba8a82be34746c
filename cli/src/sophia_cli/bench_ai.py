"""The AI server's part of `sophia bench`: an exact-cache hit over stdio, our layer's overhead against
the same gateway called directly with the same SDK, and 20 concurrent chat calls against one.

It runs the open-source Portkey gateway (from `node_modules`, as the tests do) in front of a tiny local
OpenAI-compatible provider defined here, so it needs no keys and no network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KEY = "sk-bench-local-provider-0000"
PROVIDER_DELAY_SECONDS = 0.2  # for the concurrency figure: each completion takes this long


class _Provider(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions like OpenAI (JSON or SSE), after an optional delay."""

    disable_nagle_algorithm = True  # else every call costs ~40 ms
    protocol_version = "HTTP/1.1"
    delay = 0.0

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        if self.delay:
            time.sleep(self.delay)
        text = "ok: " + str(body.get("messages", [{}])[-1].get("content", ""))[:40]
        usage = {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
        model = body.get("model", "gpt-4o-mini")
        if body.get("stream"):
            chunks = [
                {"id": "c", "object": "chat.completion.chunk", "model": model,
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]},
                {"id": "c", "object": "chat.completion.chunk", "model": model,
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage},
            ]  # fmt: skip
            payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self._send(payload.encode(), "text/event-stream")
            return
        answer = {
            "id": "c", "object": "chat.completion", "model": model, "usage": usage,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }  # fmt: skip
        self._send(json.dumps(answer).encode(), "application/json")

    def _send(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _provider(delay: float) -> Iterator[str]:
    handler = type("Provider", (_Provider,), {"delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _gateway_script() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        script = parent / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
        if script.exists():
            return script
    return None


@contextlib.contextmanager
def _gateway(script: Path) -> Iterator[str]:
    port = _free_port()
    node = shutil.which("node") or "node"
    process = subprocess.Popen(
        [node, str(script), f"--port={port}", "--headless"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/", timeout=1).close()  # noqa: S310 - our own local gateway
                break
            except OSError:
                time.sleep(0.1)
        yield base + "/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def ai_figures(child_factory: Any, python: str, base_env: dict[str, str]) -> list[str]:
    """The AI lines of `sophia bench` (or one line saying why they were skipped)."""
    script = _gateway_script()
    if script is None or shutil.which("node") is None:
        return ["AI server: skipped (needs node and `npm install --no-package-lock` for the Portkey gateway)"]
    lines: list[str] = []
    with _gateway(script) as gateway_url, _provider(0.0) as fast, tempfile.TemporaryDirectory() as data:
        env = {
            **base_env,
            "SOPHIA_DATA_DIR": data,
            "SOPHIA_PORTKEY_BASE_URL": gateway_url,
            "SOPHIA_AI_CUSTOM_HOST": fast,
            "OPENAI_API_KEY": KEY,
            "SOPHIA_AI_DEFAULT_MODEL": "gpt-4o-mini",
        }
        child = child_factory([python, "-m", "sophia_ai_intelligence.server"], env)
        try:
            child.initialize()
            args = {"prompt": "cached question", "cache": "exact"}
            child.call("llm_chat", args)  # miss: fills the cache (and imports the SDK)
            for _ in range(5):
                child.call("llm_chat", args)
            times = []
            for _ in range(50):
                started = time.perf_counter()
                child.call("llm_chat", args)
                times.append(time.perf_counter() - started)
            lines.append(
                f"AI exact-cache hit over stdio      median {statistics.median(times) * 1000:6.2f} ms per call"
                "   (target ≤ 5 ms)"
            )
        finally:
            child.close()
        ours, direct = _overhead(gateway_url, fast, data)
        lines.append(
            f"AI call through our layer          direct SDK {direct * 1000:6.2f} ms   ours {ours * 1000:6.2f} ms   "
            f"ratio {ours / direct:.2f}  (target ≤ 1.1; cache off, same gateway)"
        )
    with (
        _gateway(script) as gateway_url,
        _provider(PROVIDER_DELAY_SECONDS) as slow,
        tempfile.TemporaryDirectory() as data,
    ):
        env = {**base_env, "SOPHIA_DATA_DIR": data, "SOPHIA_PORTKEY_BASE_URL": gateway_url,
               "SOPHIA_AI_CUSTOM_HOST": slow, "OPENAI_API_KEY": KEY}  # fmt: skip
        child = child_factory([python, "-m", "sophia_ai_intelligence.server"], env)
        try:
            child.initialize()
            child.call("llm_chat", {"prompt": "warm", "cache": "off"})
            one = _timed_burst(child, 1)
            twenty = _timed_burst(child, 20)
            lines.append(
                f"AI 20 concurrent llm_chat calls    one {one * 1000:7.1f} ms   twenty {twenty * 1000:7.1f} ms   "
                f"ratio {twenty / one:.2f}  (target ≈ 1; provider takes {PROVIDER_DELAY_SECONDS:.1f} s)"
            )
        finally:
            child.close()
    return lines


def _timed_burst(child: Any, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        child.send("tools/call", {"name": "llm_chat", "arguments": {"prompt": f"burst {i}", "cache": "off"}})
    for _ in range(n):
        child.receive()
    return time.perf_counter() - started


def _overhead(gateway_url: str, provider: str, data: str, calls: int = 60) -> tuple[float, float]:
    """Seconds per call: LlmService.chat (cache off) vs the portkey-ai SDK straight at the same gateway."""
    import anyio

    from sophia_ai_intelligence.gateway.base import ChatMessage, ChatRequest
    from sophia_ai_intelligence.server import SPEC
    from sophia_ai_intelligence.service import LlmService
    from sophia_ai_intelligence.state import AIState
    from sophia_shared.settings import Settings

    environ = {
        "SOPHIA_DATA_DIR": data, "SOPHIA_PORTKEY_BASE_URL": gateway_url, "SOPHIA_AI_CUSTOM_HOST": provider,
        "OPENAI_API_KEY": KEY, "SOPHIA_AI_DEFAULT_MODEL": "gpt-4o-mini", "HOME": os.environ.get("HOME", data),
    }  # fmt: skip
    state = AIState(Settings(environ=environ, specs=SPEC.all_settings()))
    service = LlmService(state)
    request = ChatRequest(messages=(ChatMessage("user", "overhead"),), model="gpt-4o-mini")

    async def run() -> tuple[float, float]:
        from portkey_ai import AsyncPortkey

        from sophia_ai_intelligence.gateway.config import load_routing

        routing = load_routing(state.settings)
        direct_client = AsyncPortkey(base_url=gateway_url, api_key="local", config=routing.config)

        async def direct() -> None:
            await direct_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "overhead"}], stream=False
            )

        async def ours() -> None:
            await service.chat(request, tool="bench", cache_mode="off")

        for _ in range(5):
            await direct()
            await ours()
        times_direct, times_ours = [], []
        for _ in range(calls):  # interleaved so drift hits both alike
            started = time.perf_counter()
            await direct()
            times_direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            await ours()
            times_ours.append(time.perf_counter() - started)
        await direct_client.close()
        await state.close()
        return statistics.median(times_ours), statistics.median(times_direct)

    return anyio.run(run)
