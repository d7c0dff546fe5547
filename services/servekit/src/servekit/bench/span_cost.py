"""What a request's span costs (``servekit.spans``, on where an OpenTelemetry collector is named):
the telemetry middleware around an app that times the three phases of an explained prediction
and answers at once, without spans, with a sampled span (the caller's trace, or one the service
starts), and with a span whose trace the caller did not sample; and the CPU the exporter's
thread spends sending the spans, over OTLP/HTTP to a local receiver that reads and drops them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Receive, Scope, Send

from servekit import spans
from servekit.bench.auth_cost import alternating, discard, empty_body, time_requests
from servekit.bench.stats import Latency
from servekit.metrics import ServiceMetrics
from servekit.rest.request_id import RequestIdMiddleware
from servekit.rest.telemetry import TelemetryMiddleware, timings_of
from servekit.testing import StubHandler, http_stub

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"
PHASES = ("validate", "predict", "explain")


async def _phases(scope: Scope, receive: Receive, send: Send) -> None:
    """An explained prediction's phases, each empty, and a 200."""
    timings = timings_of(scope)
    for name in PHASES:
        with timings.phase(name):
            pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _scope(traceparent: str | None) -> Scope:
    headers = [(b"content-type", b"application/json")]
    if traceparent:
        headers.append((b"traceparent", traceparent.encode()))
    return {"type": "http", "method": "POST", "path": "/predict", "headers": headers, "query_string": b""}


class _Receiver(StubHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server names its handlers so)
        self.body()
        self.answer(200, b"", "application/x-protobuf")


@contextmanager
def _collector() -> Iterator[spans.RequestSpans]:
    """Spans as a service with OTEL_EXPORTER_OTLP_ENDPOINT set sends them, to a local receiver."""
    with http_stub(_Receiver) as url:
        before = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = url
        try:
            request_spans = spans.from_environment("bench")
        finally:
            if before is None:
                del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
            else:
                os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = before
        assert request_spans is not None
        try:
            yield request_spans
        finally:
            request_spans.shutdown()


def request_path(seconds: float, rounds: int = 10) -> dict[str, Latency]:
    """Per request through the telemetry middleware, behind RequestIdMiddleware as served (it binds
    the caller's trace the span is a child of): without spans, and with them (sampled: the caller's
    trace; not sampled: the caller's decision, which the default sampler follows)."""
    metrics = ServiceMetrics("bench")
    plain = RequestIdMiddleware(TelemetryMiddleware(_phases, metrics))
    with _collector() as request_spans:
        traced = RequestIdMiddleware(TelemetryMiddleware(_phases, metrics, spans=request_spans))

        def run(app: ASGIApp, traceparent: str | None) -> Callable[[float], list[float]]:
            return lambda slice_seconds: asyncio.run(time_requests(app, _scope(traceparent), slice_seconds))

        off, sampled, unsampled = alternating(
            run(plain, None),
            run(traced, TRACEPARENT.format(flags="01")),
            run(traced, TRACEPARENT.format(flags="00")),
            seconds=seconds,
            rounds=rounds,
        )
    return {
        "no spans": Latency.of(off),
        "a sampled span (+3 phases)": Latency.of(sampled),
        "a span not sampled": Latency.of(unsampled),
    }


def export_cpu(requests: int = 5000) -> float:
    """CPU seconds per traced request the process spends more than without spans, the exporter's
    thread and the final send included."""
    metrics = ServiceMetrics("bench")
    scope = _scope(TRACEPARENT.format(flags="01"))

    async def served(app: ASGIApp) -> None:
        for _ in range(requests):
            await app(scope, empty_body, discard)

    start = time.process_time()
    asyncio.run(served(RequestIdMiddleware(TelemetryMiddleware(_phases, metrics))))
    without = time.process_time() - start
    with _collector() as request_spans:
        start = time.process_time()
        asyncio.run(served(RequestIdMiddleware(TelemetryMiddleware(_phases, metrics, spans=request_spans))))
        request_spans.provider.force_flush()
        with_spans = time.process_time() - start
    return (with_spans - without) / requests
