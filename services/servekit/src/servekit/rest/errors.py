"""How every exception becomes the one ServekitError shape over HTTP."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from servekit.errors import ServekitError, from_validation_errors
from servekit.rest.access_log import remember_error
from servekit.rest.cors import headers_outside_the_middleware
from servekit.rest.open_inference import is_open_inference
from servekit.rest.request_id import HEADER as REQUEST_ID_HEADER
from servekit.rest.request_id import request_id_of
from servekit.rest.security_headers import security_headers

logger = logging.getLogger("servekit.rest")

#: A model loads in seconds: a client told to wait 5 s does not hammer a replica still loading.
NOT_READY_RETRY_AFTER_SECONDS = 5


def error_response(exc: ServekitError, scope: Scope | None = None) -> Response:
    """The error as JSON: servekit's body, or the Open Inference Protocol's on its paths."""
    retry_after = exc.retry_after_seconds
    if retry_after is None and exc.status_code == 503:
        retry_after = NOT_READY_RETRY_AFTER_SECONDS
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"  # RFC 9110: a 401 names the scheme that would do
    if exc.status_code == 408:
        # The rest of a body too slow to arrive is not worth reading: the connection goes, and with
        # it whatever the client still trickles (RFC 9110 §15.5.9).
        headers["Connection"] = "close"
    body = exc.open_inference_body() if scope is not None and is_open_inference(scope) else exc.body()
    return Response(
        orjson.dumps(body),
        status_code=exc.status_code,
        media_type="application/json",
        headers=headers,
    )


def answer(request: Request, exc: ServekitError) -> Response:
    """The error's response; the access log reads the error back from the request's scope."""
    remember_error(request.scope, exc)
    return error_response(exc, request.scope)


#: Longest request path quoted back in a 404's message.
MAX_QUOTED_PATH = 120


def allowed_methods(request: Request) -> str:
    """Every method some route at this path answers, sorted.

    Starlette's Allow names only the first route that matched the path, so a path served by two
    routes (``/healthz``: GET, and HEAD for probes that send no body) would be under-reported.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": ""})
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def from_router(request: Request, exc: StarletteHTTPException, allowed: str) -> ServekitError:
    """A router's 404 or 405 as a message that says what to do instead of the status phrase."""
    path = request.url.path
    if len(path) > MAX_QUOTED_PATH:
        path = path[:MAX_QUOTED_PATH] + "…"
    if exc.status_code == 404:
        docs = request.scope.get("root_path", "") + "/docs"
        return ServekitError(404, "not_found", f"no endpoint at {path}; the endpoints are listed at {docs}")
    if exc.status_code == 405:
        return ServekitError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {path}; allowed: {allowed}",
        )
    return ServekitError(exc.status_code, "http_error", str(exc.detail))


def install_error_handlers(app: FastAPI, cors_origins: tuple[str, ...] = ()) -> None:
    """One handler per foreign exception type, all producing the ServekitError shape."""

    async def on_servekit_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServekitError)
        return answer(request, exc)

    async def on_pydantic_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationError)
        return answer(request, from_validation_errors(exc.errors(include_url=False)))

    async def on_request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return answer(request, from_validation_errors(exc.errors()))

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        # Starlette puts a 405's Allow (which RFC 9110 requires) on the exception, not a response.
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        response = answer(request, from_router(request, exc, allowed=headers.get("Allow", "")))
        response.headers.update(headers)
        return response

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # One line an on-call engineer can find by the id the client saw; the server logs
        # the traceback right after it (Starlette re-raises once the response is sent).
        request_id = request_id_of(request.scope)
        logger.error(
            "request %s %s %s failed: %s: %s",
            request_id,
            request.method,
            request.url.path,
            type(exc).__name__,
            exc,
        )
        message = f"the service failed on this request; its log names the cause under request id {request_id}"
        response = error_response(ServekitError(500, "internal_error", message), request.scope)
        response.headers[REQUEST_ID_HEADER] = request_id
        for name, value in security_headers(request.scope):
            response.headers[name.decode()] = value.decode()
        response.headers.update(headers_outside_the_middleware(cors_origins, request.headers.get("origin")))
        return response

    app.add_exception_handler(ServekitError, on_servekit_error)
    app.add_exception_handler(ValidationError, on_pydantic_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
