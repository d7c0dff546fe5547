"""Request bodies in the OpenAPI document.

The predict routes read and validate the raw body themselves (to time validation
and to parse JSON straight into pydantic-core), so FastAPI cannot see their body
models; this module puts them back into the document with their examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

REF = "#/components/schemas/{model}"


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
UNAUTHENTICATED_RESPONSE = {
    "description": "No API key, or not one of this service's (WWW-Authenticate: Bearer)",
    "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
}


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
            operation.setdefault("responses", {})["401"] = UNAUTHENTICATED_RESPONSE


def with_request_models(
    app: FastAPI, models: list[type[BaseModel]], *, needs_key: Callable[[str], bool] | None = None
) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` that also registers ``models`` under components/schemas.

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
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            schema = model.model_json_schema(ref_template=REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        if needs_key is not None:
            require_keys(document, needs_key)
        app.openapi_schema = document
        return document

    return openapi
