"""Arize tracing: real OTel SDK → real OTLP/HTTP → a local receiver; right attributes, no secrets, never in the way."""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from sophia_ai_intelligence.gateway.base import ChatMessage, ChatRequest, ChatResult, EmbedResult
from sophia_ai_intelligence.settings import SETTINGS
from sophia_ai_intelligence.tracing import DEFAULT_PROJECT, LlmTracing
from sophia_shared.errors import BackendError
from sophia_shared.redaction import MASK
from sophia_shared.settings import Settings
from tests.fakes.net import closed_port_url
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

SPACE_ID = "U3BhY2U6dGVzdC1zcGFjZQ=="
ARIZE_KEY = "ak-test-arize-7f3e9c1d2b4a"
OPENAI_KEY = "sk-test-openai-5e6f7a8b9c0d"
PORTKEY_KEY = "pk-test-portkey-1a2b3c4d5e"
EXPORTER_THREAD = "OtelBatchSpanRecordProcessor"

REQUEST = ChatRequest(
    messages=(ChatMessage("system", "You answer briefly."), ChatMessage("user", "What is the capital of France?")),
    model="gpt-4o-mini",
    max_tokens=64,
    temperature=0.2,
    trace_id="sophia-trace-0001",
)
RESULT = ChatResult(
    text="Paris.",
    model="gpt-4o-mini-2024-07-18",
    provider="openai",
    input_tokens=21,
    output_tokens=3,
    latency_ms=412.5,
    fallbacks=("anthropic",),
    retries=1,
    finish_reason="stop",
    trace_id="sophia-trace-0001",
)


@pytest.fixture
def receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    with otlp_receiver() as served:
        yield served


