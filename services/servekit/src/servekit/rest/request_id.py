"""``X-Request-ID``: one id per request, the caller's or a new one, on every response.

A caller (or an ingress, or a mesh) that sends an id gets it back, and the service's log
line for a failed request carries it, so one request can be followed from client to
server. An id that is not a plausible token (too long, or with characters outside
``[A-Za-z0-9._:+/=-]``) is replaced, not rejected: a bad tracing header must not fail a
prediction, nor put arbitrary text into the logs.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
REQUEST_ID_KEY = "servekit.request_id"
VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

_HEADER_BYTES = HEADER.encode()


def request_id_of(scope: Scope) -> str:
    """The request's id (empty outside :class:`RequestIdMiddleware`, e.g. in unit tests)."""
    return str(scope.get("extensions", {}).get(REQUEST_ID_KEY, ""))


def incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _HEADER_BYTES:
            text = value.decode("latin-1")
            return text if VALID_ID.fullmatch(text) else None
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
        header = (_HEADER_BYTES, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)
