"""Apify's REST API v2: store search, actor runs (synchronous or polled, aborted on cancel), dataset items, runs.

Every run starts paid work, so `run_actor` passes the write gate first and always sends a cost cap
(`maxTotalChargeUsd`), a memory size and a timeout. A run started here is aborted if the caller cancels.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import httpx

from sophia_shared.errors import BackendError, InputError, SophiaError
from sophia_shared.gate import require_write
from sophia_shared.http import DEFAULT_RETRY, DEFAULT_TIMEOUT, LazyClient, RetryPolicy, request_json
from sophia_shared.settings import Settings

from ..names import APIFY_DATASET_ITEMS, APIFY_RUNS
from ..settings import SERVER_KEY

log = logging.getLogger(__name__)

VENDOR = "Apify"
KEY_VARIABLE = "APIFY_API_TOKEN"
BASE_URL_VARIABLE = "SOPHIA_APIFY_BASE_URL"
DEFAULT_BASE_URL = "https://api.apify.com"

STATUSES = ("READY", "RUNNING", "SUCCEEDED", "FAILED", "TIMING-OUT", "TIMED-OUT", "ABORTING", "ABORTED")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
SYNC_MAX_SECONDS = 60  # runs limited to this go through run-sync-get-dataset-items, one request
MAX_WAIT_FOR_FINISH = 60  # the API's ceiling for `waitForFinish`
FINISH_GRACE_SECONDS = 120  # start-up and wind-down beyond the run's own timeout before we stop waiting
ABORT_SECONDS = 10  # how long a cancelled call may spend aborting its run
MAX_READ_BYTES = 10_000_000  # one page of dataset items; more means the caller should ask for fewer
MIN_MEMORY_MBYTES, MAX_MEMORY_MBYTES = 128, 32768
MAX_PAGE = 1000  # the API's own ceiling for `limit`

_NAME_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_ACTOR_NAME = re.compile(rf"^({_NAME_PART})[~/]({_NAME_PART})$")
_PLAIN_ID = re.compile(r"^[A-Za-z0-9]{10,32}$")
_STORE_URL = re.compile(r"^https?://(?:www\.|console\.)?apify\.com/(?:actors/)?", re.IGNORECASE)
_STORAGE_ID = re.compile(rf"^(?:{_NAME_PART}~)?{_NAME_PART}$")


def normalise_actor_id(actor: str) -> str:
    """`apify/web-scraper`, `apify~web-scraper`, its store URL or a plain id → the API's `apify~web-scraper` form."""
    text = _STORE_URL.sub("", actor.strip()).strip("/")
    named = _ACTOR_NAME.match(text)
    if named:
        return f"{named.group(1)}~{named.group(2)}"
    if _PLAIN_ID.match(text):
        return text
    raise InputError(
        f"{actor!r} is not an Apify actor id.",
        hint="Use 'username/actor-name' as the store shows it (e.g. 'apify/web-scraper'), 'username~actor-name', "
        "or the actor's id.",
    )


def check_storage_id(value: str, what: str) -> str:
    """A dataset or run id (or `username~name` of a named dataset), safe to put in a URL path."""
    if not _STORAGE_ID.match(value.strip()):
        raise InputError(
            f"{value!r} is not an Apify {what} id.", hint=f"Pass the {what} id exactly as a previous result gave it."
        )
    return value.strip()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _numbers(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): n for k, v in value.items() if (n := _number(v)) is not None}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# -- what the API returns, as we use it --------------------------------------------------------------


