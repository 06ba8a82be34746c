"""Traces each LLM and embedding call to Arize: an OpenTelemetry span with OpenInference attributes over OTLP/HTTP.

Off (a no-op that never imports OpenTelemetry) unless ARIZE_SPACE_ID and ARIZE_API_KEY are both set.
When on, spans go through a private `TracerProvider` (the process-global one is never touched) and a
background batch exporter, so tracing never blocks or fails a call. Every string attribute passes the
redactor; prompt and output text are recorded only with SOPHIA_AI_TRACE_CONTENT=1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from openinference.semconv.resource import ResourceAttributes
from openinference.semconv.trace import (
    MessageAttributes,
    OpenInferenceLLMSystemValues,
    OpenInferenceMimeTypeValues,
    OpenInferenceSpanKindValues,
    SpanAttributes,
)

from sophia_shared.errors import SophiaError
from sophia_shared.redaction import redact, register_secret
from sophia_shared.settings import Settings

from .gateway.base import ChatRequest, ChatResult, EmbedResult

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "sophia-ai-intelligence"
CHAT_SPAN_NAME = "ChatCompletion"
EMBEDDING_SPAN_NAME = "CreateEmbeddings"

# The suite's own attributes, for what OpenInference has no name for.
TOOL = "sophia.tool"
TRACE_ID = "sophia.trace_id"  # the x-portkey-trace-id, so one call can be found in Portkey and in Arize
CACHE_STATUS = "sophia.cache_status"
LATENCY_MS = "sophia.latency_ms"
FALLBACKS = "sophia.fallbacks"
RETRIES = "sophia.retries"
ERROR_KIND = "sophia.error_kind"
EMBEDDING_COUNT = "sophia.embedding.count"
EMBEDDING_DIMENSION = "sophia.embedding.dimension"

# Longer text is cut (after redaction, so a secret is never cut into an unmasked prefix).
MAX_TEXT_CHARS = 32_000
_TRUNCATED = "…[truncated]"

# The OTLP/HTTP exporter logs each failed batch itself; we replace that with one warning of our own.
_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
_KNOWN_SYSTEMS = frozenset(v.value for v in OpenInferenceLLMSystemValues)

AttributeValue = str | bool | int | float | Sequence[str]


class LlmRecorder(Protocol):
    def finish(self, result: ChatResult, *, cost_usd: float | None, cache_status: str) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class EmbeddingRecorder(Protocol):
    def finish(
        self, result: EmbedResult, *, cost_usd: float | None = None, latency_ms: float | None = None
    ) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class _Untraced:
    """The recorder when tracing is off: does nothing."""

    def finish(
        self,
        result: object,
        *,
        cost_usd: float | None = None,
        cache_status: str = "",
        latency_ms: float | None = None,
    ) -> None:
        pass

    def fail(self, error: BaseException) -> None:
        pass


_UNTRACED = _Untraced()


class LlmTracing:
    """Arize tracing for one server: `llm_span` / `embedding_span` around each call, `shutdown` at close."""

    def __init__(
        self,
        *,
        space_id: str | None,
        api_key: str | None,
        endpoint: str,
        trace_content: bool = False,
        project: str = DEFAULT_PROJECT,
        export_timeout_seconds: float = 5.0,
        schedule_delay_seconds: float = 2.0,
        max_queue_size: int = 2048,
    ) -> None:
        register_secret(api_key)  # already registered when it came from Settings; this covers direct use
        self._space_id = space_id or ""
        self._api_key = api_key or ""
        self._endpoint = endpoint
        self._content = trace_content
        self._project = project
        self._export_timeout = export_timeout_seconds
        self._schedule_delay = schedule_delay_seconds
        self._max_queue_size = max_queue_size
        self._off_reason = _off_reason(self._space_id, self._api_key, endpoint)
        self._lock = threading.Lock()
        self._provider: TracerProvider | None = None
        self._tracer: Tracer | None = None
        self._failures: _ExportFailures | None = None
        self._closed = False
        self._broken = False  # set up failed once: stay off rather than retry on every call
        self._warned = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        project: str = DEFAULT_PROJECT,
        export_timeout_seconds: float = 5.0,
        schedule_delay_seconds: float = 2.0,
    ) -> LlmTracing:
        """Tracing as ARIZE_SPACE_ID, ARIZE_API_KEY, SOPHIA_ARIZE_OTLP_ENDPOINT and SOPHIA_AI_TRACE_CONTENT say."""
        return cls(
            space_id=settings.get("ARIZE_SPACE_ID"),
            api_key=settings.get("ARIZE_API_KEY"),
            endpoint=settings.get("SOPHIA_ARIZE_OTLP_ENDPOINT") or "",
            trace_content=settings.flag("SOPHIA_AI_TRACE_CONTENT"),
            project=project,
            export_timeout_seconds=export_timeout_seconds,
            schedule_delay_seconds=schedule_delay_seconds,
        )

    # -- state -----------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return not self._off_reason and not self._broken and not self._closed

    @property
    def trace_content(self) -> bool:
        return self._content

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def export_failures(self) -> int:
        """How many export attempts failed so far (0 when off)."""
        return self._failures.count if self._failures is not None else 0

    def describe(self) -> str:
        """One line for `sophia doctor`: whether calls are traced, where to, and whether text is included."""
        if self._off_reason:
            return f"Arize tracing off: {self._off_reason}"
        content = "prompt and output text included" if self._content else "no prompt or output text"
        return f"Arize tracing on: project {self._project!r} via {self._endpoint} ({content})"

    # -- spans -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def llm_span(self, *, tool: str, request: ChatRequest) -> Iterator[LlmRecorder]:
        """A span (kind LLM) around one chat call; an exception escaping the block is recorded and re-raised."""
        span = self._start(CHAT_SPAN_NAME, lambda: _chat_request_attributes(tool, request, content=self._content))
        if span is None:
            yield _UNTRACED
            return
        recorder = _ChatSpan(span, request, content=self._content)
        with _ending(recorder):
            yield recorder

    @contextlib.contextmanager
    def embedding_span(self, *, tool: str, model: str, texts: Sequence[str]) -> Iterator[EmbeddingRecorder]:
        """A span (kind EMBEDDING) around one embed call."""
        span = self._start(
            EMBEDDING_SPAN_NAME, lambda: _embedding_attributes(tool, model, texts, content=self._content)
        )
        if span is None:
            yield _UNTRACED
            return
        recorder = _EmbeddingSpan(span)
        with _ending(recorder):
            yield recorder

    def _start(self, name: str, attributes: Callable[[], dict[str, AttributeValue | None]]) -> Span | None:
        if not self.enabled:
            return None
        try:
            tracer = self._tracer or self.start()
            if tracer is None:
                return None
            span = tracer.start_span(name)
            _set_attributes(span, attributes())
            return span
        except Exception as exc:  # tracing must never fail a call
            self._warn_once("could not start a span", exc)
            return None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> Tracer | None:
        """Set up the provider and its exporter thread now (the first span does it otherwise); None when off."""
        if not self.enabled:
            return None
        with self._lock:
            if self._tracer is None and not self._closed:
                try:
                    self._tracer = self._build()
                except Exception as exc:
                    self._broken = True
                    self._warn_once("could not be set up; calls go on untraced", exc)
            return self._tracer

    def _build(self) -> Tracer:
        # Imported here: OpenTelemetry and its exporter take ~0.2 s to import, and a server with
        # tracing off should not pay that on start-up.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        detected = Resource.create(
            {
                ResourceAttributes.PROJECT_NAME: self._project,
                "model_id": self._project,  # Arize's older name for the project
                "service.name": self._project,
            }
        )
        # OTEL_RESOURCE_ATTRIBUTES is merged in by `create`; it passes the redactor like everything else.
        resource = Resource(
            {k: redact(v) if isinstance(v, str) else v for k, v in detected.attributes.items()}, detected.schema_url
        )
        exporter = OTLPSpanExporter(
            endpoint=self._endpoint,
            headers={"space_id": self._space_id, "api_key": self._api_key},
            timeout=self._export_timeout,
        )
        # Our own bounded shutdown runs at server close; an atexit hook could wait 30 s on a dead endpoint.
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=self._max_queue_size,
                schedule_delay_millis=self._schedule_delay * 1000,
                max_export_batch_size=min(512, self._max_queue_size),
                export_timeout_millis=self._export_timeout * 1000,
                meter_provider=NoOpMeterProvider(),
            )
        )
        self._failures = _ExportFailures(self._endpoint)
        logging.getLogger(_EXPORTER_LOGGER).addFilter(self._failures)
        self._provider = provider
        return provider.get_tracer(__name__)

    def flush(self, timeout: float = 5.0) -> bool:
        """Send the queued spans now; False when they were not all sent within `timeout` seconds."""
        provider = self._provider
        if provider is None or self._closed:
            return True
        return _bounded(lambda: provider.force_flush(int(timeout * 1000)), timeout, "sophia-trace-flush")

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and stop the exporter thread, waiting at most `timeout` seconds; later spans are dropped."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            provider, failures = self._provider, self._failures
        if provider is None:
            return True
        done = _bounded(provider.shutdown, timeout, "sophia-trace-shutdown")
        if failures is not None:
            logging.getLogger(_EXPORTER_LOGGER).removeFilter(failures)
        return done

    def _warn_once(self, what: str, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("Arize tracing %s: %s", what, _error_text(exc))


class _ExportFailures(logging.Filter):
    """Swallows the exporter's own per-batch log lines and warns once, so a dead endpoint does not flood stderr."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:  # a batch given up on (retries are logged at WARNING)
            self.count += 1
            if self.count == 1:
                reason = redact(record.getMessage())
                log.warning(
                    "Arize tracing: spans could not be sent to %s (%s). Calls go on; further export failures "
                    "are not logged.",
                    self.endpoint,
                    reason,
                )
        return False


