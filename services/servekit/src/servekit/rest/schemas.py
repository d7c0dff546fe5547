"""Response and batch models shared by every service (for validation and the OpenAPI document)."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.config import JsonDict

from servekit.errors import ERROR_CODE_DESCRIPTION, ErrorCode


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
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "loading"] = Field(
        description="ready (200) once the model is loaded, else loading (503)"
    )
    model: ModelRef | None = None
    error: str | None = None


class ErrorField(BaseModel):
    field: str = Field(description="Where: body, a field (instances[3].Age), query.<name> or headers.<name>")
    problem: str


class ErrorBody(BaseModel):
    """servekit's error body: error is the machine-readable code, message the text for a person.

    The /v2 paths answer the Open Inference Protocol's body instead (InferenceError), where the
    protocol fixes error as the message; the same code is in its code."""

    error: ErrorCode = Field(description=ERROR_CODE_DESCRIPTION)
    message: str = Field(description="What went wrong and what to send instead, for a person")
    fields: list[ErrorField]


class RefreshStatus(BaseModel):
    """How a model follows its registry alias: absent (null) when it does not."""

    every_seconds: float = Field(description="How often the alias is checked")
    last_check: str | None = Field(description="When it was last checked (RFC 3339); null before the first")
    error: str | None = Field(description="Why the last check or load failed; null when it worked")


class LiveEvaluationStatus(BaseModel):
    """The latest evaluation of the version's answers against the truth (``mlp evaluate``)."""

    latest: dict[str, Any] | None = Field(
        description="The version's latest record (metric, estimate, ci_low, ci_high, answers, verdict, ...)"
    )
    every_seconds: float = Field(description="How often the registry is read for a newer record")
    last_check: str | None = Field(description="When it was last read (RFC 3339)")
    error: str | None = Field(description="Why the last read failed; null when it worked")


class ShadowStatus(BaseModel):
    uri: str
    version: str | None = Field(description="The shadow version loaded; null until it loads")
    run_id: str | None
    ready: bool
    error: str | None = Field(description="Why it has not loaded yet")
    sample_rate: float = Field(description="Share of prediction requests also sent to it")
    max_pending: int = Field(description="Instances waiting for it beyond which requests are not sent")
    refresh: RefreshStatus | None
    live_comparison: LiveEvaluationStatus | None = Field(
        description="Its latest comparison with the served answers"
    )


class CanaryStatus(BaseModel):
    uri: str
    version: str | None = Field(description="The canary version loaded; null until it loads")
    run_id: str | None
    ready: bool
    error: str | None = Field(description="Why it has not loaded yet")
    ended: str | None = Field(description="Why no canary is served any more (its alias is gone)")
    traffic_percent: float = Field(description="Its share of prediction requests, as set")
    traffic_percent_from: str = Field(description="Where the share comes from: the setting or the registry")
    traffic_percent_error: str | None = Field(description="Why the registry's share could not be read")
    receiving_percent: float = Field(
        description="The share it answers now (0 until it loads, or once stopped)"
    )
    stopped: dict[str, Any] | None = Field(description="Why this pod stopped it, if it did")
    refresh: RefreshStatus | None


class CaptureStatus(BaseModel):
    percent: float = Field(description="Share of prediction requests whose answers are captured")
    logger: str = Field(description="The logger the captured lines are written to")
    format: str = Field(description="The lines' format")


class AdmissionStatus(BaseModel):
    limit: int = Field(description="Prediction requests answered at once (0: no limit)")
    in_flight: int
    instance_limit: int = Field(description="Batch instances in flight at once (0: no limit)")
    instances_in_flight: int
    client_limit: int = Field(description="Requests one API key may have in flight (0: no limit)")
    clients_in_flight: int = Field(description="How many clients have requests in flight")
    max_loop_lag_seconds: float = Field(
        description="How late the event loop may run before prediction requests are refused (0: never)"
    )


class Baselines(BaseModel):
    """What the served version's live figures are compared with (the drift alerts)."""

    outcome_shares: dict[str, float] = Field(description="Share of each outcome over the held-out rows")
    attribution_means: dict[str, float] = Field(description="Mean absolute SHAP contribution of each input")
    input_shares: dict[str, dict[str, float]] = Field(description="Share of each input's bins")
    input_baseline: dict[str, Any] = Field(description="Which rows the input shares are over")
    input_bins: list[dict[str, Any]] = Field(description="Cut points of each input's numbered bins")
    training_ranges: dict[str, dict[str, Any]] = Field(
        description="Each ranged model column's range over the training rows (empty for a text model)"
    )


