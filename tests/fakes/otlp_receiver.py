"""A local OTLP/HTTP traces receiver: decodes `ExportTraceServiceRequest` protobuf, records spans and headers.

Stands in for Arize's OTLP endpoint. Built on `VendorApp`, so its fault switches apply (`fail_next`,
`slow_next`), and run on 127.0.0.1 with `otlp_receiver()` because the OTel exporter takes no transport.
"""

from __future__ import annotations

import contextlib
import gzip
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.fakes.vendor_app import Call, Reply, VendorApp, serve

TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class ReceivedEvent:
    name: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived, with its resource and the headers of the request that carried it."""

    name: str
    trace_id: str  # hex
    span_id: str  # hex
    kind: str  # e.g. "SPAN_KIND_INTERNAL"
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: str  # "STATUS_CODE_UNSET", "STATUS_CODE_OK" or "STATUS_CODE_ERROR"
    status_message: str
    start_ns: int
    end_ns: int
    headers: dict[str, str]
    events: tuple[ReceivedEvent, ...] = field(default=())

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


class OtlpReceiver(VendorApp):
    """Answers `POST /v1/traces` like an OTLP collector and keeps every span it decoded."""

    def __init__(self) -> None:
        super().__init__({f"POST {TRACES_PATH}": self._accept})
        self.spans: list[ReceivedSpan] = []
        self.bodies: list[bytes] = []  # decompressed request bodies, to search for leaked bytes

    def _accept(self, call: Call) -> Reply:
        body = _decompress(call.body, call.headers.get("content-encoding", ""))
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as exc:  # a bad payload is the exporter's bug: answer like a collector would
            return Reply(400, {"error": f"not an ExportTraceServiceRequest: {exc}"})
        self.bodies.append(body)
        self.spans.extend(_spans(request, call.headers))
        return Reply(200, body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf")

    def wait_for_spans(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedSpan]:
        """The spans received once there are at least `count`; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.spans) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} span(s) within {timeout}s, got {len(self.spans)}")
            time.sleep(0.01)
        return list(self.spans)

    def export_requests(self) -> list[Call]:
        return self.calls_to(TRACES_PATH)


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    """A receiver on a free 127.0.0.1 port; yields it and its full traces endpoint URL."""
    receiver = OtlpReceiver()
    with serve(receiver) as base_url:
        yield receiver, f"{base_url}{TRACES_PATH}"


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


def _spans(request: ExportTraceServiceRequest, headers: dict[str, str]) -> Iterator[ReceivedSpan]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield ReceivedSpan(
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    kind=Span.SpanKind.Name(span.kind),
                    attributes=_attributes(span.attributes),
                    resource=resource,
                    status_code=Status.StatusCode.Name(span.status.code),
                    status_message=span.status.message,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    headers=dict(headers),
                    events=tuple(ReceivedEvent(e.name, _attributes(e.attributes)) for e in span.events),
                )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)
