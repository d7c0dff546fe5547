"""Transport-agnostic inference: validate a batch, run the model, shape the JSON.

The REST app, the SageMaker handlers and the Vertex AI predictor all go through
these functions, so the same inputs give byte-identical JSON whatever the
transport (and the same 422 body for the same bad input).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import jiter
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from servekit import input_drift
from servekit.errors import FieldProblem, ServekitError, from_validation_errors, invalid_field, location
from servekit.model import EXPLANATION_FIELD, OUTSIDE_TRAINING, Record, ServedModel
from servekit.reasons import REASONS_FIELD, principal_reasons

if TYPE_CHECKING:
    from servekit.metrics import ServiceMetrics

T = TypeVar("T")

logger = logging.getLogger("servekit.inference")
#: (what, name, version) of each model for which something beside the answer failed once already.
_FAILED_ONCE: set[tuple[str, str, str]] = set()


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
    *,
    served: ServedModel | None = None,
    explained: Callable[[Iterable[Mapping[str, float]]], None] | None = None,
    reasons: int = 0,
) -> list[dict[str, Any]]:
    """Predictions for validated records, in order, with ``explanation`` when asked, the
    ``reasons`` principal reasons of each (``servekit.reasons``; the explanation runs for them
    even when not returned) and, from a model that keeps its training ranges, ``outside_training``.

    With ``metrics``, the inputs are counted for drift in the training bins of ``served``, the
    model the service publishes in ``model_info`` (``model`` unless a canary answers), and the
    attributions and the inputs outside the training range only when ``served`` is the model that
    answered (every answer lists its own, whichever model gave it): a canary's, joined on
    ``model_info``, would be counted under the served version and set against its training
    baseline. The caller counts outcomes (``ServiceMetrics.count_outcomes``) by the same rule.
    ``explained`` gets every explanation's attributions, whichever model answered (a canary
    rollout's per-variant series).
    """
    timings = timings or _NoTimings()
    served = served or model
    with timings.phase("predict"):
        predictions = model.predict(records)
    # The served model's answers only, as its outcomes are counted: the alert's denominator.
    if metrics is not None and served is model and model.keeps_training_ranges:
        metrics.count_outside_training(p.get(OUTSIDE_TRAINING) for p in predictions)
    if metrics is not None and served.input_bins and metrics.watch_inputs:
        count_inputs(served, records, metrics)
    if explain or reasons:
        start = time.perf_counter()
        with timings.phase("explain"):
            explanations = model.explain(records)
        if metrics is not None:
            metrics.explanation_latency.observe(time.perf_counter() - start)
            if served is model:
                metrics.count_explanations(e.attributions for e in explanations)
        if explained is not None:
            explained(e.attributions for e in explanations)
        for record, prediction, explanation in zip(records, predictions, explanations, strict=True):
            if explain:
                prediction[EXPLANATION_FIELD] = explanation.as_json()
            if reasons:
                values = record if model.contributions_are_fields else {}
                toward = model.reasons_toward(prediction)
                contributions = explanation.contributions
                prediction[REASONS_FIELD] = principal_reasons(contributions, values, reasons, toward)
    return predictions


def count_inputs(model: ServedModel, records: Sequence[Record], metrics: ServiceMetrics) -> None:
    """Count the records' inputs for drift; a failure here never costs the prediction."""
    try:
        metrics.count_inputs(input_drift.count(model.input_bins, model.monitored_inputs(records)))
    except Exception:
        log_failure_once(model, "counting inputs for drift")


def log_failure_once(model: ServedModel, what: str) -> None:
    """Log the exception being handled, once per model version and ``what`` failed.

    For work beside the answer, whose failure must not cost it: a bug that failed every request
    would otherwise fill the log.
    """
    key = (what, model.artifact.name, model.artifact.version)
    if key not in _FAILED_ONCE:
        _FAILED_ONCE.add(key)
        logger.exception(
            "%s failed (logged once for version %s); predictions go on", what, model.artifact.version
        )