class TextPreprocessing(BaseModel):
    """How a text model reads its input before its first fitted step (NLPInsight)."""

    text_normalizer: str = Field(description="The function of the service's code that normalises the text")
    version: str = Field(description="The normalisation's version: v1, v2, ...; a released one never changes")
    description: str = Field(description="What the normalisation does")
    chosen_by: str = Field(
        description=(
            "How the version was settled: recorded in the model file, or, for a file older than "
            "the recorded versions, from its fitted vocabularies"
        )
    )


class CodeVersion(BaseModel):
    """The code of a training run or of a replica (``servekit.provenance``)."""

    revision: str | None = Field(
        description="The git commit the code was installed from (an image's build commit); null if unknown"
    )
    modified: bool | None = Field(
        description="Whether tracked files had changed since that commit (null: not known, as in an image)"
    )
    packages: dict[str, str] = Field(description="The version of servekit and of the service's package")


class ModelInfo(BaseModel):
    """``GET /model``: the served version, how it was trained and evaluated, and how it is served.

    The artifact's own records (``data``, ``segments``, ``parity``) are objects whose keys are the
    service's: described in the model card (``GET /model/card``)."""

    name: str
    version: str
    uri: str = Field(description="The model URI served (credentials masked)")
    registry_uri: str
    run_id: str = Field(description="The training run (empty for a model not from a registry)")
    training_metrics: dict[str, float] = Field(description="Held-out figures recorded with the run")
    explanation_scale: str = Field(
        description="What explanations' numbers are: log-odds, probability, USD, ..."
    )
    explanation_method: str
    feature_schema: dict[str, Any] = Field(description="The request's JSON Schema the version was trained on")
    data: dict[str, Any] = Field(description="The training data: source, rows, checksum")
    code: CodeVersion | None = Field(
        description="The code the version was trained with; null for a model trained before it was recorded"
    )
    serving_code: CodeVersion = Field(description="The code this replica serves it with")
    segments: dict[str, Any] = Field(description="The primary held-out metric per group of rows")
    parity: dict[str, Any] = Field(description="Decision and error rates per group, and their gaps")
    baselines: Baselines
    threshold: float | None = Field(None, description="A classifier's decision threshold, if it has one")
    classes: list[str] | None = Field(None, description="A multiclass model's classes, if it has them")
    preprocessing: TextPreprocessing | None = Field(
        None,
        description=(
            "A text model's normalisation of its input, the one it was fitted with (NLPInsight); "
            "absent for a service without one"
        ),
    )
    load_seconds: dict[str, float] = Field(
        description="How long each phase of its load took (fetch, build, warm_up)"
    )
    refresh: RefreshStatus | None
    live_evaluation: LiveEvaluationStatus | None = Field(description="Null when the registry is not read")
    shadow: ShadowStatus | None = Field(description="Null without a shadow model")
    canary: CanaryStatus | None = Field(description="Null without a canary")
    capture: CaptureStatus | None = Field(description="Null when no answers are captured")
    admission: AdmissionStatus


@cache
def batch_request(instance: type[BaseModel], max_instances: int | None = None) -> type[BaseModel]:
    """``{"instances": [<instance>, ...]}`` for one service's instance model.

    ``max_instances`` is documented (``maxItems``), not validated here: a batch over it is the 413
    the setting promises (``servekit.inference``), before any instance is read.
    """
    items: Any = list[instance]  # type: ignore[valid-type]  # a runtime-built model
    description = "Instances, predicted in order"
    limit: dict[str, Any] = {}
    if max_instances is not None:
        description += f"; at most {max_instances} (more is a 413)"
        limit["maxItems"] = max_instances
    # Two of the instance's examples, as a batch request: the document's example of one.
    rows = instance.model_json_schema().get("examples", [])[:2]
    examples: JsonDict | None = {"examples": [{"instances": rows}]} if rows else None
    return create_model(
        f"{instance.__name__}Batch",
        __config__=ConfigDict(extra="forbid", json_schema_extra=examples),
        instances=(items, Field(min_length=1, description=description, json_schema_extra=limit)),
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
            Field(None, description="With ?reasons=N: the N inputs that argued most for it, strongest first"),
        ),
    )


@cache
def batch_response(prediction: type[BaseModel], outside_training: bool = False) -> type[BaseModel]:
    items: Any = list[prediction_response(prediction, outside_training)]  # type: ignore[misc]
    return create_model(
        f"{prediction.__name__}BatchResponse", model=(ModelRef, ...), predictions=(items, ...)
    )
