"""Each version's live figures against its held-out ones: overall, per group, and the decisions'
rates per group, within the noise of both samples or beyond it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evaluation_logs import (
    ByColour,
    NormalSides,
    Offered,
    capture_line,
    held_out_rates,
    offered_log,
)
from scipy.stats import norm
from toy import TOY, ToyRecipe, registered

from servekit import evaluation
from servekit.evaluation import (
    Answers,
    Grouper,
    Joined,
    assess,
    independent_difference,
    join,
    joining,
    parity_against_held_out,
    render,
)
from servekit.evaluation.groups import within_groups
from servekit.evaluation.held_out import HeldOutAnswers
from servekit.replay.capture_lines import read_lines
from servekit.training import uncertainty
from servekit.training.trainer import held_out_record
from servekit.training.uncertainty import Interval, each_of, unpaired_difference
from servekit.training.versions import live_evidence


def test_live_answers_scored_against_the_held_out_figure_within_the_noise_or_beyond_it(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, truth = served
    outputs = [a["value"] for a in answers]
    mae = float(np.mean(np.abs(truth - outputs)))
    held_out = Interval(mae, mae * 0.9, mae * 1.1)

    def answered(truths: Any) -> Answers:
        return Answers("toy", "1", outputs=outputs, truths=list(truths), groups=[()] * len(rows))

    same = assess(answered(truth), Grouper(TOY.recipe), held_out)
    assert same.verdict == "within the noise"
    assert same.live is not None
    assert same.live.estimate == pytest.approx(mae)
    assert same.live.low < mae < same.live.high
    assert same.difference is not None
    assert same.difference.estimate == pytest.approx(0.0)
    # The world moved: every fare is now a dollar more than the model says. Lower MAE is better.
    worse = assess(answered(truth + 1.0), Grouper(TOY.recipe), held_out)
    assert worse.verdict == "worse"
    assert worse.difference is not None
    assert worse.difference.low > 0
    better = assess(answered(truth), Grouper(TOY.recipe), Interval(mae + 1, mae + 0.9, mae + 1.1))
    assert better.verdict == "better"
    # With the held-out rows' answers, as a training run keeps them: each sample resampled on
    # its own, from the same draws as the live interval.
    rows_kept = HeldOutAnswers(truth + 0.5, np.asarray(outputs))
    resampled = assess(answered(truth), Grouper(TOY.recipe), held_out, held_out_rows=rows_kept)
    assert resampled.resampled
    assert resampled.live == same.live
    assert (resampled.live, resampled.difference) == unpaired_difference(
        TOY.recipe.primary(), truth, outputs, rows_kept.target, rows_kept.output
    )
    # Kept before the groups were: the groups are not compared, and the report says why.
    assert resampled.groups == ()
    assert (
        resampled.groups_note
        == "its training run kept no groups of its held-out rows (trained before they were)"
    )
    assert not same.resampled
    joined = Joined([], captured=300, without_truth=0, truth_unmatched=0, ambiguous=0, other_services=0)
    combined = "(the two intervals combined: its run kept no held-out answers)"
    assert render(joined, [same], "t.csv").splitlines()[0].endswith(f"within the noise {combined}")
    assert combined not in render(joined, [resampled], "t.csv")
    # No held-out figure (a version the registry lacks): the live figure alone, not compared.
    alone = assess(
        answered(truth), Grouper(TOY.recipe), None, held_out_note="version 1 is not in the registry"
    )
    assert alone.live is not None
    assert alone.verdict is None
    assert alone.difference is None


def test_too_few_answers_or_one_class_only_get_no_figure_and_say_why(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    _, answers, truth = served
    few = Answers("toy", "1", [a["value"] for a in answers[:99]], list(truth[:99]), [()] * 99)
    found = assess(few, Grouper(TOY.recipe), None)
    assert found.live is None
    assert found.rows == 99
    assert found.note == "fewer than 100 answers with their truth (--min-rows)"
    assert assess(few, Grouper(TOY.recipe), None, min_rows=50).live is not None

    class Binary(ToyRecipe):
        task = "binary"
        primary_metric = "roc_auc"
        greater_is_better = True

    stayed = Answers("toy", "1", [0.1 * (i % 10) for i in range(200)], [0] * 200, [()] * 200)
    assert assess(stayed, Grouper(Binary()), None).note == "one class only in their truth"


def test_live_figures_per_group_as_at_training_found_a_chunk_of_inputs_at_a_time(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, answers, truth = served

    class ByColourAndSize(ToyRecipe):
        def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
            size = pd.cut(features["x"], bins=[0, 5, 11], labels=["up to 5", "over 5"], right=False)
            return {"color": features["color"], "x": size}

    monkeypatch.setattr(joining, "GROUPING_CHUNK", 64)
    grouper = Grouper(ByColourAndSize())
    labels: list[int] = []
    original = grouper.labels
    monkeypatch.setattr(grouper, "labels", lambda inputs: labels.append(len(inputs)) or original(inputs))
    lines = [
        capture_line(f"r{i}", 0, row, answer)
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    joined = join(read_lines(lines), "toy", grouper, {(f"r{i}", 0): y for i, y in enumerate(truth)})
    assert labels == [64, 64, 64, 64, 44]  # the inputs are let go a chunk at a time
    # Each combination of labels is kept once, across the chunks, and every answer refers to it.
    groups = joined.versions[0].groups
    assert len({id(labels) for labels in groups}) == len(set(groups)) == 4
    found = assess(joined.versions[0], grouper, None)
    reds = sum(row["color"] == "red" for row in rows)
    assert found.segments["color"]["red"]["rows"] == reds
    assert set(found.segments["color"]["red"]) == {"rows", "mae", "mae_ci_low", "mae_ci_high"}
    assert found.segments["color"]["blue"]["rows"] == len(rows) - reds
    # The declared order of a categorical's groups is kept (not sorted: "over 5" < "up to 5").
    assert list(found.segments["x"]) == ["up to 5", "over 5"]
    small = sum(row["x"] < 5 for row in rows)
    assert found.segments["x"]["up to 5"]["rows"] == small
    # --min-rows holds for each group as for the whole.
    least = max(small, len(rows) - small) + 1
    few = assess(joined.versions[0], grouper, None, min_rows=least)
    assert few.live is not None
    assert few.segments["x"]["over 5"] == {
        "rows": len(rows) - small,
        "note": f"fewer than {least} answers with their truth",
    }


def test_the_difference_of_figures_on_different_rows_adds_their_spreads_in_quadrature() -> None:
    found = independent_difference(Interval(0.80, 0.77, 0.83), Interval(0.86, 0.82, 0.90))
    assert found.estimate == pytest.approx(-0.06)
    assert (found.low, found.high) == (pytest.approx(-0.11), pytest.approx(-0.01))
    exact = independent_difference(Interval(0.80, 0.77, 0.83), Interval(0.86, 0.86, 0.86))
    assert (exact.low, exact.high) == (pytest.approx(-0.09), pytest.approx(-0.03))


def test_live_decisions_per_group_are_the_labels_served_not_recomputed() -> None:
    lines, truth, frame = offered_log()
    grouper = Grouper(Offered())
    joined = join(read_lines(lines), "toy", grouper, truth)
    found = assess(joined.versions[0], grouper, None)
    for color in ("red", "blue"):
        rows = frame[frame["color"] == color]
        entry = found.parity["color"]["groups"][color]
        assert entry["rows"] == len(rows)
        assert entry["flagged_share"] == pytest.approx(rows["offered"].mean(), rel=1e-12)
        assert entry["true_positive_rate"] == pytest.approx(
            rows["offered"][rows["truth"] == 1].mean(), rel=1e-12
        )
        assert entry["false_positive_rate"] == pytest.approx(
            rows["offered"][rows["truth"] == 0].mean(), rel=1e-12
        )
    # Red's stayers are offered from 0.3, blue's from 0.6: the gap is far beyond the noise.
    gap = found.parity["color"]["gaps"]["false_positive_rate"]
    assert (gap["highest"], gap["lowest"]) == ("red", "blue")
    assert gap["ci_low"] > 0.2
    report = render(joined, [found], "truth.csv").splitlines()
    # Each group's calibration in the large beside its ranking figure, as logged.
    red = found.segments["color"]["red"]
    in_red = frame[frame["color"] == "red"]
    assert red["mean_predicted"] == pytest.approx(in_red["p"].mean(), rel=1e-12)
    assert red["positive_share"] == pytest.approx(in_red["truth"].mean(), rel=1e-12)
    groups = next(line for line in report if line.startswith("toy v1:   color: "))
    assert (
        f"; predicted {red['mean_predicted']:.3f} against {red['positive_share']:.3f} positive, "
        f"{red['calibration_gap']:+.3f} ({red['calibration_gap_ci_low']:+.3f} to "
    ) in groups
    decisions = next(line for line in report if line.startswith("toy v1:   color decisions: "))
    share = found.parity["color"]["gaps"]["flagged_share"]
    assert f"share flagged red - blue {share['gap']:+.4f} ({share['ci_low']:+.4f} to " in decisions
    assert f", ratio {share['ratio']:.2f}, under 0.8; true-positive rate " in decisions
    assert f"; false-positive rate red - blue {gap['gap']:+.4f} (" in decisions
    # --min-rows holds for a group's rates as for its other figures.
    few = assess(joined.versions[0], grouper, None, min_rows=len(frame) - 1)
    assert (
        few.parity["color"]["groups"]["red"]["note"]
        == f"fewer than {len(frame) - 1} answers with their truth"
    )
    assert (
        render(joined, [few], "t").splitlines()[2]
        == "toy v1:   color decisions: fewer than two groups with a figure"
    )


def test_without_the_served_decision_a_binary_recipe_has_no_live_rates_and_a_regressor_its_signed_error(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    lines, truth, _ = offered_log()

    class Unsaid(Offered):
        def served_decision(self, prediction: dict[str, Any]) -> None:
            return None

    grouper = Grouper(Unsaid())
    assert assess(join(read_lines(lines), "toy", grouper, truth).versions[0], grouper, None).parity == {}
    rows, answers, values = served

    class ByColour(ToyRecipe):
        def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
            return {"color": features["color"]}

    grouper = Grouper(ByColour())
    logged = [
        capture_line(f"r{i}", 0, row, answer)
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    joined = join(read_lines(logged), "toy", grouper, {(f"r{i}", 0): y for i, y in enumerate(values)})
    found = assess(joined.versions[0], grouper, None)
    red = np.array([row["color"] == "red" for row in rows])
    errors = np.array([a["value"] for a in answers]) - values
    assert found.parity["color"]["groups"]["red"]["mean_error"] == pytest.approx(
        errors[red].mean(), rel=1e-12
    )
    assert set(found.parity["color"]["gaps"]) == {"mean_error"}


def test_live_rates_are_held_against_the_same_groups_held_out_rates() -> None:
    """Red's held-out rows were offered at blue's threshold (0.6); live, red is offered from 0.3."""
    lines, truth, frame = offered_log(2000)
    grouper = Grouper(Offered())
    joined = join(read_lines(lines), "toy", grouper, truth)
    held_out = held_out_rates(frame, frame["p"] >= 0.6)
    found = assess(joined.versions[0], grouper, None, held_out_parity=held_out)
    changes = {(c.group, c.figure): c for c in found.parity_changes["color"]}
    assert len(changes) == 6  # two colours, three rates each
    for (group, figure), change in changes.items():
        live_rate = found.parity["color"]["groups"][group][figure]
        held_rate = held_out["color"]["groups"][group][figure]
        assert (change.live, change.held_out) == (live_rate, held_rate)
        assert change.difference.estimate == pytest.approx(live_rate - held_rate, abs=1e-12)
        assert change.difference.low <= change.difference.estimate <= change.difference.high
        assert change.difference.level == each_of(6)  # six rates' intervals that hold together
    # Red's rates rose far beyond the noise; blue's are the same decisions, so no change at all.
    assert changes["red", "false_positive_rate"].difference.low > 0.2
    assert changes["red", "flagged_share"].beyond_the_noise
    for figure in ("flagged_share", "true_positive_rate", "false_positive_rate"):
        blue = changes["blue", figure].difference
        assert blue.estimate == 0
        assert blue.low < 0 < blue.high
        assert not changes["blue", figure].beyond_the_noise
    text = render(joined, [found], "t").splitlines()
    line = next(x for x in text if x.startswith("toy v1:   color decisions against"))
    assert text[text.index(line) - 1] == (
        "toy v1:   decisions against held out, each at 99.2% (Bonferroni over 6 rates: 95% together)"
    )
    red = changes["red", "false_positive_rate"]
    assert (
        f"false-positive rate red {red.live:.4f} against {red.held_out:.4f} held out: "
        f"{red.difference.estimate:+.4f} ({red.difference.low:+.4f} to {red.difference.high:+.4f})"
    ) in line
    assert line.endswith("beyond the noise; the other 3 within it")


def test_a_version_whose_run_reported_no_rates_says_so_and_one_not_compared_says_nothing_more() -> None:
    lines, truth, _ = offered_log()
    grouper = Grouper(Offered())
    joined = join(read_lines(lines), "toy", grouper, truth)
    older = assess(joined.versions[0], grouper, Interval(0.7, 0.65, 0.75), held_out_parity=None)
    assert older.parity_changes == {}
    assert (
        "toy v1:   decisions against held out: none: its training run reported no rates per group "
        "(trained before they were)"
    ) in render(joined, [older], "t").splitlines()
    unregistered = assess(joined.versions[0], grouper, None, held_out_parity=None)
    assert "against held out" not in render(joined, [unregistered], "t")


def test_a_rate_drawn_as_its_rows_count_has_the_spread_of_two_proportions() -> None:
    """The binomial draws of each side: the interval's half-width is 1.96 standard errors of the
    difference of two proportions, within the bootstrap's own noise."""
    live = {"g": {"groups": {"a": {"rows": 900, "flagged_share": 0.3}}}}
    held_out = {"g": {"groups": {"a": {"rows": 400, "flagged_share": 0.25}}}}
    (change,) = parity_against_held_out(live, held_out, seed=3)["g"]
    standard_error = np.sqrt(0.3 * 0.7 / 900 + 0.25 * 0.75 / 400)
    assert (change.difference.high - change.difference.low) / 2 == pytest.approx(
        1.96 * standard_error, rel=0.1
    )
    assert change.difference.estimate == pytest.approx(0.05)