class _SpanBase:
    """A call's span: finished once (ok or error), ended exactly once, and never raising into the call."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.done = False

    def fail(self, error: BaseException) -> None:
        if self.done:
            return
        self.done = True
        with _never_raise():
            _set_error(self.span, error)

    def end(self) -> None:
        with _never_raise():
            self.span.end()


class _ChatSpan(_SpanBase):
    def __init__(self, span: Span, request: ChatRequest, *, content: bool) -> None:
        super().__init__(span)
        self.request = request
        self.content = content

    def finish(self, result: ChatResult, *, cost_usd: float | None, cache_status: str) -> None:
        if self.done:
            return
        self.done = True
        with _never_raise():
            _set_attributes(self.span, _chat_result_attributes(self.request, result, cost_usd, cache_status))
            if self.content:
                _set_attributes(self.span, _chat_output_attributes(self.request, result))
            _set_ok(self.span)


class _EmbeddingSpan(_SpanBase):
    def finish(self, result: EmbedResult, *, cost_usd: float | None = None, latency_ms: float | None = None) -> None:
        if self.done:
            return
        self.done = True
        with _never_raise():
            dimension = len(result.vectors[0]) if result.vectors else 0
            _set_attributes(
                self.span,
                {
                    SpanAttributes.EMBEDDING_MODEL_NAME: result.model or None,
                    EMBEDDING_COUNT: len(result.vectors),
                    EMBEDDING_DIMENSION: dimension,
                    SpanAttributes.LLM_TOKEN_COUNT_PROMPT: result.input_tokens,
                    SpanAttributes.LLM_TOKEN_COUNT_TOTAL: result.input_tokens,
                    SpanAttributes.LLM_COST_TOTAL: cost_usd,
                    LATENCY_MS: latency_ms,
                },
            )
            _set_ok(self.span)


class _Recording(Protocol):
    def fail(self, error: BaseException) -> None: ...

    def end(self) -> None: ...


@contextlib.contextmanager
def _ending(recorder: _Recording) -> Iterator[None]:
    """Ends the span on the way out; an exception (cancellation included) is recorded, then propagates."""
    try:
        yield
    except BaseException as exc:
        recorder.fail(exc)  # a no-op when the caller already recorded the outcome
        raise
    finally:
        recorder.end()


@contextlib.contextmanager
def _never_raise() -> Iterator[None]:
    try:
        yield
    except Exception:
        log.debug("Arize tracing could not record an attribute", exc_info=True)


# -- attributes --------------------------------------------------------------------------------------


def _chat_request_attributes(tool: str, request: ChatRequest, *, content: bool) -> dict[str, AttributeValue | None]:
    parameters = {
        "model": request.model or None,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "json_output": request.json_output or None,
    }
    attributes: dict[str, AttributeValue | None] = {
        SpanAttributes.OPENINFERENCE_SPAN_KIND: OpenInferenceSpanKindValues.LLM.value,
        SpanAttributes.LLM_MODEL_NAME: request.model or None,
        SpanAttributes.LLM_REQUEST_MODEL_NAME: request.model or None,
        SpanAttributes.LLM_INVOCATION_PARAMETERS: _json({k: v for k, v in parameters.items() if v is not None}),
        TOOL: tool,
        TRACE_ID: request.trace_id or None,
    }
    if content:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        attributes[SpanAttributes.INPUT_VALUE] = _json(messages)
        attributes[SpanAttributes.INPUT_MIME_TYPE] = OpenInferenceMimeTypeValues.JSON.value
        for i, message in enumerate(request.messages):
            prefix = f"{SpanAttributes.LLM_INPUT_MESSAGES}.{i}."
            attributes[prefix + MessageAttributes.MESSAGE_ROLE] = message.role
            attributes[prefix + MessageAttributes.MESSAGE_CONTENT] = message.content
    return attributes


def _chat_result_attributes(
    request: ChatRequest, result: ChatResult, cost_usd: float | None, cache_status: str
) -> dict[str, AttributeValue | None]:
    prompt, completion = result.input_tokens, result.output_tokens
    total = prompt + completion if prompt is not None and completion is not None else None
    provider = result.provider or None
    return {
        SpanAttributes.LLM_MODEL_NAME: result.model or request.model or None,
        SpanAttributes.LLM_RESPONSE_MODEL_NAME: result.model or None,
        SpanAttributes.LLM_PROVIDER: provider,
        # llm.system names the model family; only Portkey providers OpenInference knows map onto it.
        SpanAttributes.LLM_SYSTEM: provider if provider in _KNOWN_SYSTEMS else None,
        SpanAttributes.LLM_TOKEN_COUNT_PROMPT: prompt,
        SpanAttributes.LLM_TOKEN_COUNT_COMPLETION: completion,
        SpanAttributes.LLM_TOKEN_COUNT_TOTAL: total,
        SpanAttributes.LLM_COST_TOTAL: cost_usd,
        SpanAttributes.LLM_FINISH_REASON: result.finish_reason or None,
        LATENCY_MS: result.latency_ms,
        CACHE_STATUS: cache_status or None,
        FALLBACKS: list(result.fallbacks) or None,
        RETRIES: result.retries,
        # The request normally carries the trace id; the gateway may have made one up.
        TRACE_ID: request.trace_id or result.trace_id or None,
    }


def _chat_output_attributes(request: ChatRequest, result: ChatResult) -> dict[str, AttributeValue | None]:
    mime = OpenInferenceMimeTypeValues.JSON if request.json_output else OpenInferenceMimeTypeValues.TEXT
    prefix = f"{SpanAttributes.LLM_OUTPUT_MESSAGES}.0."
    return {
        SpanAttributes.OUTPUT_VALUE: result.text,
        SpanAttributes.OUTPUT_MIME_TYPE: mime.value,
        prefix + MessageAttributes.MESSAGE_ROLE: "assistant",
        prefix + MessageAttributes.MESSAGE_CONTENT: result.text,
    }


def _embedding_attributes(
    tool: str, model: str, texts: Sequence[str], *, content: bool
) -> dict[str, AttributeValue | None]:
    attributes: dict[str, AttributeValue | None] = {
        SpanAttributes.OPENINFERENCE_SPAN_KIND: OpenInferenceSpanKindValues.EMBEDDING.value,
        SpanAttributes.EMBEDDING_MODEL_NAME: model or None,
        EMBEDDING_COUNT: len(texts),
        TOOL: tool,
    }
    if content:
        for i, text in enumerate(texts):
            attributes[f"{SpanAttributes.EMBEDDING_EMBEDDINGS}.{i}.embedding.text"] = text
    return attributes


def _set_attributes(span: Span, attributes: Mapping[str, AttributeValue | None]) -> None:
    """Set the non-None attributes; every string, in a list or not, is redacted here as a last defence."""
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, str):
            span.set_attribute(key, _clean(value))
        elif isinstance(value, bool | int | float):
            span.set_attribute(key, value)
        else:
            span.set_attribute(key, [_clean(v) for v in value])


def _set_ok(span: Span) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.OK))


def _set_error(span: Span, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    text = _clean(_error_text(error), limit=1000)
    kind = error.kind if isinstance(error, SophiaError) else None
    _set_attributes(span, {ERROR_KIND: kind})
    # No stack trace: frames carry file paths and source lines we have no reason to send.
    span.add_event("exception", {"exception.type": type(error).__name__, "exception.message": text})
    span.set_status(Status(StatusCode.ERROR, text))


def _error_text(error: BaseException) -> str:
    message = error.message if isinstance(error, SophiaError) else str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _clean(text: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + _TRUNCATED


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _off_reason(space_id: str, api_key: str, endpoint: str) -> str:
    missing = [name for name, value in (("ARIZE_SPACE_ID", space_id), ("ARIZE_API_KEY", api_key)) if not value]
    if missing:
        return f"{' and '.join(missing)} not set"
    if urlsplit(endpoint).scheme not in {"http", "https"} or not urlsplit(endpoint).netloc:
        return f"SOPHIA_ARIZE_OTLP_ENDPOINT is not an http(s) URL: {redact(endpoint)!r}"
    return ""


def _bounded(action: Callable[[], object], timeout: float, name: str) -> bool:
    """Run `action` in a daemon thread and wait at most `timeout` seconds; True when it finished in time."""
    outcome: list[bool] = []

    def run() -> None:
        try:
            action()
            outcome.append(True)
        except Exception:
            log.debug("Arize tracing: %s failed", name, exc_info=True)
            outcome.append(False)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    return bool(outcome) and outcome[0]
