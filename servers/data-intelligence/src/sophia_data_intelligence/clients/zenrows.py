"""ZenRows: the Universal Scraper (one page, its body passed through) and the Batch API (many URLs, async jobs).

The scraper answers with the target's body, not JSON, so it has a small request path of its own here, on
`make_client`'s retrying transport and with `request_json`'s rules: the key read at send time, Pulumi ESC
re-opened once after a 401/403, errors translated by ZenRows' codes, the key never in a message. The
Batch API answers JSON and goes through `request_json`, except for a task's content, which is a body again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, quote_plus, urlsplit

import anyio
import anyio.to_thread
import httpx

from sophia_shared.errors import AuthError, BackendError, InputError, SophiaError
from sophia_shared.gate import require_write
from sophia_shared.http import (
    ATTEMPTS_EXTENSION,
    DEFAULT_RETRY,
    ApiKeyAuth,
    RetryPolicy,
    make_client,
    request_json,
    retry_after_seconds,
)
from sophia_shared.redaction import MASK
from sophia_shared.settings import Settings

from ..settings import SERVER_KEY

log = logging.getLogger(__name__)

VENDOR = "ZenRows"
KEY_VARIABLE = "ZENROWS_API_KEY"
BASE_VARIABLE = "SOPHIA_ZENROWS_BASE_URL"
BATCH_BASE_VARIABLE = "SOPHIA_ZENROWS_BATCH_BASE_URL"
DEFAULT_BASE = "https://api.zenrows.com"
DEFAULT_BATCH_BASE = "https://async.api.zenrows.com/v1"
SCRAPER_PATH = "/v1/"

MAX_WAIT_MS = 30_000  # ZenRows refuses a longer `wait`
MAX_BATCH_URLS = 1000  # one submission's `tasks`, per the Batch API spec
MAX_BODY_BYTES = 5_000_000  # what we read of one page; the rest is cut and the result says so
RESPONSE_TYPES = ("markdown", "plaintext", "html")
ResponseType = Literal["markdown", "plaintext", "html"]
RESOURCE_KINDS = frozenset(
    [
        "stylesheet",
        "image",
        "media",
        "font",
        "script",
        "texttrack",
        "xhr",
        "fetch",
        "eventsource",
        "websocket",
        "manifest",
        "other",
    ]
)
TERMINAL_RUN_STATES = frozenset({"completed", "stopped", "failed", "deleted"})

# A JS-rendered page with waits takes well over the suite's default 30 s read timeout.
SCRAPE_TIMEOUT = httpx.Timeout(180.0, connect=10.0, pool=10.0)
# One repeat at most: each attempt may take minutes, and ZenRows charges only successful requests.
SCRAPE_RETRY = RetryPolicy(max_attempts=2)
BATCH_TIMEOUT = httpx.Timeout(30.0, connect=10.0, pool=10.0)

_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_TASK_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_COUNTRY = re.compile(r"^[a-z]{2}$")
_QUOTA_CODES = frozenset({"AUTH004", "insufficient_credits", "subscription_inactive"})
_EXCERPT_CHARS = 300


# -- what a scrape asks for ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeOptions:
    """The Universal Scraper parameters we offer; hashable, so a scrape can be reused for paging."""

    response_type: ResponseType = "markdown"
    js_render: bool = False
    premium_proxy: bool = False
    proxy_country: str = ""
    adaptive: bool = False  # mode=auto: ZenRows picks rendering and proxies itself
    wait_ms: int = 0
    wait_for: str = ""
    block_resources: str = ""
    css_extractor: tuple[tuple[str, str], ...] = ()
    session_id: int = 0

    def checked(self) -> ScrapeOptions:
        """These options, or an `InputError` saying what ZenRows would refuse (before anything is paid)."""
        if self.response_type not in RESPONSE_TYPES:
            raise InputError(f"Unknown output format {self.response_type!r}.", hint="Use markdown, plaintext or html.")
        if self.adaptive and (self.js_render or self.premium_proxy):
            raise InputError(
                "Adaptive mode chooses JS rendering and premium proxies itself, so it cannot be combined with "
                "js_render or premium_proxy.",
                hint="Pass adaptive=true alone, or set js_render/premium_proxy yourself without adaptive.",
            )
        if not 0 <= self.wait_ms <= MAX_WAIT_MS:
            raise InputError(f"wait_ms must be between 0 and {MAX_WAIT_MS:,} (ZenRows' limit).")
        if (self.wait_ms or self.wait_for or self.block_resources) and not (self.js_render or self.adaptive):
            raise InputError(
                "wait_ms, wait_for and block_resources act on the rendered page, so they need js_render=true.",
                hint="Set js_render=true (JS rendering costs 5× a basic request), or drop those options.",
            )
        if self.proxy_country and not (self.premium_proxy or self.adaptive):
            raise InputError(
                "proxy_country needs premium_proxy=true: only premium (residential) proxies are geolocated.",
                hint="Set premium_proxy=true (10× a basic request), or drop proxy_country.",
            )
        if self.proxy_country and not _COUNTRY.match(self.proxy_country):
            raise InputError(
                f"proxy_country {self.proxy_country!r} is not a two-letter country code.", hint="Use e.g. us, de, gb."
            )
        kinds = {k.strip() for k in self.block_resources.split(",") if k.strip()}
        if kinds - RESOURCE_KINDS:
            raise InputError(
                f"Unknown resource kind(s) to block: {', '.join(sorted(kinds - RESOURCE_KINDS))}.",
                hint=f"Use a comma-separated list of: {', '.join(sorted(RESOURCE_KINDS))}.",
            )
        if not 0 <= self.session_id <= 99_999:
            raise InputError("session_id must be between 0 (none) and 99999.")
        for name, selector in self.css_extractor:
            if not name.strip() or not selector.strip():
                raise InputError('Every css_extractor entry needs a name and a CSS selector, e.g. {"title": "h1"}.')
        return self

    @property
    def output(self) -> str:
        """What the body is: json when a CSS extractor is given, else the response type."""
        return "json" if self.css_extractor else self.response_type

    @property
    def cost_multiplier(self) -> int:
        """ZenRows' price of one successful request, in basic requests (adaptive: its upper bound)."""
        if self.adaptive or (self.js_render and self.premium_proxy):
            return 25
        return 10 if self.premium_proxy else 5 if self.js_render else 1

    def params(self) -> dict[str, str]:
        """The documented query parameters, as strings, without the defaults ZenRows assumes."""
        params: dict[str, str] = {}
        if self.adaptive:
            params["mode"] = "auto"
        if self.js_render:
            params["js_render"] = "true"
        if self.premium_proxy:
            params["premium_proxy"] = "true"
        if self.proxy_country:
            params["proxy_country"] = self.proxy_country
        if self.wait_ms:
            params["wait"] = str(self.wait_ms)
        if self.wait_for:
            params["wait_for"] = self.wait_for
        if self.block_resources:
            params["block_resources"] = self.block_resources
        if self.css_extractor:
            params["css_extractor"] = json.dumps(dict(self.css_extractor), separators=(",", ":"))
        elif self.response_type != "html":
            params["response_type"] = self.response_type  # ignored by ZenRows next to css_extractor
        if self.session_id:
            params["session_id"] = str(self.session_id)
        return params


