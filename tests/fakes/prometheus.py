"""A fake Prometheus HTTP API (`GET|POST /api/v1/query`), built from Prometheus's published API description.

Source: the Prometheus documentation, "HTTP API" (prometheus.io/docs/prometheus/latest/querying/api):
every answer is the envelope `{"status": "success"|"error", "data": …, "errorType", "error", "warnings"}`;
an instant query's data is `{"resultType": "vector", "result": [{"metric": {labels}, "value": [<unix
time>, "<number as string>"]}]}`; a missing or unparsable parameter is 400 `bad_data`, an expression that
cannot be executed 422 `execution`, a timeout 503 `timeout`.

It evaluates only the two query shapes the usage report sends (a per-pod sum of cAdvisor's CPU rate and
of the peak working set in one namespace), from samples a test puts in `cpu` / `memory` (per pod, per
namespace). Anything else is answered as Prometheus answers an expression it cannot parse.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.vendor_app import Call, Reply, VendorApp

QUERY = "/api/v1/query"
_SHAPE = re.compile(
    r"^sum by \(pod\) \((?P<fn>rate|max_over_time)\((?P<metric>[a-z_]+)"
    r"\{(?P<matchers>[^}]*)\}\[(?P<window>[^\]]+)\]\)\)$"
)
_MATCHER = re.compile(r'^(?P<label>[a-z_]+)(?P<op>=|!=)"(?P<value>[^"]*)"$')
_DURATION = re.compile(r"^[1-9]\d*[smhdwy]$")
_FUNCTION_OF = {"container_cpu_usage_seconds_total": "rate", "container_memory_working_set_bytes": "max_over_time"}


@dataclass
class Series:
    """One container's value for the window: cores for CPU (already a rate), bytes for memory (the peak)."""

    namespace: str
    pod: str
    container: str
    value: float


class FakePrometheus(VendorApp):
    """`token`: when set, a request without `Authorization: Bearer <token>` gets 401, as behind an auth proxy."""

    def __init__(self, token: str = "") -> None:
        super().__init__()
        self.cpu: list[Series] = []
        self.memory: list[Series] = []
        self.token = token
        self.route("GET", QUERY, self._query)
        self.route("POST", QUERY, self._query)

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        kinds = {400: "bad_data", 422: "execution", 503: "timeout"}
        return Reply(status, {"status": "error", "errorType": kinds.get(status, code), "error": message})

    def add_pod(self, namespace: str, pod: str, cores: float, memory_bytes: float, container: str = "main") -> None:
        self.cpu.append(Series(namespace, pod, container, cores))
        self.memory.append(Series(namespace, pod, container, memory_bytes))

    def _query(self, call: Call) -> Reply:
        if self.token and call.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, body=b"Unauthorized\n", content_type="text/plain")
        params = dict(call.query)
        if call.method == "POST":
            params.update(parse_qsl(call.body.decode(), keep_blank_values=True))
        expression = params.get("query", "")
        if not expression:
            return self.error_reply(400, "bad_data", 'invalid parameter "query": unknown query')
        match = _SHAPE.match(expression)
        if match is None or _FUNCTION_OF.get(match["metric"]) != match["fn"]:
            return self.error_reply(400, "bad_data", f'invalid parameter "query": 1:1: parse error: {expression!r}')
        if not _DURATION.match(match["window"]):
            return self.error_reply(400, "bad_data", f"bad duration {match['window']!r}")
        matchers = [_MATCHER.match(part.strip()) for part in match["matchers"].split(",")]
        if any(m is None for m in matchers):
            return self.error_reply(400, "bad_data", "parse error in label matchers")
        series = self.cpu if match["metric"] == "container_cpu_usage_seconds_total" else self.memory
        totals: dict[str, float] = {}
        for s in series:
            labels = {"namespace": s.namespace, "pod": s.pod, "container": s.container}
            if all((labels.get(m["label"], "") == m["value"]) == (m["op"] == "=") for m in matchers if m is not None):
                totals[s.pod] = totals.get(s.pod, 0.0) + s.value
        now = round(time.time(), 3)
        result: list[dict[str, Any]] = [
            {"metric": {"pod": pod}, "value": [now, repr(value)]} for pod, value in sorted(totals.items())
        ]
        return Reply(200, {"status": "success", "data": {"resultType": "vector", "result": result}})
