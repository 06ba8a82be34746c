"""The one path for our own async vendor HTTP calls: `make_client` once, then `request_json` per call.

`make_client` gives an `httpx.AsyncClient` whose transport retries with exponential backoff and
full jitter, honouring `Retry-After` (and failing fast when it asks for longer than the policy's
cap). What is repeated:
- any method whose request never left this machine (connection refused, connect/pool timeout);
- any method answered 429, since the vendor refused it before doing anything;
- idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) answered 5xx or timed out mid-flight.
`request_json(..., idempotent=True)` opts a safe POST (a search) in; `idempotent=False` opts any
request out of everything but the never-sent case.

`request_json` reads the API key from settings at send time (a rotated key is picked up), re-opens
Pulumi ESC once after a 401/403, and turns every failure into a `SophiaError` that says what to do.

Never put this retry layer under an SDK that retries itself (portkey-ai, pinecone, zenrows): the
attempts multiply and a rate limit becomes a storm. Those SDKs get their own retry settings.
The MCP SDK uses its `httpx2` fork; vendor calls here use `httpx`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote, quote_plus

import anyio
import anyio.to_thread
import httpx

from .errors import AuthError, BackendError, InputError
from .redaction import MASK

log = logging.getLogger(__name__)

RETRY_EXTENSION = "sophia_retry"  # request extension: True/False overrides the method-based rule
ATTEMPTS_EXTENSION = "sophia_attempts"  # set on the request by the transport: attempts so far
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)
DEFAULT_USER_AGENT = "sophia-mcp/0.1"
DEFAULT_MAX_RESPONSE_BYTES = 20 * 2**20
_EXCERPT_CHARS = 300

# The request never left this machine, so repeating it is safe for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have reached the vendor: only repeat it when the request is safe to repeat.
_MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# Vendors say "out of money or allowance" in a body as often as with 402 (Lambda: 400 quota-exceeded).
_QUOTA_WORDS = re.compile(
    r"quota|usage[ _-](?:limit|exceeded)|insufficient[ _-](?:funds|balance|credits?)|out[ _-]of[ _-]credits?"
    r"|credits?[ _-](?:exhausted|exceeded)|payment[ _-]required",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before repeating a request."""

    max_attempts: int = 3
    base_delay: float = 0.5  # seconds; attempt n waits up to base_delay * 2**(n-1)
    max_delay: float = 8.0
    jitter: bool = True  # "full jitter": a uniform draw in [0, backoff]
    max_retry_after: float = 30.0  # a longer Retry-After fails fast instead of sleeping
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    idempotent_methods: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        return self.rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def may_repeat(self, request: httpx.Request) -> bool:
        """Whether a request that may have reached the vendor is safe to send again."""
        marked = request.extensions.get(RETRY_EXTENSION)
        if marked is not None:
            return bool(marked)
        return request.method.upper() in self.idempotent_methods


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


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """Wraps another async transport and repeats failed requests according to a `RetryPolicy`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, policy: RetryPolicy = DEFAULT_RETRY) -> None:
        self._inner = inner
        self._policy = policy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            request.extensions[ATTEMPTS_EXTENSION] = attempt
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as exc:
                delay = self._delay_after_error(request, exc, attempt)
                if delay is None:
                    raise
            else:
                delay = self._delay_after_response(request, response, attempt)
                if delay is None:
                    return response
                await response.aclose()
            await anyio.sleep(delay)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _delay_after_response(self, request: httpx.Request, response: httpx.Response, attempt: int) -> float | None:
        policy, status = self._policy, response.status_code
        if status not in policy.retry_statuses or request.extensions.get(RETRY_EXTENSION) is False:
            return None
        if status != 429 and not policy.may_repeat(request):
            return None
        if attempt >= policy.max_attempts:
            log.warning("%s → HTTP %d after %d attempts; giving up", _where(request), status, attempt)
            return None
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > policy.max_retry_after:
            log.warning(
                "%s → HTTP %d asks to retry after %.0f s (more than the %.0f s we wait); failing fast",
                _where(request),
                status,
                retry_after,
                policy.max_retry_after,
            )
            return None
        delay = retry_after if retry_after is not None else policy.backoff(attempt)
        log.info(
            "%s → HTTP %d; retry %d/%d in %.2f s", _where(request), status, attempt + 1, policy.max_attempts, delay
        )
        return delay

    def _delay_after_error(self, request: httpx.Request, exc: httpx.TransportError, attempt: int) -> float | None:
        policy = self._policy
        if not isinstance(exc, _NOT_SENT + _MAYBE_SENT):
            return None  # configuration mistakes (bad scheme, proxy) are not the network's fault
        if attempt >= policy.max_attempts or not (isinstance(exc, _NOT_SENT) or policy.may_repeat(request)):
            return None
        delay = policy.backoff(attempt)
        log.info(
            "%s failed (%s); retry %d/%d in %.2f s",
            _where(request),
            _describe(exc),
            attempt + 1,
            policy.max_attempts,
            delay,
        )
        return delay


def make_client(
    *,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    retry: RetryPolicy = DEFAULT_RETRY,
    user_agent: str = DEFAULT_USER_AGENT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with our timeouts and retries; `transport` replaces the network (fakes)."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"User-Agent": user_agent, **(headers or {})},
        timeout=timeout,
        transport=AsyncRetryTransport(transport or httpx.AsyncHTTPTransport(), retry),
    )


class SettingReader(Protocol):
    def get(self, name: str, default: str | None = None) -> str | None: ...


class LazyClient:
    """A vendor's client made on its first call: the base-URL setting may open Pulumi ESC, which must
    happen off the event loop and never while tools are listed."""

    def __init__(
        self,
        settings: SettingReader,
        base_url_variable: str,
        default_base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._variable = base_url_variable
        self._default = default_base_url
        self._options: dict[str, Any] = {"timeout": timeout, "retry": retry, "transport": transport}
        self._client: httpx.AsyncClient | None = None

    async def get(self) -> httpx.AsyncClient:
        if self._client is None:
            base = await anyio.to_thread.run_sync(self._settings.get, self._variable)
            self._client = make_client(base_url=(base or self._default).rstrip("/"), **self._options)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


# -- one call: credential, auth refresh, error mapping, JSON --------------------------------------


class CredentialSource(Protocol):
    """What `request_json` needs from `Settings`."""

    def require(self, name: str, purpose: str) -> str: ...

    def refresh_esc(self) -> bool: ...


@dataclass(frozen=True)
class ApiKeyAuth:
    """Where the API key travels: `ApiKeyAuth.bearer()`, `.header("Api-Key")` or `.query("apikey")`."""

    location: Literal["header", "query"]
    name: str
    prefix: str = ""

    @classmethod
    def bearer(cls) -> ApiKeyAuth:
        return cls("header", "Authorization", "Bearer ")

    @classmethod
    def header(cls, name: str) -> ApiKeyAuth:
        return cls("header", name)

    @classmethod
    def query(cls, name: str) -> ApiKeyAuth:
        return cls("query", name)

    def added_to(self, kwargs: Mapping[str, Any], key: str) -> dict[str, Any]:
        """`build_request` arguments with the key added, leaving the caller's headers or params as they were."""
        if self.location == "header":
            headers = httpx.Headers(kwargs.get("headers"))
            headers[self.name] = self.prefix + key
            return {**kwargs, "headers": headers}
        return {**kwargs, "params": httpx.QueryParams(kwargs.get("params")).set(self.name, self.prefix + key)}


