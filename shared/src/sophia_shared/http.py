"""The one HTTP client every vendor call goes through: timeouts, retries, auth refresh, error mapping.

Retries live in a transport wrapper, so every request made through `make_client` / `make_sync_client`
gets them. Only idempotent methods are retried by default; a request that is safe to repeat
(e.g. a search POST) opts in with `extensions={"sophia_retry": True}`, and any request opts out
with `extensions={"sophia_retry": False}`. A connection that never opened is retried whatever the
method, since the vendor cannot have seen the request.

Network failures that outlast the retries surface as `BackendError`; HTTP error statuses come back
as responses, and `raise_for_vendor` turns them into actionable errors.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import anyio.to_thread
import httpx

from .errors import AuthError, BackendError, InputError

log = logging.getLogger(__name__)

RETRY_EXTENSION = "sophia_retry"
ATTEMPTS_EXTENSION = "sophia_attempts"  # set on every response: how many attempts it took
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)
DEFAULT_USER_AGENT = "sophia-mcp/0.1"
_EXCERPT_CHARS = 300

# The request never left this machine, so repeating it is safe for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have reached the vendor: only repeat it when the request is retryable.
_MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before repeating a request."""

    max_attempts: int = 3
    base_delay: float = 0.5  # seconds; attempt n waits up to base_delay * 2**(n-1)
    max_delay: float = 8.0
    jitter: bool = True  # "full jitter": a uniform draw in [0, backoff]
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    retry_methods: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
    retry_network_errors: bool = True  # connection errors and timeouts
    max_retry_after: float = 30.0  # a longer Retry-After fails fast instead of sleeping
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        return self.rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def is_retryable(self, request: httpx.Request) -> bool:
        marked = request.extensions.get(RETRY_EXTENSION)
        if marked is not None:
            return bool(marked)
        return request.method.upper() in self.retry_methods


DEFAULT_RETRY = RetryPolicy()


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Parse a `Retry-After` header (delay-seconds or HTTP-date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max((when - now).total_seconds(), 0.0)


def _where(request: httpx.Request) -> str:
    # Never the query string (keys travel there) and never headers.
    return f"{request.method} {request.url.host}{request.url.path}"


class _RetryPlan:
    """Decisions shared by the sync and async transports; no I/O here."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def delay_for_response(self, request: httpx.Request, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying `response`, or None to return it as it is."""
        policy = self.policy
        if response.status_code not in policy.retry_statuses or not policy.is_retryable(request):
            return None
        if attempt >= policy.max_attempts:
            log.warning("%s → HTTP %d after %d attempts; giving up", _where(request), response.status_code, attempt)
            return None
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > policy.max_retry_after:
            log.warning(
                "%s → HTTP %d asks to retry after %.0f s (more than the %.0f s we wait); failing fast",
                _where(request),
                response.status_code,
                retry_after,
                policy.max_retry_after,
            )
            return None
        delay = retry_after if retry_after is not None else policy.backoff(attempt)
        log.info(
            "%s → HTTP %d; retry %d/%d in %.2f s",
            _where(request),
            response.status_code,
            attempt + 1,
            policy.max_attempts,
            delay,
        )
        return delay

    def delay_for_error(self, request: httpx.Request, exc: httpx.TransportError, attempt: int) -> float:
        """Seconds to wait before retrying after `exc`; raises when the error is final."""
        policy = self.policy
        if not isinstance(exc, _NOT_SENT + _MAYBE_SENT):
            raise exc  # configuration mistakes (bad scheme, proxy) are not the network's fault
        retryable = policy.retry_network_errors and (isinstance(exc, _NOT_SENT) or policy.is_retryable(request))
        if not retryable or attempt >= policy.max_attempts:
            raise _unreachable(request, exc, attempt) from exc
        delay = policy.backoff(attempt)
        log.info(
            "%s failed (%s); retry %d/%d in %.2f s",
            _where(request),
            _describe(exc, request),
            attempt + 1,
            policy.max_attempts,
            delay,
        )
        return delay


def _describe(exc: httpx.TransportError, request: httpx.Request) -> str:
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connect",
            httpx.ReadTimeout: "read",
            httpx.WriteTimeout: "write",
            httpx.PoolTimeout: "pool",
        }.get(type(exc), "")
        limit = request.extensions.get("timeout", {}).get(phase) if phase else None
        return f"{phase or 'request'} timed out" + (f" after {limit:g} s" if limit else "")
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _unreachable(request: httpx.Request, exc: httpx.TransportError, attempts: int) -> BackendError:
    tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
    log.warning("%s failed after %s: %s", _where(request), tries, _describe(exc, request))
    return BackendError(
        f"Could not get an answer from {request.url.host} ({_where(request)}) after {tries}: "
        f"{_describe(exc, request)}.",
        hint=(
            "Check the network connection and the service's base URL setting; if they are right, "
            "the vendor may be down or slow: try again later."
        ),
    )


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """Wraps another async transport and repeats failed requests according to a `RetryPolicy`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, policy: RetryPolicy = DEFAULT_RETRY) -> None:
        self._inner = inner
        self._plan = _RetryPlan(policy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as exc:
                delay = self._plan.delay_for_error(request, exc, attempt)
            else:
                wait = self._plan.delay_for_response(request, response, attempt)
                if wait is None:
                    response.extensions[ATTEMPTS_EXTENSION] = attempt
                    return response
                await response.aclose()
                delay = wait
            await anyio.sleep(delay)

    async def aclose(self) -> None:
        await self._inner.aclose()


class RetryTransport(httpx.BaseTransport):
    """Sync twin of `AsyncRetryTransport`."""

    def __init__(self, inner: httpx.BaseTransport, policy: RetryPolicy = DEFAULT_RETRY) -> None:
        self._inner = inner
        self._plan = _RetryPlan(policy)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._inner.handle_request(request)
            except httpx.TransportError as exc:
                delay = self._plan.delay_for_error(request, exc, attempt)
            else:
                wait = self._plan.delay_for_response(request, response, attempt)
                if wait is None:
                    response.extensions[ATTEMPTS_EXTENSION] = attempt
                    return response
                response.close()
                delay = wait
            time.sleep(delay)

    def close(self) -> None:
        self._inner.close()


HeaderProvider = Callable[[], Mapping[str, str]]


class _ProvidedHeaders(httpx.Auth):
    """Asks the provider for auth headers on every request, so a rotated key is picked up."""

    def __init__(self, provider: HeaderProvider) -> None:
        self._provider = provider

    def sync_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers.update(self._provider())
        yield request

    async def async_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        # Settings may open Pulumi ESC on first use: keep that network call off the event loop.
        request.headers.update(await anyio.to_thread.run_sync(self._provider))
        yield request


def _client_options(
    headers: Mapping[str, str] | None, user_agent: str, auth_header_provider: HeaderProvider | None
) -> tuple[dict[str, str], httpx.Auth | None]:
    merged = {"User-Agent": user_agent, **(headers or {})}
    return merged, _ProvidedHeaders(auth_header_provider) if auth_header_provider else None


def make_client(
    *,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    retry: RetryPolicy = DEFAULT_RETRY,
    auth_header_provider: HeaderProvider | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with our timeouts and retries; use it as `async with make_client(...)`.

    `auth_header_provider` is called for every request (in a worker thread) and its headers are
    added; `transport` replaces the network transport under the retries (tests, fakes).
    """
    merged, auth = _client_options(headers, user_agent, auth_header_provider)
    inner = transport or httpx.AsyncHTTPTransport()
    return httpx.AsyncClient(
        base_url=base_url,
        headers=merged,
        timeout=timeout,
        auth=auth,
        transport=AsyncRetryTransport(inner, retry),
    )


