"""Pure ASGI middleware: the admission limit (``servekit.admission``) on the HTTP prediction endpoints.

It sits inside the telemetry middleware, so a refused request is counted (status 503), timed and
logged like any other. A full replica refuses before the body is read, which costs microseconds;
otherwise the request takes its place once its body has arrived, so a slow upload holds no place
(the place bounds model work), and the body must arrive within ``<SVC>_BODY_TIMEOUT_SECONDS``.

A prediction request arriving while the event loop is more than ``<SVC>_MAX_LOOP_LAG_SECONDS``
late is refused at once too, before its body is read, like one arriving at a full replica.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servekit import logs
from servekit.admission import AdmissionLimit, Place, current_place
from servekit.errors import ServekitError
from servekit.metrics.names import PREDICTION_ENDPOINTS
from servekit.rest.access_log import remember_error
from servekit.rest.body import receive_within
from servekit.rest.errors import error_response
from servekit.rest.telemetry import endpoint_of


class AdmissionMiddleware:
    """Runs a prediction request in one of the limit's places, or refuses it.

    503 when the replica is full; 429 when the request's client (named by the API key middleware,
    outside this one) already has its share of the places. Both are checked at once, and again
    when the body has arrived and the place is taken (from within the handler's read of the body,
    whose error handler answers a refusal then).
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: AdmissionLimit,
        root_path: str = "",
        *,
        body_timeout_seconds: float,
    ) -> None:
        self.app = app
        self.limit = limit
        self.root_path = root_path.rstrip("/")
        self.guarded = frozenset(PREDICTION_ENDPOINTS)
        self.body_timeout_seconds = body_timeout_seconds
        self.timeout_variable = limit.variable("BODY_TIMEOUT_SECONDS")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or endpoint_of(scope, self.root_path) not in self.guarded:
            await self.app(scope, receive, send)
            return
        client = logs.client.get()  # named by the API key middleware outside this one, if keys are on
        try:
            self.limit.check(client)
        except ServekitError as refused:
            remember_error(scope, refused)
            await error_response(refused, scope)(scope, receive, send)
            return
        place = Place(self.limit, client)
        receive_body = receive_within(receive, self.body_timeout_seconds, self.timeout_variable)

        async def receive_then_admit() -> Message:
            message = await receive_body()
            if not place.taken and message["type"] == "http.request" and not message.get("more_body"):
                place.take()  # the body is in: from now on the request is model work
            return message

        token = current_place.set(place)  # for the worker thread the request may start
        try:
            await self.app(scope, receive_then_admit, send)
        finally:
            current_place.reset(token)
            place.release()
