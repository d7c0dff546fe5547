"""A route whose endpoint takes the request and nothing else, called without FastAPI's handler.

FastAPI's handler solves an endpoint's parameters and dependencies, reads and validates its body,
serializes what it returns against the response model, and times each step for its telemetry. The
prediction endpoints have none of that to do: they read their own body (``rest.body``) and options
(``rest.query``) and return the ``Response`` they built. Yet the handler cost a one-record
``/predict`` about 45 µs of 370 µs in the process. The route is still FastAPI's (``APIRoute``), so
the document describes it from the same summary, response model and ``openapi_extra``, and its
errors reach the same handlers (``rest.errors``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class RequestRoute(APIRoute):
    """An ``APIRoute`` for an ``async def endpoint(request: Request) -> Response``.

    Anything else is a ``TypeError`` when the app is built: a parameter of any other kind would be
    silently never passed, where FastAPI's handler would have solved it.
    """

    def get_route_handler(self) -> Endpoint:
        endpoint = self.endpoint
        parameters = list(inspect.signature(endpoint, eval_str=True).parameters.values())
        takes_the_request = len(parameters) == 1 and parameters[0].annotation is Request
        if not (takes_the_request and inspect.iscoroutinefunction(endpoint)) or self.dependencies:
            raise TypeError(
                f"{self.path}: a RequestRoute's endpoint is an async function of the request alone, "
                f"with no dependencies; {endpoint.__qualname__} is not"
            )
        # The endpoint is the handler: the request in, the Response it built out.
        return endpoint


def request_route(app: FastAPI, method: str, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """``@app.post(path, **options)`` for a :class:`RequestRoute`."""

    def register(endpoint: Endpoint) -> Endpoint:
        app.router.add_api_route(
            path, endpoint, methods=[method], route_class_override=RequestRoute, **options
        )
        return endpoint

    return register
