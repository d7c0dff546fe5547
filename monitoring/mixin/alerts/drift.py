"""Drift from the training data: of the outcomes predicted, of the attributions, of the inputs, and
inputs outside the training ranges."""

from __future__ import annotations

from mixin.alerts.alert import MONITORED_INPUT, Alert
from mixin.common import keeps_training_ranges, number, objectives, sel
from mixin.recorded import (
    ATTRIBUTION_DRIFT,
    EXPLANATIONS_RATE1H,
    INPUT_PSI,
    OUTCOME_DRIFT,
    OUTSIDE_TRAINING_SHARE,
    PREDICTIONS_BY_VERSION_RATE1H,
    PREDICTIONS_RATE1H,
)


def points(share: float) -> str:
    """A difference of two shares as a description says it: 0.15 is 15 percentage points."""
    return f"{share * 100:g} percentage points"


def drift_alerts(service: str) -> list[Alert]:
    """PredictionDrift, AttributionDrift and InputDrift."""
    o = objectives(service)
    s = service
    return [
        Alert(
            "PredictionDrift",
            f"{sel(OUTCOME_DRIFT, service)} > {number(o.outcome_drift)}\n"
            f"and on ()\n{sel(PREDICTIONS_RATE1H, service)} * 3600 >= {o.outcome_drift_min_per_hour}",
            "warning",
            f'{s} predicts "{{{{ $labels.outcome }}}}" far more or less often than in training',
            f'Over the last hour the share of "{{{{ $labels.outcome }}}}" predictions of {s} is more than '
            f"{points(o.outcome_drift)} away from its share on the training data (the absolute "
            "difference of the two shares, not a relative change).",
            "30m",
        ),
        Alert(
            "AttributionDrift",
            f"{sel(ATTRIBUTION_DRIFT, service)} > {number(o.attribution_drift)}\n"
            f"and on (version)\n{sel(EXPLANATIONS_RATE1H, service)} * 3600 >= "
            f"{o.attribution_drift_min_per_hour}",
            "warning",
            f"{s} model {{{{ $labels.version }}}} relies on {{{{ $labels.feature }}}} differently than in "
            "training",
            f"Over the last hour the share of total |SHAP| attributed to {{{{ $labels.feature }}}} by {s} "
            f"model version {{{{ $labels.version }}}} is more than {points(o.attribution_drift)} away "
            "from its share on the training data (the absolute difference of the two shares, not a "
            "relative change).",
            "30m",
        ),
        Alert(
            "InputDrift",
            f"{sel(INPUT_PSI, service)} > {number(o.input_drift_psi)}\n"
            f"and on (version)\n{sel(PREDICTIONS_BY_VERSION_RATE1H, service)} * 3600 >= "
            f"{o.input_drift_min_per_hour}",
            "warning",
            f"{s} receives {{{{ $labels.feature }}}} values unlike model {{{{ $labels.version }}}}'s "
            "training data",
            f"Over the last hour the population stability index of {{{{ $labels.feature }}}} sent to {s} "
            f"model version {{{{ $labels.version }}}}, against the bins of its training rows, is above "
            f"{o.input_drift_psi:g} (a major shift) and has stayed there for 30 minutes.",
            "30m",
            opens_on=(MONITORED_INPUT,),
        ),
    ]


def outside_training_alerts(service: str) -> list[Alert]:
    """InputsOutsideTraining, for a service whose models keep their training ranges (none otherwise)."""
    if not keeps_training_ranges(service):
        return []
    o = objectives(service)
    s = service
    return [
        Alert(
            "InputsOutsideTraining",
            f"{sel(OUTSIDE_TRAINING_SHARE, service)} > {number(o.outside_training_share)}\n"
            f"and on (version)\n{sel(PREDICTIONS_BY_VERSION_RATE1H, service)} * 3600 >= "
            f"{o.outside_training_min_per_hour}",
            "warning",
            f"{s} answers many requests whose {{{{ $labels.feature }}}} lies outside model "
            "{{ $labels.version }}'s training data",
            f"Over the last hour more than {o.outside_training_share:.0%} of the answers of {s} model "
            "version {{ $labels.version }} had {{ $labels.feature }} outside the range of the "
            "version's training rows, and it has stayed so for 30 minutes. There the trees answer as "
            "at the nearest edge of what they saw: a value twice the largest trained on gets the "
            "answer of the largest. Each answer lists such inputs in outside_training; GET /model gives "
            "the ranges (baselines.training_ranges).",
            "30m",
        ),
    ]