def batch_body(model: ServedModel, predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The body of ``POST /predict/batch``: ``{"model": ..., "predictions": [...]}``."""
    ref = model_ref(model)
    return {"model": ref, "predictions": [{**p, "model": ref} for p in predictions]}


def check_batch_size(count: int, limit: int, service: str | None = None, *, where: str = "instances") -> None:
    """A 413 when ``count`` instances are over ``limit``, naming ``<SVC>_MAX_BATCH_SIZE`` when
    ``service`` is given and ``where`` (the field that holds them)."""
    if count > limit:
        setting = f" ({service.upper()}_MAX_BATCH_SIZE)" if service else ""
        raise ServekitError(
            413,
            "batch_too_large",
            f"{count} instances; the limit is {limit}{setting}; send at most {limit} per request",
            (FieldProblem(where, f"{count} instances, over the limit of {limit}{setting}"),),
        )


def batch_adapter(request: type[BaseModel]) -> TypeAdapter[Any]:
    """Validator of ``{"instances": [...]}`` for one service's request model."""
    from servekit.rest import schemas

    return TypeAdapter(schemas.batch_request(request))


#: A body up to this size is validated as it comes; a larger one has its object fields counted
#: first (:func:`refuse_field_floods`). A full BankChurn batch is 50 KB.
COUNTED_BODY_BYTES = 65_536


def fields_limit(instance: type[BaseModel], max_batch_size: int) -> int:
    """The most object fields a prediction body can hold: a full batch of instances, with room for
    the envelope (``instances``; an Open Inference request's tensors and their parameters)."""
    return max_batch_size * (len(instance.model_fields) + 4) + 64


def refuse_field_floods(body: bytes | str, limit: int) -> None:
    """A 422 for a body over :data:`COUNTED_BODY_BYTES` holding more object fields than ``limit``.

    pydantic reports every unknown field of a megabyte of them, 100,000, and holds the interpreter
    (the event loop, and the probes behind it) for a second doing it, in any thread; counting them
    first takes 55 ms. A body that is not JSON is left to validation, which says where it breaks.
    """
    if len(body) <= COUNTED_BODY_BYTES:
        return
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        parsed = jiter.from_json(raw, cache_mode=False)
    except ValueError:
        return
    count, stack = 0, [parsed]
    while stack and count <= limit:
        value = stack.pop()
        if isinstance(value, dict):
            count += len(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    if count > limit:
        raise invalid_field(
            "body",
            f"holds over {limit:,} fields, more than a request of the largest batch can; "
            "send only the fields of the request's schema (GET /openapi.json)",
        )


def validate_json(adapter: TypeAdapter[T], body: bytes | str) -> T:
    """A JSON body validated by ``adapter``; a 422 ServekitError naming each bad field.

    A key given twice in one object is a 422 too: JSON parsers keep the last value (pydantic's
    does), so ``{"Age": 42, "Age": 24}`` would silently drop one of the client's values, and two
    parsers in a chain (a gateway's and ours) could each read a different one.
    """
    try:
        validated = adapter.validate_json(body)
    except ValidationError as exc:
        # Neither the input nor the context of each error: the refusal names the field and the
        # problem, and a body of 100,000 bad keys made them a quarter of a second on the loop.
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise from_validation_errors(errors) from exc
    # Checked once the body validated: it is well-formed JSON, so the one thing this parse can
    # still object to is a repeated key. It costs about as much as validation (1.4 µs for one
    # BankChurn instance, 1.2 ms for 1,000).
    reject_duplicate_keys(body)
    return validated


def reject_duplicate_keys(body: bytes | str) -> None:
    """A 422 naming the field when an object of this well-formed JSON gives a key twice."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        jiter.from_json(raw, catch_duplicate_keys=True)
    except ValueError as exc:
        raise duplicate_key(str(exc), body) from None


_DUPLICATE = re.compile(r'duplicate key "(?P<key>.*)" at line (?P<line>\d+) column (?P<column>\d+)')


def duplicate_key(message: str, body: bytes | str | None = None) -> ServekitError:
    """The 422 of the parser's ``message`` on a repeated key, naming the field by its path in
    ``body`` (``instances[3].Age``, ``parameters.explain``) as every other problem is named."""
    found = _DUPLICATE.search(message)
    if found is None:
        return invalid_field("body", f"not accepted: {message}")
    key = _unescaped(found["key"])
    return invalid_field(
        (body is not None and repeated_key_path(body, key)) or key,
        f"given more than once in one object (again near line {found['line']}, column "
        f"{found['column']}); send each field once",
    )


def repeated_key_path(body: bytes | str, key: str) -> str | None:
    """Where in ``body`` an object first gives ``key`` twice, or None if it cannot be told.

    The parser that finds a repeat names the key alone. Only a refused body is parsed again, with
    a hook that sees each object's pairs before they become a dict, so the one that repeated
    ``key`` is known by identity and found in the parsed tree.
    """
    repeating: list[dict[str, Any]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        parsed = dict(items)
        if not repeating and len(parsed) < len(items) and sum(k == key for k, _ in items) > 1:
            repeating.append(parsed)
        return parsed

    try:
        tree = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    if not repeating:
        return None
    stack: list[tuple[Any, list[int | str]]] = [(tree, [])]
    while stack:
        node, path = stack.pop()
        if node is repeating[0]:
            return location([*path, key])
        children = (
            node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        )
        stack.extend((child, [*path, name]) for name, child in children)
    return None


def _unescaped(key: str) -> str:
    """The parser quotes a key as written in the body; the client named the field it decodes to."""
    try:
        decoded = orjson.loads(f'"{key}"')
    except orjson.JSONDecodeError:
        return key
    return decoded if isinstance(decoded, str) else key


def validate_batch_json(
    adapter: TypeAdapter[Any],
    body: bytes | str,
    max_batch_size: int | None = None,
    service: str | None = None,
) -> list[Record]:
    """Records of a ``{"instances": [...]}`` JSON body; a 422 ServekitError naming each bad field.

    With ``max_batch_size``, more instances than that are a 413 (naming ``service``'s setting)
    whatever they hold: the limit the setting promises, not a 422 listing every problem of 257 bad
    instances. Counted apart only when the body fails validation; a valid one's are its records.
    """
    try:
        records = [instance.model_dump() for instance in validate_json(adapter, body).instances]
    except ServekitError:
        if max_batch_size is not None:
            check_batch_size(instances_sent(body), max_batch_size, service)
        raise
    if max_batch_size is not None:
        check_batch_size(len(records), max_batch_size, service)
    return records


def instances_sent(body: bytes | str) -> int:
    """How many instances a batch body holds, however bad each is (0 if it is not JSON, or no
    ``instances`` list)."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        parsed = jiter.from_json(raw, cache_mode=False)
    except ValueError:
        return 0
    instances = parsed.get("instances") if isinstance(parsed, dict) else None
    return len(instances) if isinstance(instances, list) else 0
