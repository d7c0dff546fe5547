"""Cross-origin requests from browser apps, off unless an operator lists the origins.

A web front end on another origin (an internal risk dashboard calling BankChurn, say) can only
call the API if the API answers the browser's preflight and names the origin. The lists below
are what this API needs and no more: it reads JSON (possibly compressed) and two tracing headers,
and its responses carry two headers a page may want to read.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from servekit.rest.request_id import HEADER as REQUEST_ID_HEADER

ALLOWED_METHODS = ("GET", "HEAD", "POST")
#: ``Content-Type: application/json`` is what makes a browser send a preflight at all; the two
#: credentials headers are how a page sends an API key (servekit.auth).
ALLOWED_HEADERS = (
    "Content-Type",
    "Content-Encoding",
    REQUEST_ID_HEADER,
    "traceparent",
    "tracestate",
    "Authorization",
    "X-API-Key",
)
#: Readable by the page: the id to quote to on-call, where a slow request spent its time, and
#: when to try again after a 503 (Retry-After is not among the headers a page may always read).
EXPOSED_HEADERS = (REQUEST_ID_HEADER, "Server-Timing", "Retry-After")
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