@dataclass(frozen=True)
class ApifyRun:
    """One actor run: where it stands and what it cost so far (`usage_total_usd` None when Apify did not say)."""

    id: str
    actor_id: str
    status: str
    status_message: str
    started_at: str
    finished_at: str
    dataset_id: str
    usage_total_usd: float | None
    usage: dict[str, float] = field(default_factory=dict)  # ACTOR_COMPUTE_UNITS, DATASET_WRITES, …
    usage_usd: dict[str, float] = field(default_factory=dict)  # the same, in USD (run owners only)
    charged_events: dict[str, float] = field(default_factory=dict)  # pay-per-event actors
    timeout_seconds: float | None = None
    memory_mbytes: float | None = None
    max_total_charge_usd: float | None = None
    run_seconds: float | None = None
    compute_units: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def of(cls, data: Any) -> ApifyRun:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise BackendError(
                f"{VENDOR} answered with a run that has no id.",
                hint="Check SOPHIA_APIFY_BASE_URL; if it is right, Apify sent a broken answer: try again later.",
            )
        options = _mapping(data.get("options"))
        stats = _mapping(data.get("stats"))
        return cls(
            id=data["id"],
            actor_id=_text(data.get("actId")),
            status=_text(data.get("status")) or "UNKNOWN",
            status_message=_text(data.get("statusMessage")),
            started_at=_text(data.get("startedAt")),
            finished_at=_text(data.get("finishedAt")),
            dataset_id=_text(data.get("defaultDatasetId")),
            usage_total_usd=_number(data.get("usageTotalUsd")),
            usage=_numbers(data.get("usage")),
            usage_usd=_numbers(data.get("usageUsd")),
            charged_events=_numbers(data.get("chargedEventCounts")),
            timeout_seconds=_number(options.get("timeoutSecs")),
            memory_mbytes=_number(options.get("memoryMbytes")),
            max_total_charge_usd=_number(options.get("maxTotalChargeUsd")),
            run_seconds=_number(stats.get("runTimeSecs")),
            compute_units=_number(stats.get("computeUnits")),
        )


@dataclass(frozen=True)
class StoreActor:
    """An actor as Apify Store lists it; `actor_id` is `username/name`, the form `run_actor` takes."""

    actor_id: str
    title: str
    description: str
    categories: list[str]
    pricing_model: str
    price_per_unit_usd: float | None
    unit_name: str
    event_prices_usd: dict[str, float]
    minimal_max_charge_usd: float | None
    users_30_days: int
    total_runs: int
    rating: float | None
    url: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> StoreActor:
        stats = _mapping(data.get("stats"))
        pricing = _mapping(data.get("currentPricingInfo"))
        events = _mapping(pricing.get("pricingPerEvent"))
        per_event = _mapping(events.get("actorChargeEvents"))
        event_prices = {
            str(name): price
            for name, event in per_event.items()
            if isinstance(event, Mapping) and (price := _number(event.get("eventPriceUsd"))) is not None
        }
        categories = data.get("categories")
        return cls(
            actor_id=f"{_text(data.get('username'))}/{_text(data.get('name'))}",
            title=_text(data.get("title")),
            description=_text(data.get("description")),
            categories=[str(c) for c in categories] if isinstance(categories, list) else [],
            pricing_model=_text(pricing.get("pricingModel")) or "UNKNOWN",
            price_per_unit_usd=_number(pricing.get("pricePerUnitUsd")),
            unit_name=_text(pricing.get("unitName")),
            event_prices_usd=event_prices,
            minimal_max_charge_usd=_number(pricing.get("minimalMaxTotalChargeUsd")),
            users_30_days=int(_number(stats.get("totalUsers30Days")) or 0),
            total_runs=int(_number(stats.get("totalRuns")) or 0),
            rating=_number(data.get("actorReviewRating")) or _number(stats.get("actorReviewRating")),
            url=_text(data.get("url")),
        )


@dataclass(frozen=True)
class Listing:
    """One page of an Apify list endpoint (`{data: {total, offset, count, items}}`)."""

    items: list[Mapping[str, Any]]
    total: int
    offset: int

    @property
    def more(self) -> bool:
        return self.offset + len(self.items) < self.total


@dataclass(frozen=True)
class ItemsPage:
    """Dataset items from `offset`; `more` says whether the dataset holds items after them."""

    items: list[Any]
    offset: int
    more: bool


