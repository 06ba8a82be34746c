"""A fake ZenRows: the Universal Scraper (`GET /v1/`, shaped by VENDOR-NOTES §4b, which is its only contract)
and the Batch API (`/v1/jobs…`, built from `specs/zenrows/batch-api-openapi.yaml` and checked against it).

Both live in one `VendorApp`: the scraper's path is `/v1/` and the Batch API's are under `/v1/jobs`, so a
client pointed at both bases through one `httpx.ASGITransport` reaches the right one.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import html
import json
import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from tests.fakes.specs import spec_path
from tests.fakes.vendor_app import Call, Reply, VendorApp

VALID_KEY = "zr-test-key-0123456789abcdef0123"
SCRAPER_BASE = "https://api.zenrows.com"
BATCH_BASE = "https://async.api.zenrows.com/v1"
FORBIDDEN_HOST = "forbidden.example"  # REQS001: a domain ZenRows refuses to scrape
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PROBLEM = "application/problem+json"
# The fake VendorApp's own fault codes, as ZenRows would say them.
_FAULT_CODES = {
    401: "AUTH002",
    402: "AUTH004",
    404: "RESP002",
    413: "RESP005",
    422: "RESP001",
    429: "AUTH006",
    504: "CTX0002",
}


# -- the spec ---------------------------------------------------------------------------------------


@functools.cache
def batch_spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(spec_path("zenrows", "batch-api-openapi.yaml").read_text())
    return loaded


def spec_validator(schema_name: str) -> jsonschema.protocols.Validator:
    """A validator for `#/components/schemas/<schema_name>` of the Batch API spec (OpenAPI 3.1: JSON Schema 2020-12)."""
    components = batch_spec()["components"]
    if schema_name not in components["schemas"]:
        raise KeyError(f"{schema_name} is not a schema of the ZenRows Batch API spec")
    return jsonschema.Draft202012Validator(
        {"allOf": [{"$ref": f"#/components/schemas/{schema_name}"}], "components": components}
    )


def problem(status: int, code: str, detail: str, *, instance: str = "/v1") -> dict[str, Any]:
    """ZenRows' RFC 7807 error body, as VENDOR-NOTES §4b shows it."""
    return {
        "code": code,
        "detail": detail,
        "instance": instance,
        "status": status,
        "title": f"{detail.split('.')[0]} ({code})",
        "type": f"https://docs.zenrows.com/api-error-codes#{code}",
    }


def ulid() -> str:
    return "".join(random.choice(_CROCKFORD) for _ in range(26))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- pages the fake serves ---------------------------------------------------------------------------


def default_page(url: str) -> str:
    """A small deterministic page for any URL nobody set."""
    where = html.escape(url)
    return (
        f"<html><head><title>Page at {where}</title></head><body>"
        f'<h1 class="title">Heading of {where}</h1>'
        '<p class="price">$42</p><p class="price">$7</p>'
        '<p>Plain paragraph.</p><a href="/next">Next page</a>'
        "</body></html>"
    )


