"""The built-in fetch's HTTP side: httpx connecting only to addresses the SSRF policy checked.

Redirects are followed here, one checked hop at a time; robots.txt is read (and cached) per origin;
each origin gets a small number of concurrent requests; bodies stop at a byte cap and the whole
fetch, redirects and robots.txt included, at a time cap.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import httpcore
import httpx
from protego import Protego

from sophia_shared.errors import BackendError, PolicyError
from sophia_shared.settings import Settings

from .extract import Extracted, Link, extract
from .ssrf import ALLOW_HOSTS_SETTING, AllowList, CheckedTarget, canonical_host, check_url, refuse

log = logging.getLogger(__name__)

PER_HOST_CONCURRENCY = 2  # polite: at most this many requests to one origin at a time
ROBOTS_MAX_BYTES = 512_000  # what Google reads of a robots.txt
ROBOTS_TTL_SECONDS = 3600.0
ROBOTS_CACHE_SIZE = 256
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = "text/html,application/xhtml+xml,application/json;q=0.9,text/plain;q=0.9,application/pdf;q=0.8,*/*;q=0.5"

# The target whose request is being sent in this task: the network backend connects only to its addresses.
_PINNED: ContextVar[CheckedTarget | None] = ContextVar("sophia_fetch_pinned", default=None)


@dataclass(frozen=True)
class FetchLimits:
    """What one fetcher may do; read from settings once, when it is made."""

    max_bytes: int = 5_000_000
    timeout: float = 20.0
    max_redirects: int = 5
    respect_robots: bool = True
    user_agent: str = "SophiaMCP/0.1 (+data-intelligence fetch; respects robots.txt)"
    allow: AllowList = field(default_factory=AllowList)
    per_host: int = PER_HOST_CONCURRENCY

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        return cls(
            max_bytes=settings.get_int("SOPHIA_FETCH_MAX_BYTES", minimum=1),
            timeout=settings.get_float("SOPHIA_FETCH_TIMEOUT_SECONDS", minimum=0.1),
            max_redirects=settings.get_int("SOPHIA_FETCH_MAX_REDIRECTS", minimum=0),
            respect_robots=not settings.flag("SOPHIA_FETCH_IGNORE_ROBOTS"),
            user_agent=settings.get("SOPHIA_FETCH_USER_AGENT") or cls.user_agent,
            allow=AllowList.parse(settings.get(ALLOW_HOSTS_SETTING)),
        )

    @property
    def robots_token(self) -> str:
        """The product token robots.txt groups are matched against: `SophiaMCP` of `SophiaMCP/0.1 (…)`."""
        return self.user_agent.split("/", 1)[0].split()[0] if self.user_agent.strip() else "*"


@dataclass(frozen=True)
class FetchedBody:
    """A response as read: the body up to the byte cap, and where the redirects led."""

    url: str
    final_url: str
    status: int
    reason: str
    content_type: str  # media type only, lower case: "text/html"
    charset: str | None
    body: bytes
    cut: bool  # the body was longer than the cap; `body` is its beginning
    redirects: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    """A fetched page as readable text (markdown for HTML) with its metadata."""

    url: str
    final_url: str
    status: int
    content_type: str
    kind: str  # html, json, text or pdf
    title: str
    author: str
    date: str
    language: str
    text: str
    links: tuple[Link, ...]
    cut: bool


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to the checked addresses of the target being sent, never by name."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = _PINNED.get()
        if target is None or canonical_host(host) != target.host or port != target.port:
            # Fail closed: a connection nobody checked is never opened.
            raise httpcore.ConnectError(f"connection to {host}:{port} was not checked by the fetch policy")
        failure: Exception | None = None
        for address in target.addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # a target always has at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the built-in fetch never opens unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose network backend is `_PinnedBackend`.

    The URL keeps the host name, so the Host header, TLS SNI and certificate checks use the name while
    the socket goes to the address that was checked.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, retries=0, limits=limits)
        # httpx takes no network backend, so its pool is rebuilt with ours (httpx is pinned below 0.29).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(),
        )


@dataclass
class _RobotsEntry:
    expires: float
    rules: Protego | None  # None: everything allowed (no robots.txt)
    refusal: str = ""  # set when robots.txt could not be read: everything disallowed, and why


class _HostSlots:
    """One semaphore per origin, dropped when nobody holds or waits for it."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._slots: dict[str, tuple[anyio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, origin: str) -> AsyncIterator[None]:
        semaphore, users = self._slots.get(origin, (anyio.Semaphore(self._size), 0))
        self._slots[origin] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._slots[origin]
            if users <= 1:
                del self._slots[origin]
            else:
                self._slots[origin] = (semaphore, users - 1)


