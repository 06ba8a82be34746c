"""The Twingly fake against the official client's recorded answers and fixtures (Twingly publishes no
spec): the recorded request gets the recorded body, errors are the fixtures' documents, and every answer
has the fixtures' elements and attributes, in their order."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit
from xml.etree.ElementTree import Element

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from tests.fakes.twingly import SEARCH_PATH, VALID_KEY, FakeTwingly, cassette, fixture

pytestmark = pytest.mark.anyio
ROOT_ATTRIBUTES = set(fromstring(fixture("minimal_valid_result.xml")).attrib)
POST_ELEMENTS = [child.tag for child in fromstring(fixture("minimal_valid_result.xml")).find("post") or []]


async def get(app: FakeTwingly, params: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://twingly.test") as client:
        return await client.get(SEARCH_PATH, params=params)


def test_the_fixtures_agree_on_one_post_shape() -> None:
    for name in ("valid_links_result.xml", "valid_coordinates_result.xml"):
        root = fromstring(fixture(name))
        assert set(root.attrib) == ROOT_ATTRIBUTES
        assert all([c.tag for c in post] == POST_ELEMENTS for post in root.findall("post"))


async def test_the_recorded_request_gets_the_recorded_answer_byte_for_byte() -> None:
    recorded = cassette("search_for_spotify_on_sv_blogs.json")
    params = dict(parse_qsl(urlsplit(recorded["uri"]).query))
    params["apiKey"] = VALID_KEY  # the cassette masks it as <TWINGLY-API-KEY>
    response = await get(FakeTwingly(), params)
    assert response.status_code == recorded["status"] == 200
    assert response.headers["content-type"] == recorded["content_type"]
    assert response.content == recorded["body"]


async def test_the_recorded_unauthorized_answer_is_what_a_wrong_key_gets() -> None:
    recorded = cassette("search_without_valid_api_key.json")
    response = await get(FakeTwingly(), {"q": "something", "apiKey": "wrong"})
    assert response.status_code == recorded["status"] == 401
    assert _error(response.content) == _error(recorded["body"]) == ("40101", "Unauthorized")


async def test_a_missing_key_gets_the_empty_key_fixture() -> None:
    response = await get(FakeTwingly(), {"q": "something"})
    assert response.status_code == 400
    assert response.content == fixture("nonexistent_api_key_result.xml")


@pytest.mark.parametrize(
    ("status", "name"), [(503, "service_unavailable_result.xml"), (500, "undefined_error_result.xml")]
)
async def test_injected_server_errors_are_the_fixtures_error_documents(status: int, name: str) -> None:
    app = FakeTwingly()
    app.fail_next(1, status)
    response = await get(app, {"q": "spotify", "apiKey": VALID_KEY})
    assert response.status_code == status
    assert response.content == fixture(name)


@pytest.mark.parametrize(
    "q",
    [
        "spotify lang:sv sort:published sort-order:desc page-size:3",
        "spotify sort:published sort-order:asc page-size:100",
        "kärnvapen OR github tspan:3m",
        "spotify start-date:2017-10-15T20:00:00 end-date:2017-10-16T06:00:00",
        "nothing-matches-this",
    ],
)
async def test_every_search_answer_has_the_fixtures_shape(q: str) -> None:
    response = await get(FakeTwingly(), {"q": q, "apiKey": VALID_KEY})
    assert response.status_code == 200
    root = fromstring(response.content)
    assert root.tag == "twinglydata"
    assert set(root.attrib) == ROOT_ATTRIBUTES
    posts = root.findall("post")
    assert int(root.get("numberOfMatchesReturned") or -1) == len(posts)
    assert int(root.get("numberOfMatchesTotal") or -1) >= len(posts)
    assert all([c.tag for c in post] == POST_ELEMENTS for post in posts)


async def test_the_fake_honours_the_operators_our_client_sends() -> None:
    app = FakeTwingly()
    newest = fromstring((await get(app, {"q": "spotify page-size:2", "apiKey": VALID_KEY})).content)
    oldest = fromstring((await get(app, {"q": "spotify sort-order:asc page-size:2", "apiKey": VALID_KEY})).content)
    english = fromstring((await get(app, {"q": "sprint lang:en", "apiKey": VALID_KEY})).content)
    assert [p.findtext("publishedAt") for p in newest.findall("post")] == [
        "2017-10-16T08:15:00Z",
        "2017-10-16T05:00:00Z",
    ]
    assert [p.findtext("publishedAt") for p in oldest.findall("post")] == [
        "2017-10-15T18:17:22Z",
        "2017-10-15T18:45:49Z",
    ]
    assert newest.get("numberOfMatchesTotal") == "10"
    assert [p.findtext("id") for p in english.findall("post")] == ["7533026945919130930"]


async def test_an_unbalanced_query_gets_a_query_error_document() -> None:
    response = await get(FakeTwingly(), {"q": "(spotify OR github", "apiKey": VALID_KEY})
    assert response.status_code == 400
    assert _error(response.content)[0] == "40002"


def _error(body: bytes) -> tuple[str, str]:
    root: Element = fromstring(body)
    assert root.tag == "error"
    return root.get("code") or "", (root.findtext("message") or "").strip()
