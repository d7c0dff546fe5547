"""Decision and error rates per group of held-out rows, and the gaps between the groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy import ToyRecipe

from servekit.training import parity, uncertainty
from servekit.training.parity import (
    as_run_metrics,
    decision_parity,
    group_parity,
)
from servekit.training.segments import MIN_SEGMENT_ROWS


def churners(rows: int, seed: int = 0) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Regions whose truth and model differ: east churns more and its stayers are flagged more."""
    rng = np.random.default_rng(seed)
    region = pd.Series(rng.choice(["east", "west", "north"], rows, p=[0.45, 0.45, 0.1]))
    east = (region == "east").to_numpy()
    target = (rng.random(rows) < np.where(east, 0.35, 0.15)).astype(int)
    probability = np.clip(0.45 * target + rng.random(rows) * np.where(east, 0.8, 0.6), 0, 1)
    return region, target, probability


def test_each_groups_rates_are_those_of_its_own_rows_at_the_threshold() -> None:
    region, target, probability = churners(4000)
    found = group_parity("binary", {"region": region}, target, probability, threshold=0.5, seed=3)
    groups = found["region"]["groups"]
    assert list(groups) == ["east", "north", "west"]
    for name, entry in groups.items():
        mask = (region == name).to_numpy()
        flagged = probability[mask] >= 0.5
        truth = target[mask] == 1
        assert entry["rows"] == mask.sum()
        assert entry["positive_share"] == pytest.approx(truth.mean(), rel=1e-12)
        assert entry["flagged_share"] == pytest.approx(flagged.mean(), rel=1e-12)
        assert entry["true_positive_rate"] == pytest.approx(flagged[truth].mean(), rel=1e-12)
        assert entry["false_positive_rate"] == pytest.approx(flagged[~truth].mean(), rel=1e-12)
        assert (entry["true_positive_rate_rows"], entry["false_positive_rate_rows"]) == (
            truth.sum(),
            (~truth).sum(),
        )
        for figure in ("flagged_share", "true_positive_rate", "false_positive_rate"):
            assert entry[f"{figure}_ci_low"] < entry[figure] < entry[f"{figure}_ci_high"]
    # A row at the threshold is flagged, as the service labels it (probability >= threshold).
    at = group_parity(
        "binary", {"all": pd.Series(["a"] * 200)}, np.zeros(200), np.full(200, 0.5), threshold=0.5
    )
    assert at["all"]["groups"]["a"]["flagged_share"] == 1.0


def test_a_gap_names_the_extreme_groups_and_is_beyond_the_noise_only_when_it_is() -> None:
    region, target, probability = churners(4000)
    found = group_parity("binary", {"region": region}, target, probability, threshold=0.5)["region"]
    gaps, groups = found["gaps"], found["groups"]
    false_positive = gaps["false_positive_rate"]
    assert false_positive["highest"] == "east"  # its stayers are scored up to 0.8, the others' to 0.6
    assert false_positive["gap"] == pytest.approx(
        groups["east"]["false_positive_rate"] - groups[false_positive["lowest"]]["false_positive_rate"]
    )
    assert false_positive["ci_low"] > 0  # 0.8 against 0.6: far beyond 1,800 rows' noise
    share = gaps["flagged_share"]
    assert share["ratio"] == pytest.approx(
        groups[share["lowest"]]["flagged_share"] / groups[share["highest"]]["flagged_share"]
    )
    # West and north are drawn alike: their gap's interval holds 0.
    alike = pd.Series(np.where(region == "east", None, region))
    kept = alike.notna().to_numpy()
    same = group_parity("binary", {"region": alike[kept]}, target[kept], probability[kept], threshold=0.5)
    alike_gap = same["region"]["gaps"]["false_positive_rate"]
    assert alike_gap["ci_low"] < 0 < alike_gap["ci_high"]