@dataclass(frozen=True)
class RunLimits:
    """What a run may spend: Apify stops it at `timeout_seconds` and stops charging at `max_total_charge_usd`."""

    timeout_seconds: int
    memory_mbytes: int
    max_total_charge_usd: float
    max_items: int = 0  # 0: no cap on charged items (pay-per-result actors)
    build: str = ""  # "": the actor's default build (usually `latest`)

    def checked(self) -> RunLimits:
        if self.timeout_seconds < 1:
            raise InputError("timeout_seconds must be at least 1.", hint="Give the run a time limit in seconds.")
        memory = self.memory_mbytes
        if memory and (memory < MIN_MEMORY_MBYTES or memory > MAX_MEMORY_MBYTES or memory & (memory - 1)):
            raise InputError(
                f"memory_mbytes={memory} is not a size Apify runs with.",
                hint=f"Use a power of 2 from {MIN_MEMORY_MBYTES} to {MAX_MEMORY_MBYTES} (e.g. 1024, 4096), "
                "or 0 for the actor's default.",
            )
        if self.max_total_charge_usd <= 0:
            raise InputError(
                "max_total_charge_usd must be above 0: it is the most the run may cost.",
                hint="Pass the most you are willing to pay for this run, in US dollars (e.g. 1.0).",
            )
        if self.max_items < 0:
            raise InputError("max_items cannot be negative.", hint="Use 0 for no item cap.")
        return self

    def params(self) -> dict[str, str]:
        params = {"timeout": str(self.timeout_seconds), "maxTotalChargeUsd": f"{self.max_total_charge_usd:g}"}
        if self.memory_mbytes:
            params["memory"] = str(self.memory_mbytes)
        if self.max_items:
            params["maxItems"] = str(self.max_items)
        if self.build:
            params["build"] = self.build
        return params


@dataclass(frozen=True)
class RunOutcome:
    """What `run_actor` saw: the run (None when a synchronous run's record could not be read), the first items."""

    mode: str  # "sync" (one request) or "async" (started, then polled)
    run: ApifyRun | None
    items: ItemsPage | None
    items_error: str = ""  # why the items could not be read, when the run itself went fine


# Called with the run as last seen and the seconds since it started; reports MCP progress in the tool.
StatusCallback = Callable[[ApifyRun, float], Awaitable[None]]


