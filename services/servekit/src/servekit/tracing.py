"""The trace a request belongs to, as its tracing header names it.

A mesh or OpenTelemetry sends W3C ``traceparent``, GKE's load balancer
``X-Cloud-Trace-Context`` and AWS's ALB ``X-Amzn-Trace-Id``; they are tried in that
order, as the mesh's trace is the finer one. The trace and span ids go on every log line
written while serving the request (:mod:`servekit.logs`), so a trace view leads to the log
lines and back: the caller's, or, where a collector is configured, those of the request's
own span, a child of the caller's (:mod:`servekit.spans`). A header that does not parse is
ignored, never an error: a bad tracing header must not fail a prediction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class TraceContext:
    #: As the tracing system writes it: 32 lowercase hex digits (W3C, Google), or
    #: X-Ray's ``1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx``, which its console searches for.
    trace_id: str
    #: The caller's span, 16 lowercase hex digits; "" when the header names none.
    span_id: str = ""
    #: The caller's sampling decision; None when the header does not say.
    sampled: bool | None = None


#: The trace of the request the current task serves (None outside one, or without a header).
#: Set by :class:`servekit.rest.request_id.RequestIdMiddleware`.
current: ContextVar[TraceContext | None] = ContextVar("servekit_trace", default=None)

#: Longer tracing headers are not parsed (real ones are well under 300 characters).
MAX_HEADER_LENGTH = 512

_TRACEPARENT = re.compile(r"(?!ff)[0-9a-f]{2}-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD_TRACE = re.compile(r"(?!0{32})([0-9a-f]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?")
_XRAY_ROOT = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_SPAN = re.compile(r"(?!0{16})[0-9a-f]{16}")


def _traceparent(value: str) -> TraceContext | None:
    match = _TRACEPARENT.fullmatch(value)
    if not match:
        return None
    trace_id, span_id, flags = match.groups()
    return TraceContext(trace_id, span_id, sampled=bool(int(flags, 16) & 1))


def _cloud_trace(value: str) -> TraceContext | None:
    match = _CLOUD_TRACE.fullmatch(value)
    if not match:
        return None
    trace_id, span, option = match.groups()
    # Google writes the span id as an unsigned 64-bit decimal; Cloud Logging wants it in hex.
    span_id = f"{int(span):016x}" if span and 0 < int(span) < 2**64 else ""
    return TraceContext(trace_id, span_id, sampled=None if option is None else option == "1")


def _xray(value: str) -> TraceContext | None:
    fields = dict(part.strip().partition("=")[::2] for part in value.split(";"))
    root, parent, sampled = fields.get("Root", ""), fields.get("Parent", ""), fields.get("Sampled")
    if not _XRAY_ROOT.fullmatch(root):
        return None
    return TraceContext(
        root,
        parent if _SPAN.fullmatch(parent) else "",
        sampled={"1": True, "0": False}.get(sampled or ""),
    )


#: Tracing headers (lower case, as ASGI gives them) in the order they are tried.
PARSERS: dict[str, Callable[[str], TraceContext | None]] = {
    "traceparent": _traceparent,
    "x-cloud-trace-context": _cloud_trace,
    "x-amzn-trace-id": _xray,
}


def from_headers(headers: Mapping[str, str]) -> TraceContext | None:
    """The trace named by the first tracing header that parses (lower-case names), if any."""
    for name, parse in PARSERS.items():
        value = headers.get(name, "").strip()
        if value and len(value) <= MAX_HEADER_LENGTH:
            trace = parse(value)
            if trace is not None:
                return trace
    return None
