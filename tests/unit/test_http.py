"""`request_json` against a fake vendor: retries, Retry-After, key rotation, auth styles, error mapping."""

from __future__ import annotations

import datetime as dt
import logging
import time
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, SophiaError
from sophia_shared.http import (
    ApiKeyAuth,
    ErrorMessage,
    RetryPolicy,
    make_client,
    request_json,
    retry_after_seconds,
)
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.net import closed_port_url
from tests.fakes.vendor_app import Call, Reply, VendorApp, serve

FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)
BASE = "https://cloud.lambda.ai"
VENDOR = "Lambda Cloud"
KEY_VARIABLE = "LAMBDA_API_KEY"
KEY = "secret_lambda-key-0123456789"
INSTANCES = "/api/v1/instances"
LAUNCH = "/api/v1/instance-operations/launch"


def lambda_app() -> VendorApp:
    return VendorApp(
        {
            f"GET {INSTANCES}": lambda call: {"data": [{"id": "0920582c", "status": "active"}]},
            f"GET {INSTANCES}/{{id}}": lambda call: {"data": {"id": call.params["id"]}},
            f"POST {LAUNCH}": lambda call: {"data": {"instance_ids": ["0920582c"]}},
            f"DELETE {INSTANCES}/{{id}}": lambda call: Reply(204),
        }
    )