BEARER = ApiKeyAuth.bearer()

ErrorMessage = Callable[[httpx.Response], str | None]


async def request_json(
    client: httpx.AsyncClient,
    settings: CredentialSource,
    method: str,
    path: str,
    *,
    vendor: str,
    key_variable: str,
    auth: ApiKeyAuth = BEARER,
    idempotent: bool | None = None,
    error_message: ErrorMessage | None = None,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    **kwargs: Any,
) -> Any:
    """Send one vendor request and return its JSON body (None when empty), or raise a `SophiaError`.

    `kwargs` go to `httpx.AsyncClient.build_request` (`params`, `json`, `headers`, `timeout`, …).
    """
    if idempotent is not None:
        kwargs["extensions"] = {**kwargs.get("extensions", {}), RETRY_EXTENSION: idempotent}

    async def send() -> tuple[httpx.Response, str]:
        # Read at send time so a rotated key is used; Settings may open ESC, so off the event loop.
        key = await anyio.to_thread.run_sync(settings.require, key_variable, f"the {vendor} API")
        request = client.build_request(method.upper(), path, **auth.added_to(kwargs, key))
        return await _send(client, request, vendor, key, max_bytes), key

    response, key = await send()
    said = _vendor_says(response, error_message, key)
    # Key rotation without restart: ESC may hold a newer key than the one this process read. The vendor
    # refused the first request, so sending it again is safe whatever the method.
    if _is_rejected_key(response, said) and await anyio.to_thread.run_sync(settings.refresh_esc):
        log.info(
            "%s rejected %s (HTTP %d); re-opened Pulumi ESC, retrying once", vendor, key_variable, response.status_code
        )
        response, key = await send()
        said = _vendor_says(response, error_message, key)
    _raise_for_status(response, vendor, key_variable, said)
    return _json_body(response, vendor, key)


