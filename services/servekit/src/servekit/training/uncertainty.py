"""How much a held-out figure can be trusted: bootstrap intervals of the primary metric.

A held-out split of a few thousand rows moves a metric by about a point from
one split seed to the next (BankChurn's ROC AUC: 0.848 to 0.893 over 20
seeds). A bare 0.856 hides that; an interval shows it, and a champion/challenger
comparison shows whether a win is more than the noise of the split.

The predictions are computed once and the test rows resampled with replacement
(Efron's percentile bootstrap); a comparison resamples the SAME rows for both
models (a paired bootstrap), which cancels the rows' shared difficulty and is
much tighter than comparing two separate intervals. Two samples that share no
row (a canary's answers and the stable version's) are resampled each on its
own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import rankdata

Array = NDArray[Any]
ROUNDS = 1000
LEVEL = 0.95
#: Bootstrap draws expected beyond each end of an interval: fewer, and its ends move with the seed.
TAIL_DRAWS = 10


#: A metric of one bootstrap sample, given how many times the sample drew each row.
DrawnScore = Callable[[Array], float]


@dataclass(frozen=True)
class PrimaryMetric:
    """A metric as a function of per-row model outputs, so resampling needs no re-prediction."""

    output: Literal["predict", "positive_probability"]
    score: Callable[[Array, Array], float]
    #: The metric of a sample given each row's draw count, prepared once per ``(target, output)``
    #: (sorted, coded) so that a sample costs O(rows) instead of a copy and a sort: 200,000 live
    #: answers (``mlp evaluate``) resampled a thousand times. None: each sample's rows are copied.
    drawn: Callable[[Array, Array], DrawnScore] | None = None

    def outputs(self, pipeline: Any, features: pd.DataFrame) -> Array:
        if self.output == "positive_probability":
            return np.asarray(pipeline.predict_proba(features))[:, 1]
        return np.asarray(pipeline.predict(features))

    def drawn_score(self, target: Array, output: Array) -> DrawnScore:
        if self.drawn is not None:
            return self.drawn(target, output)
        rows = np.arange(len(target))

        def copied(counts: Array) -> float:
            index = np.repeat(rows, counts)
            return self.score(target[index], output[index])

        return copied


# The metrics run a thousand times per interval, so they are plain numpy:
# sklearn's versions spend ~4 ms per call validating their input (a test checks
# these agree with sklearn's).


def roc_auc(target: Array, output: Array) -> float:
    """Mann-Whitney U over average ranks: the area under the ROC curve, ties counted half."""
    positive = target == 1
    n_positive = int(positive.sum())
    n_negative = len(target) - n_positive
    ranks = rankdata(output)
    u = ranks[positive].sum() - n_positive * (n_positive + 1) / 2
    return float(u / (n_positive * n_negative))


def drawn_roc_auc(target: Array, output: Array) -> DrawnScore:
    """:func:`roc_auc` of a sample by draw counts: the rows sorted once, ties grouped once."""
    order = np.argsort(output, kind="stable")
    positive = (target[order] == 1).astype(np.float64)
    _, group = np.unique(output[order], return_inverse=True)
    size = int(group.max()) + 1 if len(group) else 0

    def score(counts: Array) -> float:
        drawn = counts[order]
        positives = np.bincount(group, weights=drawn * positive, minlength=size)
        negatives = np.bincount(group, weights=drawn * (1.0 - positive), minlength=size)
        below = np.cumsum(negatives) - negatives
        # Each positive beats the negatives scored below it and ties with its own group's, half each.
        won = float((positives * (below + negatives / 2)).sum())
        return won / (float(positives.sum()) * float(negatives.sum()))

    return score


def macro_f1(target: Array, output: Array) -> float:
    """Unweighted mean F1 over every label present in ``target`` or ``output``."""
    size, truth, predicted = _label_codes(target, output)
    true_positive = np.bincount(truth[truth == predicted], minlength=size)
    both = np.bincount(truth, minlength=size) + np.bincount(predicted, minlength=size)
    return float(np.mean(2 * true_positive / both))


def _label_codes(target: Array, output: Array) -> tuple[int, Array, Array]:
    """How many labels ``target`` and ``output`` hold, and each row's coded 0, 1, ... in sorted order,
    as ``np.unique`` of both would code them. Each side's labels are found on their own, not in a
    sorted copy of both: a copy of every row's label string and its index, where a day's live
    answers are hundreds of thousands (NLPInsight's 400,000 rose by 113 MiB in their groups'
    intervals; 61 MiB this way)."""
    target, output = np.asarray(target), np.asarray(output)
    labels = np.union1d(np.unique(target), np.unique(output))
    return (
        len(labels),
        np.searchsorted(labels, target.astype(labels.dtype, copy=False)),
        np.searchsorted(labels, output.astype(labels.dtype, copy=False)),
    )


def drawn_macro_f1(target: Array, output: Array) -> DrawnScore:
    """:func:`macro_f1` of a sample by draw counts: labels coded once, the confusion matrix weighed."""
    size, truth, predicted = _label_codes(target, output)
    cell = truth * size + predicted

    def score(counts: Array) -> float:
        confusion = np.bincount(cell, weights=counts, minlength=size * size).reshape(size, size)
        both = confusion.sum(axis=0) + confusion.sum(axis=1)
        present = both > 0  # labels the sample holds, in its truth or its predictions
        return float(np.mean(2 * np.diag(confusion)[present] / both[present]))

    return score


def mae(target: Array, output: Array) -> float:
    return float(np.mean(np.abs(np.asarray(target, dtype=float) - np.asarray(output, dtype=float))))


def drawn_mae(target: Array, output: Array) -> DrawnScore:
    errors = np.abs(np.asarray(target, dtype=float) - np.asarray(output, dtype=float))
    return lambda counts: float(np.dot(counts, errors) / counts.sum())


#: Primary metrics servekit can put an interval on, by the name a recipe declares.
PRIMARY_METRICS = {
    "roc_auc": PrimaryMetric("positive_probability", roc_auc, drawn_roc_auc),
    "macro_f1": PrimaryMetric("predict", macro_f1, drawn_macro_f1),
    "mae": PrimaryMetric("predict", mae, drawn_mae),
}


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    #: The share of samples whose interval would hold the true figure (wider than 95 % where the
    #: interval is one of a family that must hold together: :func:`each_of`).
    level: float = LEVEL

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.estimate:+.4f} ({percent(self.level)} CI {self.low:+.4f} to {self.high:+.4f})"


def percent(level: float) -> str:
    """``95%``, or ``99.4%`` for a level that is not a whole percent."""
    return f"{level:.0%}" if round(level * 100, 6).is_integer() else f"{level:.1%}"


def each_of(intervals: int, level: float = LEVEL) -> float:
    """The level of each of ``intervals`` intervals that must all hold together at ``level``.

    Eight groups' comparisons at 95 % each would call one of them beyond the noise in about one
    run in three where the two versions are the same for all eight (1 - 0.95^8 = 34 %). The
    Bonferroni bound makes the family's chance of any such call at most 1 - ``level``, whatever
    the groups' dependence (a customer is in one group of each dimension, so the dimensions'
    comparisons share answers): no assumption a reviewer must take on trust.
    """
    return 1 - (1 - level) / max(intervals, 1)


def held_together(intervals: int, each: float, what: str) -> str:
    """``each at 99.4% (Bonferroni over 8 groups: 95% together)``: how ``intervals`` intervals of
    ``what`` at ``each`` hold together; ``at 95%`` for one."""
    if intervals == 1:
        return f"at {percent(each)}"
    return f"each at {percent(each)} (Bonferroni over {intervals} {what}: {percent(LEVEL)} together)"


def rounds_for(level: float) -> int:
    """Bootstrap samples enough for ``level``'s ends: :data:`ROUNDS`, or more for a wide level."""
    # Rounded first: 10 / (0.05 / 16) is 3200.0000000000005 in floating point.
    return max(ROUNDS, math.ceil(round(TAIL_DRAWS / ((1 - level) / 2), 6)))


