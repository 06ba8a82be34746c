"""The real open-source Portkey gateway (npm `@portkey-ai/gateway`, pinned in package.json) run with node.

`run_gateway()` starts it on a free 127.0.0.1 port, waits until it answers and stops it on exit;
the session fixture `portkey_gateway` shares one across tests and skips, saying why, when node or
the npm package is missing (`npm install --no-package-lock` installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.llm_providers import AnthropicCompatible, OpenAICompatible, serve_provider
from tests.fakes.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "node_modules" / "@portkey-ai" / "gateway"
START_SCRIPT = PACKAGE_DIR / "build" / "start-server.js"
STARTUP_SECONDS = 20.0


@dataclass(frozen=True)
class RunningGateway:
    base_url: str  # ends in /v1, as SOPHIA_PORTKEY_BASE_URL takes it
    root: str
    log_path: Path
    version: str

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def unavailable_reason() -> str | None:
    """Why the gateway cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not on PATH; the Portkey gateway contract tests need Node 20+"
    if not START_SCRIPT.is_file():
        return f"{START_SCRIPT.relative_to(REPO_ROOT)} is missing; run `npm install --no-package-lock` in {REPO_ROOT}"
    return None


def hono_server_version() -> tuple[int, ...]:
    """The @hono/node-server version the gateway resolves (node's lookup: its own node_modules first)."""
    for base in (PACKAGE_DIR / "node_modules", REPO_ROOT / "node_modules"):
        manifest = base / "@hono" / "node-server" / "package.json"
        if manifest.is_file():
            text = json.loads(manifest.read_text(encoding="utf-8"))["version"]
            return tuple(int(p) for p in text.split("-")[0].split("."))
    return ()


def streams_through() -> bool:
    """Whether this install streams (and passes embeddings and model lists through): not with @hono/node-server >= 1.14.

    From 1.14 its lightweight Response keeps the upstream fetch response's immutable Headers, and the
    gateway's `headers.append` on a streamed response throws ("TypeError: immutable", HTTP 500).
    """
    version = hono_server_version()
    return bool(version) and version < (1, 14)


@contextlib.contextmanager
def run_gateway(log_dir: Path) -> Iterator[RunningGateway]:
    """Start the gateway with node on a free port; yields once it answers, stops it on exit."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    node = shutil.which("node")
    assert node is not None
    port = free_port()
    log_path = log_dir / f"portkey-gateway-{port}.log"
    # Only what node needs: no provider keys or proxies from the developer's shell reach the gateway.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    version = json.loads((PACKAGE_DIR / "package.json").read_text(encoding="utf-8"))["version"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node, str(START_SCRIPT), f"--port={port}", "--headless"],
            cwd=str(REPO_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(root, process, log_path)
        yield RunningGateway(base_url=f"{root}/v1", root=root, log_path=log_path, version=version)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_answering(root: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the Portkey gateway exited with {process.returncode}: {log_path.read_text()[-2000:]}"
                )
            try:
                if client.get(root + "/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"the Portkey gateway did not answer on {root} within {STARTUP_SECONDS:g} s")


@pytest.fixture(scope="session")
def portkey_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """One real gateway for the session; skips cleanly without node or the npm package."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with run_gateway(tmp_path_factory.mktemp("portkey-gateway")) as gateway:
        yield gateway


# -- local providers behind the gateway ----------------------------------------------------------

PROVIDER_TEST_KEYS = {
    "OPENAI_API_KEY": "sk-openai-contract-0001",
    "ANTHROPIC_API_KEY": "sk-ant-contract-0002",
    "OPENROUTER_API_KEY": "sk-or-contract-0003",
}


@dataclass
class LocalProviders:
    """An OpenAI, an Anthropic and an OpenRouter stand-in, each requiring its test key."""

    openai: OpenAICompatible
    anthropic: AnthropicCompatible
    openrouter: OpenAICompatible
    urls: dict[str, str]  # provider → base URL ending in /v1

    def reset(self) -> None:
        for app in (self.openai, self.anthropic, self.openrouter):
            app.reset()

    def counts(self) -> dict[str, int]:
        return {
            "openai": self.openai.completions,
            "anthropic": self.anthropic.completions,
            "openrouter": self.openrouter.completions,
        }


@pytest.fixture(scope="module")
def local_providers() -> Iterator[LocalProviders]:
    apps = (
        OpenAICompatible("openai", api_key=PROVIDER_TEST_KEYS["OPENAI_API_KEY"]),
        AnthropicCompatible("anthropic", api_key=PROVIDER_TEST_KEYS["ANTHROPIC_API_KEY"]),
        OpenAICompatible(
            "openrouter", api_key=PROVIDER_TEST_KEYS["OPENROUTER_API_KEY"], models=["meta-llama/llama-3.1-70b-instruct"]
        ),
    )
    with serve_provider(apps[0]) as openai, serve_provider(apps[1]) as anthropic, serve_provider(apps[2]) as router:
        providers = LocalProviders(*apps, urls={"openai": openai, "anthropic": anthropic, "openrouter": router})
        yield providers


@pytest.fixture
def providers(local_providers: LocalProviders) -> LocalProviders:
    """The module's providers with no calls recorded and no faults pending."""
    local_providers.reset()
    return local_providers
