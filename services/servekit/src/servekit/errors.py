"""The one error type of servekit and how it becomes an HTTP response.

Every error a user can cause ends as ``{"error": ..., "message": ..., "fields":
[{"field": ..., "problem": ...}]}`` with a 4xx status, whatever raised it
(our code, pydantic, FastAPI's query validation or Starlette's router).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field of a request."""

    field: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


@dataclass
class ServekitError(Exception):
    """An error with the HTTP status it maps to; the only exception type handlers need."""

    status_code: int
    error: str
    message: str
    fields: Sequence[FieldProblem] = field(default_factory=tuple)

    def __str__(self) -> str:
        return f"{self.status_code} {self.error}: {self.message}"

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "message": self.message,
            "fields": [problem.as_dict() for problem in self.fields],
        }


def location(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as ``instances[3].Age``."""
    rendered = ""
    for part in loc:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else str(part)
    return rendered or "body"


def from_validation_errors(errors: Sequence[Any], *, drop_prefix: str | None = None) -> ServekitError:
    """Turn pydantic/FastAPI error dicts into one 422 naming every bad field."""
    problems = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if drop_prefix is not None and loc and loc[0] == drop_prefix:
            loc = loc[1:]
        if err.get("type") == "json_invalid":
            problems.append(FieldProblem("body", str(err.get("msg", "malformed JSON"))))
            continue
        problems.append(FieldProblem(location(loc), str(err.get("msg", "invalid value"))))
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    summary = "; ".join(f"{p.field}: {p.problem}" for p in problems[:3])
    return ServekitError(422, "invalid_request", f"{count} {noun}: {summary}", tuple(problems))


def error_response(exc: ServekitError) -> Response:
    headers = {"Retry-After": "5"} if exc.status_code == 503 else None
    return Response(
        orjson.dumps(exc.body()),
        status_code=exc.status_code,
        media_type="application/json",
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """One handler per foreign exception type, all producing the ServekitError shape."""

    async def on_servekit_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServekitError)
        return error_response(exc)

    async def on_pydantic_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationError)
        return error_response(from_validation_errors(exc.errors(include_url=False)))

    async def on_request_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(from_validation_errors(exc.errors()))

    async def on_http_exception(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(ServekitError(exc.status_code, error, str(exc.detail)))

    app.add_exception_handler(ServekitError, on_servekit_error)
    app.add_exception_handler(ValidationError, on_pydantic_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