def test_a_rate_of_a_few_rows_at_0_or_1_is_not_called_beyond_the_noise() -> None:
    """A group's one churner missed: a true-positive rate of 0 from one row. Drawn as a binomial of
    the observed share, that side never moved and the interval was the held-out side's alone."""
    live = {"g": {"groups": {"a": {"rows": 123, "true_positive_rate": 0.0, "true_positive_rate_rows": 1}}}}
    held_out = {
        "g": {"groups": {"a": {"rows": 400, "true_positive_rate": 0.1618, "true_positive_rate_rows": 68}}}
    }
    (change,) = parity_against_held_out(live, held_out, seed=3)["g"]
    assert not change.beyond_the_noise
    assert change.difference.estimate == pytest.approx(-0.1618)
    # Every one of 60 churners missed, where held out found half of them, is a finding.
    live["g"]["groups"]["a"]["true_positive_rate_rows"] = 60
    held_out["g"]["groups"]["a"]["true_positive_rate"] = 0.5
    (change,) = parity_against_held_out(live, held_out, seed=3)["g"]
    assert change.beyond_the_noise


def test_several_rates_intervals_hold_together_each_wider_as_their_number_asks() -> None:
    """Two groups' rates: each interval at 97.5 %, z = 2.24 standard errors, from as many
    draws as its ends need; a move of 2.1 standard errors, beyond 95 % alone, is within it."""
    standard_error = np.sqrt(0.3 * 0.7 / 900 + 0.3 * 0.7 / 400)
    moved = 0.3 + 2.1 * standard_error
    live = {"g": {"groups": {g: {"rows": 900, "flagged_share": moved} for g in "ab"}}}
    held_out = {"g": {"groups": {g: {"rows": 400, "flagged_share": 0.3} for g in "ab"}}}
    changes = parity_against_held_out(live, held_out, seed=3)["g"]
    assert [c.difference.level for c in changes] == [0.975, 0.975]
    for change in changes:
        assert (change.difference.high - change.difference.low) / 2 == pytest.approx(
            float(norm.ppf(0.9875)) * standard_error, rel=0.1
        )
        assert not change.beyond_the_noise
    (alone,) = parity_against_held_out({"g": {"groups": {"a": live["g"]["groups"]["a"]}}}, held_out, seed=3)[
        "g"
    ]
    assert alone.beyond_the_noise


