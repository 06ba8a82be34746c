"""A fake Apify API v2, built from `specs/apify/openapi/` (the store, actor runs, run objects, dataset items).

Runs follow a script: each `GET /v2/actor-runs/{id}` moves a run to its next status, so a test decides how
many polls a run takes; a run scripted to hang stays RUNNING (answering after a short wait, as
`waitForFinish` does) until aborted. Paths are served under `/v2/actors/…` and the deprecated `/v2/acts/…`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import anyio

from tests.fakes.vendor_app import Call, Reply, VendorApp

TOKEN = "apify_api_fake-token-0123456789"
USER_ID = "7sT5jcggjjA9fNcxF"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"}
_ERROR_TYPES = {  # the spec's ErrorType enum values for the statuses the fault switches inject
    400: "invalid-input",
    401: "invalid-token",
    402: "not-enough-usage-to-run-paid-actor",
    403: "insufficient-permissions",
    404: "record-not-found",
    405: "method-not-allowed",
    408: "run-timeout-exceeded",
    429: "rate-limit-exceeded",
}


@dataclass
class FakeActor:
    """An actor in the fake account and store: what its runs produce and how their statuses go."""

    id: str
    username: str
    name: str
    title: str
    description: str
    items: list[Any]
    script: list[str] = field(default_factory=lambda: ["RUNNING", "SUCCEEDED"])  # one status per poll
    cost_usd: float = 0.0123
    pricing: dict[str, Any] = field(default_factory=lambda: {"pricingModel": "FREE"})
    categories: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.username}~{self.name}"


class FakeApify(VendorApp):
    """The Apify API as the spec describes it, in memory."""

    def __init__(self, *, hang_wait: float = 0.05) -> None:
        super().__init__()
        self.actors: dict[str, FakeActor] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, list[Any]] = {}
        self._scripts: dict[str, list[str]] = {}
        self._ids = itertools.count(1)
        self._clock = itertools.count(0)
        self.hang_wait = hang_wait  # how long a still-RUNNING run holds a waitForFinish answer
        self.sync_timeout = False  # answer run-sync-get-dataset-items with 408 run-timeout-exceeded
        for prefix in ("/v2/actors", "/v2/acts"):  # `acts` is deprecated but still served
            self.route("POST", prefix + "/{actor}/runs", self._start)
            self.route("GET", prefix + "/{actor}/runs", self._actor_runs)
            self.route("GET", prefix + "/{actor}/runs/last", self._last_run)
            self.route("POST", prefix + "/{actor}/run-sync-get-dataset-items", self._run_sync)
        self.route("GET", "/v2/store", self._store)
        self.route("GET", "/v2/actor-runs", self._all_runs)
        self.route("GET", "/v2/actor-runs/{run}", self._get_run)
        self.route("POST", "/v2/actor-runs/{run}/abort", self._abort)
        self.route("GET", "/v2/datasets/{dataset}/items", self._items)

    # -- set-up ----------------------------------------------------------------------------------

    def add_actor(self, username: str, name: str, items: list[Any] | None = None, **kwargs: Any) -> FakeActor:
        actor = FakeActor(
            id=f"act{next(self._ids):014d}",
            username=username,
            name=name,
            title=kwargs.pop("title", name.replace("-", " ").title()),
            description=kwargs.pop("description", f"Scrapes things with {name}."),
            items=list(items or []),
            **kwargs,
        )
        self.actors[actor.full_name] = actor
        self.actors[actor.id] = actor
        return actor

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        kind = code if "/" not in code else _ERROR_TYPES.get(status, "internal-server-error")
        headers = {"X-RateLimit-Limit": "60"} if status == 429 else {}
        return Reply(status, {"error": {"type": kind, "message": message}}, headers=headers)

    # -- helpers ---------------------------------------------------------------------------------

    def _authorised(self, call: Call) -> Reply | None:
        header = call.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else call.query.get("token", "")
        if not token:
            return self.error_reply(401, "token-not-provided", "Authentication token was not provided")
        return None

    def _actor(self, call: Call) -> FakeActor | Reply:
        actor = self.actors.get(call.params["actor"])
        if actor is None:
            return self.error_reply(404, "actor-not-found", "Actor was not found")
        return actor

    def _new_run(self, actor: FakeActor, call: Call, status: str) -> dict[str, Any]:
        number = next(self._ids)
        run_id, dataset_id = f"run{number:014d}", f"ds{number:015d}"
        options: dict[str, Any] = {
            "build": call.query.get("build", "latest"),
            "timeoutSecs": int(float(call.query.get("timeout", 3600))),
            "memoryMbytes": int(float(call.query.get("memory", 4096))),
            "diskMbytes": 8192,
        }
        if "maxTotalChargeUsd" in call.query:
            options["maxTotalChargeUsd"] = float(call.query["maxTotalChargeUsd"])
        if "maxItems" in call.query:
            options["maxItems"] = int(float(call.query["maxItems"]))
        run = {
            "id": run_id,
            "actId": actor.id,
            "userId": USER_ID,
            "actorTaskId": None,
            "startedAt": f"2026-08-01T10:{next(self._clock) % 60:02d}:00.000Z",
            "finishedAt": None,
            "status": status,
            "statusMessage": "Starting the crawler",
            "isStatusMessageTerminal": False,
            "meta": {"origin": "API", "userAgent": call.headers.get("user-agent", "")},
            "stats": {"inputBodyLen": len(call.body), "restartCount": 0, "resurrectCount": 0, "computeUnits": 0},
            "options": options,
            "buildId": "7sT5jcggjjA9fNcxF",
            "buildNumber": "0.0.36",
            "exitCode": None,
            "generalAccess": "FOLLOW_USER_SETTING",
            "defaultKeyValueStoreId": f"kv{number:015d}",
            "defaultDatasetId": dataset_id,
            "defaultRequestQueueId": f"rq{number:015d}",
            "usageTotalUsd": 0.0,
            "usage": {"ACTOR_COMPUTE_UNITS": 0.0, "DATASET_WRITES": 0},
            "usageUsd": {"ACTOR_COMPUTE_UNITS": 0.0, "DATASET_WRITES": 0.0},
            "input": call.json,  # not part of the run object: kept so tests can see what was sent
        }
        self.runs[run_id] = run
        self.datasets[dataset_id] = []
        self._scripts[run_id] = list(actor.script)
        if status in TERMINAL:
            self._finish(run, actor, status)
        return run

    def _finish(self, run: dict[str, Any], actor: FakeActor, status: str) -> None:
        run.update(
            status=status,
            finishedAt="2026-08-01T10:59:00.000Z",
            statusMessage="Finished" if status == "SUCCEEDED" else f"Run {status.lower()}",
            isStatusMessageTerminal=True,
            exitCode=0 if status == "SUCCEEDED" else 1,
            usageTotalUsd=actor.cost_usd,
            usage={"ACTOR_COMPUTE_UNITS": 0.0417, "DATASET_WRITES": len(actor.items)},
            usageUsd={
                "ACTOR_COMPUTE_UNITS": round(actor.cost_usd * 0.9, 6),
                "DATASET_WRITES": round(actor.cost_usd * 0.1, 6),
            },
            stats={**run["stats"], "runTimeSecs": 12.5, "durationMillis": 12500, "computeUnits": 0.0417},
        )
        if status in ("SUCCEEDED", "ABORTED"):
            self.datasets[run["defaultDatasetId"]] = list(actor.items)

    @staticmethod
    def _public(run: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in run.items() if k != "input"}

    @staticmethod
    def _short(run: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "actId", "userId", "actorTaskId", "status", "startedAt", "finishedAt", "buildId",
                "buildNumber", "meta", "usageTotalUsd", "defaultKeyValueStoreId", "defaultDatasetId",
                "defaultRequestQueueId")  # fmt: skip
        return {k: run[k] for k in keys}

    @staticmethod
    def _listing(items: list[Any], call: Call, *, desc: bool) -> dict[str, Any]:
        offset = int(float(call.query.get("offset", 0)))
        limit = min(int(float(call.query.get("limit", 1000))), 1000)
        page = items[offset : offset + limit]
        return {"data": {"total": len(items), "offset": offset, "limit": limit, "count": len(page), "desc": desc,
                         "items": page}}  # fmt: skip

    def _runs_listing(self, runs: list[dict[str, Any]], call: Call) -> dict[str, Any]:
        statuses = [s for s in call.query.get("status", "").split(",") if s]
        chosen = [r for r in runs if not statuses or r["status"] in statuses]
        desc = call.query.get("desc") in ("1", "true")
        ordered = sorted(chosen, key=lambda r: (r["startedAt"], r["id"]), reverse=desc)
        return self._listing([self._short(r) for r in ordered], call, desc=desc)

    # -- routes ----------------------------------------------------------------------------------

    def _store(self, call: Call) -> Any:
        words = call.query.get("search", "").lower()
        seen: dict[str, FakeActor] = {a.id: a for a in self.actors.values()}
        found = [
            a
            for a in seen.values()
            if words in f"{a.title} {a.name} {a.description} {a.username}".lower()
            and call.query.get("username", a.username) == a.username
            and call.query.get("category", "") in ("", *a.categories)
            and call.query.get("pricingModel", a.pricing["pricingModel"]) == a.pricing["pricingModel"]
        ]
        items = [
            {
                "id": a.id,
                "title": a.title,
                "name": a.name,
                "username": a.username,
                "userFullName": a.username.title(),
                "description": a.description,
                "categories": a.categories,
                "pictureUrl": None,
                "userPictureUrl": None,
                "url": f"https://apify.com/{a.username}/{a.name}",
                "stats": {"totalBuilds": 9, "totalRuns": 1600, "totalUsers": 60, "totalUsers30Days": 42},
                "currentPricingInfo": a.pricing,
                "actorReviewRating": 4.5,
            }
            for a in found
        ]
        return self._listing(items, call, desc=False)

    def _start(self, call: Call) -> Reply:
        actor = self._actor(call)
        if isinstance(actor, Reply):
            return actor
        run = self._new_run(actor, call, "READY")
        return Reply(201, {"data": self._public(run)})

    def _run_sync(self, call: Call) -> Reply:
        actor = self._actor(call)
        if isinstance(actor, Reply):
            return actor
        if self.sync_timeout:
            self._new_run(actor, call, "RUNNING")
            return self.error_reply(
                408, "run-timeout-exceeded", "Actor run exceeded the timeout of 300 seconds for this API endpoint"
            )
        run = self._new_run(actor, call, "SUCCEEDED")
        return self._items_reply(self.datasets[run["defaultDatasetId"]], call, status=201)

    async def _get_run(self, call: Call) -> Reply:
        run = self.runs.get(call.params["run"])
        if run is None:
            return self.error_reply(404, "record-not-found", "Actor run was not found")
        script = self._scripts[run["id"]]
        if run["status"] not in TERMINAL:
            if script:
                status = script.pop(0)
                actor = self.actors[run["actId"]]
                if status in TERMINAL:
                    self._finish(run, actor, status)
                else:
                    run.update(status=status, statusMessage=f"Crawled {len(script) + 1} pages")
            elif float(call.query.get("waitForFinish", 0)) > 0:
                await anyio.sleep(self.hang_wait)
        return Reply(200, {"data": self._public(run)})

    def _abort(self, call: Call) -> Reply:
        run = self.runs.get(call.params["run"])
        if run is None:
            return self.error_reply(404, "record-not-found", "Actor run was not found")
        if run["status"] not in TERMINAL:
            self._finish(run, self.actors[run["actId"]], "ABORTED")
        return Reply(200, {"data": self._public(run)})

    def _last_run(self, call: Call) -> Reply:
        actor = self._actor(call)
        if isinstance(actor, Reply):
            return actor
        mine = [r for r in self.runs.values() if r["actId"] == actor.id]
        if not mine:
            return self.error_reply(404, "record-not-found", "Actor run was not found")
        return Reply(200, {"data": self._public(max(mine, key=lambda r: (r["startedAt"], r["id"])))})

    def _actor_runs(self, call: Call) -> Any:
        actor = self._actor(call)
        if isinstance(actor, Reply):
            return actor
        return self._runs_listing([r for r in self.runs.values() if r["actId"] == actor.id], call)

    def _all_runs(self, call: Call) -> Any:
        return self._runs_listing(list(self.runs.values()), call)

    def _items(self, call: Call) -> Reply:
        items = self.datasets.get(call.params["dataset"])
        if items is None:
            return self.error_reply(404, "record-not-found", "Dataset was not found")
        return self._items_reply(items, call, status=200)

    @staticmethod
    def _items_reply(items: list[Any], call: Call, *, status: int) -> Reply:
        offset = int(float(call.query.get("offset", 0)))
        limit = int(float(call.query.get("limit", 1000)))
        fields = [f for f in call.query.get("fields", "").split(",") if f]
        page = items[offset : offset + limit]
        if fields:
            page = [{k: v for k, v in i.items() if k in fields} for i in page]
        headers = {
            "X-Apify-Pagination-Offset": str(offset),
            "X-Apify-Pagination-Limit": str(limit),
            "X-Apify-Pagination-Count": str(len(page)),
            "X-Apify-Pagination-Total": str(len(items)),
        }
        return Reply(status, page, headers=headers)

    async def _route(self, call: Call) -> Reply:
        refused = self._authorised(call)
        return refused if refused is not None else await super()._route(call)