@pytest.fixture
def app() -> VendorApp:
    return lambda_app()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with the key in the environment and no ESC: a 401 cannot be refreshed."""
    return Settings({KEY_VARIABLE: KEY, "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml")}, cwd=tmp_path)


def esc_settings(tmp_path: Path, keys: list[str], *, ttl: float = 3600.0) -> tuple[Settings, list[str]]:
    """Settings whose ESC environment hands out `keys` in turn, one per opening (the last one repeats)."""
    handed_out: list[str] = []

    def opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
        key = keys[min(len(handed_out), len(keys) - 1)]
        handed_out.append(key)
        return SourceValues(f"esc:{ref}", {KEY_VARIABLE: key}, frozenset({KEY_VARIABLE}), time.time() + ttl)

    environ = {
        "SOPHIA_ESC_ENV": "acme/sophia/dev",
        "PULUMI_ACCESS_TOKEN": "pul-test-token",
        "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"),
    }
    return Settings(environ, cwd=tmp_path, esc_opener=opener), handed_out


def fake_client(app: VendorApp, retry: RetryPolicy = FAST) -> httpx.AsyncClient:
    return make_client(base_url=BASE, transport=httpx.ASGITransport(app=app), retry=retry)


async def call_lambda(
    app: VendorApp, settings: Settings, method: str = "GET", path: str = INSTANCES, **kwargs: Any
) -> Any:
    async with fake_client(app, kwargs.pop("retry", FAST)) as client:
        return await request_json(client, settings, method, path, vendor=VENDOR, key_variable=KEY_VARIABLE, **kwargs)


def everything_said(err: SophiaError) -> str:
    return "\n".join([str(err), err.message, err.hint, err.agent_message()])


# -- success -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_returns_the_json_body_sent_with_bearer_key_and_user_agent(app: VendorApp, settings: Settings) -> None:
    body = await call_lambda(app, settings, "GET", f"{INSTANCES}/0920582c")
    assert body == {"data": {"id": "0920582c"}}
    (seen,) = app.calls
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["user-agent"] == "sophia-mcp/0.1"


@pytest.mark.anyio
async def test_empty_body_returns_none(app: VendorApp, settings: Settings) -> None:
    assert await call_lambda(app, settings, "DELETE", f"{INSTANCES}/0920582c") is None


def test_default_timeouts_are_short_to_connect_and_bounded_to_read() -> None:
    client = make_client()
    assert (client.timeout.connect, client.timeout.read) == (5.0, 30.0)


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_is_retried_on_5xx_until_it_succeeds(app: VendorApp, settings: Settings) -> None:
    app.fail_next(2, 503)
    body = await call_lambda(app, settings)
    assert body["data"][0]["status"] == "active"
    assert len(app.calls) == 3


@pytest.mark.anyio
async def test_retries_stop_at_max_attempts_with_a_vendor_outage_error(app: VendorApp, settings: Settings) -> None:
    app.fail_next(5, 502)
    with pytest.raises(BackendError) as err:
        await call_lambda(app, settings)
    assert len(app.calls) == 3
    assert "Lambda Cloud failed with HTTP 502 on GET /api/v1/instances after 3 attempts" in err.value.message
    assert "try again later" in err.value.hint


@pytest.mark.anyio
async def test_retry_after_is_honoured_between_attempts(app: VendorApp, settings: Settings) -> None:
    app.fail_next(1, 429, retry_after="0.3")
    await call_lambda(app, settings)
    first, second = app.calls
    assert second.at - first.at >= 0.28  # FAST's own backoff is at most 0.02 s


@pytest.mark.anyio
@pytest.mark.parametrize(
    "retry_after",
    ["120", "in-5-minutes"],
    ids=["seconds", "http-date"],
)
async def test_retry_after_beyond_the_cap_fails_fast_and_says_when_to_retry(
    app: VendorApp, settings: Settings, retry_after: str
) -> None:
    if retry_after == "in-5-minutes":  # made now, not at collection: a long run would make it a past date
        retry_after = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), usegmt=True)
    app.fail_next(1, 429, retry_after=retry_after)
    started = time.monotonic()
    with pytest.raises(
        BackendError, match=r"rate limited the request \(HTTP 429 on GET /api/v1/instances\), retry after"
    ):
        await call_lambda(app, settings)
    assert time.monotonic() - started < 1.0
    assert len(app.calls) == 1


@pytest.mark.anyio
async def test_rate_limit_that_outlasts_the_retries_says_when_to_retry(app: VendorApp, settings: Settings) -> None:
    app.fail_next(3, 429)
    with pytest.raises(BackendError) as err:
        await call_lambda(app, settings)
    assert not isinstance(err.value, AuthError)
    assert "rate limited the request (HTTP 429 on GET /api/v1/instances after 3 attempts), retry in a minute" in (
        err.value.message
    )
    assert "Wait, then call again" in err.value.hint


@pytest.mark.anyio
async def test_post_is_not_repeated_after_a_5xx(app: VendorApp, settings: Settings) -> None:
    app.fail_next(1, 503)
    with pytest.raises(BackendError, match="HTTP 503 on POST /api/v1/instance-operations/launch"):
        await call_lambda(app, settings, "POST", LAUNCH, json={"region_name": "us-east-1"})
    assert len(app.calls) == 1


@pytest.mark.anyio
async def test_post_is_repeated_after_a_429_since_the_vendor_did_no_work(app: VendorApp, settings: Settings) -> None:
    app.fail_next(1, 429)
    body = await call_lambda(app, settings, "POST", LAUNCH, json={"region_name": "us-east-1"})
    assert body == {"data": {"instance_ids": ["0920582c"]}}
    assert len(app.calls) == 2


@pytest.mark.anyio
async def test_post_marked_idempotent_is_retried_with_the_same_body(app: VendorApp, settings: Settings) -> None:
    app.fail_next(2, 500)
    await call_lambda(app, settings, "POST", LAUNCH, json={"query": "fintech"}, idempotent=True)
    assert [c.json for c in app.calls] == [{"query": "fintech"}] * 3


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503])
async def test_request_marked_not_idempotent_is_sent_once(app: VendorApp, settings: Settings, status: int) -> None:
    app.fail_next(1, status)
    with pytest.raises(BackendError):
        await call_lambda(app, settings, idempotent=False)
    assert len(app.calls) == 1


@pytest.mark.anyio
async def test_refused_connection_is_retried_even_for_post_then_backend_error(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sophia_shared.http")
    auth = ApiKeyAuth.query("apikey")
    async with make_client(base_url=closed_port_url(), retry=FAST) as client:
        with pytest.raises(BackendError) as err:
            # A POST too: the connection never opened, so the vendor never saw it.
            await request_json(
                client, settings, "POST", LAUNCH, vendor=VENDOR, key_variable=KEY_VARIABLE, auth=auth, json={}
            )
    assert "Could not get an answer from Lambda Cloud (POST /api/v1/instance-operations/launch) after 3 attempts" in (
        err.value.message
    )
    assert len([r for r in caplog.records if "retry" in r.getMessage()]) == 2
    assert KEY not in caplog.text
    assert KEY not in everything_said(err.value)


@pytest.mark.anyio
async def test_read_timeout_is_retried_for_get_then_backend_error(app: VendorApp, settings: Settings) -> None:
    app.slow_next(2, seconds=0.6)
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)
    started = time.monotonic()
    with serve(app) as url:
        async with make_client(base_url=url, retry=policy, timeout=httpx.Timeout(0.15)) as client:
            with pytest.raises(BackendError) as err:
                await request_json(client, settings, "GET", INSTANCES, vendor=VENDOR, key_variable=KEY_VARIABLE)
        elapsed = time.monotonic() - started
    assert elapsed < 0.55
    assert len(app.calls) == 2
    assert "after 2 attempts: read timed out after 0.15 s" in err.value.message
    assert "try again later" in err.value.hint


@pytest.mark.anyio
async def test_post_read_timeout_is_not_repeated(app: VendorApp, settings: Settings) -> None:
    app.slow_next(1, seconds=0.5)
    with serve(app) as url:
        async with make_client(base_url=url, retry=FAST, timeout=httpx.Timeout(0.1)) as client:
            with pytest.raises(BackendError, match="after 1 attempt: read timed out"):
                await request_json(
                    client, settings, "POST", LAUNCH, vendor=VENDOR, key_variable=KEY_VARIABLE, json={"launch": 1}
                )
    assert len(app.calls) == 1


@pytest.mark.anyio
async def test_retry_logs_name_method_host_and_path_but_no_key(
    app: VendorApp, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sophia_shared.http")
    app.fail_next(1, 503)
    await call_lambda(app, settings, auth=ApiKeyAuth.query("apikey"), params={"page": "2"})
    assert "GET cloud.lambda.ai/api/v1/instances → HTTP 503; retry 2/3" in caplog.text
    assert KEY not in caplog.text


# -- the key: read at send time, rotated through ESC ----------------------------------------------


@pytest.mark.anyio
async def test_each_request_reads_the_key_current_in_settings(app: VendorApp, tmp_path: Path) -> None:
    # An ESC session that has already expired is re-opened on every read: each one hands out the next key.
    settings, _ = esc_settings(tmp_path, ["key-one-aaaa", "key-two-bbbb"], ttl=-1)
    await call_lambda(app, settings)
    await call_lambda(app, settings)
    assert [c.headers["authorization"] for c in app.calls] == ["Bearer key-one-aaaa", "Bearer key-two-bbbb"]


@pytest.mark.anyio
async def test_rejected_key_reopens_esc_once_and_retries_with_the_rotated_key(app: VendorApp, tmp_path: Path) -> None:
    settings, handed_out = esc_settings(tmp_path, ["old-key-aaaa", "new-key-bbbb"])
    app.reject_key("old-key-aaaa")
    body = await call_lambda(app, settings, "POST", LAUNCH, json={"region_name": "us-east-1"})
    assert body == {"data": {"instance_ids": ["0920582c"]}}
    assert [c.headers["authorization"] for c in app.calls] == ["Bearer old-key-aaaa", "Bearer new-key-bbbb"]
    assert handed_out == ["old-key-aaaa", "new-key-bbbb"]


@pytest.mark.anyio
async def test_key_still_rejected_after_esc_refresh_is_an_auth_error_naming_the_variable(
    app: VendorApp, tmp_path: Path
) -> None:
    settings, handed_out = esc_settings(tmp_path, ["bad-key-1111", "bad-key-2222", "bad-key-3333"])
    app.reject_key("bad-key-")
    with pytest.raises(AuthError) as err:
        await call_lambda(app, settings)
    assert len(app.calls) == 2
    assert len(handed_out) == 2
    assert "Lambda Cloud rejected the credentials in LAMBDA_API_KEY (HTTP 401 on GET /api/v1/instances)" in (
        err.value.message
    )
    assert "global/invalid-api-key: API key was invalid" in err.value.message
    assert "rotate LAMBDA_API_KEY" in err.value.hint
    assert "bad-key" not in everything_said(err.value)


@pytest.mark.anyio
async def test_rejected_key_without_esc_is_not_retried(app: VendorApp, settings: Settings) -> None:
    app.reject_key(KEY)
    with pytest.raises(AuthError, match="rejected the credentials in LAMBDA_API_KEY"):
        await call_lambda(app, settings)
    assert len(app.calls) == 1


@pytest.mark.anyio
async def test_missing_key_is_a_config_error_and_nothing_is_sent(app: VendorApp, tmp_path: Path) -> None:
    settings = Settings({"SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml")}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="LAMBDA_API_KEY is not set, so the Lambda Cloud API is unavailable"):
        await call_lambda(app, settings)
    assert app.calls == []


# -- auth styles ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_header_auth_sends_the_key_in_that_header_only(app: VendorApp, settings: Settings) -> None:
    await call_lambda(app, settings, auth=ApiKeyAuth.header("Api-Key"), headers={"X-Project": "sophia"})
    (seen,) = app.calls
    assert seen.headers["api-key"] == KEY
    assert seen.headers["x-project"] == "sophia"
    assert "authorization" not in seen.headers
    assert seen.query == {}


@pytest.mark.anyio
async def test_query_auth_adds_the_key_next_to_the_other_params(app: VendorApp, settings: Settings) -> None:
    await call_lambda(app, settings, auth=ApiKeyAuth.query("apikey"), params={"q": "github lang:sv"})
    (seen,) = app.calls
    assert seen.query == {"q": "github lang:sv", "apikey": KEY}
    assert "authorization" not in seen.headers


@pytest.mark.anyio
async def test_query_key_is_not_in_the_error_even_when_the_vendor_echoes_it(app: VendorApp, settings: Settings) -> None:
    app.route("GET", "/v1/", lambda call: Reply(401, {"detail": f"Invalid apikey {call.query['apikey']} (AUTH001)"}))
    with pytest.raises(AuthError) as err:
        await call_lambda(app, settings, "GET", "/v1/", auth=ApiKeyAuth.query("apikey"))
    assert "Invalid apikey [REDACTED] (AUTH001)" in err.value.message
    assert KEY not in everything_said(err.value)


# -- error mapping -------------------------------------------------------------------------------


def answering(status: int, body: Any) -> VendorApp:
    """A fake whose launch answers `status` with `body`: JSON, or a str sent as an HTML page."""
    if isinstance(body, str):
        reply = Reply(status, body=body.encode(), content_type="text/html")
    else:
        reply = Reply(status, body)
    return VendorApp({f"POST {LAUNCH}": lambda call: reply})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "error", "says"),
    [
        (403, {"error": {"code": "global/account-inactive", "message": "Account inactive."}}, AuthError,
         "rejected the credentials in LAMBDA_API_KEY (HTTP 403 on POST /api/v1/instance-operations/launch): "
         "global/account-inactive: Account inactive."),
        (402, {"code": "AUTH004", "detail": "Usage exceeded"}, BackendError,
         "out of credit or quota (HTTP 402 on POST /api/v1/instance-operations/launch): AUTH004: Usage exceeded"),
        (400, {"error": {"code": "global/quota-exceeded", "message": "Quota exceeded."}}, BackendError,
         "out of credit or quota (HTTP 400 on POST /api/v1/instance-operations/launch): "
         "global/quota-exceeded: Quota exceeded."),
        (404, {"error": {"code": "global/object-does-not-exist", "message": "No such instance."}}, InputError,
         "Lambda Cloud has no such resource (HTTP 404 on POST /api/v1/instance-operations/launch)"),
        (400, {"error": {"code": "global/invalid-parameters", "message": "region_name is required"}}, InputError,
         "refused the request as invalid (HTTP 400 on POST /api/v1/instance-operations/launch): "
         "global/invalid-parameters: region_name is required"),
        (503, "<html>upstream unavailable</html>", BackendError,
         "failed with HTTP 503 on POST /api/v1/instance-operations/launch (a vendor outage): "
         "<html>upstream unavailable</html>"),
        (422, {"detail": "payment_method must be one of card, invoice"}, InputError,
         "refused the request as invalid (HTTP 422 on POST /api/v1/instance-operations/launch): payment_method"),
        (418, {"message": "teapot"}, BackendError, "Lambda Cloud answered HTTP 418 on POST"),
    ],
    ids=["403-auth", "402-quota", "400-quota-code", "404", "400-invalid", "503", "422-not-quota", "418"],
)  # fmt: skip
async def test_each_failure_becomes_the_error_a_user_can_act_on(
    settings: Settings, status: int, body: Any, error: type[SophiaError], says: str
) -> None:
    app = answering(status, body)
    with pytest.raises(SophiaError) as err:
        await call_lambda(app, settings, "POST", LAUNCH, json={})
    assert type(err.value) is error
    assert says in err.value.message
    assert KEY not in everything_said(err.value)


@pytest.mark.anyio
async def test_quota_refusal_on_403_does_not_reopen_esc(tmp_path: Path) -> None:
    settings, handed_out = esc_settings(tmp_path, ["key-one-aaaa", "key-two-bbbb"])
    app = answering(403, {"error": {"code": "global/quota-exceeded", "message": "Quota exceeded."}})
    with pytest.raises(BackendError, match="out of credit or quota") as err:
        await call_lambda(app, settings, "POST", LAUNCH, json={})
    assert not isinstance(err.value, AuthError)
    assert "Add credit, raise the quota" in err.value.hint
    assert handed_out == ["key-one-aaaa"]


def lambda_error_message(response: httpx.Response) -> str | None:
    """Lambda's envelope: the code, the message and the vendor's own suggestion."""
    error = response.json().get("error") or {}
    if not error:
        return None
    suggestion = f" ({error['suggestion']})" if error.get("suggestion") else ""
    return f"{error['code']}: {error['message']}{suggestion}"


@pytest.mark.anyio
async def test_vendor_error_message_callable_puts_the_vendors_words_in_the_error(settings: Settings) -> None:
    app = answering(
        400,
        {
            "error": {
                "code": "instance-operations/launch/insufficient-capacity",
                "message": "Not enough capacity to fulfill launch request.",
                "suggestion": "Choose an instance type with more availability, or try again later.",
            }
        },
    )
    extract: ErrorMessage = lambda_error_message
    with pytest.raises(InputError) as err:
        await call_lambda(app, settings, "POST", LAUNCH, json={}, error_message=extract)
    assert err.value.message.endswith(
        ": instance-operations/launch/insufficient-capacity: Not enough capacity to fulfill launch request. "
        "(Choose an instance type with more availability, or try again later.)"
    )


@pytest.mark.anyio
async def test_long_vendor_error_bodies_are_cut_short(settings: Settings) -> None:
    app = answering(502, "<html>" + "bad gateway " * 500 + "</html>")
    with pytest.raises(BackendError) as err:
        await call_lambda(app, settings, "POST", LAUNCH, json={})
    assert "bad gateway" in err.value.message
    assert len(err.value.message) < 450


@pytest.mark.anyio
async def test_non_json_success_is_a_backend_error_pointing_at_the_base_url(settings: Settings) -> None:
    app = VendorApp({f"GET {INSTANCES}": lambda call: Reply(body=b"<html>Sign in</html>", content_type="text/html")})
    with pytest.raises(BackendError) as err:
        await call_lambda(app, settings)
    assert "with a body that is not JSON (text/html, starting '<html>Sign in</html>')" in err.value.message
    assert "base URL" in err.value.hint


@pytest.mark.anyio
async def test_undecodable_body_is_a_backend_error(settings: Settings) -> None:
    broken = Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    app = VendorApp({f"GET {INSTANCES}": lambda call: broken})
    with pytest.raises(
        BackendError, match=r"Could not use Lambda Cloud's answer to GET /api/v1/instances: DecodingError"
    ):
        await call_lambda(app, settings)


@pytest.mark.anyio
async def test_malformed_json_is_a_backend_error(app: VendorApp, settings: Settings) -> None:
    app.malformed_next()
    with pytest.raises(BackendError, match=r"not JSON \(application/json, starting '\{\"data\""):
        await call_lambda(app, settings)
    assert len(app.calls) == 1


@pytest.mark.anyio
async def test_body_larger_than_max_bytes_is_refused(app: VendorApp, settings: Settings) -> None:
    app.huge_next(size=300_000)
    with pytest.raises(BackendError, match=r"with more than 100,000 bytes; refusing to read further") as err:
        await call_lambda(app, settings, max_bytes=100_000)
    assert "smaller page size" in err.value.hint
    app.huge_next(size=300_000)
    assert len((await call_lambda(app, settings))["data"]) > 299_000  # the default ceiling is far higher


# -- the fake itself -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_fake_records_calls_and_answers_unknown_paths_404(app: VendorApp, settings: Settings) -> None:
    with pytest.raises(InputError, match="No route for GET /api/v2/nothing"):
        await call_lambda(app, settings, "GET", "/api/v2/nothing", params={"page": "1"})
    (seen,) = app.calls
    assert isinstance(seen, Call)
    assert (seen.method, seen.path, seen.query) == ("GET", "/api/v2/nothing", {"page": "1"})


# -- policy details ------------------------------------------------------------------------------


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    exact = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=False)
    assert [exact.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(base_delay=0.5, max_delay=3.0)
    samples = [jittered.backoff(3) for _ in range(200)]
    assert all(0.0 <= s <= 2.0 for s in samples)
    assert len(set(samples)) > 100


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Mon, 05 Jan 2026 12:00:42 GMT", now=now) == 42.0
    assert retry_after_seconds("Mon, 05 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