def check_target_url(url: str) -> str:
    """`url` if it is an absolute http(s) URL ZenRows can fetch, else an `InputError`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"{url!r} is not an absolute http(s) URL.", hint="Pass a full URL such as https://example.com/page."
        )
    if len(url) > 2048:
        raise InputError("The URL is longer than 2,048 characters, which ZenRows does not accept.")
    return url.strip()


# -- what comes back -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapedPage:
    """One page as ZenRows returned it, with what it cost."""

    url: str
    final_url: str
    status: int
    content_type: str
    text: str
    bytes_read: int
    cut: bool  # the body was longer than MAX_BODY_BYTES; the rest was not read
    request_cost: str  # X-Request-Cost as sent; "" when absent
    request_id: str
    concurrency_limit: int  # -1 when not sent
    concurrency_remaining: int
    reused: bool = False  # served from this server's recent copy: not charged again


@dataclass(frozen=True)
class BatchRun:
    """A Batch API job's latest run: where it stands and what it cost so far."""

    job_id: str
    run_status: str  # running | pending | completed | stopped | failed | deleted; "" before the first run
    total: int
    completed: int
    successful: int
    failed: int
    failure_reasons: dict[str, int] = field(default_factory=dict)
    failure_reason: str = ""  # why the run auto-failed: insufficient_credits | subscription_inactive
    credits: int = -1
    cost: float = -1.0
    output: str = ""

    @property
    def finished(self) -> bool:
        return self.run_status in TERMINAL_RUN_STATES

    @classmethod
    def of(cls, data: Mapping[str, Any], *, job_id: str = "") -> BatchRun:
        run = data.get("latest_run") or {}
        stats = run.get("stats") or {}
        spend = stats.get("spend") or {}
        return cls(
            job_id=str(data.get("job_id") or job_id),
            run_status=str(run.get("status") or ""),
            total=int(stats.get("total") or data.get("accepted_tasks") or 0),
            completed=int(stats.get("completed") or 0),
            successful=int(stats.get("successful") or 0),
            failed=int(stats.get("failed") or 0),
            failure_reasons={str(k): int(v) for k, v in (stats.get("failure_reasons") or {}).items()},
            failure_reason=str(run.get("failure_reason") or ""),
            credits=int(spend["credits"]) if "credits" in spend else -1,
            cost=float(spend["cost"]) if "cost" in spend else -1.0,
            output=str(data.get("format") or ""),
        )


