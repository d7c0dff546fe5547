"""What moved since training: the outcomes and attributions, and the inputs."""

from __future__ import annotations

from mixin.common import keeps_training_ranges, objectives, sel
from mixin.grafana import Grid, panel
from mixin.recorded import (
    ATTRIBUTION_DRIFT,
    ATTRIBUTION_MEAN,
    ATTRIBUTION_SHARE,
    INPUT_PSI,
    INPUT_SHARE,
    OUTCOME_DRIFT,
    OUTCOME_SHARE,
    OUTSIDE_TRAINING_SHARE,
    TRAINING_ATTRIBUTION_SHARE,
    TRAINING_INPUT_SHARE,
    TRAINING_OUTCOME_SHARE,
)
from mixin.service_dashboard.variables import FEATURE


def add_outcome_and_attribution_drift_panels(g: Grid, service: str) -> None:
    """The served model's outcome and attribution shares against training, and their drift."""
    o = objectives(service)
    g.add(
        panel(
            "timeseries",
            "Outcome distribution against the training baseline",
            "Share of each outcome the served model predicted (5 m; a canary's are on the canary "
            "panels) and its share on the training data (dashed baseline).",
            "percentunit",
            [
                (sel(OUTCOME_SHARE.format(w="5m"), service), "{{outcome}} live"),
                (sel(TRAINING_OUTCOME_SHARE, service), "{{outcome}} training"),
            ],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Prediction drift: |live - training| outcome share (1 h)",
            f"PredictionDrift fires above {o.outcome_drift:.0%} for 30 minutes.",
            "percentunit",
            [(sel(OUTCOME_DRIFT, service), "{{outcome}}")],
            thresholds=[(o.outcome_drift, "orange")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Attribution: share of total |SHAP| per feature, live (1 h) and training",
            "What the model relies on, per model version; a change means it uses different features.",
            "percentunit",
            [
                (sel(ATTRIBUTION_SHARE, service), "{{feature}} v{{version}} live"),
                (sel(TRAINING_ATTRIBUTION_SHARE, service), "{{feature}} v{{version}} training"),
            ],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Attribution drift: |live - training| feature share (1 h)",
            f"AttributionDrift fires above {o.attribution_drift:.0%} for 30 minutes.",
            "percentunit",
            [(sel(ATTRIBUTION_DRIFT, service), "{{feature}} v{{version}}")],
            thresholds=[(o.attribution_drift, "orange")],
        ),
        12,
        8,
    )


def add_input_drift_panels(g: Grid, service: str) -> None:
    """Per input: its drift, its answers outside the training range, its bin shares live and in
    training, and its mean |SHAP|."""
    o = objectives(service)
    g.add(
        panel(
            "timeseries",
            "Input drift: population stability index per input (1 h)",
            "Each input's live distribution over the bins of the model version's training rows "
            f"(deciles, or categories). Under 0.1: stable; over {o.input_drift_psi:g}: a major shift, "
            "and InputDrift fires after 30 minutes.",
            "short",
            [(sel(INPUT_PSI, service), "{{feature}} v{{version}}")],
            thresholds=[(0.1, "yellow"), (o.input_drift_psi, "orange")],
        ),
        24,
        8,
    )
    if keeps_training_ranges(service):
        g.add(
            panel(
                "timeseries",
                "Answers with an input outside the training range, per input (1 h)",
                "Share of the model version's answers with this input beyond the range of its training "
                "rows, where the trees answer as at the nearest edge of what they saw (each answer lists "
                f"them in outside_training). Over {o.outside_training_share:.0%} for 30 minutes, "
                "InputsOutsideTraining fires.",
                "percentunit",
                [(sel(OUTSIDE_TRAINING_SHARE, service), "{{feature}} v{{version}}")],
                thresholds=[(o.outside_training_share, "orange")],
            ),
            24,
            8,
        )
    g.add(
        panel(
            "timeseries",
            "Input shares per bin, live against training (1 h; pick inputs above)",
            "Where an input's values moved: each bin's share of the last hour's values and of the "
            "held-out training rows (bins: deciles 01-10 of a number, the top categories and other, "
            "missing; the edges are in GET /model).",
            "percentunit",
            [
                (sel(INPUT_SHARE, service, FEATURE), "{{feature}} {{bin}} live v{{version}}"),
                (sel(TRAINING_INPUT_SHARE, service, FEATURE), "{{feature}} {{bin}} training v{{version}}"),
            ],
        ),
        24,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Mean |SHAP| per feature (5 m)",
            "On the explained scale of the model (probability, log-odds or USD).",
            "short",
            [(sel(ATTRIBUTION_MEAN.format(w="5m"), service), "{{feature}} v{{version}}")],
        ),
        12,
        8,
    )
