"""Request bodies and error answers in the OpenAPI document.

The predict routes read and validate the raw body themselves (to time validation
and to parse JSON straight into pydantic-core), so FastAPI cannot see their body
models; this module puts them back into the document with their examples.

FastAPI documents a 422 in its own ``HTTPValidationError`` shape on every operation with a
parameter, but servekit never sends it: every refused parameter is answered in servekit's body
(``servekit.rest.errors``), and an operation whose parameters can be refused says so itself. So
that 422 is taken out, and a generated client gets no type for an answer that never comes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from servekit.codecs.open_inference_types import InferenceError
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


def require_keys(document: dict[str, Any], needs_key: Callable[[str], bool]) -> None:
    """Mark every operation at a path that ``needs_key`` as needing one (``servekit.auth``).

    The document then shows what a client must send, and ``/docs`` gets an Authorize button.
    """
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        if not needs_key(path):
            continue
        for operation in operations.values():
            operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
            operation.setdefault("responses", {})["401"] = error_response(error_model(path), UNAUTHENTICATED)


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
    app: FastAPI, models: list[type[BaseModel]], *, needs_key: Callable[[str], bool] | None = None
) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` that also registers ``models`` (and both error bodies) under
    components/schemas, without FastAPI's validation error.

    With ``needs_key`` (API keys on), the operations at the paths it names say so (``require_keys``).
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
            require_keys(document, needs_key)
        app.openapi_schema = document
        return document

    return openapi
