"""The Apify fake answers as the published OpenAPI spec (`specs/apify/openapi/`, multi-file) says."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.fakes.apify import TOKEN, FakeApify
from tests.fakes.specs import spec_path

pytestmark = pytest.mark.anyio

ROOT = spec_path("apify", "openapi", "openapi.yaml")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@functools.cache
def _yaml(path: Path) -> Any:
    # The split spec uses YAML anchors and `<<:` merge keys; PyYAML's safe loader resolves both.
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _follow(node: Any, base: Path) -> tuple[Any, Path]:
    """Resolve a non-schema `$ref` (path item, operation, response) to the node and the file holding it."""
    while isinstance(node, dict) and "$ref" in node:
        file, _, pointer = node["$ref"].partition("#")
        base = (base.parent / file).resolve() if file else base
        node = _yaml(base)
        for part in [p for p in pointer.split("/") if p]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, base


def _retrieve(uri: str) -> Resource[Any]:
    return Resource.from_contents(_yaml(Path(unquote(urlparse(uri).path))), default_specification=DRAFT202012)


def response_validator(template: str, method: str, status: int) -> jsonschema.protocols.Validator:
    """A validator for the JSON body the spec gives `method template` answering `status`."""
    item, base = _follow(_yaml(ROOT)["paths"][template], ROOT)
    operation, base = _follow(item[method.lower()], base)
    response, base = _follow(operation["responses"][str(status)], base)
    schema = response["content"]["application/json"]["schema"]
    wrapper = {"$id": base.as_uri(), "allOf": [schema]}
    return jsonschema.Draft202012Validator(wrapper, registry=Registry(retrieve=_retrieve))  # type: ignore[call-arg]


@pytest.fixture
def fake() -> FakeApify:
    app = FakeApify()
    app.add_actor(
        "apify",
        "web-scraper",
        [{"url": "https://example.com", "title": "Example"}],
        categories=["DEVELOPER_TOOLS"],
        script=["RUNNING", "SUCCEEDED"],
    )
    app.add_actor(
        "compass",
        "google-maps-extractor",
        [{"name": "Cafe"}],
        pricing={
            "pricingModel": "PAY_PER_EVENT",
            "apifyMarginPercentage": 0.2,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "startedAt": "2026-01-01T00:00:00.000Z",
            "pricingPerEvent": {
                "actorChargeEvents": {
                    "place-scraped": {"eventTitle": "Place", "eventDescription": "One place", "eventPriceUsd": 0.004}
                }
            },
            "minimalMaxTotalChargeUsd": 0.5,
        },
    )
    return app


async def _send(fake: FakeApify, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="https://api.apify.com") as http:
        return await http.request(method, path, headers=headers, **kwargs)


async def check(fake: FakeApify, method: str, path: str, template: str, status: int, **kwargs: Any) -> Any:
    response = await _send(fake, method, path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    response_validator(template, method, status).validate(body)
    return body


async def test_store_runs_and_datasets_answer_as_the_spec_says(fake: FakeApify) -> None:
    store = await check(fake, "GET", "/v2/store", "/v2/store", 200, params={"search": "maps", "limit": "5"})
    assert [a["name"] for a in store["data"]["items"]] == ["google-maps-extractor"]

    actor = "/v2/actors/{actorId}"
    limits = {"timeout": "300", "memory": "1024", "maxTotalChargeUsd": "1"}
    started = await check(
        fake, "POST", "/v2/actors/apify~web-scraper/runs", actor + "/runs", 201, params=limits, json={}
    )
    run_id = started["data"]["id"]
    assert started["data"]["status"] == "READY" and started["data"]["options"]["maxTotalChargeUsd"] == 1
    statuses = []
    for _ in range(3):
        polled = await check(fake, "GET", f"/v2/actor-runs/{run_id}", "/v2/actor-runs/{runId}", 200)
        statuses.append(polled["data"]["status"])
    assert statuses == ["RUNNING", "SUCCEEDED", "SUCCEEDED"]
    assert polled["data"]["usageTotalUsd"] > 0 and polled["data"]["usage"]["ACTOR_COMPUTE_UNITS"] > 0

    dataset = polled["data"]["defaultDatasetId"]
    items = await check(fake, "GET", f"/v2/datasets/{dataset}/items", "/v2/datasets/{datasetId}/items", 200)
    assert items == [{"url": "https://example.com", "title": "Example"}]

    synced = await check(fake, "POST", "/v2/actors/apify~web-scraper/run-sync-get-dataset-items",
                         actor + "/run-sync-get-dataset-items", 201, params={"timeout": "60"}, json={})  # fmt: skip
    assert synced == items

    last = await check(fake, "GET", "/v2/actors/apify~web-scraper/runs/last", actor + "/runs/last", 200)
    assert last["data"]["status"] == "SUCCEEDED" and last["data"]["id"] != run_id
    listed = await check(fake, "GET", "/v2/actors/apify~web-scraper/runs", actor + "/runs", 200, params={"desc": "1"})
    assert [r["id"] for r in listed["data"]["items"]] == [last["data"]["id"], run_id]
    everything = await check(fake, "GET", "/v2/actor-runs", "/v2/actor-runs", 200, params={"status": "SUCCEEDED"})
    assert everything["data"]["total"] == 2


async def test_abort_answers_the_aborted_run_as_the_spec_says(fake: FakeApify) -> None:
    fake.actors["apify~web-scraper"].script = []  # hangs in READY until aborted
    started = await _send(fake, "POST", "/v2/actors/apify~web-scraper/runs", json={})
    run_id = started.json()["data"]["id"]
    aborted = await check(fake, "POST", f"/v2/actor-runs/{run_id}/abort", "/v2/actor-runs/{runId}/abort", 200)
    assert aborted["data"]["status"] == "ABORTED"


async def test_errors_use_the_spec_envelope_and_error_types(fake: FakeApify) -> None:
    actor = "/v2/actors/{actorId}"
    missing = await check(fake, "GET", "/v2/actors/nobody~nothing/runs/last", actor + "/runs/last", 404)
    assert missing["error"]["type"] == "actor-not-found"
    no_token = await _send(fake, "GET", "/v2/actor-runs", headers={"Authorization": ""})
    assert no_token.status_code == 401
    response_validator("/v2/actor-runs", "GET", 401).validate(no_token.json())
    fake.fail_next(1, 429, retry_after="1")
    limited = await _send(fake, "GET", "/v2/store")
    assert limited.headers["X-RateLimit-Limit"] == "60"
    response_validator("/v2/store", "GET", 429).validate(limited.json())
    fake.fail_next(1, 402)
    await check(fake, "POST", "/v2/actors/apify~web-scraper/runs", actor + "/runs", 402, json={})
    fake.sync_timeout = True
    timed_out = await check(fake, "POST", "/v2/actors/apify~web-scraper/run-sync-get-dataset-items",
                            actor + "/run-sync-get-dataset-items", 408, json={})  # fmt: skip
    assert timed_out["error"]["type"] == "run-timeout-exceeded"


async def test_deprecated_acts_paths_are_still_served(fake: FakeApify) -> None:
    response = await _send(fake, "POST", "/v2/acts/apify~web-scraper/runs", json={})
    assert response.status_code == 201 and response.json()["data"]["actId"] == fake.actors["apify~web-scraper"].id


def test_the_validator_rejects_what_the_spec_forbids() -> None:
    # A validator that accepts anything would make the checks above worthless.
    run_schema = response_validator("/v2/actor-runs/{runId}", "GET", 200)
    example = _yaml(spec_path("apify", "openapi", "components", "examples", "ListOfRunsResponseExample.yaml"))
    response_validator("/v2/actor-runs", "GET", 200).validate(example["value"])
    with pytest.raises(jsonschema.ValidationError, match="DONE"):
        run_schema.validate({"data": {**_minimal_run(), "status": "DONE"}})
    with pytest.raises(jsonschema.ValidationError, match="defaultDatasetId"):
        run_schema.validate({"data": {k: v for k, v in _minimal_run().items() if k != "defaultDatasetId"}})
    run_schema.validate({"data": _minimal_run()})


def _minimal_run() -> dict[str, Any]:
    return {
        "id": "r1", "actId": "a1", "userId": "u1", "startedAt": "2026-08-01T10:00:00.000Z", "status": "RUNNING",
        "meta": {"origin": "API"}, "stats": {}, "buildId": "b1", "generalAccess": "RESTRICTED",
        "options": {"build": "latest", "timeoutSecs": 60, "memoryMbytes": 1024, "diskMbytes": 2048},
        "defaultKeyValueStoreId": "k1", "defaultDatasetId": "d1", "defaultRequestQueueId": "q1",
    }  # fmt: skip
