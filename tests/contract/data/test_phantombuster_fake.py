"""The fake PhantomBuster follows the vendor's swagger: its answers validate against the documented
schemas and it refuses launch bodies the spec refuses, so the client's tests against it mean something."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.phantombuster import (
    API,
    VALID_KEY,
    FakePhantomBuster,
    Script,
    fake_phantombuster,
    request_validator,
    response_validator,
    swagger,
)

AGENT = "4011762352378001"


@pytest.fixture
def fake() -> FakePhantomBuster:
    return fake_phantombuster()


@pytest.fixture
async def http(fake: FakePhantomBuster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"https://api.phantombuster.test{API}",
        transport=httpx.ASGITransport(app=fake),
        headers={"X-Phantombuster-Key": VALID_KEY},
    ) as client:
        yield client


def valid(method: str, path: str, body: Any) -> None:
    response_validator(method, path).validate(body)


def test_the_copied_spec_is_phantombuster_v2_with_header_key_auth() -> None:
    spec = swagger()
    assert spec["info"]["title"] == "Phantombuster API v2"
    assert spec["components"]["securitySchemes"]["apiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Phantombuster-Key",
    }
    assert spec["servers"][0]["url"] == "https://api.phantombuster.com/api/v2"


@pytest.mark.anyio
async def test_agent_list_matches_the_spec_and_hides_arguments(http: httpx.AsyncClient) -> None:
    listed = await http.get("/agents/fetch-all")
    assert listed.status_code == 200
    valid("GET", "/agents/fetch-all", listed.json())
    assert [a["id"] for a in listed.json()] == [AGENT, "4011762352378002"]
    assert all("argument" not in a for a in listed.json())


@pytest.mark.anyio
async def test_a_run_moves_from_starting_to_finished_and_every_answer_matches_the_spec(
    fake: FakePhantomBuster, http: httpx.AsyncClient
) -> None:
    fake.next_run(AGENT, Script(polls=2))
    launched = await http.post("/agents/launch", json={"id": AGENT, "argument": {"numberOfProfiles": 2}})
    assert launched.status_code == 200
    container_id = launched.json()["containerId"]

    seen = []
    for _ in range(3):
        answer = (await http.get("/containers/fetch", params={"id": container_id, "withOutput": "true"})).json()
        valid("GET", "/containers/fetch", answer)
        seen.append(answer["status"])
    assert seen == ["running", "finished", "finished"]
    assert answer["endedAt"] - answer["launchedAt"] == 42_500

    full = (await http.get("/containers/fetch", params={"id": container_id, "withResultObject": "1"})).json()
    valid("GET", "/containers/fetch", full)
    assert full["resultObject"].startswith("[")

    result = (await http.get("/containers/fetch-result-object", params={"id": container_id})).json()
    valid("GET", "/containers/fetch-result-object", result)

    latest = (await http.get("/agents/fetch-output", params={"id": AGENT})).json()
    valid("GET", "/agents/fetch-output", latest)
    assert latest["containerId"] == container_id


@pytest.mark.anyio
async def test_never_launched_agent_and_resources_match_the_spec(http: httpx.AsyncClient) -> None:
    never = (await http.get("/agents/fetch-output", params={"id": "4011762352378002"})).json()
    valid("GET", "/agents/fetch-output", never)
    assert never["status"] == "never launched"
    resources = (await http.get("/orgs/fetch-resources")).json()
    valid("GET", "/orgs/fetch-resources", resources)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [{"argument": {}}, {"id": AGENT, "unknownField": 1}, {"id": AGENT, "maxInstanceCount": 0}],
    ids=["no-id", "extra-field", "below-minimum"],
)
async def test_the_fake_refuses_launch_bodies_the_spec_refuses(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert list(request_validator("POST", "/agents/launch").iter_errors(body))
    refused = await http.post("/agents/launch", json=body)
    assert refused.status_code == 400
    assert refused.json()["status"] == "error"


@pytest.mark.anyio
async def test_the_fake_answers_401_without_a_valid_key(http: httpx.AsyncClient) -> None:
    refused = await http.get("/agents/fetch-all", headers={"X-Phantombuster-Key": "wrong-key"})
    assert refused.status_code == 401


@pytest.mark.anyio
async def test_unknown_container_is_404_as_the_spec_says(http: httpx.AsyncClient) -> None:
    missing = await http.get("/containers/fetch", params={"id": "123"})
    assert missing.status_code == 404
    assert "404" in swagger()["paths"]["/containers/fetch"]["get"]["responses"]
