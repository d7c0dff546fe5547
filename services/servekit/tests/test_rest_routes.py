"""A route whose endpoint takes the request alone, called without FastAPI's handler."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse, Response

from servekit.errors import ServekitError
from servekit.rest.errors import install_error_handlers
from servekit.rest.routes import RequestRoute, request_route


def test_a_request_route_answers_documents_and_reports_its_errors() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @request_route(app, "POST", "/echo", summary="Echo the body", openapi_extra={"x-kept": True})
    async def echo(request: Request) -> Response:
        body = await request.body()
        if not body:
            raise ServekitError(422, "empty", "send a body")
        return JSONResponse({"got": body.decode(), "query": dict(request.query_params)})

    [route] = [r for r in app.routes if isinstance(r, APIRoute)]
    assert isinstance(route, RequestRoute)
    client = TestClient(app)
    assert client.post("/echo?a=1", content=b"hi").json() == {"got": "hi", "query": {"a": "1"}}
    refused = client.post("/echo")
    assert (refused.status_code, refused.json()["message"]) == (422, "send a body")
    assert client.get("/echo").status_code == 405
    operation = client.get("/openapi.json").json()["paths"]["/echo"]["post"]
    assert (operation["summary"], operation["x-kept"]) == ("Echo the body", True)


async def _ok(request: Request) -> Response:
    return Response()


async def _with_a_query(request: Request, explain: bool = False) -> Response:
    return Response()


async def _of_nothing() -> Response:
    return Response()


def _plain(request: Request) -> Response:
    return Response()


async def _dependency() -> None:
    return None


@pytest.mark.parametrize(
    ("endpoint", "options"),
    [
        (_with_a_query, {}),  # explain would never be passed
        (_of_nothing, {}),
        (_plain, {}),  # FastAPI would have run it in its thread pool; this would block the loop
        (_ok, {"dependencies": [Depends(_dependency)]}),  # which would never run
    ],
)
def test_an_endpoint_the_route_cannot_call_as_fastapi_would_stops_the_app_being_built(
    endpoint: Any, options: dict[str, Any]
) -> None:
    with pytest.raises(TypeError, match="an async function of the request alone"):
        request_route(FastAPI(), "POST", "/x", **options)(endpoint)
