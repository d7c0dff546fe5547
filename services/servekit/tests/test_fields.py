from __future__ import annotations

import math

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from servekit.fields import WholeNumber


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    n: WholeNumber


@pytest.mark.parametrize(("sent", "taken"), [(b"42", 42), (b"42.0", 42), (b"-3.0", -3), (b"1e3", 1000)])
def test_an_integer_or_a_whole_float_is_the_integer(sent: bytes, taken: int) -> None:
    n = Strict.model_validate_json(b'{"n": ' + sent + b"}").n
    assert n == taken
    assert type(n) is int


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        (b"42.5", "Input should be a valid integer, got a number with a fractional part"),
        (b"true", "Input should be a valid integer"),
        (b'"42"', "Input should be a valid integer"),
        (b"NaN", "Input should be a valid integer"),
        (b"null", "Input should be a valid integer"),
    ],
)
def test_a_fraction_a_boolean_a_string_nan_or_null_is_refused_in_the_integers_words(
    sent: bytes, problem: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Strict.model_validate_json(b'{"n": ' + sent + b"}")
    assert [error["msg"] for error in caught.value.errors()] == [problem]


def test_lax_validation_keeps_its_own_conversions() -> None:
    """``mlp score`` validates a CSV's cells in lax mode: "42" is 42 there, and a fraction still is not."""
    assert Strict.model_validate({"n": "42"}, strict=False).n == 42
    with pytest.raises(ValidationError, match="fractional part"):
        Strict.model_validate({"n": 2.5}, strict=False)
    with pytest.raises(ValidationError):
        Strict.model_validate({"n": math.inf}, strict=False)
