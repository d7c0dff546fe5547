"""What a log line costs in CPU and in bytes: an access line (why only failures are logged by
default) and a captured instance (what ``<SVC>_CAPTURE_PERCENT`` adds per instance)."""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from servekit.bench.inprocess import time_calls
from servekit.bench.stats import Latency
from servekit.capture import PredictionCapture
from servekit.capture import logger as capture_logger
from servekit.inference import run_model
from servekit.logs import JsonFormatter, MeteredStreamHandler, RequestIdFilter, request_id
from servekit.metrics import ServiceMetrics
from servekit.metrics.names import STABLE
from servekit.model import Record, ServedModel
from servekit.rest.access_log import AccessLog
from servekit.rest.access_log import logger as access_logger
from servekit.routing import ALONE

#: A successful explained prediction, as the telemetry middleware hands it over.
SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/predict",
    "query_string": b"explain=true",
    "http_version": "1.1",
    "headers": [(b"content-length", b"170"), (b"user-agent", b"python-httpx/0.28.1")],
    "client": ("10.8.0.12", 51234),
}


@contextmanager
def _json_lines_to(logger: logging.Logger, sink: IO[str], service: str = "bench") -> Iterator[None]:
    """``logger``'s INFO lines, as JSON naming ``service``, go to ``sink`` only, for the duration.

    As a served request's lines: they carry a request id (32 hex digits, 48 bytes of the line) and
    are metered into ``<svc>_log_bytes_total``, so the time and the size are a served line's.
    """
    handler = MeteredStreamHandler(sink)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter(service))
    handler.meter = ServiceMetrics(service).count_log_line
    named = request_id.set(uuid.uuid4().hex)
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        request_id.reset(named)


@contextmanager
def _access_lines_to(sink: IO[str]) -> Iterator[AccessLog]:
    """An unlimited ``all`` access log whose JSON lines go to ``sink`` only, for the duration."""
    with _json_lines_to(access_logger, sink):
        yield AccessLog("all", max_per_second=1e12)


def _record(access: AccessLog) -> None:
    access.record(SCOPE, "/predict", 200, 0.0012, 412)


def access_line(seconds: float) -> Latency:
    """One JSON access line for a 200, formatted and written (to /dev/null), per call."""
    with open(os.devnull, "w") as sink, _access_lines_to(sink) as access:
        return time_calls(lambda _: _record(access), [{}], seconds)


def access_line_bytes() -> int:
    """The size of that line, newline included: what log ingestion bills."""
    sink = io.StringIO()
    with _access_lines_to(sink) as access:
        _record(access)
    return len(sink.getvalue().encode())


def _explained(
    model: ServedModel, records: Sequence[Record], explain: bool = True
) -> list[tuple[Record, dict[str, Any]]]:
    return list(zip(records, run_model(model, records, explain=explain), strict=True))


def capture_line(model: ServedModel, records: Sequence[Record], seconds: float) -> Latency:
    """One explained instance captured as a JSON line (written to /dev/null), per call."""
    answer_of = {id(record): prediction for record, prediction in _explained(model, records)}
    capture = PredictionCapture(100, log_format="json", on_captured=lambda _: None)

    def write(batch: Sequence[Record]) -> None:
        capture(model, STABLE, ALONE, batch, [answer_of[id(record)] for record in batch])

    with open(os.devnull, "w") as sink, _json_lines_to(capture_logger, sink):
        return time_calls(write, records, seconds)


def capture_line_bytes(
    model: ServedModel, records: Sequence[Record], *, explain: bool = True, rows: int = 1
) -> int:
    """The mean size of those lines, newline included, over ``records``: what log ingestion bills
    per captured instance. Unexplained answers where not ``explain``; ``rows`` instances a request
    (a batch's lines also place each instance in it)."""
    sink = io.StringIO()
    capture = PredictionCapture(100, log_format="json", on_captured=lambda _: None)
    answered = _explained(model, records, explain)
    with _json_lines_to(capture_logger, sink, model.artifact.name):
        for start in range(0, len(answered), rows):
            batch = answered[start : start + rows]
            capture(model, STABLE, ALONE, [r for r, _ in batch], [p for _, p in batch])
    return round(len(sink.getvalue().encode()) / len(answered))
