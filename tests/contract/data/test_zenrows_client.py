"""The ZenRows client against the fake: documented parameters, the request cost, the Batch API round trip,
and every failure a user meets (rate limits, outages, timeouts, huge or broken bodies, a rotated key,
a missing key, exhausted credits), each said so a user can act and never with the key in it."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sophia_data_intelligence.clients.zenrows import SCRAPE_RETRY, BatchRun, ScrapeOptions, ZenRowsClient
from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, PolicyError, SophiaError
from sophia_shared.http import RetryPolicy
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.net import closed_port_url
from tests.fakes.vendor_app import serve
from tests.fakes.zenrows import BATCH_BASE, SCRAPER_BASE, VALID_KEY, FakeZenRows, spec_validator

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)
SCRAPE_FAST = dataclasses.replace(SCRAPE_RETRY, base_delay=0.01, max_delay=0.02)  # its attempts, our speed
KEY_VARIABLE = "ZENROWS_API_KEY"
GATE = {"SOPHIA_DATA_INTELLIGENCE_ALLOW_WRITE": "1"}
PAGE = "https://shop.example/item/7"


def settings_with(tmp_path: Path, **environ: str) -> Settings:
    return Settings({"SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"), **environ}, cwd=tmp_path)


def client_for(fake: FakeZenRows, settings: Settings, **kwargs: Any) -> ZenRowsClient:
    kwargs.setdefault("scrape_retry", SCRAPE_FAST)
    kwargs.setdefault("batch_retry", FAST)
    return ZenRowsClient(
        settings,
        base_url=SCRAPER_BASE,
        batch_base_url=BATCH_BASE,
        transport=httpx.ASGITransport(app=fake),
        poll_seconds=0.01,
        **kwargs,
    )


@pytest.fixture
def fake() -> FakeZenRows:
    return FakeZenRows()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_with(tmp_path, ZENROWS_API_KEY=VALID_KEY, **GATE)


@pytest.fixture
async def zenrows(fake: FakeZenRows, settings: Settings) -> AsyncIterator[ZenRowsClient]:
    client = client_for(fake, settings)
    yield client
    await client.aclose()


def everything_said(err: SophiaError) -> str:
    return "\n".join([str(err), err.message, err.hint, err.agent_message(), repr(err.__cause__)])


# -- the Universal Scraper -----------------------------------------------------------------------


async def test_scrape_sends_the_key_as_apikey_and_options_as_documented_parameters(
    fake: FakeZenRows, zenrows: ZenRowsClient
) -> None:
    options = ScrapeOptions(
        response_type="plaintext",
        js_render=True,
        premium_proxy=True,
        proxy_country="de",
        wait_ms=1500,
        wait_for=".price",
        block_resources="image,font",
        session_id=42,
    )
    page = await zenrows.scrape(PAGE, options)
    (call,) = fake.calls
    assert call.path == "/v1/" and call.method == "GET"
    assert call.query == {
        "apikey": VALID_KEY,
        "url": PAGE,
        "js_render": "true",
        "premium_proxy": "true",
        "proxy_country": "de",
        "wait": "1500",
        "wait_for": ".price",
        "block_resources": "image,font",
        "response_type": "plaintext",
        "session_id": "42",
    }
    assert "x-api-key" not in call.headers and "authorization" not in call.headers
    assert page.text.startswith("Heading of https://shop.example/item/7") and "<p" not in page.text


async def test_scrape_reports_the_request_cost_concurrency_and_final_url(zenrows: ZenRowsClient) -> None:
    page = await zenrows.scrape("https://shop.example/redirect/", ScrapeOptions(js_render=True))
    assert page.request_cost == "0.0050" and page.request_id
    assert (page.concurrency_limit, page.concurrency_remaining) == (20, 19)
    assert page.final_url == "https://shop.example/redirect/landing" and page.status == 200
    assert page.content_type == "text/markdown" and not page.cut and not page.reused


async def test_css_extractor_is_sent_as_json_and_answers_json(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    page = await zenrows.scrape(PAGE, ScrapeOptions(css_extractor=(("prices", ".price"), ("title", "h1"))))
    assert json.loads(fake.calls[0].query["css_extractor"]) == {"prices": ".price", "title": "h1"}
    assert "response_type" not in fake.calls[0].query
    assert json.loads(page.text) == {"prices": ["$42", "$7"], "title": "Heading of https://shop.example/item/7"}


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (ScrapeOptions(adaptive=True, js_render=True), "cannot be combined with js_render"),
        (ScrapeOptions(js_render=True, wait_ms=30_001), "wait_ms must be between 0 and 30,000"),
        (ScrapeOptions(wait_for=".x"), "need js_render=true"),
        (ScrapeOptions(proxy_country="de"), "proxy_country needs premium_proxy=true"),
        (ScrapeOptions(premium_proxy=True, proxy_country="germany"), "not a two-letter country code"),
        (ScrapeOptions(js_render=True, block_resources="images"), "Unknown resource kind(s) to block: images"),
    ],
    ids=[
        "adaptive-with-js",
        "wait-too-long",
        "wait-for-without-js",
        "country-without-premium",
        "bad-country",
        "bad-resource",
    ],
)
async def test_options_zenrows_would_refuse_are_refused_before_anything_is_paid(
    fake: FakeZenRows, zenrows: ZenRowsClient, options: ScrapeOptions, said: str
) -> None:
    with pytest.raises(InputError) as err:
        await zenrows.scrape(PAGE, options)
    assert said in err.value.message
    assert fake.calls == []


async def test_a_url_that_is_not_http_is_refused_without_a_call(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    with pytest.raises(InputError, match="not an absolute http"):
        await zenrows.scrape("file:///etc/passwd", ScrapeOptions())
    assert fake.calls == []


async def test_reuse_serves_the_recent_copy_without_a_second_charge(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    first = await zenrows.scrape(PAGE, ScrapeOptions())
    again = await zenrows.scrape(PAGE, ScrapeOptions(), reuse=True)
    other = await zenrows.scrape(PAGE, ScrapeOptions(response_type="html"), reuse=True)
    assert again.reused and again.text == first.text and not other.reused
    assert len(fake.calls) == 2


# -- faults ----------------------------------------------------------------------------------------


async def test_a_5xx_is_retried_and_then_succeeds(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    fake.fail_next(1, 503)
    page = await zenrows.scrape(PAGE, ScrapeOptions())
    assert page.status == 200 and len(fake.calls) == 2


async def test_a_lasting_5xx_says_it_is_a_zenrows_outage(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    fake.fail_next(2, 502)
    with pytest.raises(BackendError) as err:
        await zenrows.scrape(PAGE, ScrapeOptions())
    assert "ZenRows failed with HTTP 502 on GET /v1/ after 2 attempts (a vendor outage)" in err.value.message
    assert len(fake.calls) == 2


async def test_429_waits_as_retry_after_says(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    fake.fail_next(1, 429, retry_after="0.3")
    await zenrows.scrape(PAGE, ScrapeOptions())
    first, second = fake.calls
    assert second.at - first.at >= 0.28


async def test_concurrency_limit_says_the_plan_limit_and_when_to_retry(fake: FakeZenRows, settings: Settings) -> None:
    fake.fail_next(2, 429, retry_after="1")
    client = client_for(fake, settings)
    with pytest.raises(BackendError) as err:
        await client.scrape(PAGE, ScrapeOptions())
    assert "simultaneous requests is reached (HTTP 429 after 2 attempts), retry after 1 s" in err.value.message
    assert "AUTH006" in err.value.message


async def test_an_answer_slower_than_our_timeout_fails_saying_it_timed_out(settings: Settings) -> None:
    fake = FakeZenRows()
    fake.slow_next(2, seconds=2.0)
    with serve(fake) as url:
        client = ZenRowsClient(settings, base_url=url, scrape_timeout=httpx.Timeout(0.3), scrape_retry=SCRAPE_FAST)
        started = time.monotonic()
        with pytest.raises(BackendError) as err:
            await client.scrape(PAGE, ScrapeOptions())
        await client.aclose()
    assert time.monotonic() - started < 1.9
    assert "Could not get an answer from ZenRows (GET /v1/) after 2 attempts: read timed out" in err.value.message
    assert VALID_KEY not in everything_said(err.value)


async def test_an_unreachable_zenrows_says_so_without_the_key(settings: Settings) -> None:
    client = ZenRowsClient(settings, base_url=closed_port_url(), scrape_retry=SCRAPE_FAST)
    with pytest.raises(BackendError) as err:
        await client.scrape(PAGE, ScrapeOptions())
    await client.aclose()
    assert "Could not get an answer from ZenRows" in err.value.message and "SOPHIA_ZENROWS_BASE_URL" in err.value.hint
    assert VALID_KEY not in everything_said(err.value)


async def test_a_huge_page_is_cut_at_the_read_cap_and_says_so(fake: FakeZenRows, settings: Settings) -> None:
    fake.huge_next(1, size=300_000)
    client = client_for(fake, settings, max_body_bytes=100_000)
    page = await client.scrape(PAGE, ScrapeOptions())
    await client.aclose()
    assert page.cut and page.bytes_read == 100_000 and len(page.text) == 100_000


async def test_a_malformed_batch_answer_says_it_is_not_json(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    fake.malformed_next(1)
    with pytest.raises(BackendError, match="not JSON"):
        await zenrows.batch_status("01J9Z3ABCDEFGHJKMNPQRSTVWX")


async def test_a_rejected_key_reopens_esc_once_and_uses_the_rotated_key(fake: FakeZenRows, tmp_path: Path) -> None:
    keys = ["zr-old-key-ffffffffffffffff", VALID_KEY]
    opened: list[str] = []

    def opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
        key = keys[min(len(opened), len(keys) - 1)]
        opened.append(key)
        return SourceValues(f"esc:{ref}", {KEY_VARIABLE: key}, frozenset({KEY_VARIABLE}), time.time() + 3600)

    environ = {"SOPHIA_ESC_ENV": "acme/sophia/dev", "PULUMI_ACCESS_TOKEN": "pul-test", **GATE}
    rotating = Settings({**environ, "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml")}, cwd=tmp_path, esc_opener=opener)
    client = client_for(fake, rotating)
    page = await client.scrape(PAGE, ScrapeOptions())
    await client.aclose()
    assert page.status == 200 and opened == keys
    assert [c.query["apikey"] for c in fake.calls] == keys


async def test_a_key_rejected_for_good_names_the_variable_and_never_shows_the_key(
    fake: FakeZenRows, zenrows: ZenRowsClient
) -> None:
    fake.reject_key(VALID_KEY)
    with pytest.raises(AuthError) as err:
        await zenrows.scrape(PAGE, ScrapeOptions())
    assert "ZenRows rejected the credentials in ZENROWS_API_KEY (HTTP 401 on GET /v1/): AUTH002" in err.value.message
    assert VALID_KEY not in everything_said(err.value)


async def test_a_missing_key_names_the_variable_and_sends_nothing(fake: FakeZenRows, tmp_path: Path) -> None:
    client = client_for(fake, settings_with(tmp_path, **GATE))
    with pytest.raises(ConfigError) as scraped:
        await client.scrape(PAGE, ScrapeOptions())
    with pytest.raises(ConfigError) as batched:
        await client.batch_status("01J9Z3ABCDEFGHJKMNPQRSTVWX")
    await client.aclose()
    for err in (scraped, batched):
        assert "ZENROWS_API_KEY is not set, so the ZenRows API is unavailable." in err.value.message
    assert fake.calls == []


async def test_exhausted_credits_say_the_credits_ran_out(settings: Settings) -> None:
    fake = FakeZenRows(credits=0)
    client = client_for(fake, settings)
    with pytest.raises(BackendError) as err:
        await client.scrape(PAGE, ScrapeOptions())
    await client.aclose()
    assert "the account's API credits are used up (HTTP 402 on GET /v1/): AUTH004 Usage exceeded" in err.value.message
    assert "Add credits or upgrade the ZenRows plan" in err.value.hint
    assert not isinstance(err.value, AuthError) and len(fake.calls) == 1


async def test_a_feature_missing_from_the_plan_is_named_as_such(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    fake.route("GET", "/v1/", lambda call: fake.error_reply(402, "AUTH010", "Extract is not enabled for your plan."))
    fake._routes.reverse()  # the override first
    with pytest.raises(BackendError) as err:
        await zenrows.scrape(PAGE, ScrapeOptions())
    assert "the account's plan does not include this feature (HTTP 402): AUTH010" in err.value.message


@pytest.mark.parametrize(
    ("url", "kind", "said"),
    [
        ("https://shop.example/missing", InputError, "The target page answered 404 (not found) through ZenRows"),
        ("https://forbidden.example/", InputError, "ZenRows does not scrape this site (HTTP 400): REQS001"),
    ],
    ids=["target-404", "forbidden-domain"],
)
async def test_target_problems_are_told_apart_from_zenrows_problems(
    zenrows: ZenRowsClient, url: str, kind: type[SophiaError], said: str
) -> None:
    with pytest.raises(kind) as err:
        await zenrows.scrape(url, ScrapeOptions())
    assert said in err.value.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InputError),
        (401, AuthError),
        (402, BackendError),
        (413, InputError),
        (422, BackendError),
        (500, BackendError),
        (504, BackendError),
    ],
)
async def test_no_error_ever_shows_the_key(
    fake: FakeZenRows, zenrows: ZenRowsClient, status: int, kind: type[SophiaError]
) -> None:
    # A vendor that echoes the request (key included) into its error detail.
    fake.route(
        "GET", "/v1/", lambda call: fake.error_reply(status, "", f"Bad request {call.query}: apikey={VALID_KEY}")
    )
    fake._routes.reverse()
    with pytest.raises(kind) as err:
        await zenrows.scrape(PAGE, ScrapeOptions())
    said = everything_said(err.value)
    assert VALID_KEY not in said and base64.b64encode(VALID_KEY.encode()).decode() not in said


# -- the Batch API ---------------------------------------------------------------------------------


async def test_batch_submit_needs_the_write_gate_and_sends_nothing_without_it(
    fake: FakeZenRows, tmp_path: Path
) -> None:
    client = client_for(fake, settings_with(tmp_path, ZENROWS_API_KEY=VALID_KEY))
    with pytest.raises(PolicyError, match="SOPHIA_DATA_INTELLIGENCE_ALLOW_WRITE"):
        await client.submit_batch([PAGE], ScrapeOptions())
    await client.aclose()
    assert fake.calls == []


async def test_batch_submit_sends_the_header_key_a_fresh_idempotency_key_and_a_spec_valid_body(
    fake: FakeZenRows, zenrows: ZenRowsClient
) -> None:
    options = ScrapeOptions(js_render=True, css_extractor=(("title", "h1"),))
    first = await zenrows.submit_batch([PAGE, "https://shop.example/item/8"], options)
    await zenrows.submit_batch([PAGE], ScrapeOptions())
    one, two = fake.calls
    assert one.headers["x-api-key"] == VALID_KEY and "apikey" not in one.query
    assert one.headers["idempotency-key"] != two.headers["idempotency-key"]
    spec_validator("SubmitJobRequest").validate(one.json)
    assert one.json["zenrows_params"] == {"js_render": "true", "css_extractor": '{"title":"h1"}'}
    assert (first.total, first.run_status) == (2, "running")


async def test_waiting_reports_progress_until_the_run_completes(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    fake.tasks_per_poll = 1
    run = await zenrows.submit_batch(
        [PAGE, "https://shop.example/fail", "https://shop.example/item/9"], ScrapeOptions()
    )
    seen: list[tuple[int, int]] = []

    async def progress(state: BatchRun) -> None:
        seen.append((state.completed, state.total))

    done = await zenrows.wait_for_batch(run.job_id, seconds=5, on_progress=progress)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert (done.run_status, done.successful, done.failed, done.failure_reasons) == ("completed", 2, 1, {"blocked": 1})
    assert done.credits == 2 and done.output == "markdown"


async def test_waiting_stops_at_the_deadline_with_the_run_still_running(
    fake: FakeZenRows, zenrows: ZenRowsClient
) -> None:
    fake.tasks_per_poll = 1
    run = await zenrows.submit_batch([PAGE, "https://shop.example/item/9"], ScrapeOptions())
    state = await zenrows.wait_for_batch(run.job_id, seconds=0)
    assert (state.run_status, state.completed, state.finished) == ("running", 1, False)


async def test_results_follow_the_vendor_cursor_and_content_comes_through_the_api(
    fake: FakeZenRows, zenrows: ZenRowsClient
) -> None:
    run = await zenrows.submit_batch(
        [PAGE, "https://shop.example/fail", "https://shop.example/item/9"], ScrapeOptions()
    )
    await zenrows.wait_for_batch(run.job_id, seconds=1)
    first, cursor = await zenrows.batch_results(run.job_id)
    second, end = await zenrows.batch_results(run.job_id, cursor=cursor)
    assert [t.status for t in first + second] == ["successful", "failed", "successful"] and end == ""
    assert first[1].error == "RESP001: Could not get content. Try enabling premium proxies."
    content = await zenrows.task_content(run.job_id, first[0].task_id, max_bytes=20)
    assert content.cut and content.text == "# Heading of https:/"
    assert all(c.path.startswith("/v1/jobs") and c.headers["x-api-key"] == VALID_KEY for c in fake.calls)


async def test_a_run_stopped_for_credits_says_what_ran_out(settings: Settings) -> None:
    fake = FakeZenRows(credits=1)
    client = client_for(fake, settings)
    run = await client.submit_batch([PAGE, "https://shop.example/item/9"], ScrapeOptions())
    state = await client.wait_for_batch(run.job_id, seconds=1)
    await client.aclose()
    assert (state.run_status, state.failure_reason, state.successful) == ("failed", "insufficient_credits", 1)


async def test_a_batch_refused_for_credits_says_so(settings: Settings) -> None:
    fake = FakeZenRows(credits=0)
    client = client_for(fake, settings)
    with pytest.raises(BackendError, match="out of credit or quota") as err:
        await client.submit_batch([PAGE], ScrapeOptions())
    await client.aclose()
    assert "insufficient_credits" in err.value.message


async def test_a_job_id_that_is_not_one_is_refused_without_a_call(fake: FakeZenRows, zenrows: ZenRowsClient) -> None:
    with pytest.raises(InputError, match="not a ZenRows batch job id"):
        await zenrows.batch_status("../../hmac/keys")
    assert fake.calls == []
