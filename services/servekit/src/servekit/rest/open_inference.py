"""The Open Inference Protocol's REST endpoints (``/v2/...``), beside servekit's own.

Clients written for KServe, Triton or MLServer (``tritonclient.http``, KServe's
``InferenceRESTClient``) and gateways that speak the protocol call a servekit service
unchanged. The endpoints share everything with ``/predict``: the size limits, the model
runtime, the metrics and the Server-Timing header; only the body's shape differs
(:mod:`servekit.codecs.open_inference`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jiter
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.types import Scope

from servekit import logs
from servekit.codecs.binary_tensors import BINARY_HEADER
from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.codecs.open_inference_types import (
    InferenceError,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
)
from servekit.errors import invalid_field
from servekit.inference import fields_limit, model_ref, refuse_field_floods
from servekit.protocol import EXTENSIONS, SERVER_VERSION, ProtocolModel
from servekit.rest.body import read_body
from servekit.rest.openapi import OPEN_INFERENCE_PREFIX, PREDICTION_HEADERS, json_body
from servekit.rest.query import QueryRule
from servekit.rest.request_id import HEADER as REQUEST_ID_HEADER
from servekit.rest.request_id import REQUEST_ID_KEY, VALID_ID, request_id_of
from servekit.rest.responses import json_response
from servekit.rest.telemetry import timings_of
from servekit.routing import Route

if TYPE_CHECKING:
    from servekit.rest.predictor import Predictor
    from servekit.runtime import ModelRuntime
    from servekit.settings import ServiceSettings
    from servekit.spec import ServiceSpec

PREFIX = OPEN_INFERENCE_PREFIX
TAG = "Open Inference Protocol (V2)"
#: The protocol's options are the body's parameters: a query string is refused, not ignored.
NO_QUERY = QueryRule((), instead="the protocol's options are the body's parameters")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool
    error: str | None = Field(None, description="While not ready: why (the last load failure, or loading)")


class ModelReady(ServerReady):
    name: str


def route_path(scope: Scope) -> str:
    """The request's path below the root path (a serving prefix such as ``/bankchurn``)."""
    path: str = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def binary_json_length(request: Request) -> int | None:
    """The JSON part's length when the body uses the binary tensor extension (else None)."""
    value = request.headers.get(BINARY_HEADER)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise invalid_field(f"headers.{BINARY_HEADER}", f"{value!r} is not a number of bytes")
    return int(value)


def adopt_client_id(client_id: str | None, scope: Scope | None = None) -> None:
    """The request's ``id`` as its request id, for a client that sent no ``X-Request-ID``.

    KServe's and Triton's clients correlate by the protocol's ``id``: with it as the request id,
    their request's log lines and captures (and the truth joined to them by ``mlp evaluate``)
    carry the id they know. An id that is no plausible token is left out, as such a header is.
    """
    if client_id is None or not VALID_ID.fullmatch(client_id):
        return
    logs.request_id.set(client_id)
    if scope is not None:
        scope.setdefault("extensions", {})[REQUEST_ID_KEY] = client_id


def body_id(body: bytes, json_length: int | None = None) -> str | None:
    """The ``id`` of a request body that is a JSON object, read for a request refused before it
    was decoded (its JSON part, with binary tensors); None if it is not JSON or has no string id.

    Read only then: the decode of a request it accepts gives the id without a second parse.
    """
    if json_length is not None:
        if not 0 < json_length <= len(body):
            return None
        body = body[:json_length]
    try:
        # Not cached: the strings are the client's.
        parsed = jiter.from_json(body, cache_mode=False)
    except ValueError:
        return None
    sent = parsed.get("id") if isinstance(parsed, dict) else None
    return sent if isinstance(sent, str) else None


