"""Spans of the requests a service serves, sent to an OpenTelemetry collector.

Off unless the standard OpenTelemetry variables name a collector (``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``
turn it off again). Off, the SDK is not even imported. On, each request but the probes and the
scrapes gets a SERVER span, named and attributed as OpenTelemetry's HTTP conventions say, child
of the caller's span when a tracing header names one (:mod:`servekit.tracing`: W3C
``traceparent``, Google's ``X-Cloud-Trace-Context``, AWS's ``X-Amzn-Trace-Id``), the root of the
caller's trace when the header names a trace and no span (an ALB's), and one child
span per phase of its ``Server-Timing`` (validate, predict, explain). The phases' spans are made
when the request ends, from the times its :class:`~servekit.rest.telemetry.Timings` read: the
model's path takes no lock and calls no SDK. While a sampled span is open, the request's log lines
carry its ids (``trace_id``, ``span_id``), so the trace view and the logs lead to each other.

Everything else is the SDK's, from the same variables: the sampler (``OTEL_TRACES_SAMPLER``; by
default the caller's decision, and every trace the service starts), the exporter's endpoint,
headers, compression and timeout, the batching (``OTEL_BSP_*``), and resource attributes
(``OTEL_RESOURCE_ATTRIBUTES``; ``service.name`` is the service's unless ``OTEL_SERVICE_NAME`` says
otherwise). Spans go over OTLP/HTTP in protobuf, in a background thread: a collector down or slow
costs the answers nothing, and the SDK drops what its queue cannot hold, counting it in its log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

# The API, which MLflow imports anyway; the SDK only where spans are on.
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    set_span_in_context,
)

from servekit import tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

#: Either names a collector, and so turns the spans on (the SDK's own variables).
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
#: Each send to the collector, its retries included, ends within this unless these variables say
#: otherwise: the SDK's 10 s would outlast a stopping pod's exit (its last send, as the app stops,
#: within tests/k8s/test_shutdown.py's EXIT_SLACK_SECONDS), and a collector in the cluster answers
#: in milliseconds.
EXPORT_TIMEOUT_SECONDS = 2.0
TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
#: The instrumentation scope the spans are reported under.
SCOPE = "servekit"


class Phase(NamedTuple):
    """One timed phase of a request, in wall-clock nanoseconds (what a span's times are)."""

    name: str
    start_ns: int
    end_ns: int


#: Where the phases of the request the current task serves go (its Server-Timing's, as
#: :class:`~servekit.rest.telemetry.Timings` reads them), when it has a sampled span open; None
#: otherwise. Each request starts with none (``servekit.rest.request_id.bind_request``), as a task
#: serving one request can start the next (a pipelined one) in a copy of its context.
open_phases: ContextVar[list[Phase] | None] = ContextVar("servekit_span_phases", default=None)


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for spans (a collector named, the SDK not switched off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def from_environment(service: str) -> RequestSpans | None:
    """The service's spans, sent where the environment says; None when it asks for none."""
    if not enabled():
        return None
    # Imported only here: 0.2 s and a background thread that a service without a collector
    # has no use for.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    told = any(os.environ.get(name, "").strip() for name in TIMEOUT_VARIABLES)
    return RequestSpans(service, OTLPSpanExporter(timeout=None if told else EXPORT_TIMEOUT_SECONDS))


class RequestSpans:
    """A tracer provider of its own (not the process-wide one MLflow may set) and its exporter."""

    def __init__(self, service: str, exporter: SpanExporter) -> None:
        from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME over the service's own name (create()
        # alone would have its argument win).
        resource = Resource.create({SERVICE_NAME: service}).merge(OTELResourceDetector().detect())
        self.provider: TracerProvider = TracerProvider(resource=resource, id_generator=_caller_trace_ids())
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer: Tracer = self.provider.get_tracer(SCOPE)

    def begin(self, name: str, start_ns: int) -> OpenSpan | None:
        """The SERVER span ``name`` of a request (an HTTP request or a gRPC call) that began at
        ``start_ns``, a child of the caller's span (:data:`servekit.tracing.current`). From now on
        the request's log lines name it, and its phases are recorded for it (:data:`open_phases`).

        None when it is not sampled (the caller's decision, or the sampler's): nothing of it is
        recorded or sent, so the request builds no attributes for it and ends nothing; what it
        costs is the sampler's decision.
        """
        caller = tracing.current.get()
        parent = _parent_context(caller)
        adopted = None
        if caller is not None and parent is None:
            # A header naming a trace and no span (an ALB's X-Amzn-Trace-Id is "Root=..." alone):
            # the span starts the caller's trace, as its root, unless the caller chose not to keep it.
            if caller.sampled is False:
                return None
            adopted = _ADOPTED_TRACE_ID.set(_w3c_trace_id(caller.trace_id))
        try:
            span = self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, start_time=start_ns)
        finally:
            if adopted is not None:
                _ADOPTED_TRACE_ID.reset(adopted)
        if not span.is_recording():
            # The caller's ids stay on the log lines: this span's are reported nowhere.
            return None
        own = trace_of(span)
        # The caller's trace id as its header wrote it (an X-Ray console searches for its form).
        tracing.current.set(own if caller is None else replace(caller, span_id=own.span_id, sampled=True))
        opened = OpenSpan(self.tracer, span)
        open_phases.set(opened.phases)
        return opened

    def shutdown(self) -> None:
        """Send what is queued and stop the exporter's thread (blocks up to the exporter's timeout)."""
        self.provider.shutdown()


class OpenSpan:
    """A request's sampled span, until the request ends, and the phases timed for it meanwhile."""

    __slots__ = ("phases", "span", "tracer")

    def __init__(self, tracer: Tracer, span: Span) -> None:
        self.tracer = tracer
        self.span = span
        self.phases: list[Phase] = []

    def end(self, end_ns: int, attributes: Mapping[str, Any], error: str | None = None) -> None:
        """End at ``end_ns`` with ``attributes``, a child span per phase, and an ERROR status saying
        ``error`` (a server error's; a client's refusal is no error of the span)."""
        span = self.span
        span.set_attributes(attributes)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        context = set_span_in_context(span)
        for phase in self.phases:
            child = self.tracer.start_span(phase.name, context=context, start_time=phase.start_ns)
            child.end(end_time=phase.end_ns)
        span.end(end_time=end_ns)


def failure(status: int, code: str | None) -> str | None:
    """What the ERROR status of a request answered ``status`` says (its error ``code``, else the
    status), or None: a 5xx fails the server's span, a 4xx is the client's refusal and does not
    (OpenTelemetry's HTTP and RPC conventions alike)."""
    return None if status < 500 else (code or str(status))


def trace_of(span: Span) -> tracing.TraceContext:
    """What the log lines written while the sampled ``span`` is open carry."""
    context = span.get_span_context()
    return tracing.TraceContext(f"{context.trace_id:032x}", f"{context.span_id:016x}", sampled=True)


def _parent_context(parent: tracing.TraceContext | None) -> Any:
    """The OpenTelemetry context of the caller's span, or None (a new trace) if no header named one.

    An X-Ray trace id is the W3C one in other clothes (``1-`` + 8 hex digits of time + 24 more, as
    AWS's own propagator reads it). A header that does not say whether its trace is sampled (Google
    without ``o=``, X-Ray without ``Sampled=``) leaves it to the sampler, as sampled."""
    if parent is None or not parent.span_id:
        return None
    flags = TraceFlags(TraceFlags.DEFAULT if parent.sampled is False else TraceFlags.SAMPLED)
    context = SpanContext(
        _w3c_trace_id(parent.trace_id), int(parent.span_id, 16), is_remote=True, trace_flags=flags
    )
    return set_span_in_context(NonRecordingSpan(context))


def _w3c_trace_id(trace_id: str) -> int:
    """A trace id as its header wrote it (32 hex digits, or X-Ray's ``1-`` form), as a number."""
    if trace_id.startswith("1-"):
        trace_id = trace_id[2:10] + trace_id[11:]
    return int(trace_id, 16)


#: The trace id the span being started takes, when its caller named a trace and no span.
_ADOPTED_TRACE_ID: ContextVar[int | None] = ContextVar("servekit_adopted_trace_id", default=None)


def _caller_trace_ids() -> Any:
    """The SDK's random ids, but the trace id of :data:`_ADOPTED_TRACE_ID` while it is set.

    Without it a header naming only a trace started a trace of the service's own: the spans behind
    an ALB were in no trace its console showed, though the log lines named the ALB's.
    """
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class CallerTraceIds(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            adopted = _ADOPTED_TRACE_ID.get()
            return super().generate_trace_id() if adopted is None else adopted

        def is_trace_id_random(self) -> bool:
            # X-Ray's ids start with the time; a caller's are not ours to vouch for.
            return _ADOPTED_TRACE_ID.get() is None

    return CallerTraceIds()