@dataclass(frozen=True)
class BatchTask:
    """One URL of a batch run, without its content."""

    task_id: str
    url: str
    status: str  # pending | processing | successful | failed
    error: str  # "CODE: detail" for a failed task
    credits: int  # -1 when not reported


@dataclass(frozen=True)
class TaskContent:
    text: str
    content_type: str
    bytes_read: int
    cut: bool


ProgressCallback = Callable[[BatchRun], Awaitable[None]]


# -- the client ------------------------------------------------------------------------------------


class ZenRowsClient:
    """Async ZenRows client: `scrape` one page, or `submit_batch` → `wait_for_batch` → `batch_results`."""

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str = DEFAULT_BASE,
        batch_base_url: str = DEFAULT_BATCH_BASE,
        transport: httpx.AsyncBaseTransport | None = None,
        scrape_timeout: float | httpx.Timeout = SCRAPE_TIMEOUT,
        scrape_retry: RetryPolicy = SCRAPE_RETRY,
        batch_retry: RetryPolicy = DEFAULT_RETRY,
        poll_seconds: float = 3.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        reuse_seconds: float = 600.0,
    ) -> None:
        self._settings = settings
        self._scraper = make_client(base_url=base_url, timeout=scrape_timeout, retry=scrape_retry, transport=transport)
        self._batch = make_client(
            base_url=batch_base_url, timeout=BATCH_TIMEOUT, retry=batch_retry, transport=transport
        )
        self._poll_seconds = poll_seconds
        self._max_body_bytes = max_body_bytes
        self._reuse_seconds = reuse_seconds
        self._recent: OrderedDict[tuple[str, ScrapeOptions], tuple[float, ScrapedPage]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> ZenRowsClient:
        """A client on the configured base URLs (may open Pulumi ESC: call it off the event loop)."""
        return cls(
            settings,
            base_url=settings.get(BASE_VARIABLE) or DEFAULT_BASE,
            batch_base_url=settings.get(BATCH_BASE_VARIABLE) or DEFAULT_BATCH_BASE,
        )

    async def aclose(self) -> None:
        await self._scraper.aclose()
        await self._batch.aclose()

    # -- Universal Scraper ---------------------------------------------------------------------

    async def scrape(self, url: str, options: ScrapeOptions, *, reuse: bool = False) -> ScrapedPage:
        """Scrape one page; with `reuse`, a copy fetched in the last few minutes is returned uncharged."""
        url, options = check_target_url(url), options.checked()
        key = (url, options)
        if reuse and (kept := self._recent_copy(key)) is not None:
            return kept
        raw = await self._send(
            self._scraper, "GET", SCRAPER_PATH, auth=ApiKeyAuth.query("apikey"), params={"url": url, **options.params()}
        )
        page = ScrapedPage(
            url=url,
            final_url=raw.headers.get("Zr-Final-Url", "") or url,
            status=raw.status,
            content_type=raw.headers.get("Content-Type", "").split(";")[0].strip(),
            text=_decoded(raw.body),
            bytes_read=len(raw.body),
            cut=raw.cut,
            request_cost=raw.headers.get("X-Request-Cost", ""),
            request_id=raw.headers.get("X-Request-Id", ""),
            concurrency_limit=_int_header(raw.headers, "Concurrency-Limit"),
            concurrency_remaining=_int_header(raw.headers, "Concurrency-Remaining"),
        )
        self._remember(key, page)
        return page

    def _recent_copy(self, key: tuple[str, ScrapeOptions]) -> ScrapedPage | None:
        found = self._recent.get(key)
        if found is None or time.monotonic() - found[0] > self._reuse_seconds:
            return None
        return dataclasses.replace(found[1], reused=True)

    def _remember(self, key: tuple[str, ScrapeOptions], page: ScrapedPage) -> None:
        # A few pages only: enough to page through what was just scraped without paying again.
        self._recent[key] = (time.monotonic(), page)
        self._recent.move_to_end(key)
        while len(self._recent) > 8:
            self._recent.popitem(last=False)

    # -- Batch API -----------------------------------------------------------------------------

    async def submit_batch(self, urls: Sequence[str], options: ScrapeOptions) -> BatchRun:
        """Submit one job scraping `urls` with `options` (paid: the write gate is checked first)."""
        checked = [check_target_url(u) for u in urls]
        if not 1 <= len(checked) <= MAX_BATCH_URLS:
            raise InputError(f"A batch takes 1 to {MAX_BATCH_URLS:,} URLs; got {len(checked):,}.")
        options = options.checked()
        require_write(self._settings, SERVER_KEY, f"submit a paid ZenRows batch job of {len(checked)} URL(s)")
        body = {
            "name": "sophia scrape_batch",
            "zenrows_params": options.params(),
            "tasks": [{"url": u} for u in checked],
        }
        # A fresh key per call: ZenRows replays a claimed key's answer, and a failed one's as 409.
        data = await self._batch_json("POST", "jobs", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        return BatchRun.of(data)

    async def batch_status(self, job_id: str) -> BatchRun:
        data = await self._batch_json("GET", f"jobs/{_job_path(job_id)}")
        return BatchRun.of(data, job_id=job_id)

    async def wait_for_batch(
        self, job_id: str, *, seconds: float, on_progress: ProgressCallback | None = None
    ) -> BatchRun:
        """Poll the job until its run finishes or `seconds` pass, reporting each poll; returns the last state."""
        deadline = time.monotonic() + seconds
        while True:
            run = await self.batch_status(job_id)
            if on_progress is not None:
                await on_progress(run)
            left = deadline - time.monotonic()
            if run.finished or left <= 0:
                return run
            await anyio.sleep(min(self._poll_seconds, left))

    async def batch_results(self, job_id: str, *, cursor: str = "") -> tuple[list[BatchTask], str]:
        """One vendor page of the latest run's per-URL results and the vendor's cursor for the next ("" at the end)."""
        params = {"cursor": cursor} if cursor else {}
        data = await self._batch_json("GET", f"jobs/{_job_path(job_id)}/results", params=params)
        tasks = [_task_of(r) for r in (data or {}).get("results") or []]
        return tasks, str((data or {}).get("next_cursor") or "")

    async def task_content(self, job_id: str, task_id: str, *, max_bytes: int) -> TaskContent:
        """A successful task's content, through the API (never the presigned `result_url`), at most `max_bytes`."""
        if not _TASK_ID.match(task_id):
            raise BackendError(f"{VENDOR} sent a task id that is not one: {task_id[:40]!r}.")
        raw = await self._send(
            self._batch,
            "GET",
            f"jobs/{_job_path(job_id)}/tasks/{quote(task_id, safe='')}/content",
            auth=ApiKeyAuth.header("X-API-Key"),
            max_bytes=max_bytes,
        )
        content_type = raw.headers.get("Content-Type", "").split(";")[0].strip()
        return TaskContent(_decoded(raw.body), content_type, len(raw.body), raw.cut)

    async def _batch_json(self, method: str, path: str, **kwargs: Any) -> Any:
        return await request_json(
            self._batch,
            self._settings,
            method,
            path,
            vendor=VENDOR,
            key_variable=KEY_VARIABLE,
            auth=ApiKeyAuth.header("X-API-Key"),
            **kwargs,
        )

    # -- the raw request path ------------------------------------------------------------------

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        auth: ApiKeyAuth,
        params: Mapping[str, str] | None = None,
        max_bytes: int = 0,
    ) -> _Raw:
        """Send one request whose answer is a body, not JSON; failures become `SophiaError`s without the key."""

        async def once() -> tuple[_Raw, str]:
            # Read at send time so a rotated key is used; Settings may open ESC, so off the event loop.
            key = await anyio.to_thread.run_sync(self._settings.require, KEY_VARIABLE, f"the {VENDOR} API")
            request = client.build_request(method, path, **auth.added_to({"params": params or {}}, key))
            return await _read(client, request, key, max_bytes or self._max_body_bytes), key

        raw, key = await once()
        # Key rotation without restart: ZenRows refused the request, so sending it again is safe.
        if raw.status in (401, 403) and not raw.is_quota and await anyio.to_thread.run_sync(self._settings.refresh_esc):
            log.info("%s rejected %s (HTTP %d); re-opened Pulumi ESC, retrying once", VENDOR, KEY_VARIABLE, raw.status)
            raw, key = await once()
        if raw.status >= 400:
            raise _error_of(raw, key)
        return raw


@dataclass(frozen=True)
class _Raw:
    method: str
    path: str
    status: int
    headers: httpx.Headers
    body: bytes
    cut: bool
    attempts: int

    @property
    def problem(self) -> dict[str, Any]:
        """The RFC 7807 body ZenRows sends with an error, or {} when the body is something else."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def code(self) -> str:
        return str(self.problem.get("code") or "")

    @property
    def is_quota(self) -> bool:
        return self.status == 402 or self.code in _QUOTA_CODES


async def _read(client: httpx.AsyncClient, request: httpx.Request, key: str, max_bytes: int) -> _Raw:
    """Send with the transport's retries and read at most `max_bytes` of the body; network failures raise."""
    where = f"{request.method} {request.url.path}"
    try:
        response = await client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size, cut = 0, False
            async for chunk in response.aiter_bytes():
                if size + len(chunk) > max_bytes:
                    chunks.append(chunk[: max_bytes - size])
                    size, cut = max_bytes, True
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        attempts = int(request.extensions.get(ATTEMPTS_EXTENSION, 1))
        tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        what = _scrub(_describe(exc), key)
        log.warning("%s %s failed after %s: %s", VENDOR, where, tries, what)
        # `from None`: the exception's request carries the key in its URL.
        raise BackendError(
            f"Could not get an answer from {VENDOR} ({where}) after {tries}: {what}.",
            hint=(
                f"Check the network and {BASE_VARIABLE}; a JS-rendered page with long waits can take minutes, "
                "so try fewer waits or without js_render, or try again later."
            ),
        ) from None
    return _Raw(
        method=request.method,
        path=request.url.path,
        status=response.status_code,
        headers=response.headers,
        body=b"".join(chunks),
        cut=cut and response.status_code < 400,
        attempts=int(request.extensions.get(ATTEMPTS_EXTENSION, 1)),
    )


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connect",
            httpx.ReadTimeout: "read",
            httpx.WriteTimeout: "write",
            httpx.PoolTimeout: "pool",
        }.get(type(exc), "request")
        return f"{phase} timed out"
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _scrub(text: str, key: str) -> str:
    """`text` without the key, as sent or URL-encoded."""
    for form in {key, quote(key, safe=""), quote_plus(key)}:
        if form:
            text = text.replace(form, MASK)
    return text