async def _send(
    client: httpx.AsyncClient, request: httpx.Request, vendor: str, key: str, max_bytes: int
) -> httpx.Response:
    """Send with the transport's retries and read the body, at most `max_bytes` of it; network failures raise."""
    where = f"{request.method} {request.url.path}"
    try:
        streamed = await client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in streamed.aiter_bytes():
                size += len(chunk)
                if size > max_bytes and streamed.status_code < 400:
                    raise BackendError(
                        f"{vendor} answered {where} with more than {max_bytes:,} bytes; refusing to read further.",
                        hint="Ask for less: a smaller page size or limit, or fewer fields.",
                    )
                if size > max_bytes:
                    break  # an error page's start is enough to explain it
                chunks.append(chunk)
        finally:
            await streamed.aclose()
    except httpx.HTTPError as exc:
        attempts = int(request.extensions.get(ATTEMPTS_EXTENSION, 1))
        tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        what = _scrub(_describe(exc), key)
        log.warning("%s failed after %s: %s", _where(request), tries, what)
        if isinstance(exc, _NOT_SENT + _MAYBE_SENT):
            raise BackendError(
                f"Could not get an answer from {vendor} ({where}) after {tries}: {what}.",
                hint=(
                    "Check the network connection and the vendor's base URL setting; if they are right, "
                    f"{vendor} may be down or slow: try again later."
                ),
            ) from exc
        # Not the network's fault: a bad scheme or proxy, a body that cannot be decoded, a redirect loop.
        raise BackendError(
            f"Could not use {vendor}'s answer to {where}: {what}.",
            hint="Check the vendor's base URL and proxy settings; if they are right, the vendor sent a broken answer.",
        ) from exc
    # A plain, fully read response, so vendor `error_message` callables can use `.json()` and `.text`.
    kept = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _BODY_FRAMING]
    return httpx.Response(streamed.status_code, headers=kept, content=b"".join(chunks), request=request)


_BODY_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connect",
            httpx.ReadTimeout: "read",
            httpx.WriteTimeout: "write",
            httpx.PoolTimeout: "pool",
        }.get(type(exc), "")
        try:
            limit = exc.request.extensions.get("timeout", {}).get(phase) if phase else None
        except RuntimeError:  # no request attached
            limit = None
        return f"{phase or 'request'} timed out" + (f" after {limit:g} s" if limit else "")
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _vendor_says(response: httpx.Response, error_message: ErrorMessage | None, key: str) -> str:
    """The vendor's own words about a failure, short, with the key scrubbed if the vendor echoed it."""
    if response.status_code < 400:
        return ""
    text = (error_message(response) if error_message else None) or _default_error_message(response)
    text = _scrub(" ".join(text.split()), key)
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