def make_sync_client(
    *,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    retry: RetryPolicy = DEFAULT_RETRY,
    auth_header_provider: HeaderProvider | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """Sync twin of `make_client`, for code that already runs in a worker thread."""
    merged, auth = _client_options(headers, user_agent, auth_header_provider)
    inner = transport or httpx.HTTPTransport()
    return httpx.Client(
        base_url=base_url,
        headers=merged,
        timeout=timeout,
        auth=auth,
        transport=RetryTransport(inner, retry),
    )


# -- turning vendor answers into our errors ------------------------------------------------------


def _error_excerpt(response: httpx.Response) -> str:
    """The vendor's own words about the failure, short; never anything from the request."""
    try:
        text = response.text
    except (httpx.ResponseNotRead, httpx.StreamError, UnicodeDecodeError):
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "error", "detail", "errors", "error_message", "msg"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value
            if value:
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                break
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


def _request_where(response: httpx.Response) -> str:
    try:
        request = response.request
    except RuntimeError:
        return ""
    return f" on {request.method} {request.url.path}"


def raise_for_vendor(response: httpx.Response, vendor: str, *, key_variable: str) -> httpx.Response:
    """Return `response` if it succeeded, else raise the `SophiaError` a user can act on."""
    status = response.status_code
    if status < 400:
        return response
    excerpt = _error_excerpt(response)
    said = f": {excerpt}" if excerpt else "."
    where = _request_where(response)
    if status in (401, 403):
        raise AuthError(
            f"{vendor} rejected the credentials (HTTP {status}{where}){said}",
            hint=(
                f"Set or rotate {key_variable} (environment, Pulumi ESC, local ESC file or .env) and check "
                f"that the key is allowed to do this; `sophia doctor` shows where {key_variable} comes from."
            ),
        )
    if status == 404:
        raise InputError(
            f"{vendor} has no such resource (HTTP 404{where}){said}",
            hint="Check the id or name you passed; if every call gets 404, check the base URL setting.",
        )
    if status == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        when = f"retry after {retry_after:.0f} s" if retry_after is not None else "retry later"
        raise BackendError(
            f"{vendor} rate limited the request (HTTP 429{where}), {when}{said}",
            hint=f"Wait, then try again ({when}); lower the request rate or upgrade the {vendor} plan.",
        )
    if status >= 500:
        raise BackendError(
            f"{vendor} failed with HTTP {status}{where} (vendor outage){said}",
            hint=f"This is on {vendor}'s side: try again later or check the vendor's status page.",
        )
    if status in (400, 409, 413, 415, 422):
        raise InputError(
            f"{vendor} refused the request as invalid (HTTP {status}{where}){said}",
            hint="Change the arguments as the vendor's message says, then call again.",
        )
    raise BackendError(f"{vendor} answered HTTP {status}{where}{said}")


# -- key rotation without restart ----------------------------------------------------------------


class RefreshableSettings(Protocol):
    def refresh_esc(self) -> bool: ...


async def send_with_auth_refresh(
    settings: RefreshableSettings, send: Callable[[], Awaitable[httpx.Response]]
) -> httpx.Response:
    """Call `send`; on 401/403 re-open Pulumi ESC once and call it again.

    `send` must build its headers from settings each time, so the second call uses a rotated key.
    """
    response = await send()
    if response.status_code not in (401, 403):
        return response
    if not await anyio.to_thread.run_sync(settings.refresh_esc):
        return response
    await response.aclose()
    log.info(
        "Credentials rejected (HTTP %d%s); re-opened Pulumi ESC, retrying once",
        response.status_code,
        _request_where(response),
    )
    return await send()