def _draws(target: Array, rounds: int, seed: int) -> Iterator[Array]:
    """How many times each bootstrap sample draws each row; a sample of one class only is drawn again.

    One sample at a time, so memory holds one, whatever the rows and rounds (a list of a thousand
    index arrays of 200,000 rows was 1.6 GB). Stratifying by class would be simpler, but plain
    resampling is what makes the interval reflect the class balance's own sampling noise.
    """
    rng = np.random.default_rng(seed)
    n = len(target)
    # Coded as return_inverse would, with no index per row sorted (400,000 live answers).
    classes = np.searchsorted(np.unique(target), target)
    size = int(classes.max()) + 1 if n else 0
    drawn = 0
    while drawn < rounds:
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        if size < 2 or np.count_nonzero(np.bincount(classes, weights=counts, minlength=size)) > 1:
            drawn += 1
            yield counts


def resamples(rows: int, rounds: int = ROUNDS, seed: int = 0) -> Iterator[Array]:
    """How many times each of ``rows`` rows is drawn, in each of ``rounds`` plain bootstrap samples."""
    return _draws(np.zeros(rows), rounds, seed)


def percentile_interval(values: Any, estimate: float, level: float = LEVEL) -> Interval:
    """The percentile bootstrap interval of ``estimate``, given its value in each resample (NaN: none)."""
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), level)