def documented_example(codec: OpenInferenceCodec, examples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The request model's examples as one inference request (the first alone if they mix types,
    as ChicagoTaxi's do, showing a timestamp both as text and as Unix seconds)."""
    for rows in (examples, examples[:1]):
        try:
            return codec.request_for(rows) if rows else None
        except ValueError:
            continue
    return None


def is_open_inference(scope: Scope) -> bool:
    path = route_path(scope)
    return path == PREFIX or path.startswith(PREFIX + "/")


def add_open_inference_routes(
    app: FastAPI,
    spec: ServiceSpec,
    codec: OpenInferenceCodec,
    runtime: ModelRuntime,
    predictor: Predictor,
    *,
    settings: ServiceSettings,
    error_responses: dict[int | str, dict[str, Any]],
) -> None:
    """Add the ``/v2`` endpoints for ``spec``'s model, whose tensors ``codec`` reads and writes."""
    example = documented_example(codec, spec.request.model_json_schema().get("examples", []))

    model_at = ProtocolModel(spec.name, runtime, canary=predictor.canary, where="path.")
    most_fields = fields_limit(spec.request, settings.max_batch_size)

    async def server_metadata() -> Response:
        return json_response({"name": spec.name, "version": SERVER_VERSION, "extensions": EXTENSIONS})

    async def server_live() -> Response:
        return json_response({"live": True})

    def not_ready() -> dict[str, Any]:
        return {"ready": False, "error": runtime.not_ready_reason}

    async def server_ready() -> Response:
        if runtime.model is None:
            return json_response(not_ready(), status_code=503)
        return json_response({"ready": True})

    async def model_metadata(model_name: str, model_version: str | None = None) -> Response:
        model = model_at.served(model_name, model_version)
        return json_response(codec.metadata(spec.name, model.artifact.version))

    async def model_ready(model_name: str, model_version: str | None = None) -> Response:
        model_at.check_name(model_name)
        if runtime.model is None:
            return json_response({"name": model_name, **not_ready()}, status_code=503)
        model_at.served(model_name, model_version)
        return json_response({"name": model_name, "ready": True})

    async def infer(request: Request, model_name: str, model_version: str | None = None) -> Response:
        NO_QUERY.check(request)
        model_at.served(model_name, model_version)  # before reading a body we cannot serve
        # Read now, routed later: a bad routing header is refused before the body is read, as
        # POST /predict refuses it (and not as a 413 or 422 of a body it would have refused anyway).
        asked = Route.from_headers(request.headers.get)
        json_length = binary_json_length(request)
        timings = timings_of(request.scope)
        body = await read_body(request, settings.max_body_bytes)
        adopting = REQUEST_ID_HEADER not in request.headers
        try:
            with timings.phase("validate"):
                refuse_field_floods(body if json_length is None else body[:json_length], most_fields)
                decoded = codec.decode(body, settings.max_batch_size, json_length)
        except Exception:
            # Refused (a 422, a 413): answered and logged under the body's id all the same, the
            # one the client will look for.
            if adopting:
                adopt_client_id(body_id(body, json_length), request.scope)
            raise
        if adopting:
            adopt_client_id(decoded.id, request.scope)
        records, explain, reasons = decoded.records, decoded.explain, decoded.reasons
        # The alias may have moved while the body was read. Checked again, and routed, right before
        # the predictor picks its model with no await between (the runtime swaps models on this
        # loop): a refused request must not be captured, counted as an outcome or shadowed.
        model_at.served(model_name, model_version)
        route = model_at.route(model_version, asked)
        model, predictions = await predictor(records, explain, timings, route, reasons)
        model_at.answered_by(model, model_version)
        request_id = decoded.id if decoded.id is not None else request_id_of(request.scope)
        result = codec.encode(model_ref(model), request_id, predictions, decoded.outputs)
        if not decoded.binary_outputs:
            return json_response(result)
        payload, json_length = codec.to_binary(result, decoded.binary_outputs)
        return Response(
            payload, media_type="application/octet-stream", headers={BINARY_HEADER: str(json_length)}
        )

    # The versioned paths are the same handlers with the version from the path (without these
    # wrappers FastAPI would offer ``model_version`` as a query parameter of the plain paths).
    async def versioned_metadata(model_name: str, model_version: str) -> Response:
        return await model_metadata(model_name, model_version)

    async def versioned_ready(model_name: str, model_version: str) -> Response:
        return await model_ready(model_name, model_version)

    async def versioned_infer(request: Request, model_name: str, model_version: str) -> Response:
        return await infer(request, model_name, model_version)

    async def plain_metadata(model_name: str) -> Response:
        return await model_metadata(model_name)

    async def plain_ready(model_name: str) -> Response:
        return await model_ready(model_name)

    async def plain_infer(request: Request, model_name: str) -> Response:
        return await infer(request, model_name)

    errors = {status: {**doc, "model": InferenceError} for status, doc in error_responses.items()}
    errors[404] = {"model": InferenceError, "description": "Another model, or a version not served now"}
    errors[415] = {
        "model": InferenceError,
        "description": "Binary tensors, an unsupported Content-Encoding, or a charset other than utf-8",
    }
    # With binary_data_output (or an output's binary_data) the answer is the binary tensor
    # extension's: the JSON response, then the tensors' bytes; the header says where one ends.
    answered = {
        "description": "The outputs; in the binary tensor extension's form when asked for as binary",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "Inference-Header-Content-Length": {
                "description": "With a binary answer: the length of its JSON part, in bytes",
                "required": False,
                "schema": {"type": "integer", "minimum": 0},
            }
        },
    }
    not_loaded = {"description": "Model not loaded yet; error says why"}
    route = functools.partial(app.add_api_route, tags=[TAG])
    route(PREFIX, server_metadata, methods=["GET"], summary="Server metadata", response_model=ServerMetadata)
    route(
        f"{PREFIX}/health/live",
        server_live,
        methods=["GET"],
        summary="Server live",
        response_model=ServerLive,
    )
    route(
        f"{PREFIX}/health/ready",
        server_ready,
        methods=["GET"],
        summary="Server ready (503 until loaded)",
        response_model=ServerReady,
        responses={503: {**not_loaded, "model": ServerReady}},
    )
    model_path = f"{PREFIX}/models/{{model_name}}"
    for path, metadata, ready, predict in (
        (model_path, plain_metadata, plain_ready, plain_infer),
        (f"{model_path}/versions/{{model_version}}", versioned_metadata, versioned_ready, versioned_infer),
    ):
        route(
            path,
            metadata,
            methods=["GET"],
            summary="Model metadata: input and output tensors",
            response_model=ModelMetadata,
            responses={404: errors[404], 503: errors[503]},
        )
        route(
            f"{path}/ready",
            ready,
            methods=["GET"],
            summary="Model ready (503 until loaded)",
            response_model=ModelReady,
            responses={404: errors[404], 503: {**not_loaded, "model": ModelReady}},
        )
        route(
            f"{path}/infer",
            predict,
            methods=["POST"],
            summary="Infer: one tensor per request field; parameters.explain adds explanations",
            response_model=InferenceResponse,
            responses={200: answered, **errors},
            openapi_extra={**json_body(InferenceRequest, example), "parameters": PREDICTION_HEADERS},
        )
