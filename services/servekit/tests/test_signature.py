"""The registered signature takes optionality from the request schema, not from a data sample."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from mlflow.types.schema import DataType
from pydantic import BaseModel, Field

from servekit.errors import ServekitError
from servekit.training.signature import model_signature, nullable_fields


class Visit(BaseModel):
    age: int = Field(ge=0)
    rooms: int | None = None
    city: str
    note: str | None = Field(default=None, max_length=10)


def columns(signature: object) -> dict[str, tuple[DataType, bool]]:
    return {c.name: (c.type, c.required) for c in signature.inputs.inputs}  # type: ignore[attr-defined]


def test_nullable_fields_read_the_json_schema() -> None:
    assert nullable_fields(Visit) == {"age": False, "rooms": True, "city": False, "note": True}


def test_optional_columns_are_the_nullable_fields_whatever_the_sample_holds() -> None:
    # A sample with no missing value anywhere: MLflow alone would call every column required and
    # type ``rooms`` as an integer, which cannot hold the missing value the API accepts.
    sample = pd.DataFrame({"age": [30, 41], "rooms": [2, 3], "city": ["Lyon", "Nice"], "note": ["a", "b"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signature = model_signature(Visit, sample, pd.Series([0.1, 0.7]))
    assert columns(signature) == {
        "age": (DataType.long, True),
        "rooms": (DataType.double, False),
        "city": (DataType.string, True),
        "note": (DataType.string, False),
    }
    assert signature.outputs is not None


def test_a_sample_missing_a_required_field_does_not_make_it_optional() -> None:
    sample = pd.DataFrame(
        {"age": [30, None], "rooms": [None, None], "city": ["Lyon", None], "note": [None, None]}
    )
    assert columns(model_signature(Visit, sample, pd.Series([0.1, 0.7])))["city"] == (DataType.string, True)


def test_columns_that_are_not_the_request_fields_are_a_service_bug() -> None:
    sample = pd.DataFrame({"age": [30], "city": ["Lyon"], "floor": [2]})
    with pytest.raises(ServekitError) as caught:
        model_signature(Visit, sample, pd.Series([0.1]))
    assert caught.value.error == "schema_mismatch"
    assert "['age', 'city', 'note', 'rooms']" in caught.value.message
    assert "['age', 'city', 'floor']" in caught.value.message
