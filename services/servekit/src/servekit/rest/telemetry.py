"""Pure ASGI middleware: request metrics, the ``Server-Timing`` header and the access log.

Pure ASGI rather than ``BaseHTTPMiddleware``: no extra task per request and no
buffering of the response, which matters at sub-millisecond latencies.

A request still in flight when the server's shutdown grace runs out is cancelled by uvicorn (its
task, ``asyncio.CancelledError`` through the app): answered, counted and logged here as a 503
``shutting_down``, as the gRPC call the same shutdown cuts, and not let through to uvicorn, which
would log it as "Exception in ASGI application" with a traceback and answer a bare 500. The server
says when its grace ends (:func:`shutdown_begins`, ``mlp serve``'s); a request cancelled at any
other time was given up for its client (servers that cancel on a disconnect): a 499.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servekit.errors import ServekitError
from servekit.metrics import ServiceMetrics
from servekit.metrics.names import DOCS_ASSETS, ENDPOINTS, NO_ENDPOINT, PROBE_ENDPOINTS
from servekit.rest.access_log import AccessLog, error_of, remember_error, unexpected
from servekit.rest.body import BODY_NOT_RECEIVED, CLIENT_CLOSED
from servekit.spans import Phase, RequestSpans, failure, open_phases

TIMINGS_KEY = "servekit.timings"
MODELS_PATH = "/v2/models/"
#: Prometheus's scrape path (``servekit.rest.model_routes``), under the path prefix or not.
METRICS_PATH = "/metrics"


def model_path_template(path: str) -> str:
    """``/v2/models/bankchurn/versions/3/infer`` as the label ``/v2/models/{model}/infer``."""
    parts = path[len(MODELS_PATH) :].split("/")
    if not parts[0]:
        return path
    rest = parts[3:] if len(parts) >= 3 and parts[1] == "versions" else parts[1:]
    return "/".join((MODELS_PATH + "{model}", *rest))


KNOWN_ENDPOINTS = frozenset(ENDPOINTS)


def local_path(scope: Scope, root_path: str = "") -> str:
    """The request's path without the prefix it is served under."""
    path: str = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    return path


def endpoint_label(path: str) -> str:
    """The ``endpoint`` label of a path without its prefix: the path, templated, or ``other``."""
    if path.startswith(MODELS_PATH):
        path = model_path_template(path)
    elif path.startswith(DOCS_ASSETS + "/"):
        return DOCS_ASSETS
    return path if path in KNOWN_ENDPOINTS else NO_ENDPOINT


def endpoint_of(scope: Scope, root_path: str = "") -> str:
    """The ``endpoint`` label of a request: its path without the prefix, templated, or ``other``."""
    return endpoint_label(local_path(scope, root_path))


#: What a request the server's own shutdown cut is counted and answered as: a server-side failure,
#: as gRPC counts such a call (servekit.rpc.server), not the client's leaving (499).
SHUTDOWN_STATUS = 503
#: How early before the grace's end a cancellation counts as the shutdown's: uvicorn cancels the
#: requests left a tick (0.1 s) after its grace, on the loop's clock.
SHUTDOWN_CUT_SLACK_SECONDS = 0.1
#: Where, on the app's state, the stopping server leaves when it cuts the requests in flight.
CUT_AT = "shutdown_cut_at"


def shutdown_begins(state: Any, grace: float | None) -> None:
    """The server of the app whose ``state`` this is has begun to stop: the requests still in flight
    after ``grace`` seconds (None: no limit, until it has stopped) are cut."""
    now = asyncio.get_running_loop().time()
    setattr(state, CUT_AT, math.inf if grace is None else now + grace)


def server_stopped(state: Any) -> None:
    """The server has stopped: a request still running (forced to exit) is cut as the loop ends."""
    setattr(state, CUT_AT, min(getattr(state, CUT_AT, math.inf), asyncio.get_running_loop().time()))


def cut_by_shutdown(scope: Scope) -> bool:
    """Whether a cancelled request was cut by its server's shutdown, its grace spent."""
    cut_at = getattr(getattr(scope.get("app"), "state", None), CUT_AT, None)
    if cut_at is None:
        return False
    return bool(asyncio.get_running_loop().time() >= cut_at - SHUTDOWN_CUT_SLACK_SECONDS)


def shutdown_cut(what: str = "request") -> ServekitError:
    """What a request (or gRPC ``call``) the server's shutdown cut before its answer is answered
    and logged as."""
    message = f"the server shut down before the answer, its shutdown grace spent; retry the {what}"
    return ServekitError(SHUTDOWN_STATUS, "shutting_down", message)


def cancelled() -> ServekitError:
    """What the access log says of a request cancelled for its client (the client hears nothing)."""
    return ServekitError(
        CLIENT_CLOSED, "cancelled", "the request was cancelled before its answer: its client left"
    )


