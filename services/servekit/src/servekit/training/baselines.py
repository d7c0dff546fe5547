"""Training-time baselines the service exports for drift detection.

Computed by the served model class itself on training rows, so the baseline
and the live metric are the same function of the same code.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from servekit import input_drift, registry
from servekit.model import ServedModel

if TYPE_CHECKING:
    from servekit.spec import ServiceSpec

logger = logging.getLogger(__name__)

#: What ``input_baseline.rows_from`` says when the baseline is what it should be.
REQUESTABLE = "held-out rows the request schema accepts"


def outcome_shares(model: ServedModel, records: Sequence[dict[str, Any]]) -> dict[str, float]:
    counts = Counter(model.outcome(p) for p in model.predict(records))
    total = sum(counts.values())
    return {outcome: count / total for outcome, count in sorted(counts.items())}


def attribution_means(model: ServedModel, records: Sequence[dict[str, Any]]) -> dict[str, float]:
    sums: dict[str, float] = {}
    explanations = model.explain(records)
    for explanation in explanations:
        for feature, value in explanation.attributions.items():
            sums[feature] = sums.get(feature, 0.0) + abs(value)
    return {feature: total / len(explanations) for feature, total in sorted(sums.items())}


def input_profile(
    model: ServedModel,
    records: Sequence[dict[str, Any]],
    spec: ServiceSpec | None = None,
    asked: Requestable | None = None,
) -> dict[str, Any]:
    """Bins of the monitored inputs and their shares (``input_drift``), over the held-out
    ``records`` a request could be: those the service's request schema accepts.

    A held-out row the API refuses is no live traffic, and its other inputs need not look like
    traffic's: a third of ChicagoTaxi's real trips have no miles, and their companies alone put
    ``company`` at a PSI of 0.2 on the file's own valid rows. Bins and shares are both fitted on
    the accepted rows, so an input the schema requires has no ``missing`` bin either
    (``input_drift.required_fields``). ``input_baseline`` says how many rows that was, or that
    it is every held-out row, and why, when no row passes or there is no service to ask.
    ``spec``: the service, looked up by the model's name when not given; ``asked``: what
    :func:`requestable` found of ``records``, when the caller has it already (``mlp train``
    scores the held-out figures on the same rows).
    """
    if asked is None:
        asked = requestable(records, spec, name=model.artifact.name)
    rows = asked.of(records)
    columns = model.monitored_inputs(rows)
    required = input_drift.required_fields(model.artifact.metadata.get("feature_schema", {}))
    bins = input_drift.fit(columns, required)
    return {
        "input_bins": [binning.as_json() for binning in bins],
        "input_shares": input_drift.shares(bins, columns),
        "input_baseline": {"rows": len(rows), "held_out_rows": len(records), "rows_from": asked.rows_from},
    }


@dataclass(frozen=True)
class Requestable:
    """Which held-out records a request can be: the rows the held-out figures and the input
    baseline are over, since no request is ever answered for the others."""

    #: One flag a record: whether it is one of those rows.
    mask: NDArray[np.bool_]
    #: What those rows are: :data:`REQUESTABLE`, or every row and why.
    rows_from: str
    #: The request fields the others are refused for, and of how many rows each (a row refused for
    #: two fields counts for both); empty when every row is kept.
    refused: dict[str, int] = field(default_factory=dict)

    def of(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [record for record, kept in zip(records, self.mask, strict=True) if kept]

    @property
    def left_out(self) -> int:
        return int((~self.mask).sum())

    def why_left_out(self) -> str:
        """Why the rows left out are, in a line (``data.held_out_left_out``, the model card);
        empty when none is."""
        if not self.left_out:
            return ""
        fields = ", ".join(f"{name}: {rows:,}" for name, rows in self.refused.items())
        refused = f" ({fields})" if fields else ""
        return f"the request schema refuses them{refused}, so no request can be one of them"


def requestable(
    records: Sequence[dict[str, Any]], spec: ServiceSpec | None = None, *, name: str = ""
) -> Requestable:
    """Which ``records`` the service's request schema accepts; every record, and why, when that
    cannot be told or leaves none. ``spec``: the service, looked up by ``name`` when not given."""
    every = np.ones(len(records), dtype=bool)
    if spec is None:
        try:
            spec = registry.get_service(name)
        except LookupError:  # a spec made for a test, not installed: nothing to warn anyone of
            why = f"no installed service named {name!r} to validate them with"
            return Requestable(every, _every_row(why))
    mask = _accepted(spec, records)
    if not mask.any():
        rows_from = _every_row(f"none of the {len(records):,} passes {spec.name}'s request schema")
        logger.warning("%s: input drift baseline and held-out figures over %s", spec.name, rows_from)
        return Requestable(every, rows_from)
    refused = _refused_fields(spec, [r for r, kept in zip(records, mask, strict=True) if not kept])
    return Requestable(mask, REQUESTABLE, refused)


def _accepted(spec: ServiceSpec, records: Sequence[dict[str, Any]]) -> NDArray[np.bool_]:
    """Which ``records`` ``spec``'s request schema accepts (``ServiceSpec.accepted_requests``).

    A validator raising a KeyError or TypeError (or a value ``json`` cannot write) is a bug, not
    a reason to fail a training that never ran the schema before: the row is no request either
    way, and one warning names the exception.
    """
    mask = np.zeros(len(records), dtype=bool)
    broken: list[Exception] = []
    for i, record in enumerate(records):
        # One record a call: the flags are the rows' own, whatever the accepted copies look like.
        accepted, raised = spec.accepted_requests([record])
        mask[i] = bool(accepted)
        broken += raised
    if broken:
        first = broken[0]
        logger.warning(
            "%s: %s of %s held-out rows left out of the held-out figures and the input drift "
            "baseline: validating them raised %s: %s; a request schema's validator should raise "
            "ValueError, which the API answers with a 422 naming the field",
            spec.name,
            f"{len(broken):,}",
            f"{len(records):,}",
            type(first).__name__,
            first,
        )
    return mask


def _refused_fields(spec: ServiceSpec, refused: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The request fields ``refused`` rows fail on, most rows first: what a 422 of each would name.

    Only the rows already refused are validated again, for their errors' fields; a row whose
    validation raised something else is counted under the exception's name.
    """
    counts: Counter[str] = Counter()
    for record in refused:
        try:
            spec.request.model_validate_json(json.dumps(record))
        except ValidationError as exc:
            counts.update({str(error["loc"][0]) if error["loc"] else "request" for error in exc.errors()})
        except Exception as exc:  # a validator's bug, warned of by _accepted
            counts[type(exc).__name__] += 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


#: How ``data.held_out_scored`` begins where the figures are over every held-out row (here, and
#: ``trainer.scored_rows``); the card and ``mlp versions`` read it back.
EVERY_ROW = "every held-out row:"


def _every_row(why: str) -> str:
    return f"{EVERY_ROW} {why}; rows no request can be may skew the baseline and the held-out figures"