class ApifyClient:
    """Async Apify client over `request_json`; one per server, made on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_wait_for_finish: float = MAX_WAIT_FOR_FINISH,
        finish_grace_seconds: float = FINISH_GRACE_SECONDS,
    ) -> None:
        self._settings = settings
        self._timeout = timeout
        self._max_wait = max_wait_for_finish
        self._grace = finish_grace_seconds
        self._http = LazyClient(
            settings, BASE_URL_VARIABLE, DEFAULT_BASE_URL, timeout=timeout, retry=retry, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _client(self) -> httpx.AsyncClient:
        return await self._http.get()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return await request_json(
            await self._client(), self._settings, method, path, vendor=VENDOR, key_variable=KEY_VARIABLE, **kwargs
        )

    async def _data(self, method: str, path: str, **kwargs: Any) -> Mapping[str, Any]:
        """The `data` object of Apify's `{data: …}` envelope."""
        body = await self._call(method, path, **kwargs)
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, Mapping):
            raise BackendError(
                f"{VENDOR} answered {method} {path} without the expected {{data: …}} object.",
                hint="Check SOPHIA_APIFY_BASE_URL; if it is right, Apify sent a broken answer: try again later.",
            )
        return data

    async def _listing(self, path: str, params: Mapping[str, str]) -> Listing:
        data = await self._data("GET", path, params=params)
        items = data.get("items")
        if not isinstance(items, list):
            raise BackendError(f"{VENDOR} answered GET {path} without a list of items.")
        offset, total = _number(data.get("offset")), _number(data.get("total"))
        kept = [i for i in items if isinstance(i, Mapping)]
        return Listing(kept, int(total) if total is not None else len(kept), int(offset or 0))

    # -- store ---------------------------------------------------------------------------------------

    async def search_store(
        self,
        query: str,
        *,
        offset: int = 0,
        limit: int = 10,
        sort_by: str = "relevance",
        category: str = "",
        username: str = "",
        pricing_model: str = "",
    ) -> tuple[list[StoreActor], Listing]:
        """Public actors in Apify Store matching `query` (title, name, description, username, readme)."""
        params = {"offset": str(offset), "limit": str(limit), "sortBy": sort_by}
        for name, value in (("search", query), ("category", category), ("username", username)):
            if value.strip():
                params[name] = value.strip()
        if pricing_model:
            params["pricingModel"] = pricing_model
        listing = await self._listing("/v2/store", params)
        return [StoreActor.of(i) for i in listing.items], listing

    # -- runs ----------------------------------------------------------------------------------------

    async def run_actor(
        self,
        actor: str,
        actor_input: Mapping[str, Any],
        limits: RunLimits,
        *,
        items_limit: int = 20,
        on_status: StatusCallback | None = None,
    ) -> RunOutcome:
        """Run an actor and return its first `items_limit` items (paid work: the write gate is checked first).

        A run limited to `SYNC_MAX_SECONDS` is one `run-sync-get-dataset-items` request; a longer one is
        started, then polled with `waitForFinish`, calling `on_status` after each answer, and aborted if
        this call is cancelled.
        """
        actor_id = normalise_actor_id(actor)
        limits = limits.checked()
        require_write(self._settings, SERVER_KEY, f"start a paid run of Apify actor {actor_id}")
        if limits.timeout_seconds <= SYNC_MAX_SECONDS:
            return await self._run_sync(actor_id, actor_input, limits, items_limit)
        run = await self.start_run(actor_id, actor_input, limits)
        try:
            run = await self.wait_for_run(run, until=limits.timeout_seconds + self._grace, on_status=on_status)
        except anyio.get_cancelled_exc_class():
            await self._abort_after_cancel(run.id)
            raise
        except SophiaError as exc:
            raise type(exc)(
                f"Apify run {run.id} of {actor_id} was started, but following it failed: {exc.message}",
                hint=f"The run may still be going; check it with {APIFY_RUNS} (run_id={run.id!r}). {exc.hint}",
            ) from exc
        if not run.finished:
            return RunOutcome("async", run, None)
        try:
            page = await self.dataset_items(run.dataset_id, offset=0, limit=items_limit)
        except SophiaError as exc:
            return RunOutcome("async", run, None, items_error=exc.message)
        return RunOutcome("async", run, page)

    async def _run_sync(
        self, actor_id: str, actor_input: Mapping[str, Any], limits: RunLimits, items_limit: int
    ) -> RunOutcome:
        path = f"/v2/actors/{quote(actor_id, safe='~')}/run-sync-get-dataset-items"
        params = {**limits.params(), "format": "json", "clean": "true", "limit": str(items_limit + 1)}
        try:
            body = await self._call(
                "POST",
                path,
                params=params,
                json=dict(actor_input),
                idempotent=False,  # a repeated POST would start (and pay for) a second run
                timeout=httpx.Timeout(limits.timeout_seconds + FINISH_GRACE_SECONDS, connect=5.0),
                max_bytes=MAX_READ_BYTES,
            )
        except BackendError as exc:
            if "HTTP 408" not in exc.message:
                raise
            raise BackendError(
                f"Apify run of {actor_id} did not finish within the synchronous limit: {exc.message}",
                hint=f"Run it again with timeout_seconds above {SYNC_MAX_SECONDS}: longer runs are followed with "
                f"progress and can be cancelled; {APIFY_RUNS} shows the run that timed out.",
            ) from exc
        if not isinstance(body, list):
            raise BackendError(
                f"{VENDOR} answered the run of {actor_id} with something other than a list of items.",
                hint="Check SOPHIA_APIFY_BASE_URL; if it is right, Apify sent a broken answer.",
            )
        items = ItemsPage(body[:items_limit], 0, len(body) > items_limit)
        # The items answer names no run: the actor's last run is this one unless another started meanwhile.
        try:
            run: ApifyRun | None = await self.last_run(actor_id)
        except SophiaError as exc:
            log.info("Apify run of %s: could not read its last run for the cost: %s", actor_id, exc.message)
            run = None
        return RunOutcome("sync", run, items)

    async def start_run(self, actor_id: str, actor_input: Mapping[str, Any], limits: RunLimits) -> ApifyRun:
        """Start a run without waiting (paid work: checks the write gate again, so no caller can skip it)."""
        require_write(self._settings, SERVER_KEY, f"start a paid run of Apify actor {actor_id}")
        data = await self._data(
            "POST",
            f"/v2/actors/{quote(actor_id, safe='~')}/runs",
            params=limits.params(),
            json=dict(actor_input),
            idempotent=False,
        )
        run = ApifyRun.of(data)
        log.info("Apify run %s of %s started (%s)", run.id, actor_id, run.status)
        return run

    async def wait_for_run(self, run: ApifyRun, *, until: float, on_status: StatusCallback | None = None) -> ApifyRun:
        """Poll the run with `waitForFinish` until it ends or `until` seconds pass; returns it as last seen."""
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            if on_status is not None:
                await on_status(run, elapsed)
            if run.finished or elapsed >= until:
                return run
            wait = max(1, int(min(self._max_wait, until - elapsed)))
            run = await self.get_run(run.id, wait_for_finish=wait)

    async def get_run(self, run_id: str, *, wait_for_finish: int = 0) -> ApifyRun:
        """One run with its usage and cost; `wait_for_finish` (≤ 60 s) lets Apify hold the answer until it ends."""
        params = {"waitForFinish": str(wait_for_finish)} if wait_for_finish else {}
        timeout = httpx.Timeout(wait_for_finish + 30.0, connect=5.0) if wait_for_finish else self._timeout
        data = await self._data(
            "GET", f"/v2/actor-runs/{check_storage_id(run_id, 'run')}", params=params, timeout=timeout
        )
        return ApifyRun.of(data)

    async def last_run(self, actor: str) -> ApifyRun:
        actor_id = normalise_actor_id(actor)
        return ApifyRun.of(await self._data("GET", f"/v2/actors/{quote(actor_id, safe='~')}/runs/last"))

    async def abort_run(self, run_id: str) -> ApifyRun:
        """Abort a run; Apify stops charging for it."""
        path = f"/v2/actor-runs/{check_storage_id(run_id, 'run')}/abort"
        return ApifyRun.of(await self._data("POST", path, idempotent=True))

    async def _abort_after_cancel(self, run_id: str) -> None:
        # Shielded: the cancellation that brought us here must not also cancel the abort.
        with anyio.CancelScope(shield=True), anyio.move_on_after(ABORT_SECONDS):
            try:
                await self.abort_run(run_id)
                log.info("Apify run %s aborted because the call was cancelled", run_id)
            except SophiaError as exc:
                log.warning("Apify run %s: abort after cancellation failed: %s", run_id, exc.message)

    async def list_runs(
        self, actor: str = "", *, offset: int = 0, limit: int = 10, statuses: Sequence[str] = ()
    ) -> tuple[list[ApifyRun], Listing]:
        """Runs newest first: of one actor, or of the whole account when `actor` is empty."""
        path = f"/v2/actors/{quote(normalise_actor_id(actor), safe='~')}/runs" if actor.strip() else "/v2/actor-runs"
        params = {"offset": str(offset), "limit": str(limit), "desc": "1"}
        if statuses:
            params["status"] = ",".join(statuses)
        listing = await self._listing(path, params)
        return [ApifyRun.of(i) for i in listing.items], listing

    # -- datasets ------------------------------------------------------------------------------------

    async def dataset_items(
        self, dataset_id: str, *, offset: int = 0, limit: int = 50, fields: Sequence[str] = ()
    ) -> ItemsPage:
        """Up to `limit` items from `offset` (`clean`: no hidden fields or empty items)."""
        if not 1 <= limit <= MAX_PAGE - 1:
            raise InputError(f"A page holds 1 to {MAX_PAGE - 1} items.")
        params = {"offset": str(offset), "limit": str(limit + 1), "format": "json", "clean": "true"}
        if fields:
            params["fields"] = ",".join(f.strip() for f in fields if f.strip())
        path = f"/v2/datasets/{check_storage_id(dataset_id, 'dataset')}/items"
        try:
            body = await self._call("GET", path, params=params, max_bytes=MAX_READ_BYTES)
        except BackendError as exc:
            if "refusing to read further" not in exc.message:
                raise
            raise BackendError(
                exc.message,
                hint=f"Call {APIFY_DATASET_ITEMS} with a smaller page_size, or name only the fields you need.",
            ) from exc
        if not isinstance(body, list):
            raise BackendError(
                f"{VENDOR} answered GET {path} with something other than a list of items.",
                hint="Check SOPHIA_APIFY_BASE_URL; if it is right, Apify sent a broken answer.",
            )
        return ItemsPage(body[:limit], offset, len(body) > limit)
