"""The query string of a prediction endpoint, held to the strictness of its body.

A body with a field the request model does not know, or a key given twice, is a 422; FastAPI
ignores a query parameter the endpoint does not take and keeps the last of one given twice. So
``?explian=true`` answered without an explanation, and ``?reasons=3&reasons=0`` without reasons,
and the caller was never told. Google's APIs refuse an unknown query parameter for the same
reason; so does this.

The endpoints read their options here rather than through FastAPI's dependency injection, which
solved a one-record ``/predict``'s two parameters and this check in about 80 µs, a sixth of the
request's time in the process; most requests carry no query string at all, and cost nothing here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from servekit.errors import FieldProblem, from_validation_errors, invalid_fields
from servekit.reasons import MAX_REASONS


class PredictionQuery(BaseModel):
    """The options of ``POST /predict`` and ``POST /predict/batch``, read as FastAPI reads a query
    parameter (``explain=yes`` and ``explain=1`` are true; ``reasons=1.5`` is not a number of them)."""

    model_config = ConfigDict(frozen=True)

    explain: bool = Field(False, description="Add SHAP feature contributions to each prediction")
    reasons: int = Field(
        0,
        ge=0,
        le=MAX_REASONS,
        description=(
            "Add each prediction's N principal reasons: the inputs that argued most for its answer "
            "(the largest SHAP contributions toward a label; either way for a number), strongest "
            "first, each with its value and signed contribution (the "
            "explanation's own numbers, which it adds only with explain=true)"
        ),
    )

    @field_validator("reasons", mode="before")
    @classmethod
    def _digits_alone(cls, value: object) -> object:
        # Python's int() reads "3_0" as 30, and so did pydantic: a typo for 3 asked for thirty.
        if isinstance(value, str) and "_" in value:
            raise ValueError(f"{value!r} is not a number in digits; send a whole number such as 3")
        return value


@dataclass(frozen=True)
class QueryRule:
    """Which parameters an endpoint takes; any other, and any given twice, is refused."""

    names: tuple[str, ...]
    #: Where an endpoint that takes none has its options, for the refusal.
    instead: str = ""

    def check(self, request: Request) -> None:
        """One 422 naming each parameter not among :attr:`names` and each given more than once."""
        if not request.scope.get("query_string"):
            return
        given = Counter(key for key, _ in request.query_params.multi_items())
        problems = [
            FieldProblem(f"query.{key}", f"not a parameter of this endpoint; {self.takes}")
            if key not in self.names
            else FieldProblem(f"query.{key}", f"given {count} times; send it once")
            for key, count in given.items()
            if key not in self.names or count > 1
        ]
        if problems:
            raise invalid_fields(problems)

    @property
    def takes(self) -> str:
        if self.names:
            return f"it takes {', '.join(self.names)}"
        return f"it takes none{self.instead and f': {self.instead}'}"


PREDICTION_RULE = QueryRule(tuple(PredictionQuery.model_fields))
#: Most requests ask for neither option.
_DEFAULTS = PredictionQuery()


def prediction_options(request: Request) -> PredictionQuery:
    """The request's ``explain`` and ``reasons``; a 422 naming each bad or unknown parameter."""
    if not request.scope.get("query_string"):
        return _DEFAULTS
    PREDICTION_RULE.check(request)
    try:
        return PredictionQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise from_validation_errors([prefixed("query", e) for e in exc.errors(include_url=False)]) from exc


def prefixed(where: str, error: Any) -> dict[str, Any]:
    """A pydantic error located under ``where``, as FastAPI locates a parameter's (``query.reasons``)."""
    return {**error, "loc": (where, *error["loc"])}


def documented(query: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI's parameter objects for ``query``'s fields, as FastAPI writes a ``Query``'s."""
    schema = query.model_json_schema()
    return [
        {
            "name": name,
            "in": "query",
            "required": name in schema.get("required", ()),
            "schema": field,
            "description": field.get("description", ""),
        }
        for name, field in schema["properties"].items()
    ]


#: The documentation of :func:`prediction_options`'s parameters.
PREDICTION_PARAMETERS = documented(PredictionQuery)
