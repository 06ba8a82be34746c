"""The Tavily fake against Tavily's OpenAPI spec: every answer it gives, success or error, has the
documented shape, and it refuses request bodies the spec does not allow."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from tests.fakes.tavily import ENDPOINTS, VALID_KEY, FakeTavily, request_schema, response_schema

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {VALID_KEY}"}

SUCCESSES: list[tuple[str, dict[str, Any]]] = [
    ("/search", {"query": "acme pricing"}),
    ("/search", {"query": "acme", "topic": "news", "include_answer": "advanced", "include_usage": True}),
    ("/search", {"query": "acme", "include_raw_content": "markdown", "max_results": 20, "search_depth": "advanced"}),
    ("/search", {"query": "acme", "include_domains": ["sec.gov"], "exclude_domains": ["example.com"]}),
    ("/extract", {"urls": "https://example.com/a"}),
    ("/extract", {"urls": ["https://example.com/a", "https://unreachable.test/"], "include_usage": True}),
    ("/crawl", {"url": "docs.example.com", "limit": 5, "instructions": "only the SDK pages", "include_usage": True}),
    ("/map", {"url": "https://docs.example.com", "limit": 12, "include_usage": True}),
]


async def post(app: FakeTavily, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tavily.test") as client:
        return await client.post(path, json=body, headers=AUTH if headers is None else headers)


@pytest.mark.parametrize(("path", "body"), SUCCESSES, ids=[f"{p}-{n}" for n, (p, _) in enumerate(SUCCESSES)])
async def test_every_success_matches_the_specs_200_schema(path: str, body: dict[str, Any]) -> None:
    jsonschema.validate(body, request_schema(path))  # the cases themselves are valid requests
    response = await post(FakeTavily(), path, body)
    assert response.status_code == 200
    jsonschema.validate(response.json(), response_schema(path, 200))


async def test_usage_is_reported_only_when_asked_for() -> None:
    app = FakeTavily()
    assert "usage" not in (await post(app, "/search", {"query": "a"})).json()
    assert (await post(app, "/search", {"query": "a", "include_usage": True})).json()["usage"] == {"credits": 1.0}


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_wrong_or_missing_key_gets_the_specs_401(path: str) -> None:
    app = FakeTavily()
    for headers in ({"Authorization": "Bearer tvly-wrong"}, {}):
        response = await post(app, path, {"query": "a", "urls": "u", "url": "u"}, headers)
        assert response.status_code == 401
        jsonschema.validate(response.json(), response_schema(path, 401))
        assert response.json()["detail"]["error"] == "Unauthorized: missing or invalid API key."


@pytest.mark.parametrize("status", [432, 433])
@pytest.mark.parametrize("path", ENDPOINTS)
async def test_exhausted_limits_answer_the_specs_432_and_433(path: str, status: int) -> None:
    app = FakeTavily()
    app.exhaust(status)
    response = await post(app, path, {"query": "a"})
    assert response.status_code == status
    jsonschema.validate(response.json(), response_schema(path, status))


@pytest.mark.parametrize(("status", "retry_after"), [(429, "3"), (500, None)])
@pytest.mark.parametrize("path", ENDPOINTS)
async def test_injected_faults_use_tavilys_error_envelope(path: str, status: int, retry_after: str | None) -> None:
    app = FakeTavily()
    app.fail_next(1, status, retry_after=retry_after)
    response = await post(app, path, {"query": "a"})
    assert response.status_code == status
    jsonschema.validate(response.json(), response_schema(path, status))
    assert response.headers.get("retry-after") == retry_after


@pytest.mark.parametrize("path", ["/crawl", "/map"])
async def test_an_unsupported_site_gets_the_specs_403(path: str) -> None:
    app = FakeTavily()
    app.unsupported("https://blocked.example")
    response = await post(app, path, {"url": "https://blocked.example"})
    assert response.status_code == 403
    jsonschema.validate(response.json(), response_schema(path, 403))
    assert response.json() == {"detail": {"error": "[403] URL is not supported"}}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/search", {"query": "a", "search_depth": "deep"}),
        ("/search", {"query": "a", "max_results": 21}),
        ("/search", {"topic": "news"}),
        ("/extract", {"urls": ["u"], "extract_depth": "max"}),
        ("/crawl", {"url": "u", "max_depth": 6}),
        ("/map", {"url": "u", "timeout": 5}),
    ],
)
async def test_bodies_the_spec_forbids_get_a_400_in_tavilys_envelope(path: str, body: dict[str, Any]) -> None:
    response = await post(FakeTavily(), path, body)
    assert response.status_code == 400
    jsonschema.validate(response.json(), response_schema(path, 400))
    assert response.json()["detail"]["error"].startswith("Invalid request:")


async def test_extract_refuses_more_than_twenty_urls_as_the_spec_documents() -> None:
    response = await post(FakeTavily(), "/extract", {"urls": [f"https://e.com/{n}" for n in range(21)]})
    assert response.status_code == 400
    assert response.json() == {"detail": {"error": "Max 20 URLs are allowed."}}
