"""What one access log line costs in CPU and in bytes: why only failures are logged by default."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from servekit.bench.inprocess import time_calls
from servekit.bench.stats import Latency
from servekit.logs import JsonFormatter, RequestIdFilter
from servekit.rest.access_log import AccessLog
from servekit.rest.access_log import logger as access_logger

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
def _access_lines_to(sink: IO[str]) -> Iterator[AccessLog]:
    """An unlimited ``all`` access log whose JSON lines go to ``sink`` only, for the duration."""
    handler = logging.StreamHandler(sink)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter("bench"))
    saved_handlers, saved_level, saved_propagate = (
        access_logger.handlers[:],
        access_logger.level,
        access_logger.propagate,
    )
    access_logger.handlers[:] = [handler]
    access_logger.setLevel(logging.INFO)
    access_logger.propagate = False
    try:
        yield AccessLog("all", max_per_second=1e12)
    finally:
        access_logger.handlers[:] = saved_handlers
        access_logger.setLevel(saved_level)
        access_logger.propagate = saved_propagate


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
