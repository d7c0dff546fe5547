"""The prediction routes, ``/predict`` and ``/predict/batch``: one service's own request models.

Each reads its own body and options and answers through the predictor (``rest.predictor``), the
one path the ``/v2`` routes and gRPC take too; so they are request routes (``rest.routes``),
without FastAPI's parameter solving, yet documented from the same models.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from servekit.inference import (
    batch_body,
    fields_limit,
    model_ref,
    refuse_field_floods,
    validate_batch_json,
    validate_json,
)
from servekit.rest import schemas
from servekit.rest.body import read_body, refused_as_declared
from servekit.rest.openapi import PREDICTION_HEADERS, json_body
from servekit.rest.parts import ServiceParts
from servekit.rest.query import PREDICTION_PARAMETERS, prediction_options
from servekit.rest.responses import json_response
from servekit.rest.routes import request_route
from servekit.rest.telemetry import timings_of
from servekit.routing import Route

#: explain and reasons (each once: any other parameter is refused), then the routing and id headers.
PREDICTION_ROUTE_PARAMETERS = [*PREDICTION_PARAMETERS, *PREDICTION_HEADERS]

#: The refusals a prediction may meet; the /v2 routes document theirs from these too, in their own
#: error shape (``rest.open_inference``).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody, "description": "Body is not in the coding its Content-Encoding names"},
    408: {
        "model": schemas.ErrorBody,
        "description": "Body not in within <SVC>_BODY_TIMEOUT_SECONDS of the headers; connection closed",
    },
    413: {"model": schemas.ErrorBody, "description": "Body or batch larger than the limit"},
    404: {"model": schemas.ErrorBody, "description": "X-Model-Variant: canary where no canary is served"},
    415: {
        "model": schemas.ErrorBody,
        "description": "Content-Encoding other than identity, gzip or deflate; a Content-Type whose "
        "charset is not utf-8; or a body that is not JSON, with a Content-Type naming another media type",
    },
    422: {"model": schemas.ErrorBody, "description": "Invalid input; names each field and problem"},
    429: {
        "model": schemas.ErrorBody,
        "description": "With API keys: this client has its share of the places in flight (Retry-After)",
    },
    503: {
        "model": schemas.ErrorBody,
        "description": (
            "Model not loaded yet, or the replica is at its limit of requests or of batch instances "
            "in flight (Retry-After)"
        ),
    },
    500: {"model": schemas.ErrorBody, "description": "Unexpected failure; the message names the request id"},
}


def add_prediction_routes(
    app: FastAPI, parts: ServiceParts, *, instance_model: type[BaseModel], batch_model: type[BaseModel]
) -> None:
    """Add ``POST /predict`` and ``POST /predict/batch``, validating against the service's models."""
    spec, settings, runtime, predictor = parts.spec, parts.settings, parts.runtime, parts.predictor
    single = TypeAdapter(instance_model)
    batch = TypeAdapter(batch_model)
    most_fields = fields_limit(instance_model, settings.max_batch_size)

    @request_route(
        app,
        "POST",
        "/predict",
        summary="Predict one instance",
        response_model=schemas.prediction_response(spec.response, spec.model.keeps_training_ranges),
        responses=ERROR_RESPONSES,
        openapi_extra={**json_body(instance_model), "parameters": PREDICTION_ROUTE_PARAMETERS},
    )
    async def predict(request: Request) -> Response:
        options = prediction_options(request)
        runtime.require()  # 503 before reading a body we cannot serve
        route = route_of(request)
        timings = timings_of(request.scope)
        body = await read_body(request, settings.max_body_bytes)
        with timings.phase("validate"), refused_as_declared(request, body):
            refuse_field_floods(body, most_fields)
            instance = validate_json(single, body)
        model, predictions = await predictor(
            [instance.model_dump()], options.explain, timings, route, options.reasons
        )
        return json_response({**predictions[0], "model": model_ref(model)})

    @request_route(
        app,
        "POST",
        "/predict/batch",
        summary="Predict a batch of instances, in order",
        response_model=schemas.batch_response(spec.response, spec.model.keeps_training_ranges),
        responses=ERROR_RESPONSES,
        openapi_extra={**json_body(batch_model), "parameters": PREDICTION_ROUTE_PARAMETERS},
    )
    async def predict_batch(request: Request) -> Response:
        options = prediction_options(request)
        runtime.require()
        route = route_of(request)
        timings = timings_of(request.scope)
        body = await read_body(request, settings.max_body_bytes)
        with timings.phase("validate"), refused_as_declared(request, body):
            refuse_field_floods(body, most_fields)
            records = validate_batch_json(batch, body, settings.max_batch_size, spec.name)
        model, predictions = await predictor(records, options.explain, timings, route, options.reasons)
        return json_response(batch_body(model, predictions))


def route_of(request: Request) -> Route:
    """The model a request asks for in its headers (``servekit.routing``)."""
    return Route.from_headers(request.headers.get)
