"""A fake PhantomBuster API v2 built from `specs/phantombuster/swagger-api-v2.json`.

Agents launch into containers that move starting → running → finished over a scripted number of
`containers/fetch` polls, with a console output and a result object. The launch body is checked
against the spec's request schema, so a request the vendor would refuse is refused here too.
Errors use the `{"status": "error", "error": …}` body PhantomBuster sends (the spec gives none).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from tests.fakes.specs import spec_path
from tests.fakes.vendor_app import Call, Handler, Reply, VendorApp

VALID_KEY = "pb-key-0123456789abcdef"
API = "/api/v2"
KEY_HEADERS = ("x-phantombuster-key", "x-phantombuster-key-1")  # the spec's name, and the one many clients send


@functools.cache
def swagger() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(spec_path("phantombuster", "swagger-api-v2.json").read_text(encoding="utf-8"))
    return loaded


def as_json_schema(schema: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: `nullable: true` becomes a null alternative; `x-` keys are dropped."""
    if isinstance(schema, list):
        return [as_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: as_json_schema(v) for k, v in schema.items() if not k.startswith("x-") and k != "nullable"}
    if schema.get("nullable"):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "type" not in out and "enum" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def response_validator(method: str, path: str, status: str = "200") -> jsonschema.protocols.Validator:
    """A validator for the JSON answer the spec documents for `method path`."""
    response = swagger()["paths"][path][method.lower()]["responses"][status]
    return jsonschema.Draft4Validator(as_json_schema(response["content"]["application/json"]["schema"]))


def request_validator(method: str, path: str) -> jsonschema.protocols.Validator:
    body = swagger()["paths"][path][method.lower()]["requestBody"]
    return jsonschema.Draft4Validator(as_json_schema(body["content"]["application/json"]["schema"]))


def now_ms() -> float:
    return float(int(time.time() * 1000))


@dataclass
class Script:
    """What the next run of an agent does: polls before it ends, its log, its result object, how it ends."""

    polls: int = 2
    output: str = "Phantom started\nScraped 2 profiles\nDone.\n"
    result_object: str | None = '[{"name": "Ada Lovelace", "url": "https://example.org/ada"}]'
    exit_code: int = 0
    status: str = "finished"  # or "launch error"
    progress: float = 0.5
    progress_label: str = "Scraping profiles"


@dataclass
class FakeContainer:
    id: str
    agent_id: str
    script: Script
    created_at: float
    polls_seen: int = 0
    launched_at: float | None = None
    ended_at: float | None = None
    argument: Any = None

    @property
    def status(self) -> str:
        if self.polls_seen >= self.script.polls:
            return self.script.status
        return "starting" if self.polls_seen == 0 else "running"

    def advance(self) -> None:
        self.polls_seen += 1
        if self.launched_at is None and self.polls_seen >= 1:
            self.launched_at = self.created_at + 1500
        if self.ended_at is None and self.status in ("finished", "launch error"):
            # A run that took 42.5 s, whatever the test's wall clock did.
            self.ended_at = (self.launched_at or self.created_at) + 42_500

    def as_json(self, *, with_output: bool, with_result: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "createdAt": self.created_at,
            "launchType": "user api call",
            "retryNumber": 0,
        }
        if self.launched_at is not None:
            body["launchedAt"] = self.launched_at
        if self.ended_at is not None:
            body["endedAt"] = self.ended_at
            body["endType"] = "finished"
            body["exitCode"] = self.script.exit_code
        if with_output:
            body["output"] = self.script.output if self.polls_seen else ""
        if with_result:
            body["resultObject"] = self.script.result_object if self.ended_at is not None else None
        return body


