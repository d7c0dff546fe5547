"""Log lines an on-call engineer can search: the request id on every line, JSON on demand.

``<SVC>_LOG_FORMAT=json`` writes one JSON object per line with the fields Google Cloud
Logging and CloudWatch Logs Insights index without a parser (``severity``, ``message``,
``time``), so GKE and EKS show levels and searchable fields out of the box. ``text`` (the
default) is for a terminal. Either way, a line written while a request is served carries
that request's id, the one its response's ``X-Request-ID`` header names, and uvicorn's own
lines go through the same handler instead of uvicorn's formatter.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Literal

import orjson

#: The id of the request the current task serves ("" outside one). Set by
#: :class:`servekit.rest.request_id.RequestIdMiddleware`.
request_id: ContextVar[str] = ContextVar("servekit_request_id", default="")

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        record.request_id = current
        record.request_tag = f" [{current}]" if current else ""
        return True


def _rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line whatever the message holds."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _rfc3339(record.created),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        request = getattr(record, "request_id", "")
        if request:
            entry["request_id"] = request
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(
    level: str, log_format: LogFormat, service: str, stream: IO[str] | None = None
) -> logging.Handler:
    """Route every logger (uvicorn's too) through one handler on the root logger."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter(service) if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Library warnings (MLflow's, sklearn's) would otherwise be raw text among JSON lines.
    logging.captureWarnings(True)
    return handler
