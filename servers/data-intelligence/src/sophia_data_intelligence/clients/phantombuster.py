"""PhantomBuster API v2: list agents, launch one (behind the write gate), poll its container, read results.

The key travels in the `X-Phantombuster-Key` header, the name the vendor's spec declares. Agent
arguments are never fetched: they often hold session cookies of the accounts an agent drives.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from sophia_shared.errors import BackendError, InputError
from sophia_shared.gate import require_write
from sophia_shared.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    ApiKeyAuth,
    RetryPolicy,
    make_client,
    request_json,
)
from sophia_shared.settings import Settings

from ..settings import SERVER_KEY

VENDOR = "PhantomBuster"
KEY_VARIABLE = "PHANTOM_BUSTER_API_KEY"
BASE_URL_VARIABLE = "SOPHIA_PHANTOMBUSTER_BASE_URL"
KEY_HEADER = "X-Phantombuster-Key"
API = "/api/v2"
DEFAULT_POLL_SECONDS = 5.0
# A container in one of these states will not change any more.
FINAL_STATUSES = frozenset({"finished", "launch error"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Agent:
    """One agent (a configured phantom) as `agents/fetch-all` describes it; times are epoch milliseconds."""

    id: str
    name: str
    script: str
    launch_type: str
    running: int
    last_end_type: str
    last_ended_at: float | None
    last_exit_code: float | None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Agent:
        return cls(
            id=str(raw.get("id", "")),
            name=str(raw.get("name") or ""),
            script=str(raw.get("script") or ""),
            launch_type=str(raw.get("launchType") or ""),
            running=int(raw.get("nbContainersRunning") or 0),
            last_end_type=str(raw.get("lastEndType") or ""),
            last_ended_at=_number(raw.get("lastEndedAt")),
            last_exit_code=_number(raw.get("lastExitCode")),
        )


@dataclass(frozen=True)
class Container:
    """One run of an agent, as `containers/fetch` describes it; times are epoch milliseconds."""

    id: str
    status: str
    created_at: float | None
    launched_at: float | None
    ended_at: float | None
    end_type: str
    exit_code: float | None
    output: str | None = None
    result_object: str | None = None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Container:
        output, result = raw.get("output"), raw.get("resultObject")
        return cls(
            id=str(raw.get("id", "")),
            status=str(raw.get("status") or "unknown"),
            created_at=_number(raw.get("createdAt")),
            launched_at=_number(raw.get("launchedAt")),
            ended_at=_number(raw.get("endedAt")),
            end_type=str(raw.get("endType") or ""),
            exit_code=_number(raw.get("exitCode")),
            output=output if isinstance(output, str) else None,
            result_object=result if isinstance(result, str) else None,
        )

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    def run_seconds(self, now_ms: float | None = None) -> float | None:
        """Execution time: launch to end, or to `now_ms` while it runs; None before it launched."""
        start = self.launched_at if self.launched_at is not None else self.created_at
        end = self.ended_at if self.ended_at is not None else (None if self.done else now_ms)
        if start is None or end is None:
            return None
        return max(end - start, 0.0) / 1000.0


@dataclass(frozen=True)
class AgentOutput:
    """The most recent container of an agent, as `agents/fetch-output` describes it."""

    container_id: str
    status: str
    progress: float | None
    progress_label: str


@dataclass(frozen=True)
class OrgUsage:
    """Resources the organisation used and its plan allows, in PhantomBuster's own units."""

    plan: str
    daily_execution_time: float | None
    daily_execution_time_limit: float | None
    monthly_execution_time: float | None
    monthly_execution_time_limit: float | None
    daily_ai_credits: float | None
    daily_ai_credits_limit: float | None
    monthly_ai_credits: float | None
    monthly_ai_credits_limit: float | None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> OrgUsage:
        found = raw.get("plan")
        plan: Mapping[str, Any] = found if isinstance(found, dict) else {}
        return cls(
            plan=str(raw.get("planName") or plan.get("name") or ""),
            daily_execution_time=_number(raw.get("dailyExecutionTime")),
            daily_execution_time_limit=_number(plan.get("dailyExecutionTime")),
            monthly_execution_time=_number(raw.get("monthlyExecutionTime")),
            monthly_execution_time_limit=_number(plan.get("monthlyExecutionTime")),
            daily_ai_credits=_number(raw.get("dailyAiCredit")),
            daily_ai_credits_limit=_number(plan.get("dailyAiCredits")),
            monthly_ai_credits=_number(raw.get("monthlyAiCredit")),
            monthly_ai_credits_limit=_number(plan.get("monthlyAiCredits")),
        )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_id(value: str, what: str) -> str:
    """An agent or container id as PhantomBuster issues them (digits, in practice)."""
    if not _ID.match(value):
        raise InputError(
            f"{value!r} is not a PhantomBuster {what} id.",
            hint="Ids are short strings of digits; take agent ids from phantom_list_agents and container ids "
            "from phantom_launch.",
        )
    return value


