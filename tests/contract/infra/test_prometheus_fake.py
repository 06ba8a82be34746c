"""The fake Prometheus answers as the HTTP API documentation says, and our client reads it (and its errors)
correctly: envelope, vector results, error types and statuses, bearer auth, the token never in a message."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sophia_infrastructure.clients.prometheus import Prometheus, cpu_query, memory_query
from sophia_shared.errors import AuthError, BackendError
from sophia_shared.http import RetryPolicy
from sophia_shared.settings import Settings
from tests.fakes.prometheus import QUERY, FakePrometheus
from tests.fakes.vendor_app import serve

pytestmark = pytest.mark.anyio
TOKEN = "prom-token-5f4e3d2c1b0a"


def client_on(fake: FakePrometheus, tmp_path: Path, *, token: str = "", transport: bool = True) -> Prometheus:
    environ = {"SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"), "SOPHIA_PROMETHEUS_URL": "http://prometheus.test"}
    if token:
        environ["SOPHIA_PROMETHEUS_TOKEN"] = token
    settings = Settings(environ, cwd=tmp_path)
    return Prometheus(
        settings, transport=httpx.ASGITransport(app=fake) if transport else None, retry=RetryPolicy(base_delay=0.01)
    )


def cluster() -> FakePrometheus:
    fake = FakePrometheus()
    fake.add_pod("sophia-ai", "sophia-data-6f7c9d8b4-aaaaa", 0.125, 300e6)
    fake.add_pod("sophia-ai", "sophia-data-6f7c9d8b4-aaaaa", 0.025, 20e6, container="sidecar")
    fake.add_pod("sophia-ai", "sophia-data-6f7c9d8b4-aaaaa", 7.0, 7e9, container="POD")  # pause container
    fake.add_pod("kube-system", "coredns-7db6d8ff4d-q9x8w", 0.01, 50e6)
    return fake


async def test_success_envelope_is_the_documented_vector_shape() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cluster()), base_url="http://p") as http:
        response = await http.get(QUERY, params={"query": cpu_query("sophia-ai", "5m")})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    (sample,) = body["data"]["result"]
    timestamp, value = sample["value"]
    assert isinstance(timestamp, float) and isinstance(value, str)  # numbers travel as strings
    assert sample["metric"] == {"pod": "sophia-data-6f7c9d8b4-aaaaa"}


@pytest.mark.parametrize(
    ("params", "status", "error_type"),
    [({}, 400, "bad_data"), ({"query": "up{"}, 400, "bad_data"), ({"query": cpu_query("x", "5 min")}, 400, "bad_data")],
)
async def test_bad_queries_get_the_documented_error_envelope(
    params: dict[str, str], status: int, error_type: str
) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cluster()), base_url="http://p") as http:
        response = await http.get(QUERY, params=params)
    body = response.json()
    assert response.status_code == status
    assert body["status"] == "error" and body["errorType"] == error_type and body["error"]


async def test_post_with_a_form_body_is_answered_like_get() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cluster()), base_url="http://p") as http:
        posted = await http.post(QUERY, data={"query": memory_query("sophia-ai", "1h")})
    assert posted.json()["data"]["result"][0]["value"][1] == repr(320e6)


async def test_client_sums_containers_per_pod_without_the_pause_container(tmp_path: Path) -> None:
    prometheus = client_on(cluster(), tmp_path)
    cpu, memory = await prometheus.pod_usage("sophia-ai", "1h")
    await prometheus.aclose()
    assert cpu == {"sophia-data-6f7c9d8b4-aaaaa": pytest.approx(0.15)}
    assert memory == {"sophia-data-6f7c9d8b4-aaaaa": pytest.approx(320e6)}


async def test_client_over_real_http(tmp_path: Path) -> None:
    with serve(cluster()) as base:
        environ = {"SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"), "SOPHIA_PROMETHEUS_URL": base}
        prometheus = Prometheus(Settings(environ, cwd=tmp_path))
        cpu, _ = await prometheus.pod_usage("sophia-ai", "30m")
        await prometheus.aclose()
    assert list(cpu) == ["sophia-data-6f7c9d8b4-aaaaa"]


async def test_execution_errors_and_timeouts_become_backend_errors(tmp_path: Path) -> None:
    fake = cluster()
    prometheus = client_on(fake, tmp_path)
    fake.fail_next(1, status=422)
    with pytest.raises(BackendError, match=r"HTTP 422, execution"):
        await prometheus.vector(cpu_query("sophia-ai", "1h"))
    fake.fail_next(3, status=503)  # retried like any 503, then reported
    with pytest.raises(BackendError) as timed_out:
        await prometheus.vector(cpu_query("sophia-ai", "1h"))
    assert "HTTP 503, timeout" in timed_out.value.message
    assert "try a shorter window" in timed_out.value.agent_message()
    fake.malformed_next(1)
    with pytest.raises(BackendError, match="not JSON"):
        await prometheus.vector(cpu_query("sophia-ai", "1h"))
    await prometheus.aclose()


async def test_bearer_token_is_sent_and_never_shown(tmp_path: Path) -> None:
    fake = cluster()
    fake.token = TOKEN
    good = client_on(fake, tmp_path, token=TOKEN)
    assert await good.vector(cpu_query("sophia-ai", "1h"))
    assert fake.calls[-1].headers["authorization"] == f"Bearer {TOKEN}"
    await good.aclose()
    bad = client_on(fake, tmp_path, token="wrong-token-000")
    with pytest.raises(AuthError) as refused:
        await bad.vector(cpu_query("sophia-ai", "1h"))
    await bad.aclose()
    assert "SOPHIA_PROMETHEUS_TOKEN" in refused.value.agent_message()
    assert "wrong-token-000" not in refused.value.agent_message()