def test_a_gaps_interval_is_the_two_groups_resampled_each_on_its_own() -> None:
    """The differences of the two groups' own bootstrap samples (each drawn row by row here)."""
    rng = np.random.default_rng(5)
    labels = pd.Series(["a"] * 300 + ["b"] * 500)
    truth = rng.uniform(5, 50, 800)
    errors = np.concatenate([rng.normal(0, 1, 300), rng.normal(0.5, 2, 500)])
    found = group_parity("regression", {"g": labels}, truth, truth + errors, seed=11)
    gap = found["g"]["gaps"]["mean_error"]
    assert (gap["highest"], gap["lowest"]) == ("b", "a")
    # Group b is the second in order, so its samples are drawn with seed 11 + 1, a's with 11.
    error_a, error_b = (truth + errors - truth)[:300], (truth + errors - truth)[300:]
    draws_b = [float(np.dot(c, error_b) / c.sum()) for c in uncertainty.resamples(500, seed=12)]
    draws_a = [float(np.dot(c, error_a) / c.sum()) for c in uncertainty.resamples(300, seed=11)]
    expected = uncertainty.percentile_interval(np.subtract(draws_b, draws_a), error_b.mean() - error_a.mean())
    assert (gap["gap"], gap["ci_low"], gap["ci_high"]) == pytest.approx(
        (expected.estimate, expected.low, expected.high), rel=1e-12
    )


def test_a_binary_groups_samples_drawn_per_kind_of_row_match_those_drawn_row_by_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four kinds of rows (flagged or not, positive or not), drawn multinomially: the same intervals
    as resampling the rows, within the bootstrap's own noise, and the same figures exactly."""
    region, target, probability = churners(3000, seed=8)
    per_kind = group_parity("binary", {"region": region}, target, probability, threshold=0.5)["region"]
    monkeypatch.setattr(parity, "_kinds", lambda rows: None)
    per_row = group_parity("binary", {"region": region}, target, probability, threshold=0.5)["region"]
    for group, entry in per_kind["groups"].items():
        other = per_row["groups"][group]
        assert entry.keys() == other.keys()
        for key, value in entry.items():
            if key.endswith(("_ci_low", "_ci_high")):
                assert value == pytest.approx(other[key], abs=0.02), (group, key)
            else:
                assert value == other[key], (group, key)
    for figure, gap in per_kind["gaps"].items():
        assert (gap["highest"], gap["lowest"], gap["gap"]) == tuple(
            per_row["gaps"][figure][k] for k in ("highest", "lowest", "gap")
        )
        assert (gap["ci_low"], gap["ci_high"]) == pytest.approx(
            (per_row["gaps"][figure]["ci_low"], per_row["gaps"][figure]["ci_high"]), abs=0.02
        )


def test_groups_without_a_figure_say_why_and_are_left_out_of_the_gaps() -> None:
    labels = pd.Series(["big"] * 300 + ["calm"] * 200 + ["tiny"] * 20)
    target = np.concatenate([np.tile([0, 1], 150), np.zeros(200), np.ones(20)]).astype(int)
    probability = np.concatenate([np.tile([0.2, 0.9], 150), np.full(200, 0.7), np.full(20, 0.9)])
    found = group_parity("binary", {"g": labels}, target, probability, threshold=0.5)["g"]
    tiny, calm = found["groups"]["tiny"], found["groups"]["calm"]
    assert tiny == {"rows": 20, "note": f"fewer than {MIN_SEGMENT_ROWS} held-out rows"}
    # No churner among calm's rows: no true-positive rate, and the note says so.
    assert "true_positive_rate" not in calm
    assert (calm["true_positive_rate_rows"], calm["false_positive_rate_rows"]) == (0, 200)
    assert calm["note"] == "no positive in truth among its held-out rows: no true-positive rate"
    assert calm["false_positive_rate"] == 1.0
    assert "true_positive_rate" not in found["gaps"]  # one group has it: nothing to compare
    assert (
        found["gaps"]["false_positive_rate"]["highest"],
        found["gaps"]["false_positive_rate"]["lowest"],
    ) == ("calm", "big")


