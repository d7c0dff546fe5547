"""The headers OWASP asks of a REST API on every response, set once for every endpoint.

- ``Cache-Control: no-store``: an answer holds a customer's data and the model's decision about
  them; no browser, proxy or CDN on the way may keep a copy. A response that says how it may be
  cached (the documentation's scripts: ``no-cache``, kept and revalidated) keeps its own.
- ``X-Content-Type-Options: nosniff``: a JSON body that echoes a client's text is never run as
  a script or a page by a browser that guesses types.
- ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'``: should a browser
  render a response anyway, it may load nothing and be framed by nobody. The documentation
  pages send a policy of their own (``servekit.rest.docs``).
- ``Strict-Transport-Security``, when the request came over HTTPS (at the pod, as the load
  balancer's ``X-Forwarded-Proto`` says: both clouds' ingresses set it): a browser that saw the
  API over HTTPS once does not try plain HTTP again for a year. Browsers ignore it over HTTP.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servekit.rest.request_id import incoming_headers

NO_STORE = (b"cache-control", b"no-store")
NO_SNIFF = (b"x-content-type-options", b"nosniff")
NOTHING_TO_LOAD = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
#: A year, as the HSTS preload list asks; no includeSubDomains: the domain may serve other sites.
HTTPS_ONLY = (b"strict-transport-security", b"max-age=31536000")

FORWARDED_PROTO = "x-forwarded-proto"


def came_over_https(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    forwarded = incoming_headers(scope, {FORWARDED_PROTO.encode()}).get(FORWARDED_PROTO, "")
    return forwarded.lower() == "https"


def security_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers above, for a response to the request of ``scope``."""
    wanted = [NO_STORE, NO_SNIFF, NOTHING_TO_LOAD]
    if came_over_https(scope):
        wanted.append(HTTPS_ONLY)
    return wanted


class SecurityHeadersMiddleware:
    """Adds each header above to every HTTP response that does not already set it.

    Starlette answers an unhandled exception outside every middleware: that 500 gets them from
    its handler (``servekit.rest.errors``), through ``security_headers``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = security_headers(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in wanted if header[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
