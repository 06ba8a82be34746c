"""Tavily's search, extract, crawl and map API: typed results, its documented limits checked before sending,
and the credits each call used (as Tavily reports them, or computed from its published credit table)."""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from sophia_shared.errors import AuthError, BackendError, InputError
from sophia_shared.http import (
    BEARER,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    make_client,
    request_json,
)
from sophia_shared.settings import Settings

from ..names import WEB_EXTRACT, WEB_FETCH

VENDOR = "Tavily"
KEY_VARIABLE = "TAVILY_API_KEY"
BASE_URL_VARIABLE = "SOPHIA_TAVILY_BASE_URL"
DEFAULT_BASE_URL = "https://api.tavily.com"

# The API's documented limits (openapi.json); ours are tighter where a call could spend a lot at once.
MAX_SEARCH_RESULTS = 20
MAX_INCLUDE_DOMAINS = 300
MAX_EXCLUDE_DOMAINS = 150
MAX_EXTRACT_URLS = 20
MAX_DEPTH = 5
MAX_BREADTH = 500
MAX_CRAWL_PAGES = 100  # ours: at most 60 credits per crawl (advanced extraction with instructions)
MAX_MAP_PAGES = 500  # ours: at most 100 credits per map (with instructions)
CRAWL_TIMEOUT_RANGE = (10.0, 150.0)
EXTRACT_TIMEOUT_RANGE = (1.0, 60.0)
_HTTP_MARGIN = 15.0  # seconds we wait beyond the vendor's own timeout before giving up on the answer
_HELD_RESULTS = 8

Topic = Literal["general", "news", "finance"]
SearchDepth = Literal["basic", "advanced", "fast", "ultra-fast"]
TimeRange = Literal["", "day", "week", "month", "year"]
AnswerMode = Literal["", "basic", "advanced"]
ExtractDepth = Literal["basic", "advanced"]
ContentFormat = Literal["markdown", "text"]


class Credits(BaseModel):
    """API credits a call used: Tavily's own figure, or one computed from its published credit table."""

    used: float
    computed: bool = Field(description="True when Tavily did not report usage and the figure was computed.")

    def describe(self) -> str:
        amount = f"{self.used:g} credit" + ("" if self.used == 1 else "s")
        return amount + (" (computed from Tavily's credit table)" if self.computed else " (reported by Tavily)")


class SearchHit(BaseModel):
    url: str
    title: str
    content: str = Field(description="Tavily's relevant snippets of the page.")
    score: float = Field(description="Relevance, 0–1, higher is better.")
    published_date: str = Field(description="Publication date when Tavily knows it (mostly topic news); else empty.")
    raw_content: str = Field(description="The page's cleaned full text, when requested; else empty.")
    favicon: str = ""


class SearchResponse(BaseModel):
    query: str
    answer: str = Field(description="Tavily's LLM-written answer, when requested; else empty.")
    results: list[SearchHit]
    images: list[str]
    response_time: float
    request_id: str
    credits: Credits


class ExtractedPage(BaseModel):
    url: str
    raw_content: str
    favicon: str = ""


class FailedUrl(BaseModel):
    url: str
    error: str


class ExtractResponse(BaseModel):
    results: list[ExtractedPage]
    failed: list[FailedUrl]
    response_time: float
    request_id: str
    credits: Credits


class CrawlResponse(BaseModel):
    base_url: str
    results: list[ExtractedPage]
    response_time: float
    request_id: str
    credits: Credits


class MapResponse(BaseModel):
    base_url: str
    urls: list[str]
    response_time: float
    request_id: str
    credits: Credits


# -- credits, per Tavily's published table (the endpoint descriptions in openapi.json) -------------------


def search_credits(depth: str) -> float:
    """basic, fast and ultra-fast cost 1 credit; advanced costs 2."""
    return 2.0 if depth == "advanced" else 1.0


def extract_credits(successful: int, depth: str) -> float:
    """1 credit per 5 successful extractions (basic), 2 per 5 (advanced)."""
    return round(successful / 5 * (2 if depth == "advanced" else 1), 2)


def map_credits(pages: int, *, instructions: bool) -> float:
    """1 credit per 10 pages mapped, 2 per 10 with instructions."""
    return round(pages / 10 * (2 if instructions else 1), 2)


