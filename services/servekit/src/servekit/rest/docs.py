"""The API's documentation pages (``/docs``, ``/redoc``), with their scripts served by the service.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and a favicon from fastapi.tiangolo.com:
on a machine or a cluster without internet access they are blank, and where there is access, the
page that holds the API's schema (and, in "Try it out", the user's API key) runs a third party's
script, at whatever version the CDN answers with that day. Here the scripts come from the
``fastapi-offline`` wheel, pinned in uv.lock like every other dependency, and each page carries a
Content-Security-Policy under which it loads nothing from anywhere but the service.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from servekit.metrics.names import DOCS_ASSETS

#: Swagger UI 5 and ReDoc 2 (both read OpenAPI 3.1, which FastAPI writes), and a favicon.
ASSETS_DIRECTORY = Path(str(files("fastapi_offline").joinpath("static")))

#: Swagger UI's default shows a badge fetched from validator.swagger.io, which is sent the URL of
#: the schema: a request to a third party from every page view, and one the policy would refuse.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(page: bytes, *, workers: bool = False) -> str:
    """A policy under which ``page`` runs its own inline scripts and the service's, nothing else.

    Inline scripts are allowed by their hash, so an injected one would not run. Styles may be
    inline: both UIs set them from their scripts. Images may be data: URIs (Swagger UI's icons);
    ReDoc runs its search index in a worker it builds from a blob: URL.
    """
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    directives = [
        "default-src 'none'",
        f"script-src 'self' {hashes}".rstrip(),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        *(["worker-src 'self' blob:"] if workers else []),
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def secured(page: HTMLResponse, *, workers: bool = False) -> HTMLResponse:
    # X-Content-Type-Options and Cache-Control come with every response (SecurityHeadersMiddleware).
    page.headers["Content-Security-Policy"] = content_security_policy(bytes(page.body), workers=workers)
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


class DocsAssets(StaticFiles):
    """The pages' scripts: a browser may keep them, and asks whether they changed (ETag) each time."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def install_docs(app: FastAPI) -> None:
    """``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their assets under ``/docs/assets``.

    The app must be made with ``docs_url=None, redoc_url=None``. Links carry the request's
    ``root_path``, so the pages work behind an ingress that serves the service under a prefix.
    """

    def under_prefix(request: Request) -> tuple[str, str, str]:
        """The schema's, the assets' and the service's own path, under the request's prefix."""
        root = request.scope.get("root_path", "").rstrip("/")
        return root + (app.openapi_url or "/openapi.json"), root + DOCS_ASSETS, root

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi_url, assets, root = under_prefix(request)
        return secured(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} - API",
                swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                swagger_css_url=f"{assets}/swagger-ui.css",
                swagger_favicon_url=f"{assets}/favicon.png",
                oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
                swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
            )
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return secured(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        openapi_url, assets, _ = under_prefix(request)
        return secured(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} - API",
                redoc_js_url=f"{assets}/redoc.standalone.js",
                redoc_favicon_url=f"{assets}/favicon.png",
                with_google_fonts=False,
            ),
            workers=True,
        )

    # ETag and Last-Modified from the files: a browser revalidates and gets a 304, not 2.8 MB.
    app.mount(DOCS_ASSETS, DocsAssets(directory=ASSETS_DIRECTORY), name="docs-assets")
