"""What the infrastructure tools share for the life of the server: settings, the lease file, a lazy Lambda
client, a lazy Pulumi stack engine, and the lease reaper that runs while the server does."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sophia_shared.settings import Settings

if TYPE_CHECKING:  # imported on first use: the HTTP stack must not slow `initialize`
    import httpx

    from sophia_shared.http import RetryPolicy

    from .clients.lambda_cloud import LambdaCloud, Spacing
    from .leases import LeaseBook
    from .pulumi.engine import Project, StackEngine

log = logging.getLogger(__name__)
REAP_SETTING = "SOPHIA_INFRA_REAP_SECONDS"


class InfraState:
    """The Lambda Cloud client is made on first use, so a missing key is named only by a call that needs it."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        leases: LeaseBook | None = None,
        request_spacing: Spacing | None = None,
        launch_spacing: Spacing | None = None,
        suite: Callable[[StackEngine, Path], Project] | None = None,
    ) -> None:
        from .leases import LeaseBook

        self.settings = settings
        self.leases = leases or LeaseBook()
        self._transport = transport
        self._retry = retry
        self._spacings = (request_spacing, launch_spacing)
        self._lock = threading.Lock()
        self._lambda: LambdaCloud | None = None
        self._engine: StackEngine | None = None
        self._suite = suite or suite_project  # tests put their own inline program here
        self._reaper: asyncio.Task[None] | None = None
        self.reaped: list[str] = []  # what the in-server reaper did, newest last

    def stack_engine(self) -> StackEngine:
        """The Pulumi engine, made on first use: finds the CLI and resolves the backend (clear errors when not)."""
        from .pulumi.backend import resolve_backend
        from .pulumi.cli import find_cli
        from .pulumi.engine import StackEngine

        with self._lock:
            if self._engine is None:
                self._engine = StackEngine(find_cli(self.settings), resolve_backend(self.settings))
            return self._engine

    def project(self, work_dir: str = "") -> Project:
        """The suite's own `sophia-ai` project (inline program), or a user's project directory."""
        from .pulumi.engine import directory_project

        engine = self.stack_engine()
        if work_dir.strip():
            return directory_project(engine.cli, work_dir)
        return self._suite(engine, self.data_dir())

    def data_dir(self) -> Path:
        from sophia_shared.paths import data_dir

        configured = self.settings.get("SOPHIA_DATA_DIR")
        return Path(configured).expanduser() if configured else data_dir()

    def start_reaper(self) -> None:
        """While the server runs, terminate GPU instances whose lease expired, every SOPHIA_INFRA_REAP_SECONDS."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # made outside a server (tests, the CLI): `sophia infra reap` does the job
        interval = self.settings.get_float(REAP_SETTING, minimum=0)
        if interval > 0:
            self._reaper = loop.create_task(self._reap_forever(interval), name="sophia-lease-reaper")

    async def _reap_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap_once()
            except Exception:  # one bad round must not stop the reaper; it says why and tries again
                log.exception("lease reaper: the round failed; retrying in %.0f s", interval)

    async def reap_once(self) -> list[str]:
        """Terminate expired leases now; each outcome is logged as a warning and kept in `reaped`."""
        from anyio import to_thread

        if not await to_thread.run_sync(self.leases.expired):
            return []
        if not (self.settings.get("LAMBDA_API_KEY") or self.settings.get("LAMBDA_LABS_API_KEY")):
            lines = ["Expired GPU leases found, but LAMBDA_API_KEY is not set, so the server cannot terminate them."]
        else:
            lines = await self.lambda_cloud().reap_expired()
        for line in lines:
            log.warning("lease reaper: %s", line)
        self.reaped = [*self.reaped, *lines][-50:]
        self.lambda_cloud().reaper_reports.extend(lines)  # the next GPU tool result says it too
        return lines

    def lambda_cloud(self) -> LambdaCloud:
        from sophia_shared.http import DEFAULT_RETRY

        from .clients.lambda_cloud import LambdaCloud

        with self._lock:
            if self._lambda is None:
                self._lambda = LambdaCloud(
                    self.settings,
                    transport=self._transport,
                    retry=self._retry or DEFAULT_RETRY,
                    leases=self.leases,
                    request_spacing=self._spacings[0],
                    launch_spacing=self._spacings[1],
                )
            return self._lambda

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        with self._lock:
            client, self._lambda = self._lambda, None
        if client is not None:
            await client.aclose()


def make_state(settings: Settings) -> InfraState:
    """The server's state, with the lease reaper started (called inside the server's lifespan)."""
    state = InfraState(settings)
    state.start_reaper()
    return state


def suite_project(engine: StackEngine, data_dir: Path) -> Project:
    """The `sophia-ai` project: P2's inline program, stacks `sophia-<environment>`, the Kubernetes plugin checked."""
    from sophia_shared.errors import NotConfigured

    from .pulumi.engine import Project
    from .suite import program
    from .suite.plugins import ensure_kubernetes_plugin
    from .suite.topology import PROJECT, STACK_PREFIX

    status = ensure_kubernetes_plugin(engine.cli.path, environ={**os.environ, **engine.backend.env})
    if not status.installed:
        raise NotConfigured(status.message, hint="The suite's stacks describe Kubernetes resources and need it.")
    return Project(
        name=PROJECT,
        work_dir=data_dir / "infra" / "pulumi" / PROJECT,
        program=program.suite_program,
        stack_prefix=STACK_PREFIX,
        defaults=lambda stack: program.stack_defaults(data_dir, stack),
    )