@pytest.fixture
def make_tracing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., LlmTracing]]:
    """Builds tracing from `Settings(environ=…)` (so secrets are registered as in the server); shut down after."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # the exporter uses requests, which honours proxies
    built: list[LlmTracing] = []

    def make(endpoint: str | None = None, *, export_timeout: float = 2.0, **environ: str) -> LlmTracing:
        values = {
            "ARIZE_SPACE_ID": SPACE_ID,
            "ARIZE_API_KEY": ARIZE_KEY,
            "OPENAI_API_KEY": OPENAI_KEY,
            "PORTKEY_API_KEY": PORTKEY_KEY,
            "SOPHIA_DOTENV": str(tmp_path / "no.env"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            **({"SOPHIA_ARIZE_OTLP_ENDPOINT": endpoint} if endpoint else {}),
            **environ,
        }
        settings = Settings(environ={k: v for k, v in values.items() if v}, cwd=tmp_path, specs=SETTINGS)
        tracing = LlmTracing.from_settings(settings, export_timeout_seconds=export_timeout, schedule_delay_seconds=60)
        built.append(tracing)
        return tracing

    yield make
    for tracing in built:
        tracing.shutdown(timeout=2)


def traced_chat(tracing: LlmTracing, request: ChatRequest = REQUEST, result: ChatResult = RESULT) -> None:
    with tracing.llm_span(tool="ai_chat", request=request) as span:
        span.finish(result, cost_usd=0.000123, cache_status="miss")


def only_span(receiver: OtlpReceiver, tracing: LlmTracing) -> ReceivedSpan:
    assert tracing.shutdown(timeout=5)
    (span,) = receiver.wait_for_spans(1)
    return span


def exporter_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == EXPORTER_THREAD and t.is_alive()]


# -- what arrives ----------------------------------------------------------------------------------


def test_chat_span_arrives_with_openinference_llm_attributes(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    traced_chat(tracing)

    span = only_span(fake, tracing)
    attrs = span.attributes
    assert span.name == "ChatCompletion"
    assert attrs["openinference.span.kind"] == "LLM"
    assert attrs["llm.model_name"] == "gpt-4o-mini-2024-07-18"
    assert attrs["llm.request.model_name"] == "gpt-4o-mini"
    assert attrs["llm.response.model_name"] == "gpt-4o-mini-2024-07-18"
    assert attrs["llm.provider"] == "openai"
    assert attrs["llm.system"] == "openai"
    assert (attrs["llm.token_count.prompt"], attrs["llm.token_count.completion"]) == (21, 3)
    assert attrs["llm.token_count.total"] == 24
    assert attrs["llm.cost.total"] == pytest.approx(0.000123)
    assert attrs["llm.finish_reason"] == "stop"
    assert json.loads(attrs["llm.invocation_parameters"]) == {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 64,
    }
    assert attrs["sophia.latency_ms"] == pytest.approx(412.5)
    assert attrs["sophia.cache_status"] == "miss"
    assert attrs["sophia.fallbacks"] == ["anthropic"]
    assert attrs["sophia.retries"] == 1
    assert attrs["sophia.trace_id"] == "sophia-trace-0001"
    assert attrs["sophia.tool"] == "ai_chat"
    assert span.status_code == "STATUS_CODE_OK"
    assert span.duration_ms >= 0


def test_resource_names_the_arize_project(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    traced_chat(tracing)

    resource = only_span(fake, tracing).resource
    assert resource["openinference.project.name"] == DEFAULT_PROJECT
    assert resource["model_id"] == DEFAULT_PROJECT


def test_export_request_carries_space_id_and_api_key_headers(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    traced_chat(tracing)

    headers = only_span(fake, tracing).headers
    assert headers["space_id"] == SPACE_ID
    assert headers["api_key"] == ARIZE_KEY
    assert headers["content-type"] == "application/x-protobuf"


def test_span_lasts_as_long_as_the_call(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    with tracing.llm_span(tool="ai_chat", request=REQUEST) as span:
        time.sleep(0.05)
        span.finish(RESULT, cost_usd=None, cache_status="miss")

    received = only_span(fake, tracing)
    assert received.duration_ms >= 50
    assert "llm.cost.total" not in received.attributes  # unknown price: left out, not 0


def test_embedding_span_records_model_count_dimension_and_tokens(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    with tracing.embedding_span(tool="ai_embed", model="text-embedding-3-small", texts=["a", "b", "c"]) as span:
        span.finish(EmbedResult(vectors=[[0.1] * 8] * 3, model="text-embedding-3-small", input_tokens=6))

    received = only_span(fake, tracing)
    attrs = received.attributes
    assert received.name == "CreateEmbeddings"
    assert attrs["openinference.span.kind"] == "EMBEDDING"
    assert attrs["embedding.model_name"] == "text-embedding-3-small"
    assert (attrs["sophia.embedding.count"], attrs["sophia.embedding.dimension"]) == (3, 8)
    assert attrs["llm.token_count.prompt"] == 6
    assert not any(key.startswith("embedding.embeddings") for key in attrs)  # texts are content: off by default


# -- content -----------------------------------------------------------------------------------------


def test_prompt_and_output_text_are_left_out_by_default(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    traced_chat(tracing)

    attrs = only_span(fake, tracing).attributes
    assert not tracing.trace_content
    assert not any(key.startswith(("input.", "output.", "llm.input_messages", "llm.output_messages")) for key in attrs)
    body = b"".join(fake.bodies)
    assert b"capital of France" not in body
    assert b"Paris." not in body


def test_trace_content_on_records_messages_input_and_output(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint, SOPHIA_AI_TRACE_CONTENT="1")
    traced_chat(tracing)

    attrs = only_span(fake, tracing).attributes
    assert attrs["llm.input_messages.0.message.role"] == "system"
    assert attrs["llm.input_messages.1.message.role"] == "user"
    assert attrs["llm.input_messages.1.message.content"] == "What is the capital of France?"
    assert json.loads(attrs["input.value"])[1] == {"role": "user", "content": "What is the capital of France?"}
    assert attrs["input.mime_type"] == "application/json"
    assert attrs["output.value"] == "Paris."
    assert attrs["llm.output_messages.0.message.role"] == "assistant"
    assert attrs["llm.output_messages.0.message.content"] == "Paris."


# -- secrets -----------------------------------------------------------------------------------------


def test_no_secret_reaches_a_span_even_inside_traced_prompt_and_output(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint, SOPHIA_AI_TRACE_CONTENT="1")
    leaky = ChatRequest(
        messages=(ChatMessage("user", f"My keys are {OPENAI_KEY}, {ARIZE_KEY} and {PORTKEY_KEY}; keep them."),),
        model="gpt-4o-mini",
        trace_id=f"trace-{PORTKEY_KEY}",
    )
    with tracing.llm_span(tool="ai_chat", request=leaky) as span:
        span.finish(
            ChatResult(f"Noted {OPENAI_KEY}.", "gpt-4o-mini", "openai", 10, 4, 80.0), cost_usd=0.0, cache_status="miss"
        )
    with tracing.embedding_span(tool="ai_embed", model="m", texts=[f"embed {ARIZE_KEY}"]) as embed:
        embed.finish(EmbedResult(vectors=[[0.0]], model="m"))

    assert tracing.shutdown(timeout=5)
    spans = fake.wait_for_spans(2)
    body = b"".join(fake.bodies)
    for secret in (OPENAI_KEY, ARIZE_KEY, PORTKEY_KEY):
        assert secret.encode() not in body  # in no span attribute, resource attribute or event
    chat = next(s for s in spans if s.name == "ChatCompletion")
    assert chat.attributes["llm.input_messages.0.message.content"].count(MASK) == 3
    assert chat.attributes["output.value"] == f"Noted {MASK}."
    assert chat.attributes["sophia.trace_id"] == f"trace-{MASK}"


def test_failed_call_is_recorded_as_error_with_a_redacted_message(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    with tracing.llm_span(tool="ai_chat", request=REQUEST) as span:
        span.fail(BackendError(f"Portkey rejected key {PORTKEY_KEY}", hint="Check PORTKEY_API_KEY."))

    received = only_span(fake, tracing)
    assert received.status_code == "STATUS_CODE_ERROR"
    assert received.status_message == f"BackendError: Portkey rejected key {MASK}"
    assert received.attributes["sophia.error_kind"] == "backend"
    (event,) = received.events
    assert event.name == "exception"
    assert event.attributes["exception.message"] == received.status_message
    assert PORTKEY_KEY.encode() not in b"".join(fake.bodies)


def test_exception_escaping_the_span_is_recorded_and_reraised(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    with pytest.raises(TimeoutError), tracing.llm_span(tool="ai_chat", request=REQUEST):
        raise TimeoutError("gateway did not answer")

    received = only_span(fake, tracing)
    assert received.status_code == "STATUS_CODE_ERROR"
    assert received.status_message == "TimeoutError: gateway did not answer"


@pytest.mark.anyio
async def test_cancelled_call_still_ends_its_span(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    with anyio.move_on_after(0.01), tracing.llm_span(tool="ai_chat", request=REQUEST):
        await anyio.sleep(5)

    received = only_span(fake, tracing)
    assert received.status_code == "STATUS_CODE_ERROR"
    assert received.status_message.startswith("CancelledError")


# -- off -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["ARIZE_SPACE_ID", "ARIZE_API_KEY"])
def test_tracing_is_off_without_both_arize_settings(
    missing: str, receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    threads_before = exporter_threads()
    tracing = make_tracing(endpoint, **{missing: ""})
    traced_chat(tracing)

    assert not tracing.enabled
    assert tracing.describe() == f"Arize tracing off: {missing} not set"
    assert exporter_threads() == threads_before  # no exporter thread was started
    assert tracing.shutdown(timeout=1)
    assert fake.export_requests() == []


def test_disabled_tracing_never_imports_opentelemetry(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from sophia_ai_intelligence.gateway.base import ChatMessage, ChatRequest, ChatResult
        from sophia_ai_intelligence.settings import SETTINGS
        from sophia_ai_intelligence.tracing import LlmTracing
        from sophia_shared.settings import Settings

        tracing = LlmTracing.from_settings(Settings(environ={"ARIZE_SPACE_ID": "space"}, specs=SETTINGS))
        request = ChatRequest(messages=(ChatMessage("user", "hi"),), model="m")
        with tracing.llm_span(tool="ai_chat", request=request) as span:
            span.finish(ChatResult("hello", "m", "openai", 1, 1, 1.0), cost_usd=None, cache_status="off")
        tracing.shutdown()
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SOPHIA_DOTENV": str(tmp_path / "no.env")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_tracing_never_installs_the_global_tracer_provider(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    _, endpoint = receiver
    traced_chat(make_tracing(endpoint))

    assert not isinstance(trace.get_tracer_provider(), TracerProvider)


# -- never in the way ---------------------------------------------------------------------------------


def test_unreachable_endpoint_neither_raises_nor_slows_the_call(make_tracing: Callable[..., LlmTracing]) -> None:
    tracing = make_tracing(closed_port_url() + "/v1/traces", export_timeout=1.0)
    assert tracing.start() is not None  # set up (imports, exporter thread) outside the timed part
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        traced_chat(tracing)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.005
    assert max(timings) < 0.1

    started = time.perf_counter()
    tracing.flush(timeout=0.2)  # the exporter is retrying a refused connection: flush gives up in time
    assert time.perf_counter() - started < 1.0
    started = time.perf_counter()
    tracing.shutdown(timeout=1.0)
    assert time.perf_counter() - started < 2.0


def test_rejected_export_is_logged_once_without_secrets(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing], caplog: pytest.LogCaptureFixture
) -> None:
    fake, endpoint = receiver
    fake.fail_next(3, status=500)
    tracing = make_tracing(endpoint)
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        traced_chat(tracing)
        assert tracing.flush(timeout=5)

    assert tracing.export_failures == 3
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == "sophia_ai_intelligence.tracing"
    assert endpoint in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]
    assert ARIZE_KEY not in caplog.text


def test_shutdown_sends_spans_still_queued(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    threads_before = exporter_threads()
    tracing = make_tracing(endpoint)  # a 60 s batch delay: nothing would go out before shutdown
    for _ in range(3):
        traced_chat(tracing)
    assert fake.export_requests() == []
    assert len(exporter_threads()) == len(threads_before) + 1

    assert tracing.shutdown(timeout=5)
    assert len(fake.spans) == 3
    assert exporter_threads() == threads_before


def test_shutdown_returns_in_time_when_the_receiver_hangs(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    fake.slow_next(1, seconds=5)
    tracing = make_tracing(endpoint, export_timeout=4.0)
    traced_chat(tracing)

    started = time.perf_counter()
    assert tracing.shutdown(timeout=0.5) is False
    assert time.perf_counter() - started < 1.5


def test_spans_after_shutdown_are_dropped_quietly(
    receiver: tuple[OtlpReceiver, str], make_tracing: Callable[..., LlmTracing]
) -> None:
    fake, endpoint = receiver
    tracing = make_tracing(endpoint)
    tracing.shutdown(timeout=5)
    traced_chat(tracing)

    assert not tracing.enabled
    assert fake.export_requests() == []