def as_markdown(page: str) -> str:
    text = re.sub(r"<title>.*?</title>", "", page, flags=re.S)
    text = re.sub(r"<h1[^>]*>(.*?)</h1>", r"# \1\n\n", text, flags=re.S)
    text = re.sub(r'<a href="([^"]*)">(.*?)</a>', r"[\2](\1)\n\n", text, flags=re.S)
    text = re.sub(r"<p[^>]*>(.*?)</p>", r"\1\n\n", text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def as_plaintext(page: str) -> str:
    text = re.sub(r"<title>.*?</title>", "", page, flags=re.S)
    text = re.sub(r"</(h1|p|a|div|li)>", "\n", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def extract(page: str, selectors: dict[str, str]) -> dict[str, Any]:
    """`css_extractor` for the simple selectors the tests use: `tag`, `.class` or `tag.class`."""
    found: dict[str, Any] = {}
    for name, selector in selectors.items():
        tag, _, cls = selector.partition(".")
        tag_pattern = re.escape(tag) if tag else r"\w+"
        class_pattern = rf'[^>]*class="[^"]*\b{re.escape(cls)}\b[^"]*"' if cls else r"[^>]*"
        matches = [
            html.unescape(re.sub(r"<[^>]+>", "", m))
            for m in re.findall(rf"<{tag_pattern}{class_pattern}>(.*?)</", page, flags=re.S)
        ]
        found[name] = matches[0] if len(matches) == 1 else matches
    return found


def cost_units(params: dict[str, str]) -> int:
    """ZenRows' price of a request in basic requests: 1, js 5, premium 10, both (or adaptive) 25."""
    js, premium = params.get("js_render") == "true", params.get("premium_proxy") == "true"
    if params.get("mode") == "auto" or (js and premium):
        return 25
    return 10 if premium else 5 if js else 1


# -- the fake ----------------------------------------------------------------------------------------


@dataclass
class _Task:
    task_id: str
    url: str
    status: str = "pending"
    error: dict[str, Any] | None = None
    credits: int = 0


@dataclass
class _Job:
    job_id: str
    run_id: str
    params: dict[str, str]
    output: str
    tasks: list[_Task]
    created_at: str = field(default_factory=_now)
    failure_reason: str = ""


class FakeZenRows(VendorApp):
    """ZenRows' scraper and Batch API; `credits` counts down per successful request (402 at zero)."""

    def __init__(self, *, key: str = VALID_KEY, credits: int = 10_000, results_page_size: int = 2) -> None:
        super().__init__()
        self.key = key
        self.credits = credits
        self.pages: dict[str, str] = {}  # target URL → its HTML
        self.jobs: dict[str, _Job] = {}
        self.results_page_size = results_page_size
        self.tasks_per_poll = 0  # 0: a job finishes on its first poll; n: n more tasks finish per poll
        self.concurrency_limit = 20
        self.route("GET", "/v1/", self._scrape)
        self.route("POST", "/v1/jobs", self._submit)
        self.route("GET", "/v1/jobs/{job_id}", self._job)
        self.route("GET", "/v1/jobs/{job_id}/results", self._results)
        self.route("GET", "/v1/jobs/{job_id}/tasks/{task_id}/content", self._content)

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        code = code if re.fullmatch(r"[A-Z]{3,4}\d{3,4}|[a-z_]+", code) else _FAULT_CODES.get(status, f"ERR{status}")
        return Reply(status, problem(status, code, message), content_type=_PROBLEM)

    # -- Universal Scraper ---------------------------------------------------------------------

    def _scrape(self, call: Call) -> Reply:
        apikey = call.query.get("apikey", "")
        if not apikey:
            return self.error_reply(401, "AUTH001", "API key missing.")
        if apikey != self.key:
            return self.error_reply(401, "AUTH002", "Invalid API key.")
        params = {k: v for k, v in call.query.items() if k not in ("apikey", "url")}
        url = call.query.get("url", "")
        target = urlsplit(url)
        if target.scheme not in ("http", "https") or not target.hostname:
            return self.error_reply(400, "REQS002", "The url parameter is not a valid URL.")
        if target.hostname == FORBIDDEN_HOST:
            return self.error_reply(400, "REQS001", "Requests to this domain are forbidden.")
        if params.get("mode") == "auto" and ("js_render" in params or "premium_proxy" in params):
            return self.error_reply(400, "REQS002", "mode=auto cannot be combined with js_render or premium_proxy.")
        if int(params.get("wait", "0") or 0) > 30_000:
            return self.error_reply(400, "REQS002", "wait must be at most 30000 ms.")
        if "css_extractor" in params and "outputs" in params:
            return self.error_reply(400, "REQS002", "css_extractor and outputs cannot be combined.")
        units = cost_units(params)
        if self.credits < units:
            return self.error_reply(402, "AUTH004", "Usage exceeded. Upgrade your plan or wait for the renewal.")
        if target.path.endswith("/missing"):
            return self.error_reply(404, "RESP002", "The target page returned 404 Not Found.")
        self.credits -= units
        body, content_type = self._rendered(url, params)
        final = url + "landing" if target.path.endswith("/redirect/") else url
        headers = {
            "X-Request-Cost": f"{units / 1000:.4f}",
            "X-Request-Id": uuid.uuid4().hex,
            "Concurrency-Limit": str(self.concurrency_limit),
            "Concurrency-Remaining": str(self.concurrency_limit - 1),
            "Zr-Final-Url": final,
        }
        return Reply(200, body=body.encode(), headers=headers, content_type=content_type)

    def _rendered(self, url: str, params: dict[str, str]) -> tuple[str, str]:
        page = self.pages.get(url) or default_page(url)
        if "css_extractor" in params:
            return json.dumps(extract(page, json.loads(params["css_extractor"]))), "application/json"
        kind = params.get("response_type", "html")
        if kind == "markdown":
            return as_markdown(page), "text/markdown; charset=utf-8"
        if kind == "plaintext":
            return as_plaintext(page), "text/plain; charset=utf-8"
        return page, "text/html; charset=utf-8"

    # -- Batch API -----------------------------------------------------------------------------

    def _batch_refusal(self, call: Call) -> Reply | None:
        if "apikey" in call.query or "api_key" in call.query:
            return self.error_reply(401, "unauthenticated", "Only the X-API-Key header is accepted.")
        if call.headers.get("x-api-key") != self.key:
            return self.error_reply(401, "unauthenticated", "Missing or invalid API key.")
        return None

    def _submit(self, call: Call) -> Reply:
        if (refused := self._batch_refusal(call)) is not None:
            return refused
        body = call.json
        error = jsonschema.exceptions.best_match(spec_validator("SubmitJobRequest").iter_errors(body))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "body"
            return self.error_reply(400, "invalid_argument", f"Invalid request at {where}: {error.message}")
        tasks = body.get("tasks") or []
        if not tasks:
            return self.error_reply(400, "invalid_argument", "A closed job needs 1 to 1000 tasks.")
        if self.credits <= 0:
            return self.error_reply(402, "insufficient_credits", "Subscription has no credit available.")
        params = {
            k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in body.get("zenrows_params", {}).items()
        }
        output = params.get("response_type") or ("json" if params.get("css_extractor") else "html")
        job = _Job(ulid(), ulid(), params, output, [_Task(ulid(), t["url"]) for t in tasks])
        self.jobs[job.job_id] = job
        return Reply(
            201,
            {"job_id": job.job_id, "status": "closed", "latest_run": self._run(job), "accepted_tasks": len(job.tasks)},
        )

    def _job(self, call: Call) -> Reply:
        if (refused := self._batch_refusal(call)) is not None:
            return refused
        job = self.jobs.get(call.params["job_id"])
        if job is None:
            return self.error_reply(404, "not_found", "Job not found.")
        self._advance(job)
        return Reply(
            200,
            {
                "job_id": job.job_id,
                "type": "regular",
                "status": "closed",
                "format": job.output,
                "zenrows_params": job.params,
                "latest_run": self._run(job),
                "created_at": job.created_at,
                "updated_at": _now(),
            },
        )

    def _advance(self, job: _Job) -> None:
        pending = [t for t in job.tasks if t.status in ("pending", "processing")]
        for task in pending[: self.tasks_per_poll or len(pending)]:
            units = cost_units(job.params)
            if "fail" in task.url:
                task.status = "failed"
                task.error = problem(422, "RESP001", "Could not get content. Try enabling premium proxies.")
            elif self.credits < units:
                job.failure_reason = "insufficient_credits"
                return
            else:
                self.credits -= units
                task.status, task.credits = "successful", units

    def _run(self, job: _Job) -> dict[str, Any]:
        done = [t for t in job.tasks if t.status in ("successful", "failed")]
        failed = [t for t in done if t.status == "failed"]
        status = "failed" if job.failure_reason else "completed" if len(done) == len(job.tasks) else "running"
        credits = sum(t.credits for t in job.tasks)
        stats: dict[str, Any] = {
            "total": len(job.tasks),
            "completed": len(done),
            "successful": len(done) - len(failed),
            "failed": len(failed),
            "spend": {"credits": credits, "cost": round(credits * 0.0001, 6)},
        }
        if failed:
            stats["failure_reasons"] = {"blocked": len(failed)}
        run: dict[str, Any] = {
            "run_id": job.run_id,
            "job_id": job.job_id,
            "run_sequence": 1,
            "status": status,
            "stats": stats,
            "created_at": job.created_at,
            "updated_at": _now(),
        }
        if job.failure_reason:
            run["failure_reason"] = job.failure_reason
        return run

    def _results(self, call: Call) -> Reply:
        if (refused := self._batch_refusal(call)) is not None:
            return refused
        job = self.jobs.get(call.params["job_id"])
        if job is None:
            return self.error_reply(404, "not_found", "Job not found.")
        start = int(base64.urlsafe_b64decode(call.query["cursor"]).decode()) if call.query.get("cursor") else 0
        window = job.tasks[start : start + self.results_page_size]
        body: dict[str, Any] = {"results": [self._result(job, t) for t in window]}
        if start + len(window) < len(job.tasks):
            body["next_cursor"] = base64.urlsafe_b64encode(str(start + len(window)).encode()).decode()
        return Reply(200, body)

    def _result(self, job: _Job, task: _Task) -> dict[str, Any]:
        row: dict[str, Any] = {"task_id": task.task_id, "run_id": job.run_id, "url": task.url, "status": task.status}
        spend = {"credits": task.credits, "cost": round(task.credits * 0.0001, 6)}
        row["spend"] = {"total": spend, "last_attempt": spend}
        if task.status == "successful":
            row["type"] = job.output
            # A presigned download elsewhere: a client must not send its key there.
            row["result_url"] = f"https://results.storage.example/{job.job_id}/{task.task_id}?X-Signature=abc"
        if task.error is not None:
            row["error"] = task.error
        return row

    def _content(self, call: Call) -> Reply:
        if (refused := self._batch_refusal(call)) is not None:
            return refused
        job = self.jobs.get(call.params["job_id"])
        task = next((t for t in job.tasks if t.task_id == call.params["task_id"]), None) if job else None
        if job is None or task is None:
            return self.error_reply(404, "not_found", "Task not found.")
        if task.status in ("pending", "processing"):
            return self.error_reply(409, "task_not_ready", "Task is still pending or processing.")
        if task.status == "failed" and task.error is not None:
            return Reply(422, task.error, content_type=_PROBLEM)
        body, content_type = self._rendered(task.url, job.params)
        return Reply(200, body=body.encode(), content_type=content_type)
