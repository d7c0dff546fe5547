"""Cross-origin requests from browser apps, off unless an operator lists the origins.

A web front end on another origin (an internal risk dashboard calling BankChurn, say) can only
call the API if the API answers the browser's preflight and names the origin. The lists below
are what this API needs and no more: the request headers it reads (named by the modules that read
them, so that one added there cannot be forgotten here), and the response headers a page needs.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from servekit import tracing
from servekit.auth.credentials import CREDENTIAL_HEADERS
from servekit.codecs.binary_tensors import BINARY_HEADER
from servekit.rest.request_id import HEADER as REQUEST_ID_HEADER
from servekit.routing import ROUTING_KEY_HEADER, VARIANT_HEADER

ALLOWED_METHODS = ("GET", "HEAD", "POST")
#: Every request header the API reads that a page may set. ``Content-Type: application/json`` is
#: what makes a browser send a preflight at all; a header missing here fails the preflight, and
#: the page's request is never sent (a 400 "Disallowed CORS headers" it cannot even read).
ALLOWED_HEADERS = (
    "Content-Type",
    "Content-Encoding",
    REQUEST_ID_HEADER,
    # The tracing headers a request id falls back to (servekit.tracing): a page instrumented with
    # OpenTelemetry sends traceparent and tracestate, one with CloudWatch RUM X-Amzn-Trace-Id.
    *tracing.PARSERS,
    "tracestate",
    # The API key (servekit.auth), either way.
    *CREDENTIAL_HEADERS.values(),
    # Which model answers (servekit.routing): a page pins a variant, or keeps a session on one.
    VARIANT_HEADER,
    ROUTING_KEY_HEADER,
    # The Open Inference Protocol's binary tensors: the length of the body's JSON part.
    BINARY_HEADER,
)
#: Readable by the page: the id to quote to on-call, where a slow request spent its time, when to
#: try again after a 503 or a 429, and where a binary answer's JSON part ends (none of them is
#: among the headers a page may always read).
EXPOSED_HEADERS = (REQUEST_ID_HEADER, "Server-Timing", "Retry-After", BINARY_HEADER)
#: Seconds a browser may cache a preflight answer (Chrome caps it at 7,200).
PREFLIGHT_MAX_AGE = 600


def headers_outside_the_middleware(origins: tuple[str, ...], origin: str | None) -> dict[str, str]:
    """The CORS headers of a response made outside the middleware, as the middleware would add them.

    Starlette answers an unhandled exception in its outermost layer, outside CORS, so without
    these a browser app sees a CORS failure instead of the 500 that names the request id.
    """
    if not origins or origin is None:
        return {}
    if origins == ("*",):
        allowed = "*"
    elif origin in origins:
        allowed = origin
    else:
        return {}
    headers = {
        "Access-Control-Allow-Origin": allowed,
        "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
    }
    if allowed != "*":
        headers["Vary"] = "Origin"
    return headers


def allow_cross_origin(app: FastAPI, origins: tuple[str, ...]) -> None:
    """Answer preflights and add CORS headers for ``origins``; nothing at all when there are none."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE,
    )
