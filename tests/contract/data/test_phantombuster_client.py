"""`PhantomBusterClient` against the spec-built fake: the calls it makes, the write gate, and every failure
a user can meet (rate limit, outage, slowness, broken or huge answers, rotated or missing key, quota)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sophia_data_intelligence.clients.phantombuster import KEY_VARIABLE, PhantomBusterClient
from sophia_data_intelligence.settings import SETTINGS
from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, PolicyError, SophiaError
from sophia_shared.http import RetryPolicy
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.phantombuster import VALID_KEY, FakePhantomBuster, Script, fake_phantombuster, request_validator
from tests.fakes.vendor_app import Reply, serve

AGENT = "4011762352378001"
GATE = "SOPHIA_DATA_INTELLIGENCE_ALLOW_WRITE"
BASE = "https://api.phantombuster.test"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)
LAUNCH = "/api/v2/agents/launch"
FETCH_ALL = "/api/v2/agents/fetch-all"
CONTAINER = "/api/v2/containers/fetch"


def make_settings(tmp_path: Path, **extra: str) -> Settings:
    environ = {KEY_VARIABLE: VALID_KEY, GATE: "1", "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"), **extra}
    return Settings(environ, cwd=tmp_path, specs=SETTINGS)


def esc_settings(tmp_path: Path, keys: list[str]) -> tuple[Settings, list[str]]:
    """Settings whose ESC environment hands out `keys` in turn, one per opening (the last one repeats)."""
    handed_out: list[str] = []

    def opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
        key = keys[min(len(handed_out), len(keys) - 1)]
        handed_out.append(key)
        return SourceValues(f"esc:{ref}", {KEY_VARIABLE: key}, frozenset({KEY_VARIABLE}), time.time() + 3600)

    environ = {
        "SOPHIA_ESC_ENV": "acme/sophia/dev",
        "PULUMI_ACCESS_TOKEN": "pul-test-token",
        "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"),
        GATE: "1",
    }
    return Settings(environ, cwd=tmp_path, esc_opener=opener, specs=SETTINGS), handed_out


def client_for(app: Any, settings: Settings, **kwargs: Any) -> PhantomBusterClient:
    return PhantomBusterClient(
        settings,
        base_url=kwargs.pop("base_url", BASE),
        transport=kwargs.pop("transport", httpx.ASGITransport(app=app)),
        retry=kwargs.pop("retry", FAST),
        poll_seconds=0.01,
        **kwargs,
    )


def everything_said(err: SophiaError) -> str:
    return "\n".join([str(err), err.message, err.hint, err.agent_message()])


@pytest.fixture
def fake() -> FakePhantomBuster:
    return fake_phantombuster()


@pytest.fixture
async def client(fake: FakePhantomBuster, tmp_path: Path) -> AsyncIterator[PhantomBusterClient]:
    pb = client_for(fake, make_settings(tmp_path))
    yield pb
    await pb.aclose()


# -- what is sent ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_lists_agents_with_the_key_in_the_spec_header_and_never_asks_for_arguments(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    agents = await client.list_agents()
    assert [(a.id, a.name, a.running) for a in agents] == [
        (AGENT, "LinkedIn profile scraper", 0),
        ("4011762352378002", "Sales Navigator search export", 0),
    ]
    (seen,) = fake.calls
    assert seen.path == FETCH_ALL
    assert seen.headers["x-phantombuster-key"] == VALID_KEY
    assert "withArgument" not in seen.query


@pytest.mark.anyio
async def test_launch_sends_a_spec_valid_body_and_waits_until_the_run_finishes(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.next_run(AGENT, Script(polls=3))
    container_id = await client.launch(AGENT, {"numberOfProfiles": 2})
    polls: list[str] = []

    async def on_poll(container: Any, waited: float) -> None:
        polls.append(container.status)

    done = await client.wait(container_id, max_wait=10, on_poll=on_poll)
    assert polls == ["running", "running", "finished"]
    assert done.done and done.exit_code == 0 and done.run_seconds() == 42.5
    (launch,) = fake.calls_to(LAUNCH)
    assert launch.json == {"id": AGENT, "argument": {"numberOfProfiles": 2}}
    assert not list(request_validator("POST", "/agents/launch").iter_errors(launch.json))
    assert fake.containers[container_id].argument == {"numberOfProfiles": 2}


@pytest.mark.anyio
async def test_merge_sends_a_single_use_bonus_argument_and_empty_argument_sends_none(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    await client.launch(AGENT, {"numberOfProfiles": 5}, merge=True)
    await client.launch(AGENT, {})
    first, second = (c.json for c in fake.calls_to(LAUNCH))
    assert first == {"id": AGENT, "bonusArgument": {"numberOfProfiles": 5}}
    assert second == {"id": AGENT}


@pytest.mark.anyio
async def test_wait_is_bounded_and_returns_the_run_still_going(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.next_run(AGENT, Script(polls=10_000))
    container_id = await client.launch(AGENT, {})
    started = time.monotonic()
    still = await client.wait(container_id, max_wait=0.1)
    assert time.monotonic() - started < 2
    assert still.status == "running" and not still.done
    assert still.run_seconds(now_ms=still.launched_at + 5000) == 5.0  # type: ignore[operator]


# -- the write gate and argument checks ------------------------------------------------------------


@pytest.mark.anyio
async def test_launch_is_refused_without_the_write_gate_and_nothing_is_sent(
    fake: FakePhantomBuster, tmp_path: Path
) -> None:
    pb = client_for(fake, make_settings(tmp_path, **{GATE: "0"}))
    with pytest.raises(PolicyError, match="SOPHIA_DATA_INTELLIGENCE_ALLOW_WRITE"):
        await pb.launch(AGENT, {"numberOfProfiles": 2})
    assert fake.calls == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("agent_id", "argument", "says"),
    [
        (AGENT, ["not", "an", "object"], "must be a JSON object"),
        (AGENT, {"when": object()}, "cannot be sent as JSON"),
        ("../orgs/fetch", {}, "is not a PhantomBuster agent id"),
    ],
    ids=["list", "unserialisable", "bad-id"],
)
async def test_bad_launch_input_is_refused_before_anything_is_sent(
    fake: FakePhantomBuster, client: PhantomBusterClient, agent_id: str, argument: Any, says: str
) -> None:
    with pytest.raises(InputError, match=says):
        await client.launch(agent_id, argument)
    assert fake.calls == []


@pytest.mark.anyio
async def test_unknown_agent_is_the_vendors_refusal_as_invalid_input(client: PhantomBusterClient) -> None:
    with pytest.raises(InputError, match=r"refused the request as invalid \(HTTP 400 on POST /api/v2/agents/launch\)"):
        await client.launch("999", {})


@pytest.mark.anyio
async def test_unknown_container_is_an_input_error(client: PhantomBusterClient) -> None:
    with pytest.raises(InputError, match="no such resource"):
        await client.container("12345")


@pytest.mark.anyio
async def test_launch_answer_without_container_id_is_a_backend_error(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.answer("POST", "/agents/launch", lambda call: {"status": "queued"})
    with pytest.raises(BackendError, match="without a containerId"):
        await client.launch(AGENT, {})


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_rate_limit_is_retried_after_the_time_the_vendor_asks(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.fail_next(1, 429, retry_after="1")
    assert len(await client.list_agents()) == 2
    first, second = fake.calls
    assert second.at - first.at >= 0.9


@pytest.mark.anyio
async def test_launch_rate_limited_is_retried_since_nothing_ran(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.fail_next(1, 429, retry_after="0")
    await client.launch(AGENT, {})
    assert len(fake.calls_to(LAUNCH)) == 2
    assert len(fake.containers) == 1


@pytest.mark.anyio
async def test_rate_limit_that_outlasts_the_retries_says_when_to_retry(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.fail_next(3, 429, retry_after="0")
    with pytest.raises(BackendError, match="rate limited") as err:
        await client.list_agents()
    assert "retry after 0 s" in err.value.message


@pytest.mark.anyio
async def test_outage_on_a_read_is_retried_until_it_succeeds(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.fail_next(2, 503)
    assert len(await client.list_agents()) == 2
    assert len(fake.calls) == 3


@pytest.mark.anyio
async def test_outage_on_launch_is_not_repeated_so_no_second_paid_run_starts(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.fail_next(1, 502)
    with pytest.raises(BackendError, match=r"failed with HTTP 502 on POST /api/v2/agents/launch \(a vendor outage\)"):
        await client.launch(AGENT, {})
    assert len(fake.calls_to(LAUNCH)) == 1


@pytest.mark.anyio
async def test_answer_slower_than_our_timeout_is_a_backend_error(fake: FakePhantomBuster, tmp_path: Path) -> None:
    fake.slow_next(3, seconds=2.0)
    with serve(fake) as url:
        pb = client_for(fake, make_settings(tmp_path), base_url=url, transport=None, timeout=0.3)
        with pytest.raises(BackendError, match="read timed out") as err:
            await pb.list_agents()
        await pb.aclose()
    assert "Could not get an answer from PhantomBuster" in err.value.message


@pytest.mark.anyio
async def test_malformed_answer_is_a_backend_error_naming_the_call(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.malformed_next()
    with pytest.raises(BackendError, match=r"GET /api/v2/agents/fetch-all .* not JSON"):
        await client.list_agents()


@pytest.mark.anyio
async def test_huge_answer_is_refused_before_it_is_read_whole(fake: FakePhantomBuster, tmp_path: Path) -> None:
    fake.huge_next(size=3 * 2**20)
    pb = client_for(fake, make_settings(tmp_path), max_bytes=2**20)
    with pytest.raises(BackendError, match="more than 1,048,576 bytes"):
        await pb.container("7000000000000001")
    await pb.aclose()


@pytest.mark.anyio
async def test_rejected_key_reopens_esc_once_and_uses_the_rotated_key(fake: FakePhantomBuster, tmp_path: Path) -> None:
    settings, handed_out = esc_settings(tmp_path, ["pb-old-key-aaaa", VALID_KEY])
    pb = client_for(fake, settings)
    assert len(await pb.list_agents()) == 2
    await pb.aclose()
    assert [c.headers["x-phantombuster-key"] for c in fake.calls] == ["pb-old-key-aaaa", VALID_KEY]
    assert handed_out == ["pb-old-key-aaaa", VALID_KEY]


@pytest.mark.anyio
async def test_key_still_rejected_is_an_auth_error_naming_the_variable_never_the_key(
    fake: FakePhantomBuster, tmp_path: Path
) -> None:
    settings, _ = esc_settings(tmp_path, ["pb-bad-key-1111", "pb-bad-key-2222"])
    pb = client_for(fake, settings)
    with pytest.raises(AuthError) as err:
        await pb.list_agents()
    await pb.aclose()
    assert "PhantomBuster rejected the credentials in PHANTOM_BUSTER_API_KEY (HTTP 401" in err.value.message
    assert "pb-bad-key" not in everything_said(err.value)


@pytest.mark.anyio
async def test_missing_key_names_the_variable_and_sends_nothing(fake: FakePhantomBuster, tmp_path: Path) -> None:
    settings = Settings({GATE: "1", "SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml")}, cwd=tmp_path, specs=SETTINGS)
    pb = client_for(fake, settings)
    with pytest.raises(ConfigError, match="PHANTOM_BUSTER_API_KEY is not set, so the PhantomBuster API"):
        await pb.launch(AGENT, {})
    await pb.aclose()
    assert fake.calls == []


@pytest.mark.anyio
async def test_exhausted_execution_time_says_what_ran_out_and_is_not_repeated(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.out_of_execution_time = True
    with pytest.raises(BackendError) as err:
        await client.launch(AGENT, {})
    assert not isinstance(err.value, AuthError)
    assert "out of credit or quota (HTTP 402 on POST /api/v2/agents/launch)" in err.value.message
    assert "daily execution time is exhausted" in err.value.message
    assert "Add credit, raise the quota" in err.value.hint
    assert len(fake.calls_to(LAUNCH)) == 1


@pytest.mark.anyio
async def test_a_vendor_error_echoing_the_key_never_shows_it(
    fake: FakePhantomBuster, client: PhantomBusterClient
) -> None:
    fake.answer(
        "GET", "/agents/fetch-all", lambda call: Reply(400, {"error": f"bad key {call.headers['x-phantombuster-key']}"})
    )
    with pytest.raises(InputError) as err:
        await client.list_agents()
    assert VALID_KEY not in everything_said(err.value)
    assert "bad key [REDACTED]" in err.value.message


@pytest.mark.anyio
async def test_usage_reads_used_and_plan_figures(client: PhantomBusterClient) -> None:
    usage = await client.usage()
    assert (usage.plan, usage.daily_execution_time, usage.daily_execution_time_limit) == ("Starter", 37, 120)
    assert (usage.monthly_ai_credits, usage.monthly_ai_credits_limit) == (52, 1000)