def _error_of(raw: _Raw, key: str) -> SophiaError:
    """The `SophiaError` a user can act on, by ZenRows' error code first and the HTTP status second."""
    problem, code, status = raw.problem, raw.code, raw.status
    detail = (problem.get("detail") or problem.get("title")) if problem else _decoded(raw.body[:1000])
    said = _scrub(" ".join(str(detail or "").split()), key)
    said = said if len(said) <= _EXCERPT_CHARS else said[: _EXCERPT_CHARS - 1] + "…"
    words = " ".join(part for part in (code if code not in said else "", said) if part)
    tail = f": {words}" if words else "."
    where = f" on {raw.method} {raw.path}"
    after = f" after {raw.attempts} attempts" if raw.attempts > 1 else ""
    if code == "AUTH010":
        return BackendError(
            f"{VENDOR} refused the request: the account's plan does not include this feature (HTTP {status}){tail}",
            hint="Enable it for the plan in the ZenRows dashboard, or call again without that option.",
        )
    if raw.is_quota:
        return BackendError(
            f"{VENDOR} refused the request because the account's API credits are used up (HTTP {status}{where}){tail}",
            hint=(
                "Add credits or upgrade the ZenRows plan (or wait for the plan's renewal); repeating the call "
                "now fails the same way. Cheaper calls: drop js_render and premium_proxy where the page allows."
            ),
        )
    if code == "REQS001":
        return InputError(
            f"{VENDOR} does not scrape this site (HTTP {status}){tail}",
            hint="ZenRows blocks some domains outright; use another source for this page.",
        )
    if status in (401, 403):
        return AuthError(
            f"{VENDOR} rejected the credentials in {KEY_VARIABLE} (HTTP {status}{where}){tail}",
            hint=(
                f"Set or rotate {KEY_VARIABLE} (environment, Pulumi ESC, local ESC file or .env); "
                f"`sophia doctor` shows where {KEY_VARIABLE} comes from."
            ),
        )
    if status == 429:
        retry_after = retry_after_seconds(raw.headers.get("Retry-After"))
        when = f"retry after {retry_after:.0f} s" if retry_after is not None else "retry in a minute"
        limit = raw.headers.get("Concurrency-Limit")
        if code == "AUTH006" or limit:
            return BackendError(
                f"{VENDOR} refused the request: the plan's limit of "
                f"{limit or 'concurrent'} simultaneous requests is reached (HTTP 429{after}), {when}{tail}",
                hint="Wait for running scrapes to finish, scrape fewer pages at once, or raise the plan's concurrency.",
            )
        return BackendError(
            f"{VENDOR} rate limited the request (HTTP 429{after}), {when}{tail}",
            hint=f"Wait, then call again ({when}).",
        )
    if code == "RESP002" or status == 404:
        return InputError(
            f"The target page answered 404 (not found) through {VENDOR}{tail}",
            hint="Check the URL; the page does not exist or has moved.",
        )
    if code == "RESP005" or status == 413:
        return InputError(
            f"The target page is larger than {VENDOR} returns (HTTP {status}){tail}",
            hint="Ask for less: a css_extractor for the parts you need, markdown or plaintext output, or "
            "block_resources with js_render.",
        )
    if code.startswith("RESP") or status == 422:
        return BackendError(
            f"{VENDOR} could not get the page's content (HTTP {status}{after}){tail}",
            hint="The site may block scrapers: try js_render=true with premium_proxy=true (and a proxy_country), "
            "or adaptive=true, or try again later.",
        )
    if code.startswith("CTX") or status == 504:
        return BackendError(
            f"{VENDOR} timed out scraping the page (HTTP {status}{after}){tail}",
            hint="Shorten wait_ms, check that the wait_for selector exists on the page, or try again later.",
        )
    if status >= 500:
        return BackendError(
            f"{VENDOR} failed with HTTP {status}{where}{after} (a vendor outage){tail}",
            hint=f"This is on {VENDOR}'s side: try again later.",
        )
    if status in (400, 409, 415, 422):
        return InputError(
            f"{VENDOR} refused the request as invalid (HTTP {status}){tail}",
            hint="Change the arguments as the message says, then call again.",
        )
    return BackendError(f"{VENDOR} answered HTTP {status}{where}{tail}")


def _job_path(job_id: str) -> str:
    if not _ULID.match(job_id):
        raise InputError(
            f"{job_id[:40]!r} is not a ZenRows batch job id.",
            hint="Pass the job_id a previous scrape_batch call returned (26 characters, e.g. 01J9Z3…).",
        )
    return job_id


def _task_of(result: Mapping[str, Any]) -> BatchTask:
    error = result.get("error") or {}
    said = ""
    if error:
        code, detail = str(error.get("code") or ""), str(error.get("detail") or error.get("title") or "")
        said = f"{code}: {detail}" if code and code not in detail else detail or code
    total = ((result.get("spend") or {}).get("total")) or {}
    return BatchTask(
        task_id=str(result.get("task_id") or ""),
        url=str(result.get("url") or ""),
        status=str(result.get("status") or ""),
        error=" ".join(said.split())[:_EXCERPT_CHARS],
        credits=int(total["credits"]) if "credits" in total else -1,
    )


def _decoded(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _int_header(headers: httpx.Headers, name: str) -> int:
    try:
        return int(headers.get(name, ""))
    except ValueError:
        return -1
