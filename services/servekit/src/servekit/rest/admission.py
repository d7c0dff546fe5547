"""Pure ASGI middleware: the admission limit (``servekit.admission``) on the HTTP prediction endpoints.

It sits inside the telemetry middleware, so a refused request is counted (status 503), timed and
logged like any other, and it answers before the body is read: refusing costs microseconds.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from servekit import logs
from servekit.admission import AdmissionLimit
from servekit.errors import ServekitError
from servekit.metrics.names import PREDICTION_ENDPOINTS
from servekit.rest.access_log import remember_error
from servekit.rest.errors import error_response
from servekit.rest.telemetry import endpoint_of


class AdmissionMiddleware:
    """Runs a prediction request in one of the limit's places, or refuses it at once.

    503 when the replica is full; 429 when the request's client (named by the API key middleware,
    outside this one) already has its share of the places.
    """

    def __init__(self, app: ASGIApp, limit: AdmissionLimit, root_path: str = "") -> None:
        self.app = app
        self.limit = limit
        self.root_path = root_path.rstrip("/")
        self.guarded = frozenset(PREDICTION_ENDPOINTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or endpoint_of(scope, self.root_path) not in self.guarded:
            await self.app(scope, receive, send)
            return
        client = logs.client.get()  # named by the API key middleware outside this one, if keys are on
        try:
            self.limit.enter(client)
        except ServekitError as refused:
            remember_error(scope, refused)
            await error_response(refused, scope)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.limit.leave(client)