def interval(
    metric: PrimaryMetric, target: Array, output: Array, *, rounds: int = ROUNDS, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of ``metric`` on one model's held-out outputs."""
    target, output = np.asarray(target), np.asarray(output)
    score = metric.drawn_score(target, output)
    values = [score(counts) for counts in _draws(target, rounds, seed)]
    return percentile_interval(values, metric.score(target, output))


def paired_difference(
    metric: PrimaryMetric,
    target: Array,
    new: Array,
    old: Array,
    *,
    level: float = LEVEL,
    rounds: int | None = None,
    seed: int = 0,
) -> Interval:
    """Interval of ``metric(new) - metric(old)`` over the same resampled rows (as many as
    :func:`rounds_for` the level, unless ``rounds`` says)."""
    target, new, old = np.asarray(target), np.asarray(new), np.asarray(old)
    new_score, old_score = metric.drawn_score(target, new), metric.drawn_score(target, old)
    draws = _draws(target, rounds or rounds_for(level), seed)
    values = [new_score(counts) - old_score(counts) for counts in draws]
    return percentile_interval(values, metric.score(target, new) - metric.score(target, old), level)


class Unpaired(NamedTuple):
    """Two samples that share no row: the first one's interval, and their difference's."""

    interval: Interval
    difference: Interval


def unpaired_difference(
    metric: PrimaryMetric,
    target: Array,
    output: Array,
    other_target: Array,
    other_output: Array,
    *,
    level: float = LEVEL,
    rounds: int | None = None,
    seed: int = 0,
) -> Unpaired:
    """Interval of ``metric(output) - metric(other_output)`` for two samples that share no row,
    and the first sample's own :func:`interval`, from the same draws (the first sample, a day's
    live answers, can be hundreds of thousands of rows: it is drawn once).

    Each sample is resampled on its own (a two-sample percentile bootstrap), so the interval keeps
    each metric's own skew: a fare's absolute errors have a long tail, and ROC AUC near 1 cannot
    rise as far as it can fall, which adding two half-widths in quadrature would make symmetric.
    """
    target, output = np.asarray(target), np.asarray(output)
    other_target, other_output = np.asarray(other_target), np.asarray(other_output)
    score, other_score = metric.drawn_score(target, output), metric.drawn_score(other_target, other_output)
    estimate = metric.score(target, output)
    rounds = rounds or rounds_for(level)
    pairs = zip(_draws(target, rounds, seed), _draws(other_target, rounds, seed + 1), strict=True)
    values, differences = [], []
    for counts, other_counts in pairs:
        values.append(score(counts))
        differences.append(values[-1] - other_score(other_counts))
    difference = percentile_interval(differences, estimate - metric.score(other_target, other_output), level)
    return Unpaired(percentile_interval(values, estimate, level), difference)