OnPoll = Callable[[Container, float], Awaitable[None]]


class PhantomBusterClient:
    """Typed async calls to PhantomBuster API v2; `launch` is a paid write and passes the write gate first."""

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.settings = settings
        root = (base_url or settings.get(BASE_URL_VARIABLE) or "https://api.phantombuster.com").rstrip("/")
        self._http = make_client(base_url=root + API, transport=transport, retry=retry, timeout=timeout)
        self.poll_seconds = poll_seconds
        self._max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> PhantomBusterClient:
        return cls(settings)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return await request_json(
            self._http,
            self.settings,
            method,
            path,
            vendor=VENDOR,
            key_variable=KEY_VARIABLE,
            auth=ApiKeyAuth.header(KEY_HEADER),
            max_bytes=self._max_bytes,
            **kwargs,
        )

    # -- reads -----------------------------------------------------------------------------------

    async def list_agents(self) -> list[Agent]:
        body = await self._call("GET", "/agents/fetch-all")
        if not isinstance(body, list):
            raise _unexpected("GET /agents/fetch-all", "a list of agents", body)
        return [Agent.of(a) for a in body if isinstance(a, dict)]

    async def container(self, container_id: str, *, with_output: bool = False, with_result: bool = False) -> Container:
        params = {"id": check_id(container_id, "container")}
        if with_output:
            params["withOutput"] = "true"
        if with_result:
            params["withResultObject"] = "true"
        body = await self._call("GET", "/containers/fetch", params=params)
        if not isinstance(body, dict) or "status" not in body:
            raise _unexpected("GET /containers/fetch", "a container", body)
        return Container.of(body)

    async def latest_of_agent(self, agent_id: str) -> AgentOutput:
        """Which container an agent ran last, and its status and progress."""
        body = await self._call("GET", "/agents/fetch-output", params={"id": check_id(agent_id, "agent")})
        if not isinstance(body, dict) or "status" not in body:
            raise _unexpected("GET /agents/fetch-output", "an agent's output", body)
        return AgentOutput(
            container_id=str(body.get("containerId") or ""),
            status=str(body["status"]),
            progress=_number(body.get("progress")),
            progress_label=str(body.get("progressLabel") or ""),
        )

    async def usage(self) -> OrgUsage:
        body = await self._call("GET", "/orgs/fetch-resources")
        if not isinstance(body, dict):
            raise _unexpected("GET /orgs/fetch-resources", "the organisation's resources", body)
        return OrgUsage.of(body)

    # -- the paid write --------------------------------------------------------------------------

    async def launch(self, agent_id: str, argument: Mapping[str, Any], *, merge: bool = False) -> str:
        """Queue one run of an agent and return its container id; an empty argument runs the saved one.

        `merge` sends the argument as PhantomBuster's single-use `bonusArgument`, merged over the saved one.
        """
        require_write(self.settings, SERVER_KEY, f"launch PhantomBuster agent {agent_id}")
        check_id(agent_id, "agent")
        if not isinstance(argument, Mapping):
            raise InputError(
                f"The agent argument must be a JSON object, not {type(argument).__name__}.",
                hint='Pass an object such as {"spreadsheetUrl": "...", "numberOfProfiles": 10}.',
            )
        try:
            json.dumps(argument)
        except (TypeError, ValueError) as exc:
            raise InputError(f"The agent argument cannot be sent as JSON: {exc}.") from None
        body: dict[str, Any] = {"id": agent_id}
        if argument:
            body["bonusArgument" if merge else "argument"] = dict(argument)
        # POST keeps the default rule: repeated after a 429 or when never sent (nothing ran), never after a
        # 5xx or a timeout, since the first launch may have started a paid run.
        answer = await self._call("POST", "/agents/launch", json=body)
        container_id = answer.get("containerId") if isinstance(answer, dict) else None
        if not isinstance(container_id, str | int) or not str(container_id):
            raise _unexpected("POST /agents/launch", "a containerId", answer)
        return str(container_id)

    async def wait(self, container_id: str, *, max_wait: float, on_poll: OnPoll | None = None) -> Container:
        """Poll a container until it ends or `max_wait` seconds pass; `on_poll(container, waited)` each time."""
        started = time.monotonic()
        while True:
            container = await self.container(container_id)
            waited = time.monotonic() - started
            if on_poll is not None:
                await on_poll(container, waited)
            if container.done or waited >= max_wait:
                return container
            await anyio.sleep(max(min(self.poll_seconds, max_wait - waited), 0.0))


def _unexpected(where: str, wanted: str, body: Any) -> BackendError:
    start = json.dumps(body, default=str)[:80]
    return BackendError(
        f"{VENDOR} answered {where} without {wanted} (it sent {start!r}).",
        hint=f"Check {BASE_URL_VARIABLE} (a proxy may answer instead); if it is right, try again later.",
    )
