"""Pure ASGI middleware: an API key of the service on every endpoint but probes, metrics and docs.

It sits inside the telemetry middleware, so a refused request is counted (status 401, or 403 for
a read-only key on an endpoint it does not open), timed and logged like any other, and outside the
admission limit, so a request without a key never takes a place a client with one could have had.
It answers before the body is read.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from servekit.auth.api_keys import ApiKeys
from servekit.auth.credentials import API_KEY_HEADER, AUTHORIZATION, credential_headers
from servekit.auth.scopes import OPEN_ENDPOINTS, READ_SCOPE, Key
from servekit.errors import ServekitError
from servekit.rest.access_log import remember_error
from servekit.rest.errors import error_response
from servekit.rest.telemetry import endpoint_label, local_path

#: The headers a key may come in (``servekit.auth.credentials.credential``).
CREDENTIAL_HEADERS = frozenset({AUTHORIZATION.encode(), API_KEY_HEADER.encode()})


def is_open(path: str) -> bool:
    """Whether a path (without its prefix) answers without a key
    (``servekit.auth.scopes.OPEN_ENDPOINTS``).

    ``/metrics`` and the docs are no endpoint labels, so the path itself is looked up too.
    """
    return path in OPEN_ENDPOINTS or endpoint_label(path) in OPEN_ENDPOINTS


#: What any key of ``scope=read`` opens (its client is no part of the rule).
_READ_ONLY_KEY = Key("read-only", scope=READ_SCOPE)


def read_only_opens(path: str, method: str) -> bool:
    """Whether a read-only key may call ``method`` on a path (without its prefix; a path template
    such as ``/v2/models/{model_name}`` will do): the rule the middleware applies, for the document."""
    return _READ_ONLY_KEY.opens(endpoint_label(path), method)


class ApiKeyMiddleware:
    """Lets a request through with one of the service's keys that opens its endpoint, its client
    named; else answers 401 (no key of ours) or 403 (a read-only key on what runs the model)."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, root_path: str = "") -> None:
        self.app = app
        self.keys = keys
        self.root_path = root_path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = local_path(scope, self.root_path) if scope["type"] == "http" else ""
        if scope["type"] != "http" or is_open(path):
            await self.app(scope, receive, send)
            return
        try:
            sent = (
                (name.decode(), value.decode("latin-1"))
                for name, value in scope.get("headers", ())
                if name in CREDENTIAL_HEADERS
            )
            # Every copy, not a dict's last: a header sent twice is refused, not guessed at.
            self.keys.bind(credential_headers(sent), endpoint_label(path), scope["method"])
        except ServekitError as refused:
            remember_error(scope, refused)
            await error_response(refused, scope)(scope, receive, send)
            return
        await self.app(scope, receive, send)
