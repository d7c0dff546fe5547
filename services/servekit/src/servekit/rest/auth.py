"""Pure ASGI middleware: an API key of the service on every endpoint but probes, metrics and docs.

It sits inside the telemetry middleware, so a refused request is counted (status 401), timed and
logged like any other, and outside the admission limit, so a request without a key never takes
a place a client with one could have had. It answers before the body is read.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from servekit import auth, logs
from servekit.errors import ServekitError
from servekit.rest.access_log import remember_error
from servekit.rest.errors import error_response
from servekit.rest.telemetry import endpoint_of


def is_open(scope: Scope, root_path: str = "") -> bool:
    """Whether the request's endpoint answers without a key (``servekit.auth.OPEN_ENDPOINTS``)."""
    path: str = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    return path in auth.OPEN_ENDPOINTS or endpoint_of(scope, root_path) in auth.OPEN_ENDPOINTS


class ApiKeyMiddleware:
    """Lets a request through with one of the service's keys, its client named; else answers 401."""

    def __init__(self, app: ASGIApp, keys: auth.ApiKeys, root_path: str = "") -> None:
        self.app = app
        self.keys = keys
        self.root_path = root_path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope, self.root_path):
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"authorization", b"x-api-key")
        }
        try:
            client = self.keys.authenticate(headers)
        except ServekitError as refused:
            remember_error(scope, refused)
            await error_response(refused, scope)(scope, receive, send)
            return
        # Not reset on the way out, like the request id: the telemetry middleware's access line
        # is written after this returns, in the same task.
        logs.client.set(client)
        await self.app(scope, receive, send)
