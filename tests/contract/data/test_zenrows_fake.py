"""The fake ZenRows keeps to its contracts: Batch API answers validate against the vendor's OpenAPI spec,
it refuses what the spec refuses, and the scraper answers as VENDOR-NOTES §4b describes (body passed
through, cost and concurrency headers, RFC 7807 errors with ZenRows codes)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.zenrows import BATCH_BASE, SCRAPER_BASE, VALID_KEY, FakeZenRows, spec_validator

pytestmark = pytest.mark.anyio
HEADERS = {"X-API-Key": VALID_KEY}


@pytest.fixture
def fake() -> FakeZenRows:
    return FakeZenRows()


def client(fake: FakeZenRows, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, transport=httpx.ASGITransport(app=fake))


def valid(schema: str, body: Any) -> None:
    spec_validator(schema).validate(body)


async def test_batch_answers_match_the_spec(fake: FakeZenRows) -> None:
    async with client(fake, BATCH_BASE) as http:
        body = {
            "zenrows_params": {"js_render": True, "response_type": "markdown"},
            "tasks": [{"url": "https://a.example/1"}, {"url": "https://a.example/fail"}, {"url": "https://b.example/"}],
        }
        submitted = await http.post("jobs", json=body, headers=HEADERS)
        assert submitted.status_code == 201
        valid("SubmitJobResponse", submitted.json())
        job_id = submitted.json()["job_id"]

        job = await http.get(f"jobs/{job_id}", headers=HEADERS)
        valid("Job", job.json())
        assert job.json()["latest_run"]["status"] == "completed"
        assert job.json()["latest_run"]["stats"]["failed"] == 1

        first = await http.get(f"jobs/{job_id}/results", headers=HEADERS)
        valid("ListResultsResponse", first.json())
        second = await http.get(
            f"jobs/{job_id}/results", params={"cursor": first.json()["next_cursor"]}, headers=HEADERS
        )
        valid("ListResultsResponse", second.json())
        assert "next_cursor" not in second.json()
        rows = first.json()["results"] + second.json()["results"]
        assert [r["status"] for r in rows] == ["successful", "failed", "successful"]
        assert rows[1]["error"]["code"] == "RESP001"
        valid("Problem", rows[1]["error"])

        content = await http.get(f"jobs/{job_id}/tasks/{rows[0]['task_id']}/content", headers=HEADERS)
        assert content.status_code == 200 and content.text.startswith("# Heading of https://a.example/1")
        failed = await http.get(f"jobs/{job_id}/tasks/{rows[1]['task_id']}/content", headers=HEADERS)
        assert failed.status_code == 422
        valid("Problem", failed.json())


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"tasks": [{"url": "https://a.example/"}], "zenrows_params": {"js_render": [1]}}, "zenrows_params"),
        ({"tasks": [{"url": f"https://a.example/{n}"} for n in range(1001)]}, "tasks"),
        ({"tasks": [{"url": "https://a.example/", "method": "DELETE"}]}, "tasks/0/method"),
    ],
    ids=["non-scalar-param", "over-1000-tasks", "unknown-method"],
)
async def test_fake_refuses_a_submission_the_spec_refuses(fake: FakeZenRows, body: dict[str, Any], where: str) -> None:
    async with client(fake, BATCH_BASE) as http:
        refused = await http.post("jobs", json=body, headers=HEADERS)
    assert refused.status_code == 400
    valid("Problem", refused.json())
    assert where in refused.json()["detail"]
    assert not fake.jobs


async def test_batch_api_takes_the_key_only_in_the_header(fake: FakeZenRows) -> None:
    async with client(fake, BATCH_BASE) as http:
        in_query = await http.get("jobs/01J9Z3ABCDEFGHJKMNPQRSTVWX", params={"apikey": VALID_KEY})
        wrong = await http.get("jobs/01J9Z3ABCDEFGHJKMNPQRSTVWX", headers={"X-API-Key": "nope"})
    for answer in (in_query, wrong):
        assert answer.status_code == 401
        valid("Problem", answer.json())


async def test_scraper_passes_the_body_through_with_cost_and_concurrency_headers(fake: FakeZenRows) -> None:
    async with client(fake, SCRAPER_BASE) as http:
        page = await http.get("/v1/", params={"apikey": VALID_KEY, "url": "https://a.example/", "js_render": "true"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<html>")
    assert page.headers["X-Request-Cost"] == "0.0050"
    assert page.headers["Concurrency-Limit"] == "20" and page.headers["Concurrency-Remaining"] == "19"
    assert page.headers["Zr-Final-Url"] == "https://a.example/" and page.headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"apikey": "wrong", "url": "https://a.example/"}, 401, "AUTH002"),
        ({"apikey": VALID_KEY, "url": "https://a.example/", "mode": "auto", "js_render": "true"}, 400, "REQS002"),
        ({"apikey": VALID_KEY, "url": "https://forbidden.example/"}, 400, "REQS001"),
        ({"apikey": VALID_KEY, "url": "https://a.example/missing"}, 404, "RESP002"),
    ],
    ids=["bad-key", "auto-with-js", "forbidden-domain", "target-404"],
)
async def test_scraper_errors_are_rfc7807_problems_with_zenrows_codes(
    fake: FakeZenRows, params: dict[str, str], status: int, code: str
) -> None:
    async with client(fake, SCRAPER_BASE) as http:
        answer = await http.get("/v1/", params=params)
    assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
    valid("Problem", answer.json())  # the scraper's errors have the Batch API's Problem shape
    assert answer.json()["code"] == code and answer.json()["type"].endswith(f"#{code}")


async def test_scraper_says_usage_exceeded_with_402_when_credits_run_out() -> None:
    fake = FakeZenRows(credits=4)
    async with client(fake, SCRAPER_BASE) as http:
        answer = await http.get("/v1/", params={"apikey": VALID_KEY, "url": "https://a.example/", "js_render": "true"})
    assert answer.status_code == 402 and answer.json()["code"] == "AUTH004"
