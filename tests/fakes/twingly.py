"""A fake Twingly Blog Search API v3, built from the official client's recorded answers and fixtures
(`specs/twingly/fixtures/`): Twingly publishes no machine-readable spec, so those are the contract.

It searches a corpus made of the fixtures' posts (the recorded "spotify" answer plus the canned results),
honouring the operators our client sends (`lang:`, `location:`, `tspan:`, `start-date:`, `end-date:`,
`sort:published`, `sort-order:`, `page-size:`), and answers errors with the fixtures' `<error>` documents.
The recorded request (`spotify page-size:10 lang:sv`) gets the recorded body, byte for byte.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import gzip
import json
import re
import shlex
from typing import Any
from xml.etree.ElementTree import Element, tostring

from defusedxml.ElementTree import fromstring

from tests.fakes.specs import spec_path
from tests.fakes.vendor_app import Call, Reply, VendorApp

VALID_KEY = "twingly-fake-key-0001"
SEARCH_PATH = "/blog/search/api/v3/search"
XML = "application/xml; charset=utf-8"
RECORDED_QUERY = "spotify page-size:10 lang:sv"
NOW = dt.datetime(2017, 10, 16, 9, 11, 8, tzinfo=dt.UTC)  # when the recorded answer was made
CORPUS_FIXTURES = ("minimal_valid_result.xml", "valid_links_result.xml", "valid_coordinates_result.xml")
_SPANS = {
    "h": dt.timedelta(hours=1),
    "12h": dt.timedelta(hours=12),
    "24h": dt.timedelta(hours=24),
    "w": dt.timedelta(weeks=1),
    "m": dt.timedelta(days=30),
    "3m": dt.timedelta(days=91),
}


def fixture(name: str) -> bytes:
    return spec_path("twingly", "fixtures", name).read_bytes()


def cassette(name: str) -> dict[str, Any]:
    """The one recorded interaction of a VCR cassette: request URI, status, headers and decoded body."""
    data = json.loads(fixture(name))
    (interaction,) = data["http_interactions"]
    body = interaction["response"]["body"]
    raw = base64.b64decode(body["base64_string"]) if body.get("base64_string") else body["string"].encode()
    if interaction["response"]["headers"].get("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    return {
        "uri": interaction["request"]["uri"],
        "status": interaction["response"]["status"]["code"],
        "content_type": interaction["response"]["headers"]["Content-Type"],
        "body": raw,
    }


@functools.cache
def recorded_spotify() -> bytes:
    body: bytes = cassette("search_for_spotify_on_sv_blogs.json")["body"]
    return body


def corpus() -> list[Element]:
    posts: list[Element] = list(fromstring(recorded_spotify()).findall("post"))
    for name in CORPUS_FIXTURES:
        posts += fromstring(fixture(name)).findall("post")
    return posts


def _published(post: Element) -> dt.datetime:
    return dt.datetime.fromisoformat((post.findtext("publishedAt") or "").replace("Z", "+00:00"))


def _haystack(post: Element) -> str:
    parts = [post.findtext(n) or "" for n in ("title", "text", "url", "blogName", "author")]
    parts += [e.text or "" for e in post.iter() if e.tag in ("tag", "link")]
    return " ".join(parts).lower()


class QueryError(ValueError):
    pass


class FakeTwingly(VendorApp):
    def __init__(self, keys: tuple[str, ...] = (VALID_KEY,)) -> None:
        super().__init__()
        self.keys = set(keys)
        self.posts = corpus()
        self.now = NOW
        self._canned: list[bytes] = []
        self._incomplete = 0
        self.route("GET", SEARCH_PATH, self._search)

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        if status == 401:
            return Reply(401, body=fixture("unauthorized_api_key_result.xml"), content_type=XML)
        if status == 503:
            return Reply(503, body=fixture("service_unavailable_result.xml"), content_type=XML)
        if status >= 500:
            return Reply(status, body=fixture("undefined_error_result.xml"), content_type=XML)
        body = f'<?xml version="1.0" encoding="utf-8"?><error code="{status}01"><message>{message}</message></error>'
        return Reply(status, body=body.encode(), content_type=XML)

    def answer_next_with(self, *fixture_names: str) -> None:
        """The next searches answer these fixture files verbatim (200), one each."""
        self._canned += [fixture(n) for n in fixture_names]

    def incomplete_next(self, n: int = 1) -> None:
        self._incomplete += n

    # -- the search ---------------------------------------------------------------------------------

    def _search(self, call: Call) -> Reply:
        params = {k.lower(): v for k, v in call.query.items()}
        key = params.get("apikey", "")
        if not key:
            return Reply(400, body=fixture("nonexistent_api_key_result.xml"), content_type=XML)
        if key not in self.keys:
            return Reply(401, body=fixture("unauthorized_api_key_result.xml"), content_type=XML)
        if self._canned:
            return Reply(200, body=self._canned.pop(0), content_type=XML)
        q = params.get("q", "")
        if q == RECORDED_QUERY:
            return Reply(200, body=recorded_spotify(), content_type=XML)
        try:
            matches, page_size = self._run(q)
        except QueryError as exc:
            body = f'<?xml version="1.0" encoding="utf-8"?><error code="40002"><message>{exc}</message></error>'
            return Reply(400, body=body.encode(), content_type=XML)
        incomplete = self._incomplete > 0
        self._incomplete = max(self._incomplete - 1, 0)
        page = matches[:page_size]
        root = Element(
            "twinglydata",
            {
                "numberOfMatchesReturned": str(len(page)),
                "secondsElapsed": "0.012",
                "numberOfMatchesTotal": str(len(matches)),
                "incompleteResult": "true" if incomplete else "false",
            },
        )
        root.extend(page)
        return Reply(200, body=b'<?xml version="1.0" encoding="utf-8"?>' + tostring(root), content_type=XML)

    def _run(self, q: str) -> tuple[list[Element], int]:
        if q.count("(") != q.count(")") or q.count('"') % 2:
            raise QueryError("Invalid query: unbalanced parentheses or quotes")
        operators: dict[str, str] = {}
        words: list[str] = []
        for token in shlex.split(q):
            match = re.fullmatch(r"([a-z-]+):(.+)", token)
            if match:
                operators[match.group(1)] = match.group(2)
            elif token not in ("AND", "OR", "(", ")"):
                words.append(token.strip("()").lower())
        if not words:
            raise QueryError("Invalid query: no search terms")
        anyof = " OR " in q
        start = self._time(operators.get("start-date"))
        end = self._time(operators.get("end-date"))
        if "tspan" in operators:
            if operators["tspan"] not in _SPANS:
                raise QueryError(f"Invalid query: unknown tspan {operators['tspan']}")
            start = self.now - _SPANS[operators["tspan"]]
        found = []
        for post in self.posts:
            text = _haystack(post)
            wanted = [w for w in words if not w.startswith("-")]
            unwanted = [w[1:] for w in words if w.startswith("-")]
            hits = [w in text for w in wanted]
            if not (any(hits) if anyof else all(hits)) or any(w in text for w in unwanted):
                continue
            if operators.get("lang") and post.findtext("languageCode") != operators["lang"]:
                continue
            if operators.get("location") and post.findtext("locationCode") != operators["location"]:
                continue
            published = _published(post)
            if (start and published < start) or (end and published > end):
                continue
            found.append(post)
        newest_first = operators.get("sort-order", "desc") == "desc"
        found.sort(key=lambda p: (_published(p), p.findtext("id") or ""), reverse=newest_first)
        return found, int(operators.get("page-size", "10"))

    @staticmethod
    def _time(value: str | None) -> dt.datetime | None:
        if not value:
            return None
        try:
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        except ValueError:
            raise QueryError(f"Invalid query: bad date {value}") from None