class Timings:
    """Milliseconds spent per phase of one request, rendered as ``Server-Timing``; for a request
    with a span open, each phase's wall-clock interval too, its span's children (:mod:`servekit.spans`)."""

    __slots__ = ("intervals", "phases")

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        #: The request's open span's phases, if it has one (servekit.spans.open_phases).
        self.intervals: list[Phase] | None = open_phases.get()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        wall = time.time_ns() if self.intervals is not None else 0
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.phases[name] = self.phases.get(name, 0.0) + elapsed * 1e3
            if self.intervals is not None:
                self.intervals.append(Phase(name, wall, wall + round(elapsed * 1e9)))

    def header(self, total_ms: float) -> bytes:
        parts = [f"{name};dur={ms:.3f}" for name, ms in self.phases.items()]
        parts.append(f"total;dur={total_ms:.3f}")
        return ", ".join(parts).encode()


def timings_of(scope: Scope) -> Timings:
    """The request's Timings (a fresh throwaway one outside the middleware, e.g. in unit tests)."""
    timings = scope.get("extensions", {}).get(TIMINGS_KEY)
    return timings if isinstance(timings, Timings) else Timings()


def http_span_name(method: str, endpoint: str) -> str:
    """``POST /predict``: the method and the route, or the method alone for a path not served (the
    span names stay as few as the endpoints, as OpenTelemetry's HTTP conventions ask)."""
    return method if endpoint == NO_ENDPOINT else f"{method} {endpoint}"


def http_attributes(
    scope: Scope, endpoint: str, status: int, root_path: str, error: ServekitError | None
) -> dict[str, Any]:
    """A request's span attributes, by OpenTelemetry's HTTP semantic conventions, and the error
    code of a request answered with one (``error.type``, as the access log names it)."""
    attributes: dict[str, Any] = {
        "http.request.method": scope["method"],
        "http.response.status_code": status,
        "url.path": local_path(scope, root_path),
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if endpoint != NO_ENDPOINT:
        attributes["http.route"] = endpoint
    if error is not None:
        attributes["error.type"] = error.error
    elif status >= 500:
        attributes["error.type"] = str(status)
    return attributes


class TelemetryMiddleware:
    """Counts every request, times prediction endpoints, adds Server-Timing to every response.

    One middleware rather than three: status, elapsed time and response size are measured
    once and shared by the metrics and the access log.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        root_path: str = "",
        access_log: AccessLog | None = None,
        spans: RequestSpans | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.root_path = root_path.rstrip("/")
        self.spans = spans

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or local_path(scope, self.root_path) == METRICS_PATH:
            # Scrapes are not traffic: counting them would skew request rates. That path alone:
            # any other (``/guess/metrics``) is a client's request, counted and logged, or probing
            # with one key after another would pass unseen by the unauthenticated-requests alert.
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_of(scope, self.root_path)
        # Probes are the kubelet's, every few seconds: spans of them would bury the requests'.
        span = (
            self.spans.begin(http_span_name(scope["method"], endpoint), time.time_ns())
            if self.spans is not None and endpoint not in PROBE_ENDPOINTS
            else None
        )
        timings = Timings()
        scope.setdefault("extensions", {})[TIMINGS_KEY] = timings
        start = time.perf_counter()
        status = 500
        response_bytes = 0
        started = False

        async def send_with_timing(message: Message) -> None:
            nonlocal status, response_bytes, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                total = (time.perf_counter() - start) * 1e3
                headers = [*message.get("headers", ()), (b"server-timing", timings.header(total))]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                response_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        except asyncio.CancelledError:
            if not cut_by_shutdown(scope):
                status = CLIENT_CLOSED
                remember_error(scope, cancelled())
                raise
            # Expected, not a bug: the 503 gRPC's cut call gets, and the cancellation ends here, its
            # work done (uvicorn awaits nothing of the task it cancelled).
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            cut = shutdown_cut()
            remember_error(scope, cut)
            if started:  # the answer was cut short: uvicorn closes the connection
                status = SHUTDOWN_STATUS
            else:
                from servekit.rest.errors import error_response  # which imports this module

                await error_response(cut, scope)(scope, receive, send_with_timing)
        except Exception as exc:
            # Starlette answers it (500) outside this middleware, after the line below is written.
            if self.access_log is not None:
                remember_error(scope, unexpected(exc))
            raise
        finally:
            elapsed = time.perf_counter() - start
            error = error_of(scope)
            # A body that never arrived (408, or its client gone mid-upload) timed the client, not
            # the service: 30 s samples of a slow upload would burn the latency SLO.
            timed = error is None or error.error not in BODY_NOT_RECEIVED
            self.metrics.count_request(endpoint, scope["method"], status, elapsed, timed=timed)
            if self.access_log is not None:
                self.access_log.record(scope, endpoint, status, elapsed, response_bytes)
            if span is not None:
                span.end(
                    time.time_ns(),
                    http_attributes(scope, endpoint, status, self.root_path, error),
                    error=failure(status, error.error if error else None),
                )
