"""``X-Request-ID``: one id per request, the caller's or a new one, on every response.

A caller (or an ingress, or a mesh) that sends an id gets it back, and the service's log
line for a failed request carries it, so one request can be followed from client to
server. Without ``X-Request-ID``, the trace id of the request's tracing header is used,
so the id is the one the load balancer logged: W3C ``traceparent`` (meshes, OpenTelemetry),
``X-Cloud-Trace-Context`` (GKE's load balancer) or ``X-Amzn-Trace-Id`` (AWS's ALB).
An id that is not a plausible token (too long, or with characters outside
``[A-Za-z0-9._:+/=-]``) is replaced, not rejected: a bad tracing header must not fail a
prediction, nor put arbitrary text into the logs.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servekit import logs

HEADER = "x-request-id"
REQUEST_ID_KEY = "servekit.request_id"
VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
#: Tracing headers, in the order they are tried after X-Request-ID, and their trace id.
TRACE_HEADERS = {
    "traceparent": re.compile(r"[0-9a-f]{2}-(?!0{32})([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}"),
    "x-cloud-trace-context": re.compile(r"([0-9a-f]{32})(?:/[0-9]+)?(?:;o=[0-9])?"),
    "x-amzn-trace-id": re.compile(r"(?:[^;]*;)*?Root=(1-[0-9a-f]{8}-[0-9a-f]{24})(?:;.*)?"),
}

#: Longer tracing headers are not parsed (real ones are well under 300 characters).
MAX_TRACE_HEADER = 512

_HEADER_BYTES = HEADER.encode()
_WANTED = {_HEADER_BYTES, *(name.encode() for name in TRACE_HEADERS)}


def request_id_of(scope: Scope) -> str:
    """The request's id (empty outside :class:`RequestIdMiddleware`, e.g. in unit tests)."""
    return str(scope.get("extensions", {}).get(REQUEST_ID_KEY, ""))


def incoming_id(scope: Scope) -> str | None:
    """The caller's X-Request-ID if plausible, else the trace id of a tracing header, else None."""
    found: dict[str, str] = {
        name.decode(): value.decode("latin-1") for name, value in scope.get("headers", ()) if name in _WANTED
    }
    explicit = found.get(HEADER)
    if explicit is not None and VALID_ID.fullmatch(explicit):
        return explicit
    for header, pattern in TRACE_HEADERS.items():
        value = found.get(header, "").strip()
        match = pattern.fullmatch(value) if len(value) <= MAX_TRACE_HEADER else None
        if match:
            return match.group(1)
    return None


class RequestIdMiddleware:
    """Gives every HTTP request an id and every response its ``X-Request-ID`` header.

    Added last, so it is the outermost of servekit's middleware: the id is in the very
    scope the server-error handler sees.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_id(scope) or uuid.uuid4().hex
        scope.setdefault("extensions", {})[REQUEST_ID_KEY] = request_id
        # Not reset on the way out: the server runs each request in a task of its own, and
        # uvicorn logs an unhandled exception's traceback in that task after the app returns;
        # the traceback's log line must carry the id too.
        logs.request_id.set(request_id)
        header = (_HEADER_BYTES, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)