def test_a_regressors_figure_is_its_signed_error_per_group() -> None:
    rng = np.random.default_rng(2)
    labels = pd.Series(rng.choice(["cash", "card"], 1000))
    truth = rng.uniform(5, 50, 1000)
    prediction = truth + np.where(labels == "card", 1.0, 0.0) + rng.normal(0, 0.5, 1000)
    found = group_parity("regression", {"payment": labels}, truth, prediction)["payment"]
    card = (labels == "card").to_numpy()
    assert found["groups"]["card"]["mean_error"] == pytest.approx(np.mean(prediction[card] - truth[card]))
    assert set(found["groups"]["card"]) == {"rows", "mean_error", "mean_error_ci_low", "mean_error_ci_high"}
    gap = found["gaps"]["mean_error"]
    assert (gap["highest"], gap["lowest"]) == ("card", "cash")
    assert 0.9 < gap["ci_low"] < gap["gap"] < gap["ci_high"] < 1.1
    assert "ratio" not in gap


class ByRegionToy(ToyRecipe):
    task = "binary"

    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        return {"region": features["region"]}


def test_the_recipe_says_the_groups_and_the_metadata_the_threshold() -> None:
    region, target, probability = churners(1000)
    features = pd.DataFrame({"region": region})
    at_tuned = decision_parity(ByRegionToy(), features, target, probability, {"threshold": 0.7})
    assert at_tuned == group_parity("binary", {"region": region}, target, probability, threshold=0.7)
    assert at_tuned != decision_parity(ByRegionToy(), features, target, probability, {})  # 0.5 without one


def sentiments(rows: int, seed: int = 0) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Texts with and without a link: linked ones are bearish more often in truth, and the model
    calls a linked text bearish more often still, and misses linked bullish ones."""
    rng = np.random.default_rng(seed)
    link = pd.Series(rng.choice(["with a link", "without a link"], rows))
    linked = (link == "with a link").to_numpy()
    target = np.where(
        rng.random(rows) < np.where(linked, 0.4, 0.2), "bearish", rng.choice(["bullish", "neutral"], rows)
    )
    right = rng.random(rows) < np.where(linked & (target == "bullish"), 0.5, 0.85)
    wrong = np.where(linked, "bearish", rng.choice(["bearish", "bullish", "neutral"], rows))
    return link, target, np.where(right, target, wrong)


def test_a_multiclass_models_figures_are_each_labels_share_and_recall_per_group() -> None:
    link, target, label = sentiments(4000)
    found = group_parity("multiclass", {"link": link}, target, label, seed=2)["link"]
    assert found["labels"] == ["bearish", "bullish", "neutral"]
    assert parity.figures_of(found)[-6:] == [
        *(f"share_labelled.{name}" for name in found["labels"]),
        *(f"recall.{name}" for name in found["labels"]),
    ]
    for group, entry in found["groups"].items():
        mask = (link == group).to_numpy()
        for name in found["labels"]:
            given, truth = label[mask] == name, target[mask] == name
            assert entry[f"share_labelled.{name}"] == pytest.approx(given.mean(), rel=1e-12)
            assert entry[f"recall.{name}"] == pytest.approx(given[truth].mean(), rel=1e-12)
            assert entry[f"recall.{name}_rows"] == truth.sum()
            assert parity.counted_rows(entry, f"share_labelled.{name}") == mask.sum()
            assert parity.counted_rows(entry, f"recall.{name}") == truth.sum()
            low, high = entry[f"recall.{name}_ci_low"], entry[f"recall.{name}_ci_high"]
            assert low <= entry[f"recall.{name}"] <= high
            assert low < high or entry[f"recall.{name}"] == 1.0  # linked bearish texts: all found
        assert not {"flagged_share", "true_positive_rate", "positive_share", "mean_error"} & entry.keys()
    gaps = found["gaps"]
    # Built in: linked texts are called bearish more often, and their bullish ones missed.
    assert (gaps["share_labelled.bearish"]["highest"], gaps["recall.bullish"]["lowest"]) == (
        "with a link",
    ) * 2
    assert gaps["share_labelled.bearish"]["ci_low"] > 0.1
    assert gaps["recall.bullish"]["ci_low"] > 0.2
    assert not [gap for gap in gaps.values() if "ratio" in gap]  # no label is the favourable one
    logged = as_run_metrics({"link": found})
    assert (
        logged["parity.link.with a link.recall.bullish"] == found["groups"]["with a link"]["recall.bullish"]
    )
    assert logged["parity.link.share_labelled.bearish.gap"] == gaps["share_labelled.bearish"]["gap"]


def test_a_multiclass_group_without_a_label_in_truth_says_so_and_a_label_none_is_given_gets_figures() -> None:
    groups = pd.Series(["calm"] * 200 + ["busy"] * 200)
    target = np.array(["neutral"] * 200 + ["bearish", "neutral"] * 100, dtype=object)
    label = np.array(["neutral"] * 400, dtype=object)
    found = group_parity("multiclass", {"g": groups}, target, label)["g"]
    calm = found["groups"]["calm"]
    assert calm["note"] == "no bearish in truth among its held-out rows: no recall of bearish"
    assert "recall.bearish" not in calm
    assert calm["share_labelled.bearish"] == 0.0
    assert found["groups"]["busy"]["recall.bearish"] == 0.0
    tie = found["gaps"]["share_labelled.bearish"]  # 0 in both: still two groups, no gap
    assert (tie["highest"], tie["lowest"], tie["gap"]) == ("calm", "busy", 0.0)


def test_a_multiclass_recipes_label_codes_are_named_by_its_classes() -> None:
    link, target, label = sentiments(1000, seed=4)
    classes = ["bearish", "bullish", "neutral"]
    codes = {name: code for code, name in enumerate(classes)}
    recipe = ByRegionToy()
    recipe.task = "multiclass"
    recipe.segments = lambda features: {"link": features["link"]}  # type: ignore[method-assign]
    at_training = decision_parity(
        recipe,
        pd.DataFrame({"link": link}),
        np.vectorize(codes.get)(target),
        np.vectorize(codes.get)(label),
        {"classes": classes},
    )
    assert at_training == group_parity("multiclass", {"link": link}, target, label)


def test_many_labels_kinds_are_counted_by_row_as_few_labels_are_by_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six labels, 24 columns a row: past ``KIND_BITS``, the kinds are found by their rows, and give
    the figures and intervals that counting them by bits gives."""
    rng = np.random.default_rng(5)
    target, label = rng.integers(0, 6, 3000).astype(str), rng.integers(0, 6, 3000).astype(str)
    groups = {"g": pd.Series(rng.choice(["a", "b"], 3000))}
    by_rows = group_parity("multiclass", groups, target, label, seed=1)
    monkeypatch.setattr(parity, "KIND_BITS", 24)
    assert group_parity("multiclass", groups, target, label, seed=1) == by_rows