def test_a_group_without_a_figure_on_either_side_has_no_change_and_a_regressors_intervals_combine() -> None:
    live = {
        "g": {
            "groups": {
                "a": {"rows": 300, "mean_error": 0.5, "mean_error_ci_low": 0.3, "mean_error_ci_high": 0.7},
                "b": {"rows": 300, "mean_error": 0.1, "mean_error_ci_low": 0.0, "mean_error_ci_high": 0.2},
                "new": {"rows": 300, "mean_error": 0.0, "mean_error_ci_low": -0.1, "mean_error_ci_high": 0.1},
            }
        }
    }
    held_out = {
        "g": {
            "groups": {
                "a": {"rows": 200, "mean_error": 0.1, "mean_error_ci_low": -0.05, "mean_error_ci_high": 0.25},
                "b": {"rows": 50, "note": "fewer than 100 held-out rows"},
            }
        }
    }
    (change,) = parity_against_held_out(live, held_out)["g"]
    assert (change.group, change.figure) == ("a", "mean_error")
    spread = float(np.hypot(0.2, 0.15))
    assert (change.difference.low, change.difference.high) == (
        pytest.approx(0.4 - spread),
        pytest.approx(0.4 + spread),
    )
    assert parity_against_held_out(live, {}) == {}
    # Two regressor groups: the combined half-width is widened from 95 % to 97.5 % each.
    held_out["g"]["groups"]["b"] = held_out["g"]["groups"]["a"]
    widened = float(norm.ppf(0.9875) / norm.ppf(0.975))
    found = parity_against_held_out(live, held_out)["g"]
    assert [c.group for c in found] == ["a", "b"]
    for change, live_half in zip(found, (0.2, 0.1), strict=True):
        half = (change.difference.high - change.difference.low) / 2
        assert half == pytest.approx(float(np.hypot(live_half, 0.15)) * widened)
        assert change.difference.level == 0.975


