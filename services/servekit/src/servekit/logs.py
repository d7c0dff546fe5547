"""Log lines an on-call engineer can search: the request id on every line, JSON on demand.

``<SVC>_LOG_FORMAT=json`` writes one JSON object per line with the fields Google Cloud
Logging and CloudWatch Logs Insights index without a parser (``severity``, ``message``,
``time``), so GKE and EKS show levels and searchable fields out of the box. ``text`` (the
default) is for a terminal. Either way, a line written while a request is served carries
that request's id, the one its response's ``X-Request-ID`` header names, and uvicorn's own
lines go through the same handler instead of uvicorn's formatter.

A JSON line written for a request that came with a tracing header also carries the caller's
``trace_id`` and ``span_id`` (:mod:`servekit.tracing`). Given the Google Cloud project, it
carries them again under the names Cloud Logging reads (``logging.googleapis.com/trace``
as ``projects/PROJECT/traces/ID``, ``.../spanId``, ``.../trace_sampled``), which is what
links a log line to its trace in Cloud Trace and the Logs Explorer's trace view.

No line shows the credentials of a URI (:func:`servekit.redaction.redact`), whoever wrote it:
urllib3's retry warning quotes the tracking URI's query, a client's access line its own.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Literal

import orjson

from servekit import tracing
from servekit.redaction import redact

#: The id of the request the current task serves ("" outside one). Set by
#: :class:`servekit.rest.request_id.RequestIdMiddleware`.
request_id: ContextVar[str] = ContextVar("servekit_request_id", default="")
#: The client whose API key the current request carries ("" without one, or with keys off). Set by
#: :mod:`servekit.auth`'s callers; a name, never the key.
client: ContextVar[str] = ContextVar("servekit_client", default="")
#: Which of the client's keys it is (``servekit.auth.key_lines.key_id``: the digest's first hex
#: digits, no secret), so a rotation can be seen through: is anyone still sending the old key?
key_id: ContextVar[str] = ContextVar("servekit_key_id", default="")

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s %(message)s"

#: What may not reach a text line as it is: C0 (newline, carriage return, ESC...), DEL, C1 (NEL
#: among them) and the Unicode line and paragraph separators. A client puts them in a URL
#: (``%0a``), a field name or a header; written raw, they split one record into a forged second
#: line or send a terminal escape sequence to whoever reads the log.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    # JSON's escapes, never ``\\x1b``: a capture line's JSON (a tweet's U+009D in it) must still
    # parse, and decode to what the client sent. Within a JSON string they mean that very character.
    char = match.group()
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def escape_controls(text: str) -> str:
    """``text`` with each control character written as its JSON escape (``\\n``, ``\\u001b``,
    ``\\u2028``): as plain for a reader, and a JSON body in ``text`` stays JSON meaning the same."""
    return _CONTROL.sub(_escape, text)


#: Cloud Logging's special fields: the LogEntry's trace, spanId and traceSampled.
CLOUD_TRACE_FIELD = "logging.googleapis.com/trace"
CLOUD_SPAN_FIELD = "logging.googleapis.com/spanId"
CLOUD_SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"
_GOOGLE_TRACE_ID = re.compile(r"[0-9a-f]{32}")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id, client and trace of the request being served, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        record.request_id = current
        who = client.get()
        record.client = who
        key = key_id.get() if who else ""
        record.key_id = key
        tag = f"{current} client={who} key={key}" if who else current
        record.request_tag = f" [{tag}]" if current else ""
        record.trace_context = tracing.current.get()
        return True


def rfc3339(timestamp: float) -> str:
    """``2026-12-02T15:24:42.954Z``: UTC to the millisecond, as log stores write times."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RedactingFormatter(logging.Formatter):
    """A formatter whose lines show no URI's user info or secret parameters, message or traceback.

    A line without ``://`` or ``=`` (most access lines) costs two substring tests.
    """

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _redacted(value: object) -> object:
    """``value`` with every string in it redacted, through dicts and lists (a JSON field's value).

    Keys too: an explanation's contributions are keyed by the text's tokens, and a URL with its
    query string is one token. Two keys masked alike keep both entries (``#2`` on the second)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        redacted: dict[object, object] = {}
        for key, item in value.items():
            name = redact(key) if isinstance(key, str) else key
            if name != key and name in redacted:
                name = next(f"{name}#{n}" for n in range(2, len(value) + 2) if f"{name}#{n}" not in redacted)
            redacted[name] = _redacted(item)
        return redacted
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line whatever the message holds."""

    def __init__(self, service: str, google_cloud_project: str = "") -> None:
        super().__init__()
        self.service = service
        self.google_cloud_project = google_cloud_project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": rfc3339(record.created),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        request = getattr(record, "request_id", "")
        if request:
            entry["request_id"] = request
        who = getattr(record, "client", "")
        if who:
            entry["client"] = who
            entry["key_id"] = getattr(record, "key_id", "")
        trace: tracing.TraceContext | None = getattr(record, "trace_context", None)
        if trace is not None:
            self._add_trace(entry, trace)
        # Structured fields a caller passes as extra={"json_fields": {...}} (the name
        # google-cloud-logging uses); they never replace the fields above.
        extra_fields = getattr(record, "json_fields", None)
        if isinstance(extra_fields, dict):
            entry.update({key: value for key, value in extra_fields.items() if key not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = orjson.dumps(entry, default=str).decode()
        # Redacting the line would let a masked value run on over the JSON after it: each string
        # is redacted instead (an access line's httpRequest.requestUrl holds its message's query),
        # only for the line that may need it, not the access line with neither "://" nor "=".
        if "=" not in line and "://" not in line:
            return line
        return orjson.dumps(_redacted(entry), default=str).decode()

    def _add_trace(self, entry: dict[str, object], trace: tracing.TraceContext) -> None:
        entry["trace_id"] = trace.trace_id
        if trace.span_id:
            entry["span_id"] = trace.span_id
        # An X-Ray id is not a Cloud Trace id; Cloud Logging would link it to nothing.
        if not self.google_cloud_project or not _GOOGLE_TRACE_ID.fullmatch(trace.trace_id):
            return
        entry[CLOUD_TRACE_FIELD] = f"projects/{self.google_cloud_project}/traces/{trace.trace_id}"
        if trace.span_id:
            entry[CLOUD_SPAN_FIELD] = trace.span_id
        if trace.sampled is not None:
            entry[CLOUD_SAMPLED_FIELD] = trace.sampled


class JsonBody:
    """A log message followed by a JSON document (a capture's): ``message: {...}``.

    Any formatter writes it so; :class:`TextFormatter` redacts the JSON string by string, as a
    JSON line is, since redacting the line would let a masked value (a tweet's ``?token=...``)
    run on over the rest of the JSON, and the capture would be read by nothing.
    """

    __slots__ = ("body", "message")

    def __init__(self, message: str, body: str) -> None:
        self.message = message
        self.body = body

    def __str__(self) -> str:
        return f"{self.message}: {self.body}"


class TextFormatter(RedactingFormatter):
    """``TEXT_FORMAT`` lines, one per record whatever its message holds, as a JSON line is.

    A traceback keeps its lines, for a terminal's reader, each indented so that none can pass
    for a record of its own (whose line starts with the time).
    """

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        message = record.msg
        if not isinstance(message, JsonBody):
            return super().format(record)
        head_only = logging.makeLogRecord({**record.__dict__, "msg": message.message, "args": None})
        line = super().format(head_only)
        body = message.body
        if "=" in body or "://" in body:
            body = orjson.dumps(_redacted(orjson.loads(body))).decode()
        # After the record's first line: a traceback, if any, follows on lines of its own.
        head, newline, rest = line.partition("\n")
        return f"{head}: {escape_controls(body)}{newline}{rest}"

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: logging._SysExcInfoType) -> str:  # noqa: N802
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("  " + escape_controls(line) for line in text.split("\n"))


#: Told of every line the service writes: its logger's name and its size in bytes, newline included.
LineMeter = Callable[[str, int], None]


class MeteredStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that tells ``meter`` how many bytes each line it writes takes.

    The log store bills ingestion by the byte (Cloud Logging, CloudWatch Logs), and which lines
    a pod writes depends on its traffic and its settings (a capture percentage, explanations
    asked for, ``<SVC>_ACCESS_LOG=all``): ``make cost`` prices a measurement made before the
    deployment, the meter lets ``<svc>_log_bytes_total`` say what the pods write now.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self.meter: LineMeter | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # logging.StreamHandler.emit's, but a line is metered once written, and a write that
        # fails (a full disk, a closed pipe) is counted for the thread that logged it
        # (unwritten_lines) rather than reported through handleError: logging swallows the error
        # there, so a prediction capture could not tell it had lost its lines, and their bytes
        # were billed in <svc>_log_bytes_total though never written.
        try:
            line = self.format(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)  # a bad logging call, logging's own report
            return
        try:
            self.stream.write(line + self.terminator)
            self.flush()
        except RecursionError:
            raise
        except Exception:
            _unwritten.lines = unwritten_lines() + 1
            return
        meter = self.meter
        if meter is not None:
            # A line is almost always ASCII, whose UTF-8 length is its length: no copy needed.
            size = len(line) if line.isascii() else len(line.encode())
            meter(record.name, size + len(self.terminator))


#: Lines the handler could not write, per thread: a line is written in the thread that logs it.
_unwritten = threading.local()


def unwritten_lines() -> int:
    """How many lines this thread has logged that :class:`MeteredStreamHandler` could not write;
    a caller that must know its line was written compares the count before and after."""
    lines: int = getattr(_unwritten, "lines", 0)
    return lines


#: The loggers uvicorn's default configuration sets up for itself.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def configure_logging(
    level: str,
    log_format: LogFormat,
    service: str,
    stream: IO[str] | None = None,
    *,
    google_cloud_project: str = "",
) -> MeteredStreamHandler:
    """Route every logger (uvicorn's too) through one handler on the root logger.

    The handler's ``meter`` is unset: the service's metrics, made after the logging (which
    logs their making), are attached to it then.
    """
    handler = MeteredStreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    formatter = JsonFormatter(service, google_cloud_project) if log_format == "json" else TextFormatter()
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # uvicorn's own configuration (any uvicorn.Config made without log_config=None, in this
    # process, before) gives its loggers a handler and stops them at "uvicorn": their lines,
    # tracebacks of failed requests among them, would bypass this handler.
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Library warnings (MLflow's, sklearn's) would otherwise be raw text among JSON lines.
    logging.captureWarnings(True)
    return handler
