"""Measured CPU and memory of the suite's pods from a Prometheus HTTP API (`/api/v1/query`), read-only.

The queries use cAdvisor's container metrics, which the kubelet exports on every Kubernetes cluster:
`container_cpu_usage_seconds_total` (average cores over the window) and `container_memory_working_set_bytes`
(peak over the window), summed per pod. `SOPHIA_PROMETHEUS_URL` names the server; `SOPHIA_PROMETHEUS_TOKEN`,
when set, is sent as a bearer token (managed Prometheus services need one).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import anyio
import httpx

from sophia_shared.errors import AuthError, BackendError, InputError, NotConfigured
from sophia_shared.http import DEFAULT_RETRY, DEFAULT_TIMEOUT, RetryPolicy, make_client
from sophia_shared.settings import Settings

URL_VARIABLE = "SOPHIA_PROMETHEUS_URL"
TOKEN_VARIABLE = "SOPHIA_PROMETHEUS_TOKEN"  # noqa: S105 - a variable name
QUERY_PATH = "/api/v1/query"
VENDOR = "Prometheus"
_WINDOW = re.compile(r"^[1-9]\d*[smhdw]$")
_LABEL_VALUE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # a Kubernetes namespace name


def _selector(metric: str, namespace: str) -> str:
    # container="" is the pod's cgroup total and "POD" the pause container: both would double-count.
    return f'{metric}{{namespace="{namespace}",container!="",container!="POD"}}'


def cpu_query(namespace: str, window: str) -> str:
    return f"sum by (pod) (rate({_selector('container_cpu_usage_seconds_total', namespace)}[{window}]))"


def memory_query(namespace: str, window: str) -> str:
    return f"sum by (pod) (max_over_time({_selector('container_memory_working_set_bytes', namespace)}[{window}]))"


def check_window(window: str) -> str:
    if not _WINDOW.match(window):
        raise InputError(
            f"window {window!r} is not a Prometheus duration.",
            hint="Use a number and a unit: '30m', '6h', '1d', '1w'.",
        )
    return window


class Prometheus:
    """One Prometheus server; `configured()` says whether a URL is set at all."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._timeout = timeout
        self._retry = retry
        self._client: httpx.AsyncClient | None = None

    def configured(self) -> bool:
        return bool((self._settings.get(URL_VARIABLE) or "").strip())

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            base = (await anyio.to_thread.run_sync(self._settings.get, URL_VARIABLE) or "").strip().rstrip("/")
            if not base:
                raise NotConfigured(
                    f"{URL_VARIABLE} is not set, so measured use cannot be read.",
                    hint=f"Set {URL_VARIABLE} to your Prometheus (e.g. http://prometheus.monitoring:9090).",
                )
            token = await anyio.to_thread.run_sync(self._settings.get, TOKEN_VARIABLE)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            self._client = make_client(
                base_url=base, headers=headers, timeout=self._timeout, retry=self._retry, transport=self._transport
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def vector(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector result as (labels, value) pairs; other result types are an error."""
        client = await self._http()
        try:
            response = await client.get(QUERY_PATH, params={"query": promql})
        except httpx.HTTPError as exc:
            raise BackendError(
                f"{VENDOR} at {URL_VARIABLE} did not answer ({type(exc).__name__}).",
                hint=f"Check {URL_VARIABLE} and that the server is reachable from here.",
            ) from None
        if response.status_code in (401, 403):  # often an auth proxy's plain-text page, not the API's JSON
            raise AuthError(
                f"{VENDOR} refused the query (HTTP {response.status_code}).",
                hint=f"Set {TOKEN_VARIABLE} to a token that may read metrics.",
            )
        body = _json(response)
        if response.status_code >= 400 or body.get("status") != "success":
            said = f"{body.get('errorType', 'error')}: {body.get('error', '')}".strip(": ")
            raise BackendError(
                f"{VENDOR} could not run the usage query (HTTP {response.status_code}, {said or 'no error text'}).",
                hint="A 503 is a timeout on the server: try a shorter window. Otherwise check that the server has "
                "cAdvisor's container metrics.",
            )
        data = body.get("data")
        if (
            not isinstance(data, Mapping)
            or data.get("resultType") != "vector"
            or not isinstance(data.get("result"), list)
        ):
            raise BackendError(f"{VENDOR} answered the usage query without a vector result.")
        samples: list[tuple[dict[str, str], float]] = []
        for item in data["result"]:
            labels = item.get("metric") if isinstance(item, Mapping) else None
            value = item.get("value") if isinstance(item, Mapping) else None
            if not isinstance(labels, Mapping) or not isinstance(value, list) or len(value) != 2:
                continue
            try:
                number = float(value[1])
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                samples.append(({str(k): str(v) for k, v in labels.items()}, number))
        return samples

    async def pod_usage(self, namespace: str, window: str) -> tuple[dict[str, float], dict[str, float]]:
        """CPU cores (average) and memory bytes (peak) per pod of `namespace` over `window`."""
        check_window(window)
        if not _LABEL_VALUE.match(namespace):
            raise InputError(f"namespace {namespace!r} is not a Kubernetes namespace name.")
        cpu = await self.vector(cpu_query(namespace, window))
        memory = await self.vector(memory_query(namespace, window))
        return _by_pod(cpu), _by_pod(memory)


def _by_pod(samples: list[tuple[dict[str, str], float]]) -> dict[str, float]:
    return {labels["pod"]: value for labels, value in samples if labels.get("pod")}


def _json(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise BackendError(
            f"{VENDOR} answered HTTP {response.status_code} with a body that is not JSON.",
            hint=f"Check that {URL_VARIABLE} points at the Prometheus server itself (its /api/v1 API).",
        ) from None
    return body if isinstance(body, Mapping) else {}
