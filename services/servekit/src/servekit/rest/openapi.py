"""Request bodies and error answers in the OpenAPI document.

The predict routes read and validate the raw body themselves (to time validation
and to parse JSON straight into pydantic-core), so FastAPI cannot see their body
models; this module puts them back into the document with their examples.

FastAPI documents a 422 in its own ``HTTPValidationError`` shape on every operation with a
parameter, but servekit never sends it: every refused parameter is answered in servekit's body
(``servekit.rest.errors``), and an operation whose parameters can be refused says so itself. So
that 422 is taken out, and a generated client gets no type for an answer that never comes.

The headers the middleware puts on every answer, and those the errors carry (Retry-After,
WWW-Authenticate), are added to every response here (``with_response_headers``), as each
operation's id is given here (``operation_id``): a generated client's names are the API's, and
change only with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.utils import generate_unique_id
from pydantic import BaseModel

from servekit.auth.scopes import READABLE
from servekit.codecs.open_inference_types import InferenceError
from servekit.rest.request_id import VALID_ID
from servekit.rest.schemas import ErrorBody

REF = "#/components/schemas/{model}"
#: The Open Inference Protocol's paths (``servekit.rest.open_inference``): their errors are in
#: its body (InferenceError), the others' in servekit's (ErrorBody).
OPEN_INFERENCE_PREFIX = "/v2"
#: FastAPI's own validation error, which servekit never sends.
FASTAPI_VALIDATION_ERROR = REF.format(model="HTTPValidationError")


#: The request headers that choose the model answering a prediction (``servekit.routing``).
ROUTING_PARAMETERS = [
    {
        "name": "X-Model-Variant",
        "in": "header",
        "required": False,
        "description": "stable or canary: the model that answers, whatever the canary's traffic share",
        "schema": {"type": "string", "enum": ["stable", "canary"]},
    },
    {
        "name": "X-Routing-Key",
        "in": "header",
        "required": False,
        "description": (
            "A customer or session id: requests with one key are answered by one variant on every replica"
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    },
]
#: The request headers that name a prediction in the service's logs (``servekit.rest.request_id``,
#: ``servekit.tracing``). Neither is ever refused: one the service cannot use is ignored, so a bad
#: header never fails a prediction; the limits below are those of one it uses.
CORRELATION_PARAMETERS = [
    {
        "name": "X-Request-ID",
        "in": "header",
        "required": False,
        "description": (
            "Your id for this request: answered back in X-Request-ID and on the service's log lines "
            "for it. 1 to 128 characters of A-Z a-z 0-9 . _ : + / = -; another value is replaced, "
            "as is no header, by traceparent's trace id or else a new id"
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": f"^{VALID_ID.pattern}$"},
    },
    {
        "name": "traceparent",
        "in": "header",
        "required": False,
        "description": (
            "W3C Trace Context (version-traceid-parentid-flags, lowercase hex): the trace the "
            "request's log lines and span join; one that does not parse is ignored"
        ),
        "schema": {"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
    },
]
#: The request headers of every prediction operation: which model answers, and under which id.
PREDICTION_HEADERS = [*ROUTING_PARAMETERS, *CORRELATION_PARAMETERS]

#: What the middleware puts on every answer (``servekit.rest.request_id``, ``rest.telemetry``).
EVERY_ANSWER_HEADERS = {
    "X-Request-ID": {
        "description": (
            "The request's id, as its log lines carry it: the X-Request-ID sent if usable, else the "
            "trace id of its tracing header (on /v2 infer, else the body's id), else a new one"
        ),
        "required": True,
        "schema": {"type": "string"},
    },
    "Server-Timing": {
        "description": (
            "Milliseconds the service spent: total;dur=..., after a prediction's phases "
            "(validate;dur=..., predict;dur=..., explain;dur=...)"
        ),
        "required": True,
        "schema": {"type": "string"},
    },
}
RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before trying again",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}
WWW_AUTHENTICATE_HEADER = {
    "description": "Bearer: the scheme a key is sent in (RFC 9110)",
    "required": True,
    "schema": {"type": "string", "enum": ["Bearer"]},
}
#: The statuses whose error answers say when to come back (``servekit.rest.errors.error_response``).
RETRY_STATUSES = ("429", "503")
ERROR_BODY_REFS = frozenset(REF.format(model=model.__name__) for model in (ErrorBody, InferenceError))

#: Every operation's id, by method and path: the names of a generated client's functions, so they
#: change only with the API (FastAPI's own, ``predict_predict_post``, change with a route's code).
OPERATION_IDS = {
    ("POST", "/predict"): "predict",
    ("POST", "/predict/batch"): "predict_batch",
    ("GET", "/healthz"): "healthz",
    ("GET", "/readyz"): "readyz",
    ("GET", "/model"): "get_model",
    ("GET", "/model/card"): "get_model_card",
    ("GET", OPEN_INFERENCE_PREFIX): "server_metadata",
    ("GET", f"{OPEN_INFERENCE_PREFIX}/health/live"): "server_live",
    ("GET", f"{OPEN_INFERENCE_PREFIX}/health/ready"): "server_ready",
    ("GET", f"{OPEN_INFERENCE_PREFIX}/models/{{model_name}}"): "model_metadata",
    ("GET", f"{OPEN_INFERENCE_PREFIX}/models/{{model_name}}/ready"): "model_ready",
    ("POST", f"{OPEN_INFERENCE_PREFIX}/models/{{model_name}}/infer"): "model_infer",
    (
        "GET",
        f"{OPEN_INFERENCE_PREFIX}/models/{{model_name}}/versions/{{model_version}}",
    ): "model_version_metadata",
    ("GET", f"{OPEN_INFERENCE_PREFIX}/models/{{model_name}}/versions/{{model_version}}/ready"): (
        "model_version_ready"
    ),
    ("POST", f"{OPEN_INFERENCE_PREFIX}/models/{{model_name}}/versions/{{model_version}}/infer"): (
        "model_version_infer"
    ),
}


def operation_id(route: APIRoute) -> str:
    """The app's ``generate_unique_id_function``: the route's id in :data:`OPERATION_IDS`.

    A route left out (one not in the document, such as ``HEAD /healthz``) gets FastAPI's, which
    ``test_openapi_operations`` refuses in the document.
    """
    for method in sorted(route.methods or ()):
        if (method, route.path) in OPERATION_IDS:
            return OPERATION_IDS[(method, route.path)]
    return generate_unique_id(route)


def json_body(model: type[BaseModel], example: Any = None) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is ``model`` (the model's examples unless given)."""
    media: dict[str, Any] = {"schema": {"$ref": REF.format(model=model.__name__)}}
    if example is not None:
        media["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": media}}}


