"""The primary metric per group of held-out rows, each with its own bootstrap interval."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, roc_auc_score
from toy import ToyRecipe

from servekit.training import uncertainty
from servekit.training.segments import MIN_SEGMENT_ROWS, as_run_metrics, segment_metrics


class BandedToy(ToyRecipe):
    """The toy regression, reported by colour and by a band of x with a rare top band."""

    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        bands = pd.cut(features["x"], bins=[0, 5, 9.5, 10], labels=["low", "mid", "top"], include_lowest=True)
        return {"color": features["color"], "x_band": bands}


def test_each_group_gets_the_metric_of_its_own_rows_and_a_too_small_one_a_note() -> None:
    recipe = BandedToy()
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"x": rng.uniform(0, 10, 1000), "color": rng.choice(["red", "blue"], 1000)})
    target = features["x"] * 2 + rng.normal(0, 1, 1000)
    outputs = features["x"].to_numpy() * 2
    found = segment_metrics(recipe, features, target, outputs, seed=1)

    assert list(found) == ["color", "x_band"]
    assert list(found["x_band"]) == ["low", "mid", "top"]  # the bands' order, not the alphabet's
    for color in ("blue", "red"):
        mask = (features["color"] == color).to_numpy()
        entry = found["color"][color]
        assert entry["rows"] == mask.sum()
        assert entry["mae"] == mean_absolute_error(target[mask], outputs[mask])
        assert entry["mae_ci_low"] < entry["mae"] < entry["mae_ci_high"]
    top = found["x_band"]["top"]
    assert top["rows"] < MIN_SEGMENT_ROWS
    assert top == {"rows": top["rows"], "note": f"fewer than {MIN_SEGMENT_ROWS} held-out rows"}
    logged = as_run_metrics(found, "mae")
    assert logged["segment.color.red.mae"] == found["color"]["red"]["mae"]
    assert logged["segment.x_band.top.rows"] == top["rows"]
    assert "segment.x_band.top.mae" not in logged
    # A group named with a character MLflow refuses in a metric name is logged under a safe one.
    assert as_run_metrics({"age": {"50+": {"rows": 3}}}, "mae") == {"segment.age.50_.rows": 3.0}


class ByRegion:
    """A binary recipe's view for segment_metrics: ROC AUC, grouped by region."""

    primary_metric = "roc_auc"

    def primary(self) -> uncertainty.PrimaryMetric:
        return uncertainty.PRIMARY_METRICS["roc_auc"]

    def segments(self, features: pd.DataFrame) -> dict[str, Any]:
        return {"region": features["region"]}


def test_a_group_with_one_class_has_no_roc_auc() -> None:
    rng = np.random.default_rng(2)
    features = pd.DataFrame({"region": ["north"] * 300 + ["south"] * 200})
    target = np.concatenate([rng.integers(0, 2, 300), np.zeros(200, dtype=int)])
    outputs = rng.uniform(0, 1, 500)
    found = segment_metrics(ByRegion(), features, target, outputs)  # type: ignore[arg-type]
    assert found["region"]["north"]["roc_auc"] == roc_auc_score(target[:300], outputs[:300])
    assert found["region"]["south"] == {"rows": 200, "note": "one class only among its held-out rows"}


def test_a_binary_models_groups_say_how_well_its_probabilities_are_calibrated() -> None:
    """Ranked alike, the south's probabilities are all a third too low: its ROC AUC hides it, its
    calibration gap (mean predicted minus observed) says it, beyond its interval; the north's is
    within the noise."""
    rng = np.random.default_rng(3)
    features = pd.DataFrame({"region": ["north"] * 2000 + ["south"] * 2000})
    truth_p = rng.uniform(0.05, 0.6, 4000)
    target = (rng.uniform(0, 1, 4000) < truth_p).astype(int)
    outputs = np.where(features["region"] == "south", truth_p * 2 / 3, truth_p)
    found = segment_metrics(ByRegion(), features, target, outputs, seed=4)  # type: ignore[arg-type]
    north, south = found["region"]["north"], found["region"]["south"]
    for entry, rows in ((north, slice(0, 2000)), (south, slice(2000, 4000))):
        assert entry["mean_predicted"] == np.mean(outputs[rows])
        assert entry["positive_share"] == np.mean(target[rows])
        assert entry["calibration_gap"] == pytest.approx(entry["mean_predicted"] - entry["positive_share"])
        assert entry["calibration_gap_ci_low"] < entry["calibration_gap"] < entry["calibration_gap_ci_high"]
    assert north["calibration_gap_ci_low"] < 0 < north["calibration_gap_ci_high"]
    assert south["calibration_gap_ci_high"] < -0.08
    assert abs(south["roc_auc"] - north["roc_auc"]) < 0.05
    logged = as_run_metrics(found, "roc_auc")
    assert logged["segment.region.south.calibration_gap"] == south["calibration_gap"]
