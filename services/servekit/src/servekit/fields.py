"""Field types for the services' request models, where pydantic's strict mode and the published
JSON Schema part ways.

A request model is strict ("42" is not an age), and its OpenAPI document says ``"type":
"integer"``. JSON Schema counts ``42.0`` an integer (2020-12, the draft of OpenAPI 3.1: a number
with no fractional part), and so do the clients that write one: a data frame's integer column
with a gap is floats, and ``to_json`` writes ``42.0``. Strict pydantic refuses it, so a request
valid by the document was a 422. :data:`WholeNumber` takes it as the integer it is, and still
refuses ``42.5``, ``"42"`` and ``true`` (JSON Schema's integers are no booleans either).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError


def whole_number(value: Any) -> Any:
    """``42.0`` as the integer 42; a finite fraction refused in pydantic's lax words; anything
    else left to the integer's own validation (a string, a boolean, NaN: its error names it)."""
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer():
            return int(value)
        raise PydanticCustomError(
            "int_from_float", "Input should be a valid integer, got a number with a fractional part"
        )
    return value


#: An integer field that also takes a JSON number without a fractional part (``42.0``).
WholeNumber = Annotated[int, BeforeValidator(whole_number)]