#: How a client sends its API key (``servekit.auth``): either scheme will do.
SECURITY_SCHEMES = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer <key>, a key of this service (mlp api-key)",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same key in X-API-Key, for clients that cannot set Authorization",
    },
}


def error_model(path: str) -> type[BaseModel]:
    """The body of an error answered at ``path``."""
    open_inference = path == OPEN_INFERENCE_PREFIX or path.startswith(OPEN_INFERENCE_PREFIX + "/")
    return InferenceError if open_inference else ErrorBody


def error_response(model: type[BaseModel], description: str) -> dict[str, Any]:
    """A ``responses`` entry for an error in ``model``'s body, as JSON whatever the route's own
    answer is (a route answering Markdown refuses in JSON too)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }


UNAUTHENTICATED = "No API key, or not one of this service's (WWW-Authenticate: Bearer)"
FORBIDDEN = f"A read-only key (scope=read), which opens {READABLE} only"


def require_keys(
    document: dict[str, Any],
    needs_key: Callable[[str], bool],
    read_only_opens: Callable[[str, str], bool] = lambda path, method: True,
) -> None:
    """Mark every operation at a path that ``needs_key`` as needing one (``servekit.auth``), and
    as refused to a read-only key (403) unless ``read_only_opens`` its path and method.

    The document then shows what a client must send, and ``/docs`` gets an Authorize button.
    """
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        if not needs_key(path):
            continue
        for method, operation in operations.items():
            operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
            responses = operation.setdefault("responses", {})
            responses["401"] = error_response(error_model(path), UNAUTHENTICATED)
            if not read_only_opens(path, method.upper()):
                responses["403"] = error_response(error_model(path), FORBIDDEN)


def with_response_headers(document: dict[str, Any]) -> None:
    """Put on every response the headers it is sent with: the middleware's on all of them, and
    Retry-After and WWW-Authenticate on the error answers that carry them (a readiness probe's own
    503 body has no Retry-After)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                headers.update(EVERY_ANSWER_HEADERS)
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if status in RETRY_STATUSES and schema.get("$ref") in ERROR_BODY_REFS:
                    headers["Retry-After"] = RETRY_AFTER_HEADER
                if status == "401":
                    headers["WWW-Authenticate"] = WWW_AUTHENTICATE_HEADER


def without_fastapi_validation_errors(document: dict[str, Any]) -> None:
    """Take out the 422 FastAPI adds in a shape servekit never sends (see above), and its schemas."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            content = responses.get("422", {}).get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref") == FASTAPI_VALIDATION_ERROR:
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)


def with_request_models(
    app: FastAPI,
    models: list[type[BaseModel]],
    *,
    needs_key: Callable[[str], bool] | None = None,
    read_only_opens: Callable[[str, str], bool] = lambda path, method: True,
) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` that also registers ``models`` (and both error bodies) under
    components/schemas, without FastAPI's validation error, with each response's headers.

    With ``needs_key`` (API keys on), the operations at the paths it names say so, and those a
    read-only key may not call say that too (``require_keys``).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=app.servers,
        )
        without_fastapi_validation_errors(document)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        registered: list[type[BaseModel]] = [*models, ErrorBody, InferenceError]
        for model in registered:
            schema = model.model_json_schema(ref_template=REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        if needs_key is not None:
            require_keys(document, needs_key, read_only_opens)
        with_response_headers(document)
        app.openapi_schema = document
        return document

    return openapi