@pytest.mark.parametrize(
    ("few", "compared", "verdict"),
    [
        # z = 2.2 is beyond 95 % (1.96) but within three groups' 98.3 % each (2.39): the noise of
        # one group in three, not a worse version.
        ("", 3, "within the noise"),
        # Two groups compared, each at 97.5 % (2.24): still within.
        ("green", 2, "within the noise"),
    ],
)
def test_the_groups_intervals_hold_together_so_one_group_in_several_is_not_called_worse_by_chance(
    few: str, compared: int, verdict: str
) -> None:
    grouper = Grouper(ByColour())
    sides = NormalSides(2.2, few)
    labelled = grouper.labels([{"color": label} for label in sides.labels])
    found = within_groups(grouper, labelled, sides)
    assert sides.levels == [each_of(compared)] * compared
    assert [g.verdict for g in found if g.difference is not None] == [verdict] * compared
    assert [g.group for g in found if g.note] == ([few] if few else [])
    # The same difference alone in its family is at 95 %, and beyond the noise.
    one = NormalSides(2.2, labels=("blue",) * 3)
    (alone,) = within_groups(grouper, grouper.labels([{"color": "blue"}] * 3), one)
    assert (alone.difference.level, alone.verdict) == (0.95, "worse")
    # And a group far enough out is named whatever the family's size.
    assert {g.verdict for g in within_groups(grouper, labelled, NormalSides(3.0))} == {"worse"}