def crawl_credits(pages: int, *, instructions: bool, depth: str) -> float:
    """A crawl pays for mapping and for extracting each page it returns."""
    return round(map_credits(pages, instructions=instructions) + extract_credits(pages, depth), 2)


def _credits(body: dict[str, Any], computed: float) -> Credits:
    usage = body.get("usage")
    reported = usage.get("credits") if isinstance(usage, dict) else None
    if isinstance(reported, int | float) and not isinstance(reported, bool) and math.isfinite(reported):
        return Credits(used=round(float(reported), 4), computed=False)
    return Credits(used=computed, computed=True)


# -- the client ---------------------------------------------------------------------------------------


def _tavily_error(response: httpx.Response) -> str | None:
    """Tavily's `{"detail": {"error": …}}`, with what ran out named for its two limit statuses."""
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    said = detail.get("error") if isinstance(detail, dict) else detail if isinstance(detail, str) else None
    said = said if isinstance(said, str) else None
    # The shared error mapping treats these words as "out of credit or quota".
    if response.status_code == 432:
        return f"the plan's (or this key's) credit quota is used up (HTTP 432): {said or 'plan limit exceeded'}"
    if response.status_code == 433:
        return f"the pay-as-you-go spending quota is reached (HTTP 433): {said or 'pay-as-you-go limit exceeded'}"
    return said


