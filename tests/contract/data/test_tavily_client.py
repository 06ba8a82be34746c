"""TavilyClient against the spec-built fake: what it sends, what it returns, the credits it reports, the
limits it checks before spending anything, and every way a call can fail, with the key never shown."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from sophia_data_intelligence.clients.tavily import (
    KEY_VARIABLE,
    MAX_CRAWL_PAGES,
    TavilyClient,
    crawl_credits,
    extract_credits,
    map_credits,
)
from sophia_data_intelligence.settings import SETTINGS
from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, SophiaError
from sophia_shared.http import RetryPolicy
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.tavily import VALID_KEY, FakeTavily, request_schema
from tests.fakes.vendor_app import serve

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)
BASE = "http://tavily.test"


def settings_for(tmp_path: Path, **extra: str) -> Settings:
    environ = {KEY_VARIABLE: VALID_KEY, "SOPHIA_TAVILY_BASE_URL": BASE, **extra}
    return Settings(environ, cwd=tmp_path, specs=SETTINGS)


def client_for(app: FakeTavily, settings: Settings, **kwargs: Any) -> TavilyClient:
    return TavilyClient(settings, transport=httpx.ASGITransport(app=app), retry=FAST, **kwargs)


@pytest.fixture
def app() -> FakeTavily:
    return FakeTavily()


@pytest.fixture
async def tavily(app: FakeTavily, tmp_path: Path) -> AsyncIterator[TavilyClient]:
    client = client_for(app, settings_for(tmp_path))
    yield client
    await client.aclose()


def everything_said(err: SophiaError) -> str:
    return "\n".join([str(err), err.message, err.hint, err.agent_message()])


# -- what is sent and returned ------------------------------------------------------------------------


async def test_search_sends_a_spec_valid_body_with_bearer_key_and_returns_typed_hits(
    app: FakeTavily, tavily: TavilyClient
) -> None:
    found = await tavily.search(
        "acme pricing",
        topic="news",
        search_depth="advanced",
        max_results=3,
        time_range="week",
        include_domains=["example.com", "example.org"],
        exclude_domains=["example.org"],
        include_answer="basic",
        include_raw_content=True,
    )
    (call,) = app.calls
    assert call.headers["authorization"] == f"Bearer {VALID_KEY}"
    jsonschema.validate(call.json, request_schema("/search"))
    assert call.json["include_usage"] is True
    assert call.json["include_raw_content"] == "markdown"
    assert call.json["time_range"] == "week"
    assert [h.url for h in found.results] == [f"https://example.com/acme-pricing/{n}" for n in (1, 2, 3)]
    first = found.results[0]
    assert (first.title, first.score) == ("acme pricing — result 1", 0.95)
    assert first.published_date == "Mon, 01 Jun 2026 10:00:00 GMT"
    assert first.raw_content.startswith("# Page https://example.com/acme-pricing/1")
    assert found.answer == "A short answer about acme pricing, from 3 sources."
    assert (found.credits.used, found.credits.computed) == (2.0, False)
    assert found.request_id == "req-0001"


async def test_search_without_answer_or_raw_content_asks_for_neither(app: FakeTavily, tavily: TavilyClient) -> None:
    found = await tavily.search("acme")
    assert app.calls[0].json["include_answer"] is False
    assert app.calls[0].json["include_raw_content"] is False
    assert found.answer == ""
    assert all(h.raw_content == "" and h.published_date == "" for h in found.results)


async def test_credits_are_computed_from_the_table_when_tavily_reports_none(
    app: FakeTavily, tavily: TavilyClient
) -> None:
    app.report_usage = False
    assert (await tavily.search("a", search_depth="advanced")).credits.model_dump() == {"used": 2.0, "computed": True}
    extracted = await tavily.extract(["https://e.com/1", "https://e.com/2", "https://unreachable.test/"])
    assert extracted.credits.model_dump() == {"used": 0.4, "computed": True}  # 2 successes / 5
    crawled = await tavily.crawl("https://docs.example.com", limit=10, instructions="SDK pages")
    assert crawled.credits.used == crawl_credits(10, instructions=True, depth="basic") == 4.0
    mapped = await tavily.map("https://docs.example.com", limit=40)
    assert mapped.credits.used == map_credits(40, instructions=False) == 4.0


def test_the_credit_table_matches_tavilys_published_rates() -> None:
    assert extract_credits(5, "basic") == 1.0
    assert extract_credits(5, "advanced") == 2.0
    assert map_credits(10, instructions=True) == 2.0
    assert crawl_credits(10, instructions=False, depth="advanced") == 1.0 + 4.0


async def test_extract_returns_pages_and_the_urls_that_failed(app: FakeTavily, tavily: TavilyClient) -> None:
    found = await tavily.extract(
        ["https://e.com/a", " ", "https://unreachable.test/x"], query="pricing", extract_depth="advanced"
    )
    jsonschema.validate(app.calls[0].json, request_schema("/extract"))
    assert app.calls[0].json["urls"] == ["https://e.com/a", "https://unreachable.test/x"]
    assert [p.url for p in found.results] == ["https://e.com/a"]
    assert [(f.url, f.error) for f in found.failed] == [("https://unreachable.test/x", "Failed to fetch url")]
    assert found.credits.model_dump() == {"used": 0.4, "computed": False}


async def test_crawl_and_map_send_their_controls_and_return_pages_and_urls(
    app: FakeTavily, tavily: TavilyClient
) -> None:
    crawled = await tavily.crawl(
        "https://docs.example.com",
        max_depth=2,
        limit=4,
        select_paths=["/docs/.*"],
        exclude_domains=["^private\\."],
        format="text",
    )
    mapped = await tavily.map("https://docs.example.com", limit=3, allow_external=True)
    crawl_body, map_body = app.calls[0].json, app.calls[1].json
    jsonschema.validate(crawl_body, request_schema("/crawl"))
    jsonschema.validate(map_body, request_schema("/map"))
    assert crawl_body["select_paths"] == ["/docs/.*"]
    assert crawl_body["allow_external"] is False  # ours defaults to the site itself
    assert map_body["allow_external"] is True
    assert [p.url for p in crawled.results][:2] == ["https://docs.example.com", "https://docs.example.com/page-1"]
    assert len(crawled.results) == 4
    assert mapped.urls == [
        "https://docs.example.com",
        "https://docs.example.com/page-1",
        "https://docs.example.com/page-2",
    ]


# -- limits checked before anything is spent ------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.search("  "), "The search query is empty"),
        (lambda t: t.search("a", max_results=21), "max_results must be between 0 and 20"),
        (lambda t: t.search("a", include_domains=["d"] * 301), "include_domains takes at most 300"),
        (lambda t: t.search("a", exclude_domains=["d"] * 151), "exclude_domains takes at most 150"),
        (lambda t: t.search("a", start_date="1 May"), "start_date must be a date written YYYY-MM-DD"),
        (lambda t: t.search("a", start_date="2026-05-02", end_date="2026-05-01"), "is after end_date"),
        (lambda t: t.search("a", topic="news", country="sweden"), "country only applies to topic 'general'"),
        (lambda t: t.extract([]), "There is no URL to extract"),
        (lambda t: t.extract([f"https://e.com/{n}" for n in range(21)]), "urls takes at most 20"),
        (lambda t: t.extract(["https://e.com"], vendor_timeout=61), "timeout must be between 1 and 60"),
        (lambda t: t.crawl("https://e.com", limit=MAX_CRAWL_PAGES + 1), "limit must be between 1 and 100"),
        (lambda t: t.crawl("https://e.com", max_depth=6), "max_depth must be between 1 and 5"),
        (lambda t: t.map("https://e.com", vendor_timeout=5), "timeout must be between 10 and 150"),
        (lambda t: t.map(" "), "The start URL is empty"),
    ],
)
async def test_arguments_outside_tavilys_limits_are_refused_before_sending(
    app: FakeTavily, tavily: TavilyClient, call: Any, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        await call(tavily)
    assert app.calls == []


# -- failures -----------------------------------------------------------------------------------------


async def test_a_429_with_retry_after_is_waited_out_then_succeeds(app: FakeTavily, tavily: TavilyClient) -> None:
    app.fail_next(1, 429, retry_after="0.2")
    started = time.monotonic()
    found = await tavily.search("acme")
    assert time.monotonic() - started >= 0.2
    assert len(app.calls) == 2
    assert len(found.results) == 5


async def test_a_429_that_outlasts_the_retries_says_when_to_retry(app: FakeTavily, tavily: TavilyClient) -> None:
    app.fail_next(3, 429, retry_after="0")
    with pytest.raises(BackendError) as err:
        await tavily.search("acme")
    assert "Tavily rate limited the request (HTTP 429 on POST /search after 3 attempts)" in err.value.message
    assert "Injected HTTP 429." in err.value.message  # Tavily's own words, from its envelope


async def test_a_5xx_on_search_is_retried_since_searching_is_safe_to_repeat(
    app: FakeTavily, tavily: TavilyClient
) -> None:
    app.fail_next(1, 500)
    assert len((await tavily.search("acme")).results) == 5
    assert len(app.calls) == 2


async def test_a_5xx_on_crawl_is_not_repeated_and_is_reported_as_an_outage(
    app: FakeTavily, tavily: TavilyClient
) -> None:
    app.fail_next(3, 502)
    with pytest.raises(BackendError) as err:
        await tavily.crawl("https://docs.example.com")
    assert len(app.calls) == 1
    assert "Tavily failed with HTTP 502 on POST /crawl (a vendor outage)" in err.value.message


async def test_a_search_slower_than_our_timeout_fails_with_a_clear_message(app: FakeTavily, tmp_path: Path) -> None:
    app.slow_next(3, seconds=0.5)
    with serve(app) as url:
        client = TavilyClient(
            settings_for(tmp_path, SOPHIA_TAVILY_BASE_URL=url),
            retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01),
            timeout=httpx.Timeout(0.1),
        )
        with pytest.raises(BackendError) as err:
            await client.search("acme")
        await client.aclose()
    assert "Could not get an answer from Tavily (POST /search) after 2 attempts: read timed out" in err.value.message
    assert "try again later" in err.value.hint


async def test_a_malformed_body_is_a_backend_error_pointing_at_the_base_url(
    app: FakeTavily, tavily: TavilyClient
) -> None:
    app.malformed_next()
    with pytest.raises(BackendError, match="with a body that is not JSON") as err:
        await tavily.search("acme")
    assert "base URL" in err.value.hint


async def test_a_huge_body_is_refused_without_reading_it_all(app: FakeTavily, tmp_path: Path) -> None:
    app.huge_next(size=400_000)
    client = client_for(app, settings_for(tmp_path), max_bytes=100_000)
    with pytest.raises(BackendError, match="more than 100,000 bytes; refusing to read further"):
        await client.map("https://docs.example.com")
    await client.aclose()


async def test_a_key_rotated_in_esc_is_picked_up_after_one_401(app: FakeTavily, tmp_path: Path) -> None:
    old, new = "tvly-old-rotated-away", VALID_KEY
    opened: list[str] = []

    def esc(ref: str, token: str, backend_url: str | None) -> SourceValues:
        key = [old, new][min(len(opened), 1)]
        opened.append(key)
        return SourceValues(f"esc:{ref}", {KEY_VARIABLE: key}, frozenset({KEY_VARIABLE}), time.time() + 3600)

    environ = {
        "SOPHIA_ESC_ENV": "acme/sophia/dev",
        "PULUMI_ACCESS_TOKEN": "pul-test-token",
        "SOPHIA_TAVILY_BASE_URL": BASE,
    }
    client = client_for(app, Settings(environ, cwd=tmp_path, esc_opener=esc, specs=SETTINGS))
    found = await client.search("acme")
    await client.aclose()
    assert len(found.results) == 5
    assert [c.headers["authorization"] for c in app.calls] == [f"Bearer {old}", f"Bearer {new}"]
    assert opened == [old, new]


async def test_a_rejected_key_names_the_variable_and_never_shows_the_key(
    app: FakeTavily, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = "tvly-bad-key-that-must-not-leak"
    client = client_for(app, settings_for(tmp_path, TAVILY_API_KEY=bad))
    with pytest.raises(AuthError) as err:
        await client.search("acme")
    await client.aclose()
    said = everything_said(err.value)
    assert "Tavily rejected the credentials in TAVILY_API_KEY (HTTP 401 on POST /search)" in said
    assert "Unauthorized: missing or invalid API key." in said
    assert bad not in said
    assert bad not in caplog.text


async def test_a_missing_key_names_the_variable_and_sends_nothing(app: FakeTavily, tmp_path: Path) -> None:
    client = client_for(app, Settings({"SOPHIA_TAVILY_BASE_URL": BASE}, cwd=tmp_path, specs=SETTINGS))
    with pytest.raises(ConfigError, match="TAVILY_API_KEY is not set, so the Tavily API is unavailable"):
        await client.search("acme")
    await client.aclose()
    assert app.calls == []


@pytest.mark.parametrize(
    ("status", "what"),
    [(432, "the plan's (or this key's) credit quota is used up"), (433, "the pay-as-you-go spending quota")],
)
async def test_exhausted_plan_or_spending_limit_says_what_ran_out(
    app: FakeTavily, tavily: TavilyClient, status: int, what: str
) -> None:
    app.exhaust(status)
    with pytest.raises(BackendError) as err:
        await tavily.search("acme")
    assert not isinstance(err.value, AuthError)
    assert f"out of credit or quota (HTTP {status} on POST /search)" in err.value.message
    assert what in err.value.message
    assert "upgrade the plan" in err.value.hint
    assert len(app.calls) == 1


@pytest.mark.parametrize("walk", ["crawl", "map"])
async def test_an_unsupported_site_is_an_input_error_not_a_key_problem(
    app: FakeTavily, tavily: TavilyClient, walk: str
) -> None:
    app.unsupported("https://blocked.example")
    with pytest.raises(InputError) as err:
        await getattr(tavily, walk)("https://blocked.example")
    assert "Tavily will not walk https://blocked.example" in err.value.message
    assert "web_extract" in err.value.hint


async def test_a_bad_request_carries_tavilys_own_words(app: FakeTavily, tavily: TavilyClient) -> None:
    app.fail_next(1, 400)
    with pytest.raises(InputError) as err:
        await tavily.search("acme")
    assert "Tavily refused the request as invalid (HTTP 400 on POST /search): Injected HTTP 400." in err.value.message
