"""A fake Tavily API built from its OpenAPI spec (`specs/tavily/openapi.json`): search, extract, crawl, map.

Every request body is checked against the spec's request schema (a 400 in Tavily's envelope otherwise),
the bearer key is checked, and answers are deterministic, shaped as the spec's 200 schemas say. Switches
on top of `VendorApp`'s faults: `exhaust(432|433)` (plan or pay-as-you-go limit), `unsupported(url)`
(403 "URL is not supported" on crawl/map), `report_usage` (False: answers without `usage`).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from tests.fakes.specs import spec_path
from tests.fakes.vendor_app import Call, Reply, VendorApp

VALID_KEY = "tvly-dev-fake-key-0001"
ENDPOINTS = ("/search", "/extract", "/crawl", "/map")


@functools.cache
def tavily_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(spec_path("tavily", "openapi.json").read_text(encoding="utf-8"))
    return spec


def request_schema(path: str) -> dict[str, Any]:
    schema: dict[str, Any] = tavily_spec()["paths"][path]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return schema


def response_schema(path: str, status: int) -> dict[str, Any]:
    schema: dict[str, Any] = tavily_spec()["paths"][path]["post"]["responses"][str(status)]["content"][
        "application/json"
    ]["schema"]
    return schema


def spec_example(path: str, status: int) -> Any:
    return tavily_spec()["paths"][path]["post"]["responses"][str(status)]["content"]["application/json"]["example"]


def page_text(url: str, size: int = 600) -> str:
    base = f"# Page {url}\n\nThis is the fake text of {url}. It talks about pricing, onboarding and support. "
    return (base * (size // len(base) + 1))[:size]


class FakeTavily(VendorApp):
    def __init__(self, keys: tuple[str, ...] = (VALID_KEY,)) -> None:
        super().__init__()
        self.keys = set(keys)
        self.limit_status: int | None = None
        self.unsupported_urls: set[str] = set()
        self.report_usage = True
        self.page_size = 600  # characters of text per extracted or crawled page
        for path in ENDPOINTS:
            self.route("POST", path, functools.partial(self._handle, path))

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, {"detail": {"error": message}})

    def exhaust(self, status: int = 432) -> None:
        """Every call answers `status` (432: plan limit; 433: pay-as-you-go limit) with the spec's example."""
        self.limit_status = status

    def unsupported(self, url: str) -> None:
        self.unsupported_urls.add(url)

    # -- handling ----------------------------------------------------------------------------------

    def _handle(self, path: str, call: Call) -> Reply:
        auth = call.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.keys:
            return Reply(401, spec_example(path, 401))
        if self.limit_status is not None:
            return Reply(self.limit_status, spec_example(path, self.limit_status))
        body = call.json
        try:
            jsonschema.validate(body, request_schema(path))
        except jsonschema.ValidationError as exc:
            return self.error_reply(400, "", f"Invalid request: {exc.message}")
        if path in ("/crawl", "/map") and body["url"] in self.unsupported_urls:
            return Reply(403, spec_example(path, 403))
        handler = getattr(self, "_" + path.strip("/"))
        answer: dict[str, Any] | Reply = handler(body)
        if isinstance(answer, Reply):
            return answer
        answer["request_id"] = f"req-{len(self.calls):04d}"
        answer["response_time"] = 0.42
        if self.report_usage and body.get("include_usage"):
            answer["usage"] = {"credits": self._credits(path, body, answer)}
        return Reply(200, answer)

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        query, topic = body["query"], body.get("topic", "general")
        count = body.get("max_results", 5)
        domains = body.get("include_domains") or ["example.com", "example.org", "example.net"]
        excluded = set(body.get("exclude_domains") or [])
        domains = [d for d in domains if d not in excluded] or ["example.edu"]
        results = []
        for n in range(count):
            domain = domains[n % len(domains)]
            url = f"https://{domain}/{'-'.join(query.lower().split())}/{n + 1}"
            result: dict[str, Any] = {
                "title": f"{query} — result {n + 1}",
                "url": url,
                "content": f"Snippet {n + 1} about {query}. [...] More about {query}.",
                "score": round(0.95 - n * 0.04, 4),
            }
            if topic == "news":
                result["published_date"] = f"Mon, 0{n % 9 + 1} Jun 2026 10:00:00 GMT"
            if body.get("include_raw_content"):
                result["raw_content"] = page_text(url, self.page_size)
            results.append(result)
        answer = ""
        if body.get("include_answer"):
            answer = f"A short answer about {query}, from {len(results)} sources."
        return {"query": query, "answer": answer, "images": [], "results": results}

    def _extract(self, body: dict[str, Any]) -> dict[str, Any] | Reply:
        urls = body["urls"] if isinstance(body["urls"], list) else [body["urls"]]
        if len(urls) > 20:
            return self.error_reply(400, "", "Max 20 URLs are allowed.")  # the spec's 400 example
        results, failed = [], []
        for url in urls:
            if "unreachable" in url:
                failed.append({"url": url, "error": "Failed to fetch url"})
            else:
                results.append({"url": url, "raw_content": page_text(url, self.page_size)})
        return {"results": results, "failed_results": failed}

    def _walk(self, body: dict[str, Any]) -> list[str]:
        base = body["url"].rstrip("/")
        if not base.startswith("http"):
            base = "https://" + base
        return [base] + [f"{base}/page-{n}" for n in range(1, body.get("limit", 50))]

    def _crawl(self, body: dict[str, Any]) -> dict[str, Any]:
        urls = self._walk(body)
        return {
            "base_url": body["url"],
            "results": [{"url": u, "raw_content": page_text(u, self.page_size)} for u in urls],
        }

    def _map(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"base_url": body["url"], "results": self._walk(body)}

    def _credits(self, path: str, body: dict[str, Any], answer: dict[str, Any]) -> float:
        """Tavily's credit table, as the endpoint descriptions state it."""
        depth = body.get("search_depth") or body.get("extract_depth") or "basic"
        per = 2 if depth == "advanced" else 1
        pages = len(answer.get("results", []))
        mapping = pages / 10 * (2 if body.get("instructions") else 1)
        return {
            "/search": float(per),
            "/extract": pages / 5 * per,
            "/map": mapping,
            "/crawl": mapping + pages / 5 * per,
        }[path]