class TavilyClient:
    """Async Tavily API client; one per server (`DataState.client`), closed with it."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._settings = settings
        self._max_bytes = max_bytes
        base_url = settings.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL
        self._http = make_client(base_url=base_url.rstrip("/"), transport=transport, retry=retry, timeout=timeout)
        self._held: OrderedDict[str, Any] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> TavilyClient:
        return cls(settings)

    async def aclose(self) -> None:
        await self._http.aclose()

    # Results a paged tool keeps so a cursor continues them without paying for the call again.
    def hold(self, key: str, value: Any) -> None:
        self._held[key] = value
        self._held.move_to_end(key)
        while len(self._held) > _HELD_RESULTS:
            self._held.popitem(last=False)

    def held(self, key: str) -> Any:
        return self._held.get(key)

    async def _post(self, path: str, body: dict[str, Any], *, idempotent: bool, wait: float | None = None) -> Any:
        kwargs: dict[str, Any] = {"json": body}
        if wait is not None:
            kwargs["timeout"] = httpx.Timeout(wait, connect=5.0, pool=10.0)
        answer = await request_json(
            self._http,
            self._settings,
            "POST",
            path,
            vendor=VENDOR,
            key_variable=KEY_VARIABLE,
            auth=BEARER,
            idempotent=idempotent,
            error_message=_tavily_error,
            max_bytes=self._max_bytes,
            **kwargs,
        )
        if not isinstance(answer, dict):
            raise BackendError(
                f"{VENDOR} answered POST {path} with {type(answer).__name__}, not the documented JSON object.",
                hint="Check SOPHIA_TAVILY_BASE_URL; if it is right, Tavily sent a broken answer: try again later.",
            )
        return answer

    async def search(
        self,
        query: str,
        *,
        topic: Topic = "general",
        search_depth: SearchDepth = "basic",
        max_results: int = 5,
        time_range: TimeRange = "",
        start_date: str = "",
        end_date: str = "",
        include_domains: Sequence[str] = (),
        exclude_domains: Sequence[str] = (),
        include_answer: AnswerMode = "",
        include_raw_content: bool = False,
        country: str = "",
        exact_match: bool = False,
    ) -> SearchResponse:
        """One web search (1 credit; 2 for advanced depth)."""
        if not query.strip():
            raise InputError("The search query is empty.", hint="Say what to look for in plain words.")
        _check_range("max_results", max_results, 0, MAX_SEARCH_RESULTS)
        _check_count("include_domains", include_domains, MAX_INCLUDE_DOMAINS)
        _check_count("exclude_domains", exclude_domains, MAX_EXCLUDE_DOMAINS)
        if country and topic != "general":
            raise InputError("country only applies to topic 'general'.", hint="Drop country, or use topic general.")
        body: dict[str, Any] = {
            "query": query,
            "topic": topic,
            "search_depth": search_depth,
            "max_results": max_results,
            "include_usage": True,
            "include_answer": include_answer or False,
            "include_raw_content": "markdown" if include_raw_content else False,
        }
        if time_range:
            body["time_range"] = time_range
        if start_date:
            body["start_date"] = _iso_date("start_date", start_date)
        if end_date:
            body["end_date"] = _iso_date("end_date", end_date)
        if start_date and end_date and body["start_date"] > body["end_date"]:
            raise InputError(f"start_date {start_date} is after end_date {end_date}.")
        if include_domains:
            body["include_domains"] = list(include_domains)
        if exclude_domains:
            body["exclude_domains"] = list(exclude_domains)
        if country:
            body["country"] = country.lower()
        if exact_match:
            body["exact_match"] = True
        answer = await self._post("/search", body, idempotent=True)
        hits = [_search_hit(r) for r in _dicts(answer.get("results"))]
        images = [_image_url(i) for i in answer.get("images") or [] if _image_url(i)]
        return SearchResponse(
            query=_text(answer.get("query")) or query,
            answer=_text(answer.get("answer")),
            results=hits,
            images=images,
            response_time=_seconds(answer.get("response_time")),
            request_id=_text(answer.get("request_id")),
            credits=_credits(answer, search_credits(search_depth)),
        )

    async def extract(
        self,
        urls: Sequence[str],
        *,
        query: str = "",
        extract_depth: ExtractDepth = "basic",
        format: ContentFormat = "markdown",
        vendor_timeout: float = 0.0,
    ) -> ExtractResponse:
        """Clean page text of 1–20 URLs (1 credit per 5 successful pages; 2 per 5 advanced)."""
        urls = [u.strip() for u in urls if u.strip()]
        if not urls:
            raise InputError("There is no URL to extract.", hint="Pass 1 to 20 page URLs.")
        _check_count("urls", urls, MAX_EXTRACT_URLS)
        body: dict[str, Any] = {
            "urls": urls,
            "extract_depth": extract_depth,
            "format": format,
            "include_usage": True,
        }
        if query.strip():
            body["query"] = query.strip()
        if vendor_timeout:
            _check_range("timeout", vendor_timeout, *EXTRACT_TIMEOUT_RANGE)
            body["timeout"] = vendor_timeout
        vendor_limit = vendor_timeout or (30.0 if extract_depth == "advanced" else 10.0)
        answer = await self._post("/extract", body, idempotent=True, wait=vendor_limit + _HTTP_MARGIN)
        pages = [_page(r) for r in _dicts(answer.get("results"))]
        failed = [
            FailedUrl(url=_text(r.get("url")), error=_text(r.get("error")))
            for r in _dicts(answer.get("failed_results"))
        ]
        return ExtractResponse(
            results=pages,
            failed=failed,
            response_time=_seconds(answer.get("response_time")),
            request_id=_text(answer.get("request_id")),
            credits=_credits(answer, extract_credits(len(pages), extract_depth)),
        )

    async def crawl(
        self,
        url: str,
        *,
        instructions: str = "",
        max_depth: int = 1,
        max_breadth: int = 20,
        limit: int = 20,
        select_paths: Sequence[str] = (),
        select_domains: Sequence[str] = (),
        exclude_paths: Sequence[str] = (),
        exclude_domains: Sequence[str] = (),
        allow_external: bool = False,
        extract_depth: ExtractDepth = "basic",
        format: ContentFormat = "markdown",
        vendor_timeout: float = 60.0,
    ) -> CrawlResponse:
        """Walk a site from `url` and extract each page (mapping plus extraction credits)."""
        body = _walk_body(
            url, instructions, max_depth, max_breadth, limit, MAX_CRAWL_PAGES, vendor_timeout,
            select_paths, select_domains, exclude_paths, exclude_domains, allow_external,
        )  # fmt: skip
        body.update(extract_depth=extract_depth, format=format)
        # A crawl may have done (and billed) its work before an answer is lost: never sent twice.
        answer = await self._walk("/crawl", body, url, idempotent=False)
        pages = [_page(r) for r in _dicts(answer.get("results"))]
        computed = crawl_credits(len(pages), instructions=bool(instructions.strip()), depth=extract_depth)
        return CrawlResponse(
            base_url=_text(answer.get("base_url")) or url,
            results=pages,
            response_time=_seconds(answer.get("response_time")),
            request_id=_text(answer.get("request_id")),
            credits=_credits(answer, computed),
        )

    async def map(
        self,
        url: str,
        *,
        instructions: str = "",
        max_depth: int = 1,
        max_breadth: int = 20,
        limit: int = 50,
        select_paths: Sequence[str] = (),
        select_domains: Sequence[str] = (),
        exclude_paths: Sequence[str] = (),
        exclude_domains: Sequence[str] = (),
        allow_external: bool = False,
        vendor_timeout: float = 60.0,
    ) -> MapResponse:
        """The URLs of a site, found by walking its links from `url` (1 credit per 10 pages; 2 with instructions)."""
        body = _walk_body(
            url, instructions, max_depth, max_breadth, limit, MAX_MAP_PAGES, vendor_timeout,
            select_paths, select_domains, exclude_paths, exclude_domains, allow_external,
        )  # fmt: skip
        answer = await self._walk("/map", body, url, idempotent=True)
        urls = [u for u in answer.get("results") or [] if isinstance(u, str)]
        return MapResponse(
            base_url=_text(answer.get("base_url")) or url,
            urls=urls,
            response_time=_seconds(answer.get("response_time")),
            request_id=_text(answer.get("request_id")),
            credits=_credits(answer, map_credits(len(urls), instructions=bool(instructions.strip()))),
        )

    async def _walk(self, path: str, body: dict[str, Any], url: str, *, idempotent: bool) -> Any:
        try:
            return await self._post(path, body, idempotent=idempotent, wait=float(body["timeout"]) + _HTTP_MARGIN)
        except AuthError as exc:
            # Tavily answers 403 "URL is not supported" on crawl and map: a refusal of the site, not of the key.
            if "not supported" not in exc.message.lower():
                raise
            raise InputError(
                f"Tavily will not walk {url}: it answered that the URL is not supported.",
                hint=f"Read single pages with {WEB_EXTRACT} or {WEB_FETCH} instead, or try the site's own root URL.",
            ) from None


# -- request checks and answer parsing ---------------------------------------------------------------


def _walk_body(
    url: str,
    instructions: str,
    max_depth: int,
    max_breadth: int,
    limit: int,
    max_limit: int,
    timeout: float,
    select_paths: Sequence[str],
    select_domains: Sequence[str],
    exclude_paths: Sequence[str],
    exclude_domains: Sequence[str],
    allow_external: bool,
) -> dict[str, Any]:
    if not url.strip():
        raise InputError("The start URL is empty.", hint="Pass the site's root, e.g. https://docs.example.com.")
    _check_range("max_depth", max_depth, 1, MAX_DEPTH)
    _check_range("max_breadth", max_breadth, 1, MAX_BREADTH)
    _check_range("limit", limit, 1, max_limit)
    _check_range("timeout", timeout, *CRAWL_TIMEOUT_RANGE)
    body: dict[str, Any] = {
        "url": url.strip(),
        "max_depth": max_depth,
        "max_breadth": max_breadth,
        "limit": limit,
        "allow_external": allow_external,
        "timeout": timeout,
        "include_usage": True,
    }
    if instructions.strip():
        body["instructions"] = instructions.strip()
    for name, values in (
        ("select_paths", select_paths),
        ("select_domains", select_domains),
        ("exclude_paths", exclude_paths),
        ("exclude_domains", exclude_domains),
    ):
        if values:
            body[name] = list(values)
    return body


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low:g} and {high:g}; got {value:g}.")


def _check_count(name: str, values: Sequence[str], most: int) -> None:
    if len(values) > most:
        raise InputError(f"{name} takes at most {most} entries; got {len(values)}.", hint="Split the request.")


def _iso_date(name: str, value: str) -> str:
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise InputError(f"{name} must be a date written YYYY-MM-DD; got {value!r}.") from None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value or [] if isinstance(v, dict)]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) else 0.0


def _image_url(image: Any) -> str:
    if isinstance(image, dict):
        return _text(image.get("url"))
    return _text(image)


def _search_hit(raw: dict[str, Any]) -> SearchHit:
    return SearchHit(
        url=_text(raw.get("url")),
        title=_text(raw.get("title")),
        content=_text(raw.get("content")),
        score=_seconds(raw.get("score")),
        published_date=_text(raw.get("published_date")),
        raw_content=_text(raw.get("raw_content")),
        favicon=_text(raw.get("favicon")),
    )


def _page(raw: dict[str, Any]) -> ExtractedPage:
    return ExtractedPage(
        url=_text(raw.get("url")), raw_content=_text(raw.get("raw_content")), favicon=_text(raw.get("favicon"))
    )