class FakePhantomBuster(VendorApp):
    """The fake; `agents` maps id → the agent record `agents/fetch-all` serves."""

    def __init__(self) -> None:
        super().__init__()
        self.agents: dict[str, dict[str, Any]] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.scripts: dict[str, Script] = {}
        self.out_of_execution_time = False
        self.valid_keys = {VALID_KEY}
        self._ids = itertools.count(7_000_000_000_000_001)
        routes: dict[str, Callable[[Call], Any]] = {
            "GET /agents/fetch-all": self._fetch_all,
            "POST /agents/launch": self._launch,
            "GET /agents/fetch-output": self._fetch_output,
            "GET /containers/fetch": self._fetch_container,
            "GET /containers/fetch-result-object": self._fetch_result_object,
            "GET /orgs/fetch-resources": self._fetch_resources,
        }
        for spec, handler in routes.items():
            method, path = spec.split(" ", 1)
            self.route(method, API + path, self._authenticated(handler))

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, {"status": "error", "error": message})

    # -- set-up ----------------------------------------------------------------------------------

    def add_agent(self, agent_id: str, name: str, *, script: str = "LinkedIn Profile Scraper.js") -> None:
        self.agents[agent_id] = {
            "id": agent_id,
            "name": name,
            "createdAt": now_ms() - 86_400_000,
            "script": script,
            "scriptId": "1234",
            "launchType": "manually",
            "nbContainersRunning": 0,
            "lastEndType": "finished",
            "lastEndedAt": now_ms() - 3_600_000,
            "lastExitCode": 0,
            "argument": '{"sessionCookie": "li_at-secret-cookie"}',  # served only with withArgument
        }

    def answer(self, method: str, path: str, handler: Handler) -> None:
        """Answer `method API+path` with `handler` instead of the fake's own route (for odd vendor answers)."""
        self.route(method, API + path, handler)
        self._routes.insert(0, self._routes.pop())

    def next_run(self, agent_id: str, script: Script) -> None:
        """The agent's next launch follows `script`."""
        self.scripts[agent_id] = script

    # -- routes ----------------------------------------------------------------------------------

    def _authenticated(self, handler: Handler) -> Handler:
        def check(call: Call) -> Any:
            if not any(call.headers.get(h) in self.valid_keys for h in KEY_HEADERS):
                return self.error_reply(401, "", "Unauthorized: invalid or missing API key")
            return handler(call)

        return check

    def _fetch_all(self, call: Call) -> Any:
        agents = []
        for agent in self.agents.values():
            shown = {k: v for k, v in agent.items() if k != "argument" or "withArgument" in call.query}
            running = sum(1 for c in self.containers.values() if c.agent_id == agent["id"] and c.ended_at is None)
            agents.append({**shown, "nbContainersRunning": running})
        return agents

    def _launch(self, call: Call) -> Any:
        body = call.json
        errors = sorted(request_validator("POST", "/agents/launch").iter_errors(body), key=str)
        if errors:
            return self.error_reply(400, "", f"Invalid payload provided: {errors[0].message}")
        if body["id"] not in self.agents:
            return self.error_reply(400, "", "Agent not found.")
        if self.out_of_execution_time:
            return self.error_reply(
                402, "", "Your daily execution time is exhausted. Upgrade your plan or wait for the daily reset."
            )
        container = FakeContainer(
            id=str(next(self._ids)),
            agent_id=body["id"],
            script=copy.copy(self.scripts.get(body["id"], Script())),
            created_at=now_ms(),
            argument=body.get("argument", body.get("bonusArgument")),
        )
        self.containers[container.id] = container
        return {"containerId": container.id}

    def _container(self, call: Call) -> FakeContainer | Reply:
        found = self.containers.get(call.query.get("id", ""))
        return found if found is not None else self.error_reply(404, "", "No container exists with the provided id.")

    def _fetch_container(self, call: Call) -> Any:
        found = self._container(call)
        if isinstance(found, Reply):
            return found
        found.advance()
        return found.as_json(with_output="withOutput" in call.query, with_result="withResultObject" in call.query)

    def _fetch_result_object(self, call: Call) -> Any:
        found = self._container(call)
        if isinstance(found, Reply):
            return found
        return {"resultObject": found.script.result_object if found.ended_at is not None else None}

    def _fetch_output(self, call: Call) -> Any:
        agent_id = call.query.get("id", "")
        if agent_id not in self.agents:
            return self.error_reply(404, "", "Agent not found.")
        runs = [c for c in self.containers.values() if c.agent_id == agent_id]
        if not runs:
            return {"status": "never launched", "isAgentRunning": False, "canSoftAbort": False}
        last = runs[-1]
        return {
            "containerId": last.id,
            "status": last.status,
            "output": last.script.output,
            "outputPos": len(last.script.output),
            "progress": last.script.progress,
            "progressLabel": last.script.progress_label,
            "isAgentRunning": last.ended_at is None,
            "canSoftAbort": False,
        }

    def _fetch_resources(self, call: Call) -> Any:
        plan = {
            "name": "Starter",
            "s3Storage": 10_000_000_000,
            "mongoStorage": 1_000_000,
            "parallelism": 5,
            "agents": 5,
            "scripts": 0,
            "dailyExecutionTime": 120,
            "dailyMails": 0,
            "dailyCaptchas": 0,
            "dailyDiscoveredMails": 0,
            "dailyAiCredits": 100,
            "monthlyExecutionTime": 1200,
            "monthlyAiCredits": 1000,
            "isAvailable": True,
            "isUpgradable": True,
            "duration": 1,
            "monthlyPrice": 69,
            "yearlyPrice": 56,
        }
        return {
            "dailyExecutionTime": 37,
            "dailyMail": 0,
            "dailyCaptcha": 0,
            "dailyDiscoveredMail": 0,
            "dailyAiCredit": 4,
            "dailySerpCredits": 0,
            "monthlyExecutionTime": 410,
            "monthlyMail": 0,
            "monthlyCaptcha": 0,
            "monthlyDiscoveredMail": 0,
            "monthlyAiCredit": 52,
            "monthlySerpCredits": 0,
            "s3Storage": 1_234_567,
            "agentCount": len(self.agents),
            "planName": "Starter",
            "plan": plan,
            "dailyResourceNextResetAt": now_ms() + 3_600_000,
            "monthlyResourceNextResetAt": now_ms() + 86_400_000,
        }


def fake_phantombuster() -> FakePhantomBuster:
    """A fake with two agents, the first set to finish on its second poll."""
    fake = FakePhantomBuster()
    fake.add_agent("4011762352378001", "LinkedIn profile scraper")
    fake.add_agent("4011762352378002", "Sales Navigator search export")
    return fake
