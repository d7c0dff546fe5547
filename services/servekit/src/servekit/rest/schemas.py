"""Response and batch models shared by every service (for validation and the OpenAPI document)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model


class ModelRef(BaseModel):
    name: str
    version: str


class ExplanationBody(BaseModel):
    scale: str = Field(description="What the numbers are: log-odds, probability, USD, ...")
    base_value: float = Field(description="Expected model output over the training data")
    output_value: float = Field(description="base_value + sum(contributions): the explained output")
    contributions: dict[str, float] | list[dict[str, Any]] = Field(
        description="SHAP value per input field (per token for text)"
    )


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model: ModelRef | None = None
    error: str | None = None


class ErrorField(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    error: str
    message: str
    fields: list[ErrorField]


@cache
def batch_request(instance: type[BaseModel]) -> type[BaseModel]:
    """``{"instances": [<instance>, ...]}`` for one service's instance model."""
    items: Any = list[instance]  # type: ignore[valid-type]  # a runtime-built model
    return create_model(
        f"{instance.__name__}Batch",
        __config__=ConfigDict(extra="forbid"),
        instances=(items, Field(min_length=1, description="Instances, predicted in order")),
    )


@cache
def prediction_response(prediction: type[BaseModel]) -> type[BaseModel]:
    return create_model(
        f"{prediction.__name__}Response",
        __base__=prediction,
        model=(ModelRef, ...),
        explanation=(ExplanationBody | None, None),
    )


@cache
def batch_response(prediction: type[BaseModel]) -> type[BaseModel]:
    items: Any = list[prediction_response(prediction)]  # type: ignore[misc]
    return create_model(
        f"{prediction.__name__}BatchResponse", model=(ModelRef, ...), predictions=(items, ...)
    )