def test_the_figures_are_logged_under_names_mlflow_takes() -> None:
    region, target, probability = churners(2000)
    found = group_parity("binary", {"age 50+": region}, target, probability, threshold=0.5)
    logged = as_run_metrics(found)
    gap = found["age 50+"]["gaps"]["flagged_share"]
    assert (
        logged["parity.age 50_.east.true_positive_rate"]
        == found["age 50+"]["groups"]["east"]["true_positive_rate"]
    )
    assert logged["parity.age 50_.flagged_share.gap"] == gap["gap"]
    assert logged["parity.age 50_.flagged_share.ratio"] == gap["ratio"]
    assert "parity.age 50_.true_positive_rate.ratio" not in logged
    assert not [name for name in logged if name.endswith("_rows") or "_ci_" in name]


def test_a_rate_over_one_row_has_an_interval_from_the_samples_that_hold_it() -> None:
    """A group with one churner: a third of its samples draw no churner and have no rate."""
    target = np.zeros(150, dtype=int)
    target[0] = 1
    probability = np.where(np.arange(150) % 2 == 0, 0.9, 0.1)  # the churner, row 0, is flagged
    entry = group_parity("binary", {"g": pd.Series(["a"] * 150)}, target, probability)["g"]["groups"]["a"]
    assert entry["true_positive_rate_rows"] == 1
    assert (
        entry["true_positive_rate"],
        entry["true_positive_rate_ci_low"],
        entry["true_positive_rate_ci_high"],
    ) == (
        1.0,
        1.0,
        1.0,
    )
