"""The fake Pinecone follows the 2026-07 specs: its answers validate against the spec's schemas, and it
refuses requests the spec would refuse, so the store's tests against it mean something."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.pinecone_server import (
    API_VERSION,
    VALID_KEY,
    FakePinecone,
    run_fake_pinecone,
    spec_validator,
    toy_embedding,
)

HEADERS = {"Api-Key": VALID_KEY, "X-Pinecone-Api-Version": API_VERSION}
DENSE = {"fields": {"_values": {"type": "dense_vector", "dimension": 3, "metric": "cosine"}}}


@pytest.fixture(autouse=True)
def _hermetic(no_esc_cli_or_proxy: None) -> None:
    """No proxy between httpx and 127.0.0.1."""


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with run_fake_pinecone() as server:
        yield server


def call(method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url, headers=HEADERS if headers is None else headers, timeout=10, **kwargs)


def valid(plane: str, schema: str, body: Any) -> None:
    spec_validator(plane, schema).validate(body)


def create_indexes(fake: FakePinecone) -> tuple[str, str]:
    """A dense index and an integrated one; returns their data-plane hosts."""
    dense = call("POST", f"{fake.url}/indexes", json={"name": "deals", "schema": DENSE, "tags": {"team": "bi"}})
    assert dense.status_code == 201
    valid("control", "IndexModel", dense.json())
    body = {
        "name": "notes",
        "cloud": "aws",
        "region": "us-east-1",
        "embed": {"model": "llama-text-embed-v2", "field_map": {"text": "text"}},
    }
    integrated = call("POST", f"{fake.url}/indexes/create-for-model", json=body)
    assert integrated.status_code == 201
    valid("control", "IndexModel", integrated.json())
    return dense.json()["host"], integrated.json()["host"]


def test_control_plane_answers_match_the_spec(fake: FakePinecone) -> None:
    create_indexes(fake)
    listed = call("GET", f"{fake.url}/indexes")
    valid("control", "IndexList", listed.json())
    assert [i["name"] for i in listed.json()["indexes"]] == ["deals", "notes"]

    described = call("GET", f"{fake.url}/indexes/notes").json()
    valid("control", "IndexModel", described)
    assert described["schema"]["fields"]["text"]["type"] == "semantic_text"

    configured = call("PATCH", f"{fake.url}/indexes/deals", json={"tags": {"team": "", "owner": "ops"}})
    valid("control", "IndexModel", configured.json())
    assert configured.json()["tags"] == {"owner": "ops"}

    deleted = call("DELETE", f"{fake.url}/indexes/deals")
    assert deleted.status_code == 202 and deleted.content == b""


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/indexes/nope", None, 404, "NOT_FOUND"),
        ("POST", "/indexes", {"name": "deals", "schema": DENSE}, 409, "ALREADY_EXISTS"),
        ("POST", "/indexes", {"name": "Bad_Name", "schema": DENSE}, 400, "INVALID_ARGUMENT"),
        ("POST", "/indexes", {"name": "x", "dimension": 3}, 400, "INVALID_ARGUMENT"),  # the 2025 shape
    ],
)
def test_control_plane_errors_use_the_error_response_envelope(
    fake: FakePinecone, method: str, path: str, body: Any, status: int, code: str
) -> None:
    create_indexes(fake)
    answer = call(method, f"{fake.url}{path}", json=body)
    assert answer.status_code == status
    valid("control", "ErrorResponse", answer.json())
    assert answer.json()["error"]["code"] == code and answer.json()["status"] == status


def test_data_plane_answers_match_the_spec(fake: FakePinecone) -> None:
    host, _ = create_indexes(fake)
    vectors = [{"id": "a", "values": [1, 0, 0], "metadata": {"stage": "Won"}}, {"id": "b", "values": [0, 1, 0]}]
    upserted = call("POST", f"{host}/vectors/upsert", json={"vectors": vectors, "namespace": "ns"})
    valid("data", "UpsertResponse", upserted.json())
    assert upserted.json() == {"upsertedCount": 2}

    query = {"vector": [1, 0.1, 0], "topK": 5, "namespace": "ns", "includeMetadata": True, "includeValues": True}
    queried = call("POST", f"{host}/query", json=query)
    valid("data", "QueryResponse", queried.json())
    assert [m["id"] for m in queried.json()["matches"]] == ["a", "b"]

    fetched = call(
        "GET", f"{host}/vectors/fetch", params=[("ids", "a"), ("ids", "b"), ("ids", "z"), ("namespace", "ns")]
    )
    valid("data", "FetchResponse", fetched.json())
    assert sorted(fetched.json()["vectors"]) == ["a", "b"]

    stats = call("POST", f"{host}/describe_index_stats", json={})
    valid("data", "IndexDescription", stats.json())
    assert stats.json()["namespaces"] == {"ns": {"vectorCount": 2}} and stats.json()["dimension"] == 3

    deleted = call("POST", f"{host}/vectors/delete", json={"ids": ["a"], "namespace": "ns"})
    valid("data", "DeleteResponse", deleted.json())
    assert call("POST", f"{host}/describe_index_stats", json={}).json()["totalVectorCount"] == 1


def test_records_api_answers_match_the_spec(fake: FakePinecone) -> None:
    _, host = create_indexes(fake)
    lines = [{"_id": "n1", "text": "pipeline revenue grew", "year": 2024}, {"_id": "n2", "text": "login failures"}]
    ndjson = "\n".join(json.dumps(r) for r in lines).encode()
    headers = {**HEADERS, "Content-Type": "application/x-ndjson"}
    upserted = call("POST", f"{host}/records/namespaces/ops/upsert", headers=headers, content=ndjson)
    assert upserted.status_code == 201 and upserted.content == b""

    search = {"query": {"inputs": {"text": "revenue"}, "top_k": 1}, "fields": ["text"]}
    found = call("POST", f"{host}/records/namespaces/ops/search", json=search)
    valid("data", "SearchRecordsResponse", found.json())
    assert found.json()["result"]["hits"] == [
        {"_id": "n1", "_score": pytest.approx(0.577, abs=0.01), "fields": {"text": "pipeline revenue grew"}}
    ]

    missing_text = call("POST", f"{host}/records/namespaces/ops/search", json={"query": {"top_k": 1}})
    assert missing_text.status_code == 400
    valid("data", "ErrorResponse", missing_text.json())


def test_data_plane_errors_use_rpc_status(fake: FakePinecone) -> None:
    host, _ = create_indexes(fake)
    wrong_width = call("POST", f"{host}/vectors/upsert", json={"vectors": [{"id": "a", "values": [1, 0]}]})
    assert wrong_width.status_code == 400
    valid("data", "rpcStatus", wrong_width.json())
    assert wrong_width.json()["code"] == 3 and "dimension" in wrong_width.json()["message"]

    top_k_zero = call("POST", f"{host}/query", json={"vector": [1, 0, 0], "topK": 0})
    assert top_k_zero.status_code == 400
    valid("data", "rpcStatus", top_k_zero.json())

    fake.fail_next(1, 503)
    unavailable = call("POST", f"{host}/query", json={"vector": [1, 0, 0], "topK": 1})
    assert unavailable.status_code == 503
    valid("data", "rpcStatus", unavailable.json())


def test_requests_need_the_api_key_and_the_2026_07_version(fake: FakePinecone) -> None:
    for headers in [{"X-Pinecone-Api-Version": API_VERSION}, {**HEADERS, "Api-Key": "pcsk_wrong"}]:
        answer = call("GET", f"{fake.url}/indexes", headers=headers)
        assert answer.status_code == 401 and answer.headers["content-type"] == "text/plain"
        valid("control", "UnauthorizedMessage", answer.text)
    old = call("GET", f"{fake.url}/indexes", headers={**HEADERS, "X-Pinecone-Api-Version": "2025-10"})
    assert old.status_code == 400


def test_request_bodies_are_checked_against_the_request_schemas(fake: FakePinecone) -> None:
    host, _ = create_indexes(fake)
    too_many = {"vectors": [{"id": f"v{n}", "values": [1, 0, 0]} for n in range(1001)]}
    assert call("POST", f"{host}/vectors/upsert", json=too_many).status_code == 400
    both = {"vector": [1, 0, 0], "id": "a", "topK": 1}
    assert call("POST", f"{host}/query", json=both).status_code == 400
    assert call("POST", f"{host}/vectors/delete", json={"namespace": "ns"}).status_code == 400
    assert call("PATCH", f"{fake.url}/indexes/deals", json={"dimension": 4}).status_code == 400


def test_a_slow_index_reports_initializing_for_the_set_number_of_describes(fake: FakePinecone) -> None:
    fake.not_ready_for(2)
    create_indexes(fake)
    states = [call("GET", f"{fake.url}/indexes/deals").json()["status"] for _ in range(3)]
    assert states == [
        {"ready": False, "state": "Initializing"},
        {"ready": False, "state": "Initializing"},
        {"ready": True, "state": "Ready"},
    ]


def test_toy_embedder_is_deterministic_unit_length_and_word_based() -> None:
    a = toy_embedding("Pipeline revenue", 64)
    assert a == toy_embedding("pipeline  REVENUE!", 64)
    assert sum(v * v for v in a) == pytest.approx(1.0)
    assert toy_embedding("", 8) == [0.0] * 8


def test_an_invalid_filter_is_a_400_in_the_data_plane_envelope(fake: FakePinecone) -> None:
    host, _ = create_indexes(fake)
    answer = call("POST", f"{host}/query", json={"vector": [1, 0, 0], "topK": 1, "filter": {"name": {"$regex": "^a"}}})
    assert answer.status_code == 400
    valid("data", "rpcStatus", answer.json())
    assert "$regex" in answer.json()["message"]
