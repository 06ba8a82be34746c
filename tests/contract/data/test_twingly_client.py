"""TwinglyClient against the fixture-built fake: the query it builds, the posts it parses from Twingly's
XML, Twingly's error XML turned into actionable errors, the failures of the network, and a key that
travels in the query string yet never shows in a message or a log."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sophia_data_intelligence.clients.twingly import (
    KEY_VARIABLE,
    TwinglyClient,
    build_query,
    parse_search_result,
)
from sophia_data_intelligence.settings import SETTINGS
from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, SophiaError
from sophia_shared.http import RetryPolicy
from sophia_shared.redaction import redact
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.twingly import SEARCH_PATH, VALID_KEY, FakeTwingly, fixture
from tests.fakes.vendor_app import Reply, serve

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)
BASE = "http://twingly.test"
SECRET = "twingly-secret-key-must-not-leak-42"


def settings_for(tmp_path: Path, **extra: str) -> Settings:
    environ = {KEY_VARIABLE: VALID_KEY, "SOPHIA_TWINGLY_BASE_URL": BASE, **extra}
    return Settings(environ, cwd=tmp_path, specs=SETTINGS)


def client_for(app: FakeTwingly, settings: Settings, **kwargs: Any) -> TwinglyClient:
    return TwinglyClient(settings, transport=httpx.ASGITransport(app=app), retry=FAST, **kwargs)


@pytest.fixture
def app() -> FakeTwingly:
    return FakeTwingly()


@pytest.fixture
async def twingly(app: FakeTwingly, tmp_path: Path) -> AsyncIterator[TwinglyClient]:
    client = client_for(app, settings_for(tmp_path))
    yield client
    await client.aclose()


def everything_said(err: SophiaError) -> str:
    return "\n".join([str(err), err.message, err.hint, err.agent_message()])


# -- the query ------------------------------------------------------------------------------------------


def test_the_query_carries_the_terms_then_the_operators_the_client_controls() -> None:
    q = build_query(
        '  "open source"   (github OR gitlab) -jobs ',
        language="SV",
        location="se",
        start=dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        end=dt.datetime(2026, 5, 2),
        page_size=50,
        oldest_first=True,
    )
    assert q == (
        '"open source" (github OR gitlab) -jobs lang:sv location:se start-date:2026-05-01T06:30:00 '
        "end-date:2026-05-02T00:00:00 sort:published sort-order:asc page-size:50"
    )
    assert build_query("github", time_span="24h").endswith("tspan:24h sort:published sort-order:desc page-size:20")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "   "}, "The blog search query is empty"),
        ({"query": "github page-size:1000"}, "The query sets page-size: itself"),
        ({"query": "github Sort-Order:asc tspan:w"}, "sets sort-order:, tspan: itself"),
        ({"query": "a", "page_size": 101}, "page_size must be between 1 and 100"),
        ({"query": "a", "time_span": "y"}, "Unknown time_span 'y'"),
        ({"query": "a", "time_span": "w", "start": dt.datetime(2026, 1, 1)}, "Give time_span or start/end"),
        ({"query": "a", "start": dt.datetime(2026, 2, 1), "end": dt.datetime(2026, 1, 1)}, "is after end"),
        ({"query": "a", "language": "swedish"}, "lang code 'swedish' is not a two-letter code"),
    ],
)
def test_queries_twingly_would_misread_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_query(**kwargs)


def test_operator_words_inside_terms_are_not_mistaken_for_operators() -> None:
    assert build_query("homepage: redesign").startswith("homepage: redesign")


# -- the XML --------------------------------------------------------------------------------------------


def test_posts_are_parsed_into_every_structured_field() -> None:
    result = parse_search_result(fixture("minimal_valid_result.xml"), query="q")
    assert (result.matches_total, result.matches_returned, result.incomplete) == (3122050, 3, False)
    assert result.seconds_elapsed == 0.369
    assert not result.complete
    post = result.posts[0]
    assert post.model_dump(exclude={"text"}) == {
        "id": "16405819479794412880",
        "url": "http://nouw.com/klivinihemligheten/planering---men-dalig-30016048",
        "title": "Planering - men dålig",
        "published_at": "2017-05-04T06:50:59Z",
        "indexed_at": "2017-05-04T06:51:23Z",
        "reindexed_at": "2017-05-04T08:51:23Z",
        "author": "klivinihemligheten",
        "blog_name": "Love life like a student",
        "blog_url": "http://nouw.com/klivinihemligheten",
        "blog_id": "5312283800049632348",
        "blog_rank": 1,
        "authority": 0,
        "inlinks_count": 0,
        "language": "sv",
        "location": "se",
        "latitude": None,
        "longitude": None,
        "tags": ["Ätas & drickas", "Universitet & studentlivet", "Träning", "To to list"],
        "links": [],
        "images": [],
    }
    assert post.text.startswith("Det vart en förmiddag på boxen")
    assert "\n            " not in post.text  # the XML's indentation is not part of the text


def test_links_coordinates_and_a_never_reindexed_post_are_parsed() -> None:
    (linked,) = parse_search_result(fixture("valid_links_result.xml")).posts
    assert linked.links[:2] == [
        "https://1.bp.blogspot.com/-4uNjjiNQiug/WKguo1sBxwI/AAAAAAAAqKE/_eR7cY8Ft3cd2fYCx-2yXK8AwSHE_A2GgCLcB/s1600/"
        "aaea427ee3eaaf8f47d650f48fdf1242.jpg",
        "http://www.irsn.fr/EN/newsroom/News/Pages/20170213_Detection-of-radioactive-iodine-at-trace-levels-in-Europe"
        "-in-January-2017.aspx",
    ]
    assert (linked.inlinks_count, linked.blog_rank, linked.authority) == (15, 9, 1591)
    (placed,) = parse_search_result(fixture("valid_coordinates_result.xml")).posts
    assert (placed.latitude, placed.longitude) == (49.1, 10.75)
    assert placed.author == ""
    assert placed.reindexed_at == ""  # Twingly's 0001-01-01 "never"


def test_empty_and_incomplete_results_are_told_apart() -> None:
    empty = parse_search_result(fixture("valid_empty_result.xml"))
    incomplete = parse_search_result(fixture("incomplete_result.xml"))
    assert (empty.posts, empty.incomplete, empty.complete) == ([], False, True)
    assert (incomplete.posts, incomplete.incomplete) == ([], True)


def test_an_html_outage_page_is_a_backend_error_quoting_its_text() -> None:
    with pytest.raises(BackendError) as err:
        parse_search_result(fixture("non_xml_result.xml"))
    assert "answered with a <html> document" in err.value.message
    assert "503 Service Unavailable No server is available" in err.value.message


def test_xml_with_entities_is_refused_unparsed() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><twinglydata>&b;</twinglydata>'
    with pytest.raises(BackendError, match="refuses to parse"):
        parse_search_result(bomb)


# -- the client against the fake --------------------------------------------------------------------------


async def test_search_sends_the_built_query_and_the_key_as_a_parameter(
    app: FakeTwingly, twingly: TwinglyClient
) -> None:
    found = await twingly.search("spotify", language="sv", page_size=3)
    (call,) = app.calls
    assert call.path == SEARCH_PATH
    assert call.query == {"q": "spotify lang:sv sort:published sort-order:desc page-size:3", "apiKey": VALID_KEY}
    assert call.headers["accept"] == "application/xml"
    assert [p.published_at for p in found.posts] == [
        "2017-10-16T08:15:00Z",
        "2017-10-16T05:00:00Z",
        "2017-10-15T22:59:12Z",
    ]
    assert (found.matches_total, found.query) == (10, call.query["q"])


async def test_a_query_error_is_an_input_error_with_twinglys_code(app: FakeTwingly, twingly: TwinglyClient) -> None:
    with pytest.raises(InputError) as err:
        await twingly.search("(spotify OR github")
    assert "Twingly could not run this query (error 40002: Invalid query: unbalanced" in err.value.message
    assert "HTTP 400" in err.value.message
    assert "exact phrases" in err.value.hint


async def test_a_rejected_key_names_the_variable_and_is_never_shown(
    app: FakeTwingly, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(app, settings_for(tmp_path, TWINGLY_API_KEY=SECRET))
    with pytest.raises(AuthError) as err:
        await client.search("spotify")
    await client.aclose()
    said = everything_said(err.value)
    assert "Twingly rejected the API key in TWINGLY_API_KEY (error 40101: Unauthorized, HTTP 401)" in said
    assert "rotate TWINGLY_API_KEY" in said
    assert SECRET not in said
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("sophia_", "tests"))]
    assert SECRET not in "\n".join(ours)
    # httpx's own request line holds the URL; the suite's log handler keeps httpx at WARNING and redacts
    # every registered secret, which this key is.
    assert SECRET not in redact(caplog.text)
    assert len(app.calls) == 1  # no ESC in use: nothing to re-read


async def test_a_key_rotated_in_esc_is_picked_up_after_one_rejection(app: FakeTwingly, tmp_path: Path) -> None:
    opened: list[str] = []

    def esc(ref: str, token: str, backend_url: str | None) -> SourceValues:
        key = [SECRET, VALID_KEY][min(len(opened), 1)]
        opened.append(key)
        return SourceValues(f"esc:{ref}", {KEY_VARIABLE: key}, frozenset({KEY_VARIABLE}), time.time() + 3600)

    environ = {"SOPHIA_ESC_ENV": "acme/sophia/dev", "PULUMI_ACCESS_TOKEN": "pul-t", "SOPHIA_TWINGLY_BASE_URL": BASE}
    client = client_for(app, Settings(environ, cwd=tmp_path, esc_opener=esc, specs=SETTINGS))
    found = await client.search("spotify", page_size=2)
    await client.aclose()
    assert len(found.posts) == 2
    assert [c.query["apiKey"] for c in app.calls] == [SECRET, VALID_KEY]


async def test_a_missing_key_names_the_variable_and_sends_nothing(app: FakeTwingly, tmp_path: Path) -> None:
    client = client_for(app, Settings({"SOPHIA_TWINGLY_BASE_URL": BASE}, cwd=tmp_path, specs=SETTINGS))
    with pytest.raises(ConfigError, match="TWINGLY_API_KEY is not set, so the Twingly Blog Search API is unavailable"):
        await client.search("spotify")
    await client.aclose()
    assert app.calls == []


async def test_an_exhausted_subscription_says_what_ran_out(app: FakeTwingly, twingly: TwinglyClient) -> None:
    app.fail_next(1, 402)
    with pytest.raises(BackendError) as err:
        await twingly.search("spotify")
    assert not isinstance(err.value, AuthError)
    assert "subscription or search quota is used up (error 40201" in err.value.message
    assert "Renew or extend the Twingly subscription" in err.value.hint


async def test_a_429_with_retry_after_is_waited_out_then_succeeds(app: FakeTwingly, twingly: TwinglyClient) -> None:
    app.fail_next(1, 429, retry_after="0.2")
    started = time.monotonic()
    found = await twingly.search("spotify", page_size=1)
    assert time.monotonic() - started >= 0.2
    assert len(found.posts) == 1
    assert len(app.calls) == 2


async def test_a_429_that_outlasts_the_retries_says_when_to_retry(app: FakeTwingly, twingly: TwinglyClient) -> None:
    app.fail_next(3, 429, retry_after="1")
    with pytest.raises(BackendError) as err:
        await twingly.search("spotify")
    assert "Twingly rate limited the search (HTTP 429 after 3 attempt(s)), retry after 1 s." in err.value.message


@pytest.mark.parametrize(("status", "code"), [(503, "50301"), (500, "50001")])
async def test_server_errors_are_retried_then_reported_with_twinglys_code(
    app: FakeTwingly, twingly: TwinglyClient, status: int, code: str
) -> None:
    app.fail_next(3, status)
    with pytest.raises(BackendError) as err:
        await twingly.search("spotify")
    assert len(app.calls) == 3
    assert f"Twingly failed on its side (error {code}" in err.value.message


async def test_a_5xx_then_success_returns_the_posts(app: FakeTwingly, twingly: TwinglyClient) -> None:
    app.fail_next(1, 503)
    assert len((await twingly.search("spotify", page_size=2)).posts) == 2


async def test_a_search_slower_than_our_timeout_fails_clearly(app: FakeTwingly, tmp_path: Path) -> None:
    app.slow_next(3, seconds=0.5)
    with serve(app) as url:
        client = TwinglyClient(
            settings_for(tmp_path, SOPHIA_TWINGLY_BASE_URL=url, TWINGLY_API_KEY=SECRET),
            retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01),
            timeout=httpx.Timeout(0.1),
        )
        with pytest.raises(BackendError) as err:
            await client.search("spotify")
        await client.aclose()
    assert f"Could not get an answer from Twingly (GET {SEARCH_PATH}) after 2 attempt(s): ReadTimeout" in (
        err.value.message
    )
    assert SECRET not in everything_said(err.value)


async def test_a_malformed_body_is_a_backend_error(app: FakeTwingly, twingly: TwinglyClient) -> None:
    app.malformed_next()
    with pytest.raises(BackendError, match="answered with a body that is not XML"):
        await twingly.search("spotify")


async def test_a_huge_body_is_refused_without_reading_it_all(app: FakeTwingly, tmp_path: Path) -> None:
    app.huge_next(size=300_000)
    client = client_for(app, settings_for(tmp_path), max_bytes=100_000)
    with pytest.raises(BackendError, match="more than 100,000 bytes; refusing to read further") as err:
        await client.search("spotify")
    await client.aclose()
    assert "smaller page_size" in err.value.hint


async def test_an_error_echoing_the_key_has_it_masked(app: FakeTwingly, tmp_path: Path) -> None:
    body = f'<error code="40001"><message>Parameter apikey {SECRET} is not valid</message></error>'.encode()
    app.route("GET", SEARCH_PATH, lambda call: Reply(400, body=body, content_type="application/xml"))
    app._routes.reverse()  # the echoing route first
    client = client_for(app, settings_for(tmp_path, TWINGLY_API_KEY=SECRET))
    with pytest.raises(AuthError) as err:
        await client.search("spotify")
    await client.aclose()
    assert "error 40001" in err.value.message
    assert SECRET not in everything_said(err.value)


async def test_incomplete_answers_are_flagged(app: FakeTwingly, twingly: TwinglyClient) -> None:
    app.incomplete_next()
    assert (await twingly.search("spotify")).incomplete is True
    assert (await twingly.search("spotify")).incomplete is False
