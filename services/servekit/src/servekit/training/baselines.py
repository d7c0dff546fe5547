"""Training-time baselines the service exports for drift detection.

Computed by the served model class itself on training rows, so the baseline
and the live metric are the same function of the same code.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    model: ServedModel, records: Sequence[dict[str, Any]], spec: ServiceSpec | None = None
) -> dict[str, Any]:
    """Bins of the monitored inputs and their shares (``input_drift``), over the held-out
    ``records`` a request could be: those the service's request schema accepts.

    A held-out row the API refuses is no live traffic, and its other inputs need not look like
    traffic's: a third of ChicagoTaxi's real trips have no miles, and their companies alone put
    ``company`` at a PSI of 0.2 on the file's own valid rows. Bins and shares are both fitted on
    the accepted rows, so an input the schema requires has no ``missing`` bin either
    (``input_drift.required_fields``). ``input_baseline`` says how many rows that was, or that
    it is every held-out row, and why, when no row passes or there is no service to ask.
    ``spec``: the service, looked up by the model's name when not given.
    """
    rows, rows_from = requestable(model, records, spec)
    columns = model.monitored_inputs(rows)
    required = input_drift.required_fields(model.artifact.metadata.get("feature_schema", {}))
    bins = input_drift.fit(columns, required)
    return {
        "input_bins": [binning.as_json() for binning in bins],
        "input_shares": input_drift.shares(bins, columns),
        "input_baseline": {"rows": len(rows), "held_out_rows": len(records), "rows_from": rows_from},
    }


def requestable(
    model: ServedModel, records: Sequence[dict[str, Any]], spec: ServiceSpec | None = None
) -> tuple[Sequence[dict[str, Any]], str]:
    """The ``records`` the service's request schema accepts and what they are; every record, and
    why, when that cannot be told or leaves none."""
    name = model.artifact.name
    if spec is None:
        try:
            spec = registry.get_service(name)
        except LookupError:  # a spec made for a test, not installed: nothing to warn anyone of
            return records, _every_row(f"no installed service named {name!r} to validate them with")
    accepted = _accepted(spec, records)
    if not accepted:
        rows_from = _every_row(f"none of the {len(records):,} passes {spec.name}'s request schema")
        logger.warning("%s: input drift baseline over %s", spec.name, rows_from)
        return records, rows_from
    return accepted, REQUESTABLE


def _accepted(spec: ServiceSpec, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``records`` ``spec``'s request schema accepts (``ServiceSpec.accepted_requests``).

    A validator raising a KeyError or TypeError (or a value ``json`` cannot write) is a bug, not
    a reason to fail a training that never ran the schema before: the row is no request either
    way, and one warning names the exception.
    """
    accepted, broken = spec.accepted_requests(records)
    if broken:
        first = broken[0]
        logger.warning(
            "%s: %s of %s held-out rows left out of the input drift baseline: validating them raised "
            "%s: %s; a request schema's validator should raise ValueError, which the API answers "
            "with a 422 naming the field",
            spec.name,
            f"{len(broken):,}",
            f"{len(records):,}",
            type(first).__name__,
            first,
        )
    return accepted


def _every_row(why: str) -> str:
    return f"every held-out row: {why}; rows no request can be may skew the baseline"
