"""Transport-agnostic inference: validate a batch, run the model, shape the JSON.

The REST app, the SageMaker handlers and the Vertex AI predictor all go through
these functions, so the same inputs give byte-identical JSON whatever the
transport (and the same 422 body for the same bad input).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from servekit.errors import ServekitError, from_validation_errors
from servekit.model import Record, ServedModel

if TYPE_CHECKING:
    from servekit.metrics import ServiceMetrics


class PhaseTimer(Protocol):
    """Anything that times named phases (``servekit.rest.telemetry.Timings``)."""

    def phase(self, name: str) -> AbstractContextManager[None]: ...


class _NoTimings:
    def phase(self, name: str) -> AbstractContextManager[None]:
        return nullcontext()


def encode_json(content: Any) -> bytes:
    """The one JSON encoder of every transport (numpy scalars allowed)."""
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def model_ref(model: ServedModel) -> dict[str, str]:
    return {"name": model.artifact.name, "version": model.artifact.version}


def run_model(
    model: ServedModel,
    records: Sequence[Record],
    explain: bool,
    timings: PhaseTimer | None = None,
    metrics: ServiceMetrics | None = None,
) -> list[dict[str, Any]]:
    """Predictions (with ``explanation`` when asked) for validated records, in order."""
    timings = timings or _NoTimings()
    with timings.phase("predict"):
        predictions = model.predict(records)
    if metrics is not None:
        metrics.count_outcomes(model.outcome(p) for p in predictions)
    if explain:
        start = time.perf_counter()
        with timings.phase("explain"):
            explanations = model.explain(records)
        if metrics is not None:
            metrics.explanation_latency.observe(time.perf_counter() - start)
            metrics.count_explanations(e.attributions for e in explanations)
        for prediction, explanation in zip(predictions, explanations, strict=True):
            prediction["explanation"] = explanation.as_json()
    return predictions


def batch_body(model: ServedModel, predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The body of ``POST /predict/batch``: ``{"model": ..., "predictions": [...]}``."""
    ref = model_ref(model)
    return {"model": ref, "predictions": [{**p, "model": ref} for p in predictions]}


def check_batch_size(count: int, limit: int) -> None:
    if count > limit:
        raise ServekitError(413, "batch_too_large", f"{count} instances; the limit is {limit}")


def batch_adapter(request: type[BaseModel]) -> TypeAdapter[Any]:
    """Validator of ``{"instances": [...]}`` for one service's request model."""
    from servekit.rest import schemas

    return TypeAdapter(schemas.batch_request(request))


def validate_batch_json(adapter: TypeAdapter[Any], body: bytes | str) -> list[Record]:
    """Records of a ``{"instances": [...]}`` JSON body; a 422 ServekitError naming each bad field."""
    try:
        instances = adapter.validate_json(body).instances
    except ValidationError as exc:
        raise from_validation_errors(exc.errors(include_url=False)) from exc
    return [instance.model_dump() for instance in instances]
