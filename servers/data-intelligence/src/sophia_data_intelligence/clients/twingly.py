"""Twingly Blog Search API v3: the query built from its operators, the XML answer parsed (without entity
expansion) into typed posts, and Twingly's error XML turned into errors a user can act on.

Twingly answers XML only, so this client has its own small request path on `make_client` with the
semantics of `request_json`: the key read at send time (it travels in the query string, so no URL is
ever shown), one Pulumi ESC re-open after a rejected key, bounded reads, scrubbed messages.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote, quote_plus
from xml.etree.ElementTree import Element, ParseError

import anyio.to_thread
import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pydantic import BaseModel, Field

from sophia_shared.errors import AuthError, BackendError, InputError, SophiaError
from sophia_shared.http import (
    ATTEMPTS_EXTENSION,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    make_client,
    retry_after_seconds,
)
from sophia_shared.redaction import MASK
from sophia_shared.settings import Settings

log = logging.getLogger(__name__)

VENDOR = "Twingly"
KEY_VARIABLE = "TWINGLY_API_KEY"
BASE_URL_VARIABLE = "SOPHIA_TWINGLY_BASE_URL"
DEFAULT_BASE_URL = "https://api.twingly.com"
SEARCH_PATH = "/blog/search/api/v3/search"
KEY_PARAMETER = "apiKey"  # as Twingly's official client sends it (its recorded requests)
MAX_PAGE_SIZE = 100  # ours: posts carry their full text
MAX_RESPONSE_BYTES = 10 * 2**20
TimeSpan = Literal["", "h", "12h", "24h", "w", "m", "3m"]
TIME_SPANS: tuple[str, ...] = ("h", "12h", "24h", "w", "m", "3m")
# Operators the tool sets from its own arguments; the same operator inside the query would contradict them.
RESERVED_OPERATORS = ("page-size", "page", "sort", "sort-order", "start-date", "end-date", "tspan")
_OPERATOR = re.compile(r"(?<![\w-])(" + "|".join(re.escape(o) for o in RESERVED_OPERATORS) + r")\s*:", re.IGNORECASE)
_CODE_PLACE = re.compile(r"^[A-Za-z]{2}$")
_NEVER = "0001-01-01T00:00:00Z"  # Twingly's "not set" timestamp (reindexedAt of a post never re-indexed)
_EXCERPT = 300


class BlogPost(BaseModel):
    id: str
    url: str
    title: str
    text: str
    published_at: str = Field(description="ISO-8601 UTC time the post was published.")
    indexed_at: str = Field(description="ISO-8601 UTC time Twingly first indexed it.")
    reindexed_at: str = Field(description="ISO-8601 UTC time of the last re-index; empty if never.")
    author: str
    blog_name: str
    blog_url: str
    blog_id: str
    blog_rank: int = Field(description="Twingly's 1–10 rank of the blog.")
    authority: int = Field(description="Twingly's authority of the blog (links from other blogs).")
    inlinks_count: int
    language: str = Field(description="ISO 639-1 language code.")
    location: str = Field(description="ISO 3166-1 alpha-2 country code.")
    latitude: float | None = None
    longitude: float | None = None
    tags: list[str]
    links: list[str]
    images: list[str]


class BlogSearchResponse(BaseModel):
    query: str = Field(description="The full query sent to Twingly, operators included.")
    posts: list[BlogPost]
    matches_total: int
    matches_returned: int
    seconds_elapsed: float
    incomplete: bool = Field(description="True when Twingly could not search every index (results may be missing).")

    @property
    def complete(self) -> bool:
        """True when every match is in this answer."""
        return self.matches_returned >= self.matches_total


def build_query(
    query: str,
    *,
    language: str = "",
    location: str = "",
    time_span: str = "",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    page_size: int = 20,
    oldest_first: bool = False,
) -> str:
    """The `q` Twingly receives: the caller's terms, then the operators this client controls."""
    terms = " ".join(query.split())
    if not terms:
        raise InputError(
            "The blog search query is empty.",
            hint='Give words to look for; Twingly supports AND, OR, -word, "exact phrases" and (groups).',
        )
    reserved = sorted({m.group(1).lower() for m in _OPERATOR.finditer(terms)})
    if reserved:
        raise InputError(
            f"The query sets {', '.join(o + ':' for o in reserved)} itself; those come from the tool's arguments.",
            hint="Remove them from the query and use page_size, time_span, start, end and oldest_first instead.",
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InputError(f"page_size must be between 1 and {MAX_PAGE_SIZE}; got {page_size}.")
    if time_span and time_span not in TIME_SPANS:
        raise InputError(f"Unknown time_span {time_span!r}.", hint=f"Use one of {', '.join(TIME_SPANS)}.")
    if time_span and (start or end):
        raise InputError("Give time_span or start/end, not both.", hint="time_span counts back from now.")
    if start and end and _utc(start) > _utc(end):
        raise InputError(f"start {start.isoformat()} is after end {end.isoformat()}.")
    parts = [terms]
    for name, code in (("lang", language), ("location", location)):
        if code:
            if not _CODE_PLACE.match(code):
                raise InputError(
                    f"{name} code {code!r} is not a two-letter code.",
                    hint="Languages are ISO 639-1 (en, sv, de); locations ISO 3166-1 alpha-2 (us, se, de).",
                )
            parts.append(f"{name}:{code.lower()}")
    if time_span:
        parts.append(f"tspan:{time_span}")
    if start:
        parts.append(f"start-date:{_twingly_time(start)}")
    if end:
        parts.append(f"end-date:{_twingly_time(end)}")
    parts += ["sort:published", f"sort-order:{'asc' if oldest_first else 'desc'}", f"page-size:{page_size}"]
    return " ".join(parts)


def _utc(when: dt.datetime) -> dt.datetime:
    """Naive times are taken as UTC, as Twingly reads them."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _twingly_time(when: dt.datetime) -> str:
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%S")


def parse_timestamp(value: str) -> dt.datetime:
    """A Twingly timestamp (`2017-05-04T06:51:23Z`) as an aware UTC datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


# -- the XML -------------------------------------------------------------------------------------------


def parse_search_result(body: bytes, *, query: str = "") -> BlogSearchResponse:
    """A `<twinglydata>` document as typed posts; Twingly's `<error>` documents and anything else raise."""
    root = _xml_root(body)
    if root.tag == "error":
        raise _error_of(root, status=200)
    if root.tag != "twinglydata":
        raise _not_twingly(body, f"a <{root.tag}> document")
    posts = [_post(p) for p in root.findall("post")]
    return BlogSearchResponse(
        query=query,
        posts=posts,
        matches_total=_int(root.get("numberOfMatchesTotal")),
        matches_returned=_int(root.get("numberOfMatchesReturned"), len(posts)),
        seconds_elapsed=_float(root.get("secondsElapsed")),
        incomplete=(root.get("incompleteResult") or "").lower() == "true",
    )


def _xml_root(body: bytes) -> Element:
    try:
        root: Element = fromstring(body)
    except DefusedXmlException as exc:
        raise BackendError(
            f"{VENDOR} sent XML this server refuses to parse ({type(exc).__name__}: entities or DTDs).",
            hint="Check SOPHIA_TWINGLY_BASE_URL points at Twingly; Twingly itself never sends these.",
        ) from None
    except ParseError:
        raise _not_twingly(body, "a body that is not XML") from None
    return root


def _not_twingly(body: bytes, what: str) -> BackendError:
    start = " ".join(body[:_EXCERPT].decode("utf-8", errors="replace").split())
    start = re.sub(r"<[^>]*>", " ", start)
    return BackendError(
        f"{VENDOR} answered with {what} (starting {' '.join(start.split())[:120]!r}), not search results.",
        hint=(
            "A proxy or an outage page answered: try again in a minute; if it persists, check "
            "SOPHIA_TWINGLY_BASE_URL and Twingly's status."
        ),
    )


def _child_text(element: Element, name: str) -> str:
    child = element.find(name)
    return " ".join((child.text or "").split()) if child is not None and child.text else ""


def _post(element: Element) -> BlogPost:
    text_node = element.find("text")
    text = (text_node.text or "").strip() if text_node is not None else ""
    latitude = longitude = None
    coordinates = element.find("coordinates")
    if coordinates is not None and coordinates.find("latitude") is not None:
        latitude = _float(_child_text(coordinates, "latitude"), None)
        longitude = _float(_child_text(coordinates, "longitude"), None)
    reindexed = _child_text(element, "reindexedAt")
    return BlogPost(
        id=_child_text(element, "id"),
        url=_child_text(element, "url"),
        title=_child_text(element, "title"),
        text=re.sub(r"[ \t]*\n[ \t]*", "\n", text),
        published_at=_child_text(element, "publishedAt"),
        indexed_at=_child_text(element, "indexedAt"),
        reindexed_at="" if reindexed == _NEVER else reindexed,
        author=_child_text(element, "author"),
        blog_name=_child_text(element, "blogName"),
        blog_url=_child_text(element, "blogUrl"),
        blog_id=_child_text(element, "blogId"),
        blog_rank=_int(_child_text(element, "blogRank")),
        authority=_int(_child_text(element, "authority")),
        inlinks_count=_int(_child_text(element, "inlinksCount")),
        language=_child_text(element, "languageCode"),
        location=_child_text(element, "locationCode"),
        latitude=latitude,
        longitude=longitude,
        tags=_list(element, "tags", "tag"),
        links=_list(element, "links", "link"),
        images=_list(element, "images", "image"),
    )


def _list(element: Element, outer: str, inner: str) -> list[str]:
    holder = element.find(outer)
    if holder is None:
        return []
    return [value for value in (" ".join((c.text or "").split()) for c in holder.findall(inner)) if value]


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


def _float(value: str | None, default: float | None = 0.0) -> float:
    try:
        return float(value or "")
    except ValueError:
        return default  # type: ignore[return-value]


def _error_code(root: Element) -> tuple[str, str]:
    return (root.get("code") or "").strip(), _child_text(root, "message")


def _error_of(root: Element, *, status: int) -> SophiaError:
    """Twingly's `<error code>`: 400xx/404xx the query, 401xx the key, 402xx the subscription, 5xxxx Twingly."""
    code, message = _error_code(root)
    said = f"error {code or '?'}: {message or 'no message'}" + (f", HTTP {status}" if status >= 400 else "")
    if code.startswith("401") or "apikey" in message.lower().replace(" ", ""):
        return AuthError(
            f"{VENDOR} rejected the API key in {KEY_VARIABLE} ({said}).",
            hint=(
                f"Set or rotate {KEY_VARIABLE} (environment, Pulumi ESC, local ESC file or .env); "
                f"`sophia doctor` shows where {KEY_VARIABLE} comes from."
            ),
        )
    if code.startswith("402") or status == 402:
        return BackendError(
            f"{VENDOR} refused the search because the key's subscription or search quota is used up ({said}).",
            hint="Renew or extend the Twingly subscription (or wait for the quota period to reset), then call again.",
        )
    if code.startswith(("400", "404")):
        return InputError(
            f"{VENDOR} could not run this query ({said}).",
            hint=(
                'Check the query syntax: words, "exact phrases", AND, OR, -excluded, (groups), and operators '
                "such as lang:xx, location:xx, tag:, author:."
            ),
        )
    if code.startswith("5") or status >= 500:
        return BackendError(
            f"{VENDOR} failed on its side ({said}).",
            hint="This is on Twingly's side: try again in a minute.",
        )
    return BackendError(f"{VENDOR} answered with an error ({said}).")


# -- the client ---------------------------------------------------------------------------------------


class TwinglyClient:
    """Async Twingly Blog Search client; one per server (`DataState.client`), closed with it."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._settings = settings
        base_url = settings.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL
        self._http = make_client(base_url=base_url.rstrip("/"), transport=transport, retry=retry, timeout=timeout)
        self._max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> TwinglyClient:
        return cls(settings)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def search(
        self,
        query: str,
        *,
        language: str = "",
        location: str = "",
        time_span: TimeSpan = "",
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        page_size: int = 20,
        oldest_first: bool = False,
    ) -> BlogSearchResponse:
        """Blog posts matching `query`, newest first (or oldest first), at most `page_size` of them."""
        q = build_query(
            query,
            language=language,
            location=location,
            time_span=time_span,
            start=start,
            end=end,
            page_size=page_size,
            oldest_first=oldest_first,
        )
        return parse_search_result(await self._get(SEARCH_PATH, {"q": q}), query=q)

    async def _get(self, path: str, params: Mapping[str, str]) -> bytes:
        """GET with the key added at send time; the body of a 2xx answer, or the error a user can act on."""
        response, key = await self._send(path, params)
        failure = _failure(response, key)
        # Key rotation without restart: ESC may hold a newer key than the one this process read.
        if isinstance(failure, AuthError) and await anyio.to_thread.run_sync(self._settings.refresh_esc):
            log.info("%s rejected %s; re-opened Pulumi ESC, retrying once", VENDOR, KEY_VARIABLE)
            response, key = await self._send(path, params)
            failure = _failure(response, key)
        if failure is not None:
            raise failure
        return response.content

    async def _send(self, path: str, params: Mapping[str, str]) -> tuple[httpx.Response, str]:
        key = await anyio.to_thread.run_sync(self._settings.require, KEY_VARIABLE, "the Twingly Blog Search API")
        request = self._http.build_request(
            "GET", path, params={**params, KEY_PARAMETER: key}, headers={"Accept": "application/xml"}
        )
        where = f"GET {path}"  # never the URL: the key is in its query string
        try:
            streamed = await self._http.send(request, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                async for chunk in streamed.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_bytes:
                        if streamed.status_code < 400:
                            raise BackendError(
                                f"{VENDOR} answered {where} with more than {self._max_bytes:,} bytes; "
                                "refusing to read further.",
                                hint="Ask for fewer posts (a smaller page_size) or narrow the query.",
                            )
                        break  # an error page's start is enough to explain it
                    chunks.append(chunk)
            finally:
                await streamed.aclose()
        except httpx.HTTPError as exc:
            attempts = int(request.extensions.get(ATTEMPTS_EXTENSION, 1))
            what = _scrub(f"{type(exc).__name__}: {exc}".rstrip(": "), key)
            log.warning("%s %s failed after %d attempt(s): %s", VENDOR, where, attempts, what)
            raise BackendError(
                f"Could not get an answer from {VENDOR} ({where}) after {attempts} attempt(s): {what}.",
                hint=(
                    "Check the network connection and SOPHIA_TWINGLY_BASE_URL; if they are right, "
                    "Twingly may be down or slow: try again later."
                ),
            ) from None
        kept = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _BODY_FRAMING]
        return httpx.Response(streamed.status_code, headers=kept, content=b"".join(chunks), request=request), key


_BODY_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _scrub(text: str, key: str) -> str:
    for form in {key, quote(key, safe=""), quote_plus(key)}:
        if form:
            text = text.replace(form, MASK)
    return text


def _failure(response: httpx.Response, key: str) -> SophiaError | None:
    """The error for a failed answer (None for a 2xx): Twingly's own `<error>` when it sent one."""
    status = response.status_code
    if status < 400:
        return None
    root: Element | None
    try:
        root = fromstring(response.content)
    except (ParseError, DefusedXmlException):
        root = None
    if root is not None and root.tag == "error":
        error = _error_of(root, status=status)
        error.message = _scrub(error.message, key)
        error.args = (error.message,)
        if status != 429:
            return error
    if status == 429:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        when = f"retry after {wait:.0f} s" if wait is not None else "retry in a minute"
        attempts = int(response.request.extensions.get(ATTEMPTS_EXTENSION, 1))
        return BackendError(
            f"{VENDOR} rate limited the search (HTTP 429 after {attempts} attempt(s)), {when}.",
            hint=f"Wait, then call again ({when}); make fewer searches in a row.",
        )
    if status in (401, 403):
        return AuthError(
            f"{VENDOR} rejected the API key in {KEY_VARIABLE} (HTTP {status}).",
            hint=f"Set or rotate {KEY_VARIABLE}; `sophia doctor` shows where it comes from.",
        )
    if status == 402:
        return BackendError(
            f"{VENDOR} refused the search because the key's subscription or search quota is used up (HTTP 402).",
            hint="Renew or extend the Twingly subscription (or wait for the quota period to reset), then call again.",
        )
    if status >= 500:
        return BackendError(
            f"{VENDOR} failed with HTTP {status} (a Twingly outage).",
            hint="This is on Twingly's side: try again later.",
        )
    start = _scrub(" ".join(response.content[:_EXCERPT].decode("utf-8", errors="replace").split()), key)
    return InputError(f"{VENDOR} refused the search (HTTP {status}): {start or 'no details'}.")
