"""The principal reasons of a prediction: the inputs whose SHAP contributions argued most for it.

An adverse-action notice gives an applicant the principal reasons for a decision, and a reviewer
of a retention list asks the same of each customer: which inputs, with what values, pushed this
answer which way. ``?reasons=N`` on the API and ``mlp score --reasons N`` both give them, read
off the exact explanation the API returns: no second method, so a reason never disagrees with
the explanation an auditor holds it against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ModelWrapValidatorHandler, model_validator

#: The most reasons one answer lists. A notice names four at most; text may attribute to more
#: words, and a client asking past this is answered 422 rather than sent every word of a long text.
MAX_REASONS = 50

#: The answer's field that lists them.
REASONS_FIELD = "reasons"


def reasons_problem(value: object) -> str | None:
    """What is wrong with a count of reasons sent as a JSON value, or None. Every transport but
    the query string (whose parser words its own) refuses a bad count with these words."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REASONS:
        return None
    return f"{value!r} is not an integer from 0 to {MAX_REASONS}"


#: Each reason's parts, in the order a reader wants them.
REASON_PARTS = ("field", "value", "contribution")


class SentRecord(dict[str, Any]):
    """A validated record that also holds the fields as the caller sent them (``sent``).

    The model needs the validated form, a reader the sent one: ChicagoTaxi's timestamp is
    validated into epoch seconds of Chicago wall-clock time and an unseen payment type into
    ``"other"``, and a reason that says ``1425204000.0`` or ``"other"`` where the caller sent
    ``"2015-03-01T16:00:00Z"`` or ``"Mobile"`` explains nothing the caller can check. Every
    transport turns a request into a record with ``model_dump()``, so the request model is the
    one place both forms meet (``KeepsSentValues``).
    """

    sent: Mapping[str, Any] = {}


class KeepsSentValues(BaseModel):
    """Base of a request model whose validation rewrites values: its ``model_dump()`` is a
    ``SentRecord``, so that the reasons of an answer show the values as sent."""

    # A slot, not a pydantic private attribute: those cost 2.5 µs an instance to set up, a slot
    # nothing (a validation is 4 µs). It is no field: not validated, dumped or in the schema.
    __slots__ = ("_sent",)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_sent(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        instance = handler(data)
        if isinstance(data, Mapping):  # the request as parsed; kept, not copied (read-only here)
            object.__setattr__(instance, "_sent", data)
        return instance

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        record = SentRecord(super().model_dump(**kwargs))
        record.sent = getattr(self, "_sent", {})  # none on a copy (model_copy): the validated values
        return record


def principal_reasons(
    contributions: Mapping[str, float], record: Mapping[str, Any], count: int, toward: int = 0
) -> list[dict[str, Any]]:
    """The ``count`` inputs whose contributions moved the answer most toward what it is, strongest
    first.

    ``toward`` is the sign of a contribution that argued for the answer given
    (:meth:`servekit.model.ServedModel.reasons_toward`): +1 for a churn label on the log-odds of
    churn, -1 for a stay; only those are reasons. An adverse-action notice states the principal
    reasons for the decision, and an input that argued against it is none: ranked either way, 110
    of 288 customers a real-data model flagged to churn had a factor lowering their churn among
    their three reasons, 8 of them first. 0 (an answer with no direction: a regressor's number)
    ranks them either way. The explanation keeps every contribution, either way.

    Each is its ``field``, the row's ``value`` of it as the caller sent it (a ``SentRecord``'s sent
    value; else as validated; None where the contribution belongs to no field of the row:
    NLPInsight's are the text's words) and its signed ``contribution`` on the explanation's
    scale. A tie is broken by the field's name, so the same row always gives the same reasons.
    Fewer than ``count`` when fewer inputs moved the answer that way.
    """
    sent: Mapping[str, Any] = getattr(record, "sent", {})
    moved = [(f, c) for f, c in contributions.items() if toward == 0 or c * toward > 0]
    ranked = sorted(moved, key=lambda item: (-abs(item[1]), item[0]))
    return [
        {
            "field": field,
            "value": sent[field] if field in sent else record.get(field),
            "contribution": contribution,
        }
        for field, contribution in ranked[:count]
    ]
