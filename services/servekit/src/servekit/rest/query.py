"""The query string of a prediction endpoint, held to the strictness of its body.

A body with a field the request model does not know, or a key given twice, is a 422; FastAPI
ignores a query parameter the endpoint does not take and keeps the last of one given twice. So
``?explian=true`` answered without an explanation, and ``?reasons=3&reasons=0`` without reasons,
and the caller was never told. Google's APIs refuse an unknown query parameter for the same
reason; so does this. Its values are held as tightly: ``explain`` is true or false and ``reasons``
a count in plain digits, where FastAPI's reading took ``explain=on`` or ``explain=t`` as true and
``reasons=+3``, `` 3``, ``03`` or ``3.0`` as 3, none of which a body's JSON allows either.

The endpoints read their options here rather than through FastAPI's dependency injection, which
solved a one-record ``/predict``'s two parameters and this check in about 80 µs, a sixth of the
request's time in the process; most requests carry no query string at all, and cost nothing here.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from servekit.errors import FieldProblem, from_validation_errors, invalid_fields
from servekit.reasons import MAX_REASONS
from servekit.rest.openapi import error_response
from servekit.rest.schemas import ErrorBody

#: The spellings of ``explain``, in any case: JSON's booleans, as the body and /v2's parameters take it.
BOOLEANS = {"true": True, "false": False}
#: A count as JSON writes one: no sign, space, separator, fraction or leading zero.
COUNT = re.compile(r"0|[1-9][0-9]*")


class PredictionQuery(BaseModel):
    """The options of ``POST /predict`` and ``POST /predict/batch``: ``explain`` true or false, and
    ``reasons`` a whole number in plain digits; any other spelling is refused, naming what is taken."""

    model_config = ConfigDict(frozen=True)

    explain: bool = Field(
        False,
        description="true (in any case) adds SHAP feature contributions to each prediction; false, or "
        "leaving it out, does not. No other value is taken",
    )
    reasons: int = Field(
        0,
        ge=0,
        le=MAX_REASONS,
        description=(
            "Add each prediction's N principal reasons: the inputs that argued most for its answer "
            "(the largest SHAP contributions toward a label; either way for a number), strongest "
            "first, each with its value and signed contribution (the "
            "explanation's own numbers, which it adds only with explain=true). In plain digits, "
            "without sign, spaces or leading zeros"
        ),
    )

    @field_validator("explain", mode="before")
    @classmethod
    def _true_or_false(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if value.lower() not in BOOLEANS:
            raise ValueError(f"{value!r} is neither true nor false; send explain=true or explain=false")
        return BOOLEANS[value.lower()]

    @field_validator("reasons", mode="before")
    @classmethod
    def _digits_alone(cls, value: object) -> object:
        # int() reads "3_0" as 30 and " +03" as 3: a typo for 3 asked for thirty, and a client that
        # sent "3.0" never learnt its JSON would be refused.
        if isinstance(value, str) and not COUNT.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a whole number in plain digits; send one such as 3 "
                "(no sign, space, fraction or leading zero)"
            )
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

    def refusal(self) -> dict[int | str, dict[str, Any]]:
        """The ``responses`` entry of the 422 :meth:`check` answers, for an endpoint's document."""
        return {
            422: error_response(
                ErrorBody, f"A query parameter this endpoint does not take ({self.takes}), or one given twice"
            )
        }

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
