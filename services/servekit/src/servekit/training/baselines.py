"""Training-time baselines the service exports for drift detection.

Computed by the served model class itself on training rows, so the baseline
and the live metric are the same function of the same code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from servekit import input_drift
from servekit.model import ServedModel


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


def input_profile(model: ServedModel, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Bins of the monitored inputs and ``records``' share of each (``input_drift``; held-out rows).

    An input the request schema requires gets no ``missing`` bin: the baseline holds only what a
    request can carry, whatever the training rows lack (``input_drift.required_fields``).
    """
    columns = model.monitored_inputs(records)
    required = input_drift.required_fields(model.artifact.metadata.get("feature_schema", {}))
    bins = input_drift.fit(columns, required)
    return {
        "input_bins": [binning.as_json() for binning in bins],
        "input_shares": input_drift.shares(bins, columns),
    }