def _scrub(text: str, key: str) -> str:
    """`text` without the key, as sent or URL-encoded; the redactor masks it later too, but only if registered."""
    for form in {key, quote(key, safe=""), quote_plus(key)}:
        if form:
            text = text.replace(form, MASK)
    return text


def _default_error_message(response: httpx.Response) -> str:
    """Common envelopes: `{"error": {"code", "message"}}`, `{"message"}`, `{"detail"}`, RFC 7807."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return response.content.decode("utf-8", errors="replace")
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return json.dumps(data, default=str)
    error = data.get("error")
    if isinstance(error, dict):
        data = error
    elif isinstance(error, str) and error:
        return error
    message = next((data[k] for k in ("message", "detail", "title", "error_message", "msg") if data.get(k)), None)
    code = data.get("code") or data.get("type")
    if message is None:
        return json.dumps(data, default=str)
    message = message if isinstance(message, str) else json.dumps(message, default=str)
    return f"{code}: {message}" if isinstance(code, str) and code and code not in message else message


def _is_quota(response: httpx.Response, said: str) -> bool:
    return response.status_code == 402 or (response.status_code >= 400 and bool(_QUOTA_WORDS.search(said)))


def _is_rejected_key(response: httpx.Response, said: str) -> bool:
    return response.status_code in (401, 403) and not _is_quota(response, said)


def _raise_for_status(response: httpx.Response, vendor: str, key_variable: str, said: str) -> None:
    """Raise the `SophiaError` a user can act on for a failed response; return on success."""
    status = response.status_code
    if status < 400:
        return
    where = f" on {response.request.method} {response.request.url.path}"
    attempts = int(response.request.extensions.get(ATTEMPTS_EXTENSION, 1))
    after = f" after {attempts} attempts" if attempts > 1 else ""
    tail = f": {said}" if said else "."
    if _is_quota(response, said):
        raise BackendError(
            f"{vendor} refused the request because the account is out of credit or quota (HTTP {status}{where}){tail}",
            hint=(
                f"Add credit, raise the quota or upgrade the plan in the {vendor} account (or wait for the "
                "quota period to reset); repeating the call now will fail the same way."
            ),
        )
    if status in (401, 403):
        raise AuthError(
            f"{vendor} rejected the credentials in {key_variable} (HTTP {status}{where}){tail}",
            hint=(
                f"Set or rotate {key_variable} (environment, Pulumi ESC, local ESC file or .env) and check that "
                f"the key is allowed to do this; `sophia doctor` shows where {key_variable} comes from."
            ),
        )
    if status == 404:
        raise InputError(
            f"{vendor} has no such resource (HTTP 404{where}){tail}",
            hint="Check the id or name you passed; if every call gets 404, check the vendor's base URL setting.",
        )
    if status == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        when = f"retry after {retry_after:.0f} s" if retry_after is not None else "retry in a minute"
        raise BackendError(
            f"{vendor} rate limited the request (HTTP 429{where}{after}), {when}{tail}",
            hint=f"Wait, then call again ({when}); make fewer calls in a row or raise the {vendor} plan's limit.",
        )
    if status >= 500:
        raise BackendError(
            f"{vendor} failed with HTTP {status}{where}{after} (a vendor outage){tail}",
            hint=f"This is on {vendor}'s side: try again later or check the vendor's status page.",
        )
    if status in (400, 409, 413, 415, 422):
        raise InputError(
            f"{vendor} refused the request as invalid (HTTP {status}{where}){tail}",
            hint="Change the arguments as the vendor's message says, then call again.",
        )
    raise BackendError(f"{vendor} answered HTTP {status}{where}{tail}")


def _json_body(response: httpx.Response, vendor: str, key: str) -> Any:
    if not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        start = _scrub(" ".join(response.content[:80].decode("utf-8", errors="replace").split()), key)
        raise BackendError(
            f"{vendor} answered {response.request.method} {response.request.url.path} (HTTP "
            f"{response.status_code}) with a body that is not JSON ({kind}, starting {start!r}).",
            hint=(
                "Check the vendor's base URL setting (a proxy or login page answers HTML); if it is right, "
                f"{vendor} sent a broken answer: try again later."
            ),
        ) from None