class Fetcher:
    """Fetches public http(s) URLs under the SSRF policy, robots.txt and the byte and time caps."""

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits
        connections = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=15.0)
        self._client = httpx.AsyncClient(
            transport=_PinnedTransport(connections),
            trust_env=False,  # an environment proxy would connect by name, around the policy
            follow_redirects=False,  # followed in `_get`, each hop checked
            timeout=httpx.Timeout(limits.timeout),
            headers={"User-Agent": limits.user_agent, "Accept": ACCEPT},
        )
        self._slots = _HostSlots(max(1, limits.per_host))
        self._robots: OrderedDict[str, _RobotsEntry] = OrderedDict()
        self._robots_reading = _HostSlots(1)

    @classmethod
    def from_settings(cls, settings: Settings) -> Fetcher:
        return cls(FetchLimits.from_settings(settings))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str, *, max_bytes: int | None = None) -> FetchedBody:
        """GET `url` with every hop checked; the body up to `max_bytes` (at most the configured cap)."""
        cap = min(max_bytes or self.limits.max_bytes, self.limits.max_bytes)
        try:
            with anyio.fail_after(self.limits.timeout):
                return await self._get(url, cap, robots=self.limits.respect_robots)
        except (TimeoutError, httpx.TimeoutException):
            raise BackendError(
                f"Fetching {url} took longer than {self.limits.timeout:g} s, so it was stopped.",
                hint="Try again later, or a lighter page; SOPHIA_FETCH_TIMEOUT_SECONDS sets the limit.",
            ) from None

    async def document(self, url: str, *, raw: bool = False, max_bytes: int | None = None) -> Document:
        """Fetch `url` and turn it into readable text; HTTP errors become a `BackendError`."""
        got = await self.fetch(url, max_bytes=max_bytes)
        if got.status >= 400:
            raise BackendError(
                f"{got.final_url} answered HTTP {got.status} {got.reason}.".replace(" .", "."),
                hint="Check the URL; a 403 or 429 may mean the site refuses automated readers.",
            )
        # Extraction parses the whole page: in a worker thread, so the server keeps answering.
        found: Extracted = await anyio.to_thread.run_sync(
            lambda: extract(got.body, got.content_type, got.charset, got.final_url, raw=raw, cut=got.cut)
        )
        return Document(
            url=url,
            final_url=got.final_url,
            status=got.status,
            content_type=got.content_type,
            kind=found.kind,
            title=found.title,
            author=found.author,
            date=found.date,
            language=found.language,
            text=found.text,
            links=found.links,
            cut=got.cut,
        )

    # -- one request, hop by hop -----------------------------------------------------------------

    async def _get(self, url: str, cap: int, *, robots: bool) -> FetchedBody:
        current, chain = url, list[str]()
        for hop in range(self.limits.max_redirects + 1):
            where = f"redirect {hop} from {chain[-1]}" if chain else ""
            target = await check_url(current, self.limits.allow, hop=where)
            if robots:
                await self._check_robots(target, current)
            async with self._slots.hold(_origin(target)):
                response = await self._send(target, hop + 1)
                try:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECT_STATUSES and location:
                        chain.append(current)
                        current = _joined(target.url, location)
                        continue
                    body, cut = await _read_capped(response, cap)
                except httpx.TimeoutException:
                    raise
                except httpx.RequestError as exc:
                    raise BackendError(
                        f"Reading {current} failed: {type(exc).__name__}: {exc or 'connection broken'}.",
                        hint="Try again; the site closed the connection or sent a malformed body.",
                    ) from None
                finally:
                    await response.aclose()
            media, charset = _content_type(response.headers.get("content-type", ""))
            return FetchedBody(
                url=url,
                final_url=current,
                status=response.status_code,
                reason=response.reason_phrase,
                content_type=media,
                charset=charset,
                body=body,
                cut=cut,
                redirects=tuple(chain),
            )
        raise PolicyError(
            f"Refused to follow {url} further: it redirected more than {self.limits.max_redirects} time(s) "
            f"(last to {current}).",
            hint="Fetch the final address directly; SOPHIA_FETCH_MAX_REDIRECTS sets the limit.",
        )

    async def _send(self, target: CheckedTarget, next_hop: int) -> httpx.Response:
        request = self._client.build_request("GET", target.url)
        token = _PINNED.set(target)
        try:
            return await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise
        except httpx.RemoteProtocolError as exc:
            if "location header" not in str(exc).lower():
                raise BackendError(f"Could not fetch {target.url}: {exc}.") from None
            # httpx reads a redirect's Location even when not following it; one it cannot parse is refused.
            raise refuse(
                f"the redirect target (redirect {next_hop} from {target.url})", f"it is not a valid URL ({exc})"
            ) from None
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise BackendError(
                f"Could not fetch {target.url}: {type(exc).__name__}: {exc or 'connection failed'}.",
                hint="Check the address; the site may be down or refuse connections.",
            ) from None
        finally:
            _PINNED.reset(token)

    # -- robots.txt ------------------------------------------------------------------------------

    async def _check_robots(self, target: CheckedTarget, url: str) -> None:
        origin = f"{target.url.scheme}://{_origin(target)}"
        entry = self._robots.get(origin)
        if entry is None or entry.expires < time.monotonic():
            # One read per origin: concurrent first fetches wait for it rather than each asking.
            async with self._robots_reading.hold(origin):
                entry = self._robots.get(origin)
                if entry is None or entry.expires < time.monotonic():
                    entry = await self._read_robots(origin)
                    self._robots[origin] = entry
                    while len(self._robots) > ROBOTS_CACHE_SIZE:
                        self._robots.popitem(last=False)
        if origin in self._robots:
            self._robots.move_to_end(origin)
        token = self.limits.robots_token
        if entry.refusal:
            raise _robots_refusal(url, entry.refusal)
        if entry.rules is not None and not entry.rules.can_fetch(url, token):
            raise _robots_refusal(url, f"{origin}/robots.txt disallows it for {token}")

    async def _read_robots(self, origin: str) -> _RobotsEntry:
        expires = time.monotonic() + ROBOTS_TTL_SECONDS
        try:
            got = await self._get(f"{origin}/robots.txt", ROBOTS_MAX_BYTES, robots=False)
        except PolicyError as exc:
            # robots.txt redirected somewhere the policy refuses: treat it as absent (RFC 9309 §2.3.1.2).
            log.info("robots.txt of %s not read: %s", origin, exc.message)
            return _RobotsEntry(expires, None)
        except BackendError as exc:
            return _RobotsEntry(time.monotonic() + 60, None, f"its robots.txt could not be read ({exc.message})")
        if got.status >= 500:
            # RFC 9309 §2.3.1.4: a server error means assume complete disallow, for a short while.
            return _RobotsEntry(time.monotonic() + 60, None, f"{origin}/robots.txt answered HTTP {got.status}")
        if got.status >= 400:
            return _RobotsEntry(expires, None)
        return _RobotsEntry(expires, Protego.parse(got.body.decode("utf-8", errors="replace")))


def _robots_refusal(url: str, why: str) -> PolicyError:
    return PolicyError(
        f"Refused to fetch {url}: {why}.",
        hint="The site asks automated readers not to fetch this page. An operator can set "
        "SOPHIA_FETCH_IGNORE_ROBOTS=1 to ignore robots.txt.",
    )


def _joined(base: httpx.URL, location: str) -> str:
    """A redirect's absolute URL; a Location httpx cannot join is passed on as written, for the policy to refuse."""
    try:
        return str(base.join(location))
    except (httpx.InvalidURL, ValueError):
        return location


def _origin(target: CheckedTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}"


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """The decoded body up to `cap` bytes, and whether more was left unread."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True
    return b"".join(chunks), False


def _content_type(header: str) -> tuple[str, str | None]:
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset
