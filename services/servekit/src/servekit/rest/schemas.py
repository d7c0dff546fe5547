"""Response and batch models shared by every service (for validation and the OpenAPI document)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model


class ModelRef(BaseModel):
    name: str
    version: str


class ExplanationBody(BaseModel):
    """A tabular model's explanation (TreeSHAP); a service whose explanation differs names its own
    model as its response model's ``explanation_model`` (:func:`explanation_body`)."""

    scale: str = Field(description="What the numbers are: log-odds, probability, USD, ...")
    base_value: float = Field(
        description=(
            "The model's expected output over its training rows, on the explanation's scale: "
            "where the contributions start from"
        )
    )
    output_value: float = Field(description="base_value + sum(contributions): the explained output")
    contributions: dict[str, float] | list[dict[str, Any]] = Field(
        description="Exact SHAP value of each request field, on the explanation's scale"
    )


def explanation_body(prediction: type[BaseModel]) -> type[BaseModel]:
    """The explanation model of a service's answers: its response model's ``explanation_model``
    class attribute if it has one (a text model explains tokens, with their offsets), else
    :class:`ExplanationBody`. The OpenAPI document then describes what the service returns."""
    own = getattr(prediction, "explanation_model", None)
    return own if isinstance(own, type) and issubclass(own, BaseModel) else ExplanationBody


class ReasonBody(BaseModel):
    field: str = Field(description="The request field (for text, a word of it)")
    value: Any = Field(description="The request's value of the field; null for a word of a text")
    contribution: float = Field(
        description="Its signed SHAP contribution on the explanation's scale: positive pushes the output up"
    )


class OutsideTrainingBody(BaseModel):
    field: str = Field(description="The request field")
    column: str = Field(description="The model column outside: the field, or one derived from it (a year)")
    value: float = Field(description="The column's value for this request")
    training_min: float = Field(description="Lowest value of the column over the training rows")
    training_max: float = Field(description="Highest value of the column over the training rows")


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


#: The ``outside_training`` field of a service whose model keeps its training ranges.
_OUTSIDE_TRAINING = (
    list[OutsideTrainingBody] | None,
    Field(
        None,
        description=(
            "Inputs outside the range of the model's training rows, where a tree answers as "
            "at the nearest edge of what it saw (empty: every input inside). Absent when "
            "the served version was trained before ranges were kept."
        ),
    ),
)


@cache
def prediction_response(prediction: type[BaseModel], outside_training: bool = False) -> type[BaseModel]:
    """One answer: ``prediction``'s fields, the model, and what the service adds to each answer."""
    added: dict[str, Any] = {}
    explanation: Any = explanation_body(prediction) | None
    if outside_training:
        added["outside_training"] = _OUTSIDE_TRAINING
    return create_model(
        f"{prediction.__name__}Response",
        __base__=prediction,
        model=(ModelRef, ...),
        **added,
        explanation=(explanation, Field(None, description="With ?explain=true: why the model answered so")),
        reasons=(
            list[ReasonBody] | None,
            Field(None, description="With ?reasons=N: the N inputs that moved it most, strongest first"),
        ),
    )


@cache
def batch_response(prediction: type[BaseModel], outside_training: bool = False) -> type[BaseModel]:
    items: Any = list[prediction_response(prediction, outside_training)]  # type: ignore[misc]
    return create_model(
        f"{prediction.__name__}BatchResponse", model=(ModelRef, ...), predictions=(items, ...)
    )
