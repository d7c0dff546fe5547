"""Bootstrap intervals of the primary metric: right width, paired comparisons, clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import f1_score, mean_absolute_error, roc_auc_score
from toy import TOY

from servekit.evaluation import independent_difference
from servekit.training.recipe import TrainingRecipe
from servekit.training.uncertainty import (
    PRIMARY_METRICS,
    each_of,
    interval,
    macro_f1,
    mae,
    paired_difference,
    percent,
    roc_auc,
    rounds_for,
    unpaired_difference,
)


def test_the_fast_metrics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    binary = rng.integers(0, 2, 700)
    scores = np.round(binary + rng.normal(size=700), 1)  # rounding makes ties
    assert roc_auc(binary, scores) == pytest.approx(roc_auc_score(binary, scores), abs=1e-12)
    truth = rng.choice(["bear", "bull", "flat"], 700)
    guess = np.where(rng.random(700) < 0.6, truth, "bull")  # "bear"/"flat" under-predicted
    assert macro_f1(truth, guess) == pytest.approx(f1_score(truth, guess, average="macro"), abs=1e-12)
    assert macro_f1(truth, np.full(700, "other")) == f1_score(truth, np.full(700, "other"), average="macro")
    assert mae(binary, scores) == pytest.approx(mean_absolute_error(binary, scores), abs=1e-12)


def samples() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each metric's kind of target and output, with ties and (for F1) a label never predicted."""
    rng = np.random.default_rng(5)
    binary = rng.integers(0, 2, 800)
    truth = rng.choice(["bear", "bull", "flat"], 800)
    return {
        "roc_auc": (binary, np.round(binary + rng.normal(size=800), 1)),
        "macro_f1": (truth, np.where(rng.random(800) < 0.6, truth, "bull")),
        "mae": (rng.normal(size=800), rng.normal(size=800)),
    }


@pytest.mark.parametrize("name", sorted(PRIMARY_METRICS))
def test_a_sample_scored_by_its_draw_counts_is_the_metric_of_the_rows_it_drew(name: str) -> None:
    metric = PRIMARY_METRICS[name]
    target, output = samples()[name]
    drawn = metric.drawn_score(target, output)
    rng = np.random.default_rng(6)
    for _ in range(20):
        index = rng.integers(0, len(target), len(target))
        counts = np.bincount(index, minlength=len(target))
        assert drawn(counts) == pytest.approx(metric.score(target[index], output[index]), abs=1e-12)
    # A metric without a prepared form copies the drawn rows: the same figure, only slower.
    copied = dataclasses.replace(metric, drawn=None).drawn_score(target, output)
    assert copied(counts) == pytest.approx(drawn(counts), abs=1e-12)


@pytest.mark.parametrize("name", sorted(PRIMARY_METRICS))
def test_an_interval_is_the_percentiles_of_the_samples_the_seed_draws(name: str) -> None:
    # The samples as indices, scored on copied rows: how intervals were computed before draw counts.
    metric = PRIMARY_METRICS[name]
    target, output = samples()[name]
    rng = np.random.default_rng(0)
    values: list[float] = []
    while len(values) < 300:
        index = rng.integers(0, len(target), len(target))
        if len(np.unique(target[index])) > 1:
            values.append(metric.score(target[index], output[index]))
    found = interval(metric, target, output, rounds=300, seed=0)
    assert (found.low, found.high) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-12)


def test_mae_interval_has_the_width_the_standard_error_predicts() -> None:
    rng = np.random.default_rng(1)
    target = rng.normal(size=2000)
    output = target + rng.normal(size=2000)
    found = interval(PRIMARY_METRICS["mae"], target, output)
    errors = np.abs(output - target)
    standard_error = errors.std() / np.sqrt(len(errors))
    assert found.low < found.estimate < found.high
    assert found.estimate == pytest.approx(errors.mean())
    assert found.high - found.low == pytest.approx(2 * 1.96 * standard_error, rel=0.15)


def test_intervals_that_must_hold_together_are_each_wider_by_bonferroni_with_samples_for_their_ends() -> None:
    assert (each_of(0), each_of(1), each_of(8)) == (0.95, 0.95, 1 - 0.05 / 8)
    # Ten samples expected beyond each end: 1,000 cover 95 %, 99.375 % needs 3,200.
    assert (rounds_for(0.95), rounds_for(0.99), rounds_for(each_of(8))) == (1000, 2000, 3200)
    assert (percent(0.95), percent(0.975), percent(each_of(8))) == ("95%", "97.5%", "99.4%")