def test_a_versions_live_groups_are_held_against_the_same_groups_held_out_rows(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], mlflow_client: Any
) -> None:
    """Held out, the toy model's answers to 300 rows; live, the same rows' answers with a dollar
    added for blue customers: blue is worse than held out beyond the noise, red is not, each
    group's difference is the two-sample bootstrap's on that group's live answers and held-out
    rows alone, and the report, the run and the version's tags say so."""
    rows, answers, truth = served
    values = np.array([a["value"] for a in answers])
    blue = np.array([row["color"] == "blue" for row in rows])
    kept = held_out_record(ByColour(), pd.DataFrame(rows), pd.Series(truth), values)
    held_out_rows = HeldOutAnswers(np.asarray(kept["target"]), np.asarray(kept["output"]), kept["groups"])
    live_values = values + np.where(blue, 1.0, 0.0)
    lines = [
        capture_line(f"r{i:04d}", 0, row, {"value": float(v)})
        for i, (row, v) in enumerate(zip(rows, live_values, strict=True))
    ]
    grouper = Grouper(ByColour())
    joined = join(read_lines(lines), "toy", grouper, {(f"r{i:04d}", 0): y for i, y in enumerate(truth)})
    metric = ToyRecipe().primary()
    held_out = uncertainty.interval(metric, truth, values)
    found = assess(joined.versions[0], grouper, held_out, held_out_rows=held_out_rows)
    by_group = {g.group: g for g in found.groups}
    assert list(by_group) == ["blue", "red"]
    assert (by_group["blue"].verdict, by_group["red"].verdict) == ("worse", "within the noise")
    for colour, mask in (("blue", blue), ("red", ~blue)):
        g = by_group[colour]
        assert (g.rows, g.other_rows) == (int(mask.sum()), int(mask.sum()))
        assert (
            g.difference
            == unpaired_difference(
                metric, truth[mask], live_values[mask], truth[mask], values[mask], level=each_of(2)
            ).difference
        )
    text = render(joined, [found], "t").splitlines()
    level = "each at 97.5% (Bonferroni over 2 groups: 95% together)"
    at = text.index(f"toy v1:   per group against held out, {level}")
    assert text[at + 1] == (
        f"toy v1:   color against held out: {by_group['blue'].describe()}; {by_group['red'].describe()}"
    )
    # Recorded: each group's difference on the run, the worse group on the version's tags, and
    # what mlp promote prints of it.
    registered(mlflow_client, "heldagainst", 1)
    run_id, _ = evaluation.log_run(mlflow_client, replace(found, name="heldagainst"), "captures/")
    metrics = mlflow_client.get_run(run_id).data.metrics
    assert metrics["live.segment.color.blue.mae_minus_held_out"] == by_group["blue"].difference.estimate
    assert metrics["live.segment.color.blue.other_rows"] == int(blue.sum())
    assert (metrics["live.groups_worse"], metrics["live.segment.groups_level"]) == (1, 0.975)
    tags = mlflow_client.get_model_version("heldagainst", "1").tags
    assert tags["live.groups_worse"] == f"color {by_group['blue'].describe()}; {level}"
    assert (
        f"; as served, worse than held out beyond the noise for: {tags['live.groups_worse']}"
        in live_evidence("1", tags)
    )
    # A run kept without the groups: none compared, and the tag says why rather than "none".
    older = assess(joined.versions[0], grouper, held_out, held_out_rows=held_out_rows._replace(groups=None))
    run_id, _ = evaluation.log_run(mlflow_client, replace(older, name="heldagainst"), "captures/")
    tags = mlflow_client.get_model_version("heldagainst", "1").tags
    assert tags["live.groups_worse"] == (
        "not compared: its training run kept no groups of its held-out rows (trained before they were)"
    )
    assert "worse than held out" not in live_evidence("1", tags)
    assert "toy v1:   per group against held out: none: its training run kept no groups" in render(
        joined, [older], "t"
    )
