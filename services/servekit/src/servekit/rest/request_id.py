"""``X-Request-ID``: one id per request, the caller's or a new one, on every response.

A caller (or an ingress, or a mesh) that sends an id gets it back, and the service's log
line for a failed request carries it, so one request can be followed from client to
server. Without ``X-Request-ID``, the trace id of the request's tracing header
(:mod:`servekit.tracing`) is used, so the id is the one the load balancer logged.
An id that is not a plausible token (too long, or with characters outside
``[A-Za-z0-9._:+/=-]``) is replaced, not rejected: a bad header must not fail a
prediction, nor put arbitrary text into the logs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servekit import logs, spans, tracing

HEADER = "x-request-id"
REQUEST_ID_KEY = "servekit.request_id"
VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

_HEADER_BYTES = HEADER.encode()
_WANTED = {_HEADER_BYTES, *(name.encode() for name in tracing.PARSERS)}


def request_id_of(scope: Scope) -> str:
    """The request's id (empty outside :class:`RequestIdMiddleware`, e.g. in unit tests)."""
    return str(scope.get("extensions", {}).get(REQUEST_ID_KEY, ""))


def incoming_headers(scope: Scope, wanted: Collection[bytes] = _WANTED) -> dict[str, str]:
    """The request's ``wanted`` headers (X-Request-ID and tracing headers by default), by lower-case name."""
    return {
        name.decode(): value.decode("latin-1") for name, value in scope.get("headers", ()) if name in wanted
    }


def incoming_id(headers: Mapping[str, str], trace: tracing.TraceContext | None) -> str | None:
    """The caller's X-Request-ID if plausible, else the trace's id, else None."""
    explicit = headers.get(HEADER)
    if explicit is not None and VALID_ID.fullmatch(explicit):
        return explicit
    return trace.trace_id if trace else None


def bind_request(headers: Mapping[str, str]) -> str:
    """The id of the request these headers came with, now on every log line written for it.

    The caller's id if plausible, else its trace's, else a new one; the trace goes on the log
    lines too. For HTTP requests (below) and gRPC calls (their metadata) alike.
    """
    trace = tracing.from_headers(headers)
    request_id = incoming_id(headers, trace) or uuid.uuid4().hex
    logs.request_id.set(request_id)
    logs.client.set("")  # until the request's API key names it
    logs.key_id.set("")
    tracing.current.set(trace)
    spans.open_phases.set(None)  # until the request's span opens, if it has one
    return request_id


class RequestIdMiddleware:
    """Gives every HTTP request an id and every response its ``X-Request-ID`` header.

    The id and the request's trace (if a tracing header names one) go on every log line
    written while the request is served.

    Added last, so it is the outermost of servekit's middleware: the id is in the very
    scope the server-error handler sees.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Not reset on the way out: the server runs each request in a task of its own, and
        # uvicorn logs an unhandled exception's traceback in that task after the app returns;
        # the traceback's log line must carry the id too.
        request_id = bind_request(incoming_headers(scope))
        scope.setdefault("extensions", {})[REQUEST_ID_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Read when the answer starts, not now: an Open Inference request's own ``id``
                # becomes its id once the body is read (servekit.rest.open_inference).
                header = (_HEADER_BYTES, request_id_of(scope).encode())
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)
