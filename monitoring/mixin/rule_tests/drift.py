"""The cases of a service's drift alerts: its outcomes, its attributions and its inputs against their
training baselines, and inputs outside the training range."""

from __future__ import annotations

import math

from mixin.common import objectives
from mixin.rule_tests.cases import Case, model_info, series_str
from servekit.metrics.names import MetricNames


def outcome_drift_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """PredictionDrift: live outcome shares against training's 80/20."""
    n = MetricNames(service)
    cases: list[Case] = []
    # Outcome drift: training says 80% "x" / 20% "y".
    train_x = series_str(n.training_outcome_share, {**target, "outcome": "x"})
    train_y = series_str(n.training_outcome_share, {**target, "outcome": "y"})
    pred_x = series_str(n.predictions_total, {**target, "outcome": "x"})
    pred_y = series_str(n.predictions_total, {**target, "outcome": "y"})
    baseline = {train_x: "0.8x60", train_y: "0.2x60", **ready}
    drift = [
        {"alertname": "PredictionDrift", "service": service, "outcome": outcome} for outcome in ("x", "y")
    ]
    cases.append(
        Case(
            "PredictionDrift",
            "fires: live shares 20/80 against training 80/20",
            {**baseline, pred_x: "0+20x60", pred_y: "0+80x60"},
            "45m",
            drift,
        )
    )
    cases.append(
        Case(
            "PredictionDrift",
            "quiet: live shares 75/25 (within the threshold)",
            {**baseline, pred_x: "0+75x60", pred_y: "0+25x60"},
            "45m",
        )
    )
    cases.append(
        Case(
            "PredictionDrift",
            "quiet: too few predictions to judge (1 per minute)",
            {**baseline, pred_x: "0+0x60", pred_y: "0+1x60"},
            "45m",
        )
    )
    return cases


def attribution_drift_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """AttributionDrift: live |SHAP| shares against training's 50/50 over two features."""
    n = MetricNames(service)
    cases: list[Case] = []
    # Attribution drift: training spreads |SHAP| 50/50 over f1 and f2.
    info = model_info(n, target)
    mean = {
        series_str(n.training_attribution_mean, {**target, "feature": "f1"}): "0.4x60",
        series_str(n.training_attribution_mean, {**target, "feature": "f2"}): "0.4x60",
        info: "1x60",
        **ready,
    }
    attr1 = series_str(n.attribution_abs_sum_total, {**target, "feature": "f1"})
    attr2 = series_str(n.attribution_abs_sum_total, {**target, "feature": "f2"})
    explained = series_str(n.explanations_total, target)
    attribution = [
        {"alertname": "AttributionDrift", "service": service, "version": "7", "feature": f}
        for f in ("f1", "f2")
    ]
    cases.append(
        Case(
            "AttributionDrift",
            "fires: live |SHAP| split 90/10 against training 50/50",
            {**mean, explained: "0+10x60", attr1: "0+9x60", attr2: "0+1x60"},
            "45m",
            attribution,
        )
    )
    cases.append(
        Case(
            "AttributionDrift",
            "quiet: live split 55/45, overall scale doubled (shares, not magnitudes, drift)",
            {**mean, explained: "0+10x60", attr1: "0+11x60", attr2: "0+9x60"},
            "45m",
        )
    )
    cases.append(
        Case(
            "AttributionDrift",
            "quiet: too few explanations to judge (1 per minute)",
            {**mean, explained: "0+1x60", attr1: "0+1x60", attr2: "0+0x60"},
            "45m",
        )
    )
    return cases


def input_drift_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """InputDrift: live values of input f in its bins against training's 50/50."""
    n = MetricNames(service)
    info = model_info(n, target)
    cases: list[Case] = []
    # Input drift: the training rows fall 50/50 in bins 01 and 02 of input f (none missing).
    share = {
        series_str(n.training_input_share, {**target, "feature": "f", "bin": label}): value
        for label, value in (("01", "0.5x60"), ("02", "0.5x60"), ("missing", "0x60"))
    }
    counted = {
        label: series_str(n.input_values_total, {**target, "feature": "f", "bin": label})
        for label in ("01", "02", "missing")
    }
    rows = series_str(n.predictions_total, {**target, "outcome": "x"})

    def per_minute(predictions: int, in_bins: tuple[int, int, int]) -> dict[str, str]:
        """The baseline, and ``predictions`` a minute whose values of f fall in 01, 02 and missing."""
        series = {counted[label]: f"0+{count}x60" for label, count in zip(counted, in_bins, strict=True)}
        return {**share, info: "1x60", **ready, rows: f"0+{predictions}x60", **series}

    input_drift = [{"alertname": "InputDrift", "service": service, "version": "7", "feature": "f"}]
    cases.append(
        Case(
            "InputDrift",
            "fires: 90% of live values in bin 01 and 10% missing, against 50/50 in training",
            per_minute(20, in_bins=(18, 0, 2)),
            "45m",
            input_drift,
        )
    )
    cases.append(
        Case(
            "InputDrift",
            "quiet: live 55/45 (PSI 0.01, sampling noise)",
            per_minute(20, in_bins=(11, 9, 0)),
            "45m",
        )
    )
    cases.append(
        Case(
            "InputDrift",
            "quiet: too few predictions to judge (1 per minute, all in bin 01)",
            per_minute(1, in_bins=(1, 0, 0)),
            "45m",
        )
    )
    return cases


def outside_training_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """InputsOutsideTraining: a tenth of version 7's answers with input f outside its training range."""
    n, o = MetricNames(service), objectives(service)
    info = model_info(n, target)
    answers = series_str(n.predictions_total, {**target, "outcome": "x"})
    outside = series_str(n.inputs_outside_training_total, {**target, "feature": "f"})

    def per_minute(predictions: int, outside_f: int) -> dict[str, str]:
        return {info: "1x60", **ready, answers: f"0+{predictions}x60", outside: f"0+{outside_f}x60"}

    fired = [{"alertname": "InputsOutsideTraining", "service": service, "version": "7", "feature": "f"}]
    # Half as much again as the threshold, and half of it: of 100 answers a minute, those outside.
    over, under = math.ceil(150 * o.outside_training_share), math.floor(50 * o.outside_training_share)
    return [
        Case(
            "InputsOutsideTraining",
            f"fires: {over} of 100 answers a minute with f outside the training range",
            per_minute(100, over),
            "45m",
            fired,
        ),
        Case(
            "InputsOutsideTraining",
            "quiet: still pending after 20 minutes (for: 30m)",
            per_minute(100, over),
            "20m",
        ),
        Case(
            "InputsOutsideTraining",
            f"quiet: {under} of 100 answers a minute outside, under the threshold",
            per_minute(100, under),
            "45m",
        ),
        Case(
            "InputsOutsideTraining",
            "quiet: too few answers to judge (1 a minute, every one outside)",
            per_minute(1, 1),
            "45m",
        ),
    ]
