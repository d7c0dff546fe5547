"""The MLflow signature of a service's model: what the registry tells anyone who calls it directly.

MLflow infers a signature from a sample, so whether a column may be missing depends on which rows
the sample happened to hold: ChicagoTaxi's read "trip_miles optional" (the API requires it) and
"pickup_community_area required" (the API accepts null). The service's request schema already
says which fields may be null, so the signature takes it from there and only the column types
from the data.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
from pydantic import BaseModel

from servekit.errors import ServekitError


def nullable_fields(request: type[BaseModel]) -> dict[str, bool]:
    """Each request field (by its JSON name) and whether it may be null or left out as null."""
    properties: dict[str, Any] = request.model_json_schema()["properties"]
    return {name: _admits_null(schema) for name, schema in properties.items()}


def _admits_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null":
        return True
    return any(_admits_null(choice) for choice in schema.get("anyOf", ()))


def model_signature(request: type[BaseModel], inputs: pd.DataFrame, outputs: Any) -> Any:
    """Column types from ``inputs``; a column is optional exactly when its request field is nullable.

    A nullable column MLflow types as an integer becomes a double: an integer column cannot
    hold a missing value (MLflow's own advice, which it otherwise prints as a warning).
    """
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, DataType, Schema, TensorSpec

    nullable = nullable_fields(request)
    if set(inputs.columns) != set(nullable):
        raise ServekitError(
            500,
            "schema_mismatch",
            f"{request.__name__} fields {sorted(nullable)} are not the model's input columns "
            f"{sorted(map(str, inputs.columns))}",
        )
    with warnings.catch_warnings():
        # The hint about integer columns and missing values; answered below, column by column.
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
        inferred = infer_signature(inputs, outputs)
    columns: list[ColSpec | TensorSpec] = []
    for column in inferred.inputs.inputs:
        optional = nullable[column.name]
        kind = column.type
        if optional and kind in (DataType.integer, DataType.long):
            kind = DataType.double
        columns.append(ColSpec(kind, column.name, required=not optional))
    return ModelSignature(inputs=Schema(columns), outputs=inferred.outputs, params=inferred.params)
