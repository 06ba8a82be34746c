"""The Lambda Cloud fake answers as the published OpenAPI document (`specs/lambda/openapi-1.8.3.json`) says."""

from __future__ import annotations

import functools
import json
from typing import Any

import httpx
import jsonschema
import pytest

from tests.fakes.lambda_cloud import API, API_KEY, FakeLambda
from tests.fakes.specs import spec_path

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@functools.cache
def _spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(spec_path("lambda", "openapi-1.8.3.json").read_text(encoding="utf-8"))
    return loaded


def response_validator(template: str, method: str, status: int) -> jsonschema.protocols.Validator:
    """A validator for the JSON body the spec gives `method template` answering `status`."""
    responses = _spec()["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, f"the spec declares no {status} for {method} {template}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    # The spec's `$ref`s point at `#/components/…`: carry the components beside the schema.
    return jsonschema.Draft202012Validator({"components": _spec()["components"], "allOf": [schema]})


@pytest.fixture
async def http() -> Any:
    fake = FakeLambda()
    running = fake.add_instance("gpu_1x_a10", "us-east-1", name="trainer")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake") as client:
        yield fake, client, running


async def _check(client: httpx.AsyncClient, method: str, template: str, status: int, path: str = "", **kw: Any) -> Any:
    response = await client.request(method, API + (path or template), headers=AUTH, **kw)
    assert response.status_code == status, response.text
    response_validator(API + template, method, status).validate(response.json())
    return response.json()


async def test_reads_match_the_spec(http: Any) -> None:
    _fake, client, running = http
    types = await _check(client, "GET", "/instance-types", 200)
    assert types["data"]["gpu_1x_a100"]["instance_type"]["price_cents_per_hour"] == 129
    await _check(client, "GET", "/instances", 200)
    await _check(client, "GET", "/instances/{id}", 200, f"/instances/{running}")
    for template in ("/ssh-keys", "/file-systems", "/images", "/firewall-rules"):
        await _check(client, "GET", template, 200)


async def test_launch_terminate_and_restart_match_the_spec(http: Any) -> None:
    _fake, client, _running = http
    body = {"region_name": "us-west-1", "instance_type_name": "gpu_1x_a100", "ssh_key_names": ["laptop"]}
    launched = await _check(client, "POST", "/instance-operations/launch", 200, json=body)
    new = launched["data"]["instance_ids"][0]
    await _check(client, "GET", "/instances/{id}", 200, f"/instances/{new}")
    await _check(client, "POST", "/instance-operations/restart", 200, json={"instance_ids": [new]})
    await _check(client, "POST", "/instance-operations/terminate", 200, json={"instance_ids": [new]})


async def test_account_writes_match_the_spec(http: Any) -> None:
    _fake, client, _ = http
    key = await _check(client, "POST", "/ssh-keys", 200, json={"name": "ci", "public_key": "ssh-ed25519 AAAA ci"})
    await _check(client, "DELETE", "/ssh-keys/{id}", 200, f"/ssh-keys/{key['data']['id']}")
    fs = await _check(client, "POST", "/filesystems", 200, json={"name": "ckpt", "region": "us-east-1"})
    await _check(client, "DELETE", "/filesystems/{id}", 200, f"/filesystems/{fs['data']['id']}")


async def test_launch_errors_carry_the_spec_codes(http: Any) -> None:
    fake, client, _ = http
    base = {"instance_type_name": "gpu_1x_a100", "ssh_key_names": ["laptop"]}
    no_room = await _check(
        client, "POST", "/instance-operations/launch", 400, json={**base, "region_name": "us-east-1"}
    )
    assert no_room["error"]["code"] == "instance-operations/launch/insufficient-capacity"
    wrong = {**base, "region_name": "us-west-1", "file_system_names": ["datasets"]}
    fake.file_systems[0]["region"] = {"name": "us-east-1", "description": "Virginia, USA"}
    moved = await _check(client, "POST", "/instance-operations/launch", 400, json=wrong)
    assert moved["error"]["code"] == "instance-operations/launch/file-system-in-wrong-region"
    fake.quota = 1
    quota = await _check(client, "POST", "/instance-operations/launch", 400, json={**base, "region_name": "us-west-1"})
    assert quota["error"]["code"] == "global/quota-exceeded"


async def test_a_wrong_key_gets_the_spec_401(http: Any) -> None:
    _, client, _ = http
    response = await client.get(API + "/instances", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    response_validator(API + "/instances", "GET", 401).validate(response.json())


async def test_reads_move_instances_through_their_statuses(http: Any) -> None:
    _fake, client, _ = http
    body = {"region_name": "us-west-1", "instance_type_name": "gpu_1x_a100", "ssh_key_names": ["laptop"]}
    new = (await client.post(API + "/instance-operations/launch", headers=AUTH, json=body)).json()["data"]
    path = f"{API}/instances/{new['instance_ids'][0]}"
    seen = [(await client.get(path, headers=AUTH)).json()["data"]["status"] for _ in range(2)]
    await client.post(API + "/instance-operations/terminate", headers=AUTH, json={"instance_ids": new["instance_ids"]})
    seen += [(await client.get(path, headers=AUTH)).json()["data"]["status"] for _ in range(2)]
    assert seen == ["booting", "active", "terminating", "terminated"]