def test_a_wider_level_is_drawn_from_as_many_samples_as_it_needs_and_has_the_width_it_should() -> None:
    rng = np.random.default_rng(1)
    target = rng.normal(size=2000)
    old = target + rng.normal(size=2000)
    new = target + rng.normal(size=2000) * 0.9
    metric, level = PRIMARY_METRICS["mae"], each_of(8)
    wide = paired_difference(metric, target, new, old, level=level)
    assert wide == paired_difference(metric, target, new, old, level=level, rounds=3200)
    assert wide != paired_difference(metric, target, new, old, level=level, rounds=1000)
    usual = paired_difference(metric, target, new, old)
    assert wide.low < usual.low < usual.high < wide.high
    assert str(wide).startswith(f"{wide.estimate:+.4f} (99.4% CI ")
    # The width normal theory gives the paired errors' mean difference, at 99.375 %.
    differences = np.abs(new - target) - np.abs(old - target)
    standard_error = differences.std() / np.sqrt(len(differences))
    z = float(norm.ppf(1 - (1 - level) / 2))
    assert wide.high - wide.low == pytest.approx(2 * z * standard_error, rel=0.15)
    unpaired = unpaired_difference(metric, target, new, target, old, level=level)
    assert unpaired.difference.level == unpaired.interval.level == level


def test_a_perfect_ranking_has_a_degenerate_auc_interval() -> None:
    target = np.array([0, 1] * 50)
    found = interval(PRIMARY_METRICS["roc_auc"], target, target + 0.5)
    assert (found.low, found.estimate, found.high) == (1.0, 1.0, 1.0)


def test_samples_holding_one_class_are_drawn_again() -> None:
    # With one positive in 20 rows, about a third of plain resamples miss it and
    # ROC AUC would be undefined on them.
    target = np.array([1] + [0] * 19)
    output = np.linspace(1, 0, 20)
    assert interval(PRIMARY_METRICS["roc_auc"], target, output, rounds=200).low == 1.0


def test_identical_models_differ_by_exactly_nothing() -> None:
    rng = np.random.default_rng(2)
    target = rng.integers(0, 3, 500)
    output = np.where(rng.random(500) < 0.7, target, rng.integers(0, 3, 500))
    difference = paired_difference(PRIMARY_METRICS["macro_f1"], target, output, output)
    assert (difference.low, difference.estimate, difference.high) == (0.0, 0.0, 0.0)
    assert difference.contains(0.0)


def test_a_clearly_better_model_wins_beyond_the_noise_and_pairing_tightens_the_interval() -> None:
    rng = np.random.default_rng(3)
    target = rng.integers(0, 2, 1500)
    signal = target + rng.normal(scale=1.5, size=1500)
    better = signal + rng.normal(scale=0.3, size=1500) - 0.4 * (target == 0)
    auc = PRIMARY_METRICS["roc_auc"]
    difference = paired_difference(auc, target, better, signal)
    assert difference.low > 0
    assert not difference.contains(0.0)
    separate = [interval(auc, target, output) for output in (better, signal)]
    assert difference.high - difference.low < min(i.high - i.low for i in separate)


@pytest.mark.parametrize("name", sorted(PRIMARY_METRICS))
def test_two_samples_sharing_no_row_are_each_resampled_on_their_own(name: str) -> None:
    metric = PRIMARY_METRICS[name]
    target, output = samples()[name]
    half = len(target) // 2
    first, second = (target[:half], output[:half]), (target[half:], output[half:])
    both = unpaired_difference(metric, *first, *second, rounds=300, seed=4)
    # The first sample's own interval comes from the same draws: mlp evaluate draws a day's live
    # answers once for both.
    assert both.interval == interval(metric, *first, rounds=300, seed=4)
    found = both.difference

    # Each sample drawn as indices from its own seed and scored on copied rows, as an interval's.
    def scores(target: np.ndarray, output: np.ndarray, seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        values: list[float] = []
        while len(values) < 300:
            index = rng.integers(0, len(target), len(target))
            if len(np.unique(target[index])) > 1:
                values.append(metric.score(target[index], output[index]))
        return values

    differences = np.subtract(scores(*first, seed=4), scores(*second, seed=5))
    assert found.estimate == pytest.approx(metric.score(*first) - metric.score(*second), abs=1e-12)
    assert (found.low, found.high) == pytest.approx(tuple(np.percentile(differences, [2.5, 97.5])), abs=1e-12)


def test_an_unpaired_difference_keeps_a_long_tail_that_adding_two_intervals_would_not() -> None:
    # One model's fares are a dollar off but two of 400 are a hundred off: a resample can draw
    # those two several times but never fewer than none, so its MAE can rise much further than
    # it can fall, and the difference's interval is lopsided.
    target = np.zeros(400)
    heavy = np.r_[np.full(398, 1.0), 100.0, 100.0]
    light = np.random.default_rng(6).exponential(1.0, 400)
    metric = PRIMARY_METRICS["mae"]
    found = unpaired_difference(metric, target, heavy, target, light).difference
    above, below = found.high - found.estimate, found.estimate - found.low
    assert above > 1.25 * below
    combined = independent_difference(interval(metric, target, heavy), interval(metric, target, light))
    assert combined.high - combined.estimate == pytest.approx(combined.estimate - combined.low)


def test_every_service_metric_and_the_toy_have_an_interval() -> None:
    assert TOY.recipe.primary() is PRIMARY_METRICS["mae"]


def test_an_unknown_primary_metric_is_a_clear_error() -> None:
    class Odd(type(TOY.recipe)):  # type: ignore[misc]
        primary_metric = "pinball"

    recipe: TrainingRecipe = Odd()
    with pytest.raises(NotImplementedError, match="'pinball' is not one of macro_f1, mae, roc_auc"):
        recipe.primary()
