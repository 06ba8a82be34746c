"""`ApifyClient` against the spec-built fake: runs (sync, polled, aborted), paging, the write gate and every fault."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sophia_data_intelligence.clients.apify import (
    ApifyClient,
    ApifyRun,
    RunLimits,
    normalise_actor_id,
)
from sophia_data_intelligence.settings import SETTINGS
from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, PolicyError, SophiaError
from sophia_shared.http import RetryPolicy
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.apify import TOKEN, FakeApify
from tests.fakes.vendor_app import serve

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)
GATE = "SOPHIA_DATA_INTELLIGENCE_ALLOW_WRITE"
LONG = RunLimits(timeout_seconds=600, memory_mbytes=1024, max_total_charge_usd=2.5)
SHORT = RunLimits(timeout_seconds=30, memory_mbytes=512, max_total_charge_usd=0.5, max_items=10)
ITEMS = [{"url": f"https://example.com/{n}", "title": f"Page {n}"} for n in range(7)]


def make_settings(tmp_path: Path, *, token: str | None = TOKEN, gate: bool = True, **extra: str) -> Settings:
    environ = {"SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"), **extra}
    if token is not None:
        environ["APIFY_API_TOKEN"] = token
    if gate:
        environ[GATE] = "1"
    return Settings(environ, cwd=tmp_path, specs=SETTINGS)


def everything_said(err: SophiaError) -> str:
    return "\n".join([str(err), err.message, err.hint, err.agent_message()])


@pytest.fixture
def fake() -> FakeApify:
    app = FakeApify()
    app.add_actor("apify", "web-scraper", ITEMS, script=["RUNNING", "RUNNING", "SUCCEEDED"], cost_usd=0.0421)
    return app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def client_for(fake: FakeApify, settings: Settings, **kwargs: Any) -> ApifyClient:
    kwargs.setdefault("retry", FAST)
    return ApifyClient(settings, transport=httpx.ASGITransport(app=fake), **kwargs)


@pytest.fixture
async def client(fake: FakeApify, settings: Settings) -> Any:
    apify = client_for(fake, settings)
    yield apify
    await apify.aclose()


# -- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("apify/web-scraper", "apify~web-scraper"),
        ("apify~web-scraper", "apify~web-scraper"),
        (" https://apify.com/apify/web-scraper/ ", "apify~web-scraper"),
        ("HDSasDasz78YcAPEB", "HDSasDasz78YcAPEB"),
    ],
)
def test_actor_ids_are_normalised_to_the_tilde_form(given: str, expected: str) -> None:
    assert normalise_actor_id(given) == expected


@pytest.mark.parametrize("bad", ["", "apify", "a/b/c", "../v2/users/me", "apify/web scraper"])
def test_actor_ids_that_could_reach_another_path_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match="not an Apify actor id"):
        normalise_actor_id(bad)


# -- runs ------------------------------------------------------------------------------------------


async def test_short_run_is_one_sync_request_with_every_cap_and_reports_the_runs_cost(
    client: ApifyClient, fake: FakeApify
) -> None:
    outcome = await client.run_actor("apify/web-scraper", {"startUrls": ["https://example.com"]}, SHORT, items_limit=5)
    assert outcome.mode == "sync"
    sync = fake.calls_to("/v2/actors/apify~web-scraper/run-sync-get-dataset-items")
    assert len(sync) == 1 and sync[0].json == {"startUrls": ["https://example.com"]}
    assert sync[0].query == {
        "timeout": "30", "memory": "512", "maxTotalChargeUsd": "0.5", "maxItems": "10",
        "format": "json", "clean": "true", "limit": "6",
    }  # fmt: skip
    assert sync[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert outcome.items is not None and outcome.items.items == ITEMS[:5] and outcome.items.more
    assert outcome.run is not None and outcome.run.usage_total_usd == pytest.approx(0.0421)
    assert outcome.run.max_total_charge_usd == 0.5 and outcome.run.dataset_id


async def test_long_run_is_started_then_polled_until_it_ends_reporting_each_status(
    client: ApifyClient, fake: FakeApify
) -> None:
    seen: list[tuple[str, float]] = []

    async def on_status(run: ApifyRun, elapsed: float) -> None:
        seen.append((run.status, elapsed))

    outcome = await client.run_actor("apify~web-scraper", {"q": 1}, LONG, items_limit=3, on_status=on_status)
    assert outcome.mode == "async"
    assert [s for s, _ in seen] == ["READY", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert [e for _, e in seen] == sorted(e for _, e in seen)
    start = fake.calls_to("/v2/actors/apify~web-scraper/runs")
    assert len(start) == 1 and start[0].method == "POST" and start[0].json == {"q": 1}
    assert start[0].query == {"timeout": "600", "memory": "1024", "maxTotalChargeUsd": "2.5"}
    run = outcome.run
    assert run is not None and run.status == "SUCCEEDED" and run.usage_total_usd == pytest.approx(0.0421)
    polls = fake.calls_to(f"/v2/actor-runs/{run.id}")
    assert len(polls) == 3 and all(p.query == {"waitForFinish": "60"} for p in polls)
    assert outcome.items is not None and outcome.items.items == ITEMS[:3] and outcome.items.more
    assert run.usage["ACTOR_COMPUTE_UNITS"] > 0 and run.usage_usd and run.compute_units


async def test_cancelling_a_long_run_aborts_it_at_apify(client: ApifyClient, fake: FakeApify) -> None:
    fake.actors["apify~web-scraper"].script = ["RUNNING"]  # then it keeps running

    async def on_status(run: ApifyRun, elapsed: float) -> None:
        if run.status == "RUNNING":
            scope.cancel()

    with anyio.CancelScope() as scope:
        await client.run_actor("apify/web-scraper", {}, LONG, on_status=on_status)
    assert scope.cancelled_caught
    (run_id,) = fake.runs
    assert [c.path for c in fake.calls if c.method == "POST"][-1] == f"/v2/actor-runs/{run_id}/abort"
    assert fake.runs[run_id]["status"] == "ABORTED"


async def test_waiting_stops_at_the_deadline_and_returns_the_run_still_going(
    fake: FakeApify, settings: Settings
) -> None:
    fake.actors["apify~web-scraper"].script = []  # stays READY
    apify = client_for(fake, settings, max_wait_for_finish=1)
    run = await apify.start_run("apify~web-scraper", {}, LONG)
    with anyio.fail_after(10):
        last = await apify.wait_for_run(run, until=0.3)
    assert last.status == "READY" and not last.finished
    assert len(fake.calls_to(f"/v2/actor-runs/{run.id}")) >= 2
    assert not any(c.path.endswith("/abort") for c in fake.calls)
    await apify.aclose()


async def test_run_refused_by_the_write_gate_sends_nothing(fake: FakeApify, tmp_path: Path) -> None:
    apify = client_for(fake, make_settings(tmp_path, gate=False))
    for limits in (SHORT, LONG):
        with pytest.raises(PolicyError, match="SOPHIA_DATA_INTELLIGENCE_ALLOW_WRITE"):
            await apify.run_actor("apify/web-scraper", {}, limits)
    with pytest.raises(PolicyError):
        await apify.start_run("apify~web-scraper", {}, LONG)
    assert fake.calls == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (RunLimits(timeout_seconds=60, memory_mbytes=1000, max_total_charge_usd=1), "not a size Apify runs"),
        (RunLimits(timeout_seconds=60, memory_mbytes=65536, max_total_charge_usd=1), "not a size Apify runs"),
        (RunLimits(timeout_seconds=60, memory_mbytes=1024, max_total_charge_usd=0), "above 0"),
        (RunLimits(timeout_seconds=0, memory_mbytes=1024, max_total_charge_usd=1), "at least 1"),
    ],
)
async def test_run_limits_apify_would_refuse_are_refused_before_any_call(
    client: ApifyClient, fake: FakeApify, limits: RunLimits, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        await client.run_actor("apify/web-scraper", {}, limits)
    assert fake.calls == []


async def test_sync_run_past_the_endpoint_limit_says_to_run_longer_asynchronously(
    client: ApifyClient, fake: FakeApify
) -> None:
    fake.sync_timeout = True
    with pytest.raises(BackendError) as err:
        await client.run_actor("apify/web-scraper", {}, SHORT)
    assert "run-timeout-exceeded" in err.value.message and "timeout_seconds above 60" in err.value.hint
    assert len(fake.calls) == 1  # a paid POST is never repeated


# -- store, runs, datasets ---------------------------------------------------------------------------


async def test_store_search_sends_the_filters_and_reads_the_listing(client: ApifyClient, fake: FakeApify) -> None:
    actors, listing = await client.search_store("scraper", limit=5, username="apify", sort_by="popularity")
    assert [a.actor_id for a in actors] == ["apify/web-scraper"] and listing.total == 1 and not listing.more
    assert fake.calls[0].query == {"offset": "0", "limit": "5", "sortBy": "popularity", "search": "scraper",
                                   "username": "apify"}  # fmt: skip


async def test_dataset_items_page_with_offset_and_limit_and_know_when_more_exist(
    client: ApifyClient, fake: FakeApify
) -> None:
    fake.datasets["ds1"] = ITEMS
    first = await client.dataset_items("ds1", offset=0, limit=4)
    rest = await client.dataset_items("ds1", offset=4, limit=4, fields=["url"])
    assert first.items == ITEMS[:4] and first.more
    assert rest.items == [{"url": i["url"]} for i in ITEMS[4:]] and not rest.more
    assert fake.calls[1].query == {"offset": "4", "limit": "5", "format": "json", "clean": "true", "fields": "url"}


async def test_runs_are_listed_newest_first_per_actor_or_account(client: ApifyClient, fake: FakeApify) -> None:
    await client.run_actor("apify/web-scraper", {}, SHORT)
    await client.run_actor("apify/web-scraper", {}, SHORT)
    mine, listing = await client.list_runs("apify/web-scraper", limit=1)
    everyone, _ = await client.list_runs(statuses=["SUCCEEDED"])
    assert listing.total == 2 and listing.more and len(mine) == 1
    assert mine[0].id == max(fake.runs) and mine[0].usage_total_usd == pytest.approx(0.0421)
    assert {r.id for r in everyone} == set(fake.runs)
    assert fake.calls_to("/v2/actor-runs")[0].query["desc"] == "1"


# -- faults ------------------------------------------------------------------------------------------


async def test_rate_limit_is_waited_out_as_retry_after_says(client: ApifyClient, fake: FakeApify) -> None:
    fake.fail_next(1, 429, retry_after="0.2")
    started = time.perf_counter()
    actors, _ = await client.search_store("scraper")
    assert actors and len(fake.calls) == 2 and time.perf_counter() - started >= 0.2


async def test_rate_limit_that_persists_says_when_to_retry(client: ApifyClient, fake: FakeApify) -> None:
    fake.fail_next(3, 429, retry_after="1")
    with pytest.raises(BackendError, match=r"rate limited .* retry after 1 s.*rate-limit-exceeded"):
        await client.search_store("scraper")


async def test_vendor_outage_is_retried_for_reads_but_never_repeats_a_run_start(
    client: ApifyClient, fake: FakeApify
) -> None:
    fake.fail_next(1, 503)
    assert (await client.search_store("scraper"))[0]
    fake.calls.clear()
    fake.fail_next(1, 502)
    with pytest.raises(BackendError, match="vendor outage"):
        await client.run_actor("apify/web-scraper", {}, LONG)
    assert len(fake.calls) == 1 and not fake.runs


async def test_slow_answer_past_our_timeout_is_a_backend_error(fake: FakeApify, tmp_path: Path) -> None:
    fake.slow_next(3, seconds=2)
    with serve(fake) as url:
        settings = make_settings(tmp_path, SOPHIA_APIFY_BASE_URL=url)
        apify = ApifyClient(settings, timeout=httpx.Timeout(0.3, connect=2), retry=FAST)
        with pytest.raises(BackendError, match=r"Could not get an answer from Apify .* read timed out"):
            await apify.search_store("scraper")
        await apify.aclose()


async def test_malformed_body_is_a_backend_error_naming_the_base_url(client: ApifyClient, fake: FakeApify) -> None:
    fake.malformed_next()
    with pytest.raises(BackendError, match="not JSON") as err:
        await client.search_store("scraper")
    assert "base URL" in err.value.hint


async def test_huge_dataset_page_is_refused_with_a_hint_to_ask_for_less(client: ApifyClient, fake: FakeApify) -> None:
    fake.datasets["ds1"] = ITEMS
    fake.huge_next(1, size=11_000_000)
    with pytest.raises(BackendError, match="refusing to read further") as err:
        await client.dataset_items("ds1", limit=10)
    assert "smaller page_size" in err.value.hint


async def test_rejected_token_is_rotated_through_esc_once(fake: FakeApify, tmp_path: Path) -> None:
    handed_out: list[str] = []

    def opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
        key = ["apify_api_old-0000", "apify_api_new-1111"][min(len(handed_out), 1)]
        handed_out.append(key)
        return SourceValues(f"esc:{ref}", {"APIFY_API_TOKEN": key}, frozenset({"APIFY_API_TOKEN"}), time.time() + 3600)

    environ = {"SOPHIA_ESC_ENV": "acme/sophia/dev", "PULUMI_ACCESS_TOKEN": "pul-test", GATE: "1",
               "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml")}  # fmt: skip
    settings = Settings(environ, cwd=tmp_path, esc_opener=opener, specs=SETTINGS)
    fake.reject_key("apify_api_old-0000")
    apify = client_for(fake, settings)
    outcome = await apify.run_actor("apify/web-scraper", {}, SHORT)
    assert outcome.items is not None and outcome.items.items
    sync = fake.calls_to("/v2/actors/apify~web-scraper/run-sync-get-dataset-items")
    assert [c.headers["authorization"] for c in sync] == ["Bearer apify_api_old-0000", "Bearer apify_api_new-1111"]
    assert len(fake.runs) == 1  # the refused request started nothing


async def test_rejected_token_is_an_auth_error_naming_the_variable_never_the_token(
    client: ApifyClient, fake: FakeApify
) -> None:
    fake.reject_key(TOKEN)
    with pytest.raises(AuthError) as err:
        await client.list_runs()
    said = everything_said(err.value)
    assert "APIFY_API_TOKEN" in said and "invalid-token" in said and TOKEN not in said


async def test_missing_token_names_the_variable_and_sends_nothing(fake: FakeApify, tmp_path: Path) -> None:
    apify = client_for(fake, make_settings(tmp_path, token=None))
    with pytest.raises(ConfigError, match="APIFY_API_TOKEN is not set, so the Apify API is unavailable"):
        await apify.search_store("scraper")
    assert fake.calls == []


async def test_out_of_credit_says_what_ran_out(client: ApifyClient, fake: FakeApify) -> None:
    fake.fail_next(1, 402)
    with pytest.raises(BackendError) as err:
        await client.run_actor("apify/web-scraper", {}, LONG)
    said = everything_said(err.value)
    assert "out of credit or quota (HTTP 402" in said and "not-enough-usage-to-run-paid-actor" in said
    assert "Add credit" in err.value.hint and TOKEN not in said
    assert len(fake.calls) == 1


@pytest.fixture
def echoing_fake(fake: FakeApify) -> Iterator[FakeApify]:
    # A vendor that echoes the token back in its error must not put it in front of the user.
    original = fake.error_reply
    fake.error_reply = lambda status, code, message: original(status, code, f"{message} (token {TOKEN})")  # type: ignore[method-assign]
    yield fake


async def test_token_echoed_by_the_vendor_never_reaches_the_message(
    echoing_fake: FakeApify, settings: Settings
) -> None:
    apify = client_for(echoing_fake, settings)
    for status in (400, 401, 402, 404, 429, 500):
        echoing_fake.fail_next(3, status, retry_after="0")
        with pytest.raises(SophiaError) as err:
            await apify.get_run("run00000000000001")
        assert TOKEN not in everything_said(err.value)
