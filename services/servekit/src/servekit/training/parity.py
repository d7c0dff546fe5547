"""Does the model decide alike for every group? Decision and error rates per group of rows.

``mlp train`` reports them on the held-out rows, ``mlp evaluate`` on the live answers as served.

``segments`` reports how well the model ranks or predicts each group. A reviewer of the decisions
asks what the four-fifths rule and equalised odds ask:

- how often each group gets the positive decision (the share *flagged*: labelled churn);
- among the rows whose truth is positive, the share flagged (the true-positive rate): does the
  model miss one group's churners more often than another's;
- among the rows whose truth is negative, the share flagged all the same (the false-positive rate).

A multiclass model labels no row positive: each label is a decision of its own. Per label, the
share of each group given it, and its recall (among the rows whose truth is that label, the share
given it): does a sentiment model read one kind of text as bearish more often, or miss its bullish
texts more often than another's.

A regressor's counterpart is its signed error per group: a fare model that over-quotes one group's
trips and under-quotes another's can have the same MAE for both and still be unfair to both.

Every figure gets its own bootstrap interval. For each dimension, the gap between the groups with
the highest and the lowest figure gets a two-sample interval, so a reviewer sees which gaps are
beyond the noise of a few hundred rows. The flagged shares' ratio (lowest over highest) is the
four-fifths rule's impact ratio. Groups whose truth differs ought to be flagged at different
rates; the error rates are the figures that compare like with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from servekit.training import uncertainty
from servekit.training.segments import MIN_SEGMENT_ROWS, each_group, fewer_than, metric_name

if TYPE_CHECKING:
    from servekit.training.recipe import TrainingRecipe

Array = uncertainty.Array

#: The figures over a subset of a group's rows: those whose truth is positive, or negative.
RATES = {"true_positive_rate": "positive", "false_positive_rate": "negative"}
#: The impact ratio under which the four-fifths rule (US EEOC guidelines) reads adverse impact.
FOUR_FIFTHS = 0.8
#: Each figure's name for a reader: the model card's column heads and the gaps' lines.
MEANING = {
    "flagged_share": "share flagged",
    "true_positive_rate": "true-positive rate",
    "false_positive_rate": "false-positive rate",
    "mean_error": "mean signed error",
}
#: A multiclass model's figures, one of each kind per label: ``share_labelled.<label>`` over every
#: row, ``recall.<label>`` over the rows whose truth is the label.
PER_LABEL = {"share_labelled": "share labelled {}", "recall": "recall of {}"}


def meaning(figure: str) -> str:
    """A figure's name for a reader: ``share labelled bearish`` for ``share_labelled.bearish``."""
    if figure in MEANING:
        return MEANING[figure]
    kind, _, label = figure.partition(".")
    return PER_LABEL[kind].format(label)


def figures_of(found: Mapping[str, Any]) -> list[str]:
    """Every figure one dimension's result (of :func:`group_parity`) can hold, in the order a table
    shows them: a multiclass result's are per label (its ``labels``)."""
    per_label = [f"{kind}.{label}" for kind in PER_LABEL for label in found.get("labels", ())]
    return [*MEANING, *per_label]


def truth_of(figure: str) -> str | None:
    """What the truth of the rows a figure is over is, when not every row (``positive``, or a label)."""
    kind, _, label = figure.partition(".")
    return RATES.get(figure) or (label if kind == "recall" else None)


def decision_parity(
    recipe: TrainingRecipe,
    features: pd.DataFrame,
    target: Any,
    outputs: Any,
    metadata: Mapping[str, Any],
    *,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """:func:`group_parity` of the recipe's groups (``TrainingRecipe.segments``) at the served threshold.

    A multiclass model's label codes are named by its metadata's ``classes``, as it serves them, so
    the figures at training and on live answers carry the same names.
    """
    groups = recipe.segments(features)
    threshold = float(metadata.get("threshold", 0.5))
    if recipe.task == "multiclass" and metadata.get("classes"):
        names = np.asarray(metadata["classes"], dtype=object)
        target, outputs = names[np.asarray(target, dtype=int)], names[np.asarray(outputs, dtype=int)]
    return group_parity(recipe.task, groups, target, outputs, threshold=threshold, seed=seed)


def per_row(task: str, target: Array, outputs: Array, threshold: float) -> dict[str, tuple[Array, Array]]:
    """Each figure's rows (a mask) and per-row values: a figure is the values' mean over its rows.

    A binary model's outputs are the positive class's probability and a row is flagged from
    ``threshold`` on, as the service labels it; a multiclass model's are its labels; a
    regressor's are its predictions.
    """
    every = np.ones(len(target), dtype=bool)
    if task == "multiclass":
        given = {label: (outputs == label).astype(float) for label in labels_of(target, outputs)}
        return {
            **{f"share_labelled.{metric_name(str(label))}": (every, g) for label, g in given.items()},
            **{f"recall.{metric_name(str(label))}": (target == label, g) for label, g in given.items()},
        }
    if task == "binary":
        flagged = (outputs >= threshold).astype(float)
        positive = target == 1
        return {
            "flagged_share": (every, flagged),
            "true_positive_rate": (positive, flagged),
            "false_positive_rate": (~positive, flagged),
        }
    if task == "regression":
        return {"mean_error": (every, outputs.astype(float) - target.astype(float))}
    return {}


def labels_of(target: Array, outputs: Array) -> list[Any]:
    """A multiclass model's labels: those in the truth or given, sorted."""
    return sorted(set(np.unique(target).tolist()) | set(np.unique(outputs).tolist()))


def group_parity(
    task: str,
    groups: Mapping[str, pd.Series],
    target: Any,
    outputs: Any,
    *,
    threshold: float = 0.5,
    seed: int = 0,
    min_rows: int = MIN_SEGMENT_ROWS,
    rows_are: str = "held-out rows",
) -> dict[str, dict[str, Any]]:
    """``{dimension: {"groups": {group: {rows, <figure>, <figure>_ci_low, _ci_high, ...} or {rows, note}},
    "gaps": {figure: {highest, lowest, gap, ci_low, ci_high[, ratio]}}[, "labels": [...]]}}``.

    A group's rows are resampled once and every figure read from the same samples. Each group is
    resampled on its own, so a gap's samples are the two groups' samples' differences: the
    two-sample bootstrap of ``uncertainty.unpaired_difference``, at no further cost. ``rows_are``
    names the rows in a group's note: held-out rows at training, live answers later.
    """
    target, outputs = np.asarray(target), np.asarray(outputs)
    figures = per_row(task, target, outputs, threshold)
    if not figures:
        return {}
    # A multiclass model's labels, as its figures name them (per_row found them once).
    named = [
        figure.removeprefix("share_labelled.") for figure in figures if figure.startswith("share_labelled.")
    ]
    found: dict[str, dict[str, Any]] = {}
    for dimension, labels in groups.items():
        entries: dict[str, dict[str, Any]] = {}
        resampled: dict[str, dict[str, Resampled]] = {figure: {} for figure in figures}
        for index, (group, mask) in enumerate(each_group(labels)):
            entry: dict[str, Any] = {"rows": int(mask.sum())}
            entries[group] = entry
            if entry["rows"] < min_rows:
                entry["note"] = fewer_than(min_rows, rows_are)
                continue
            for figure, (among, _) in figures.items():
                if truth_of(figure):  # how many rows a rate is of: a group's churners can be few
                    entry[f"{figure}_rows"] = int((mask & among).sum())
            if task == "binary":  # the share a flagged share is read against
                entry["positive_share"] = entry["true_positive_rate_rows"] / entry["rows"]
            by_figure = _resample(figures, mask, seed + index)
            missing = [figure for figure in figures if figure not in by_figure]
            if missing:  # only a rate can miss: the others are over the group's every row
                entry["note"] = "; ".join(
                    f"no {truth_of(f)} in truth among its {rows_are}: no {meaning(f)}" for f in missing
                )
            for figure, sample in by_figure.items():
                found_interval = uncertainty.percentile_interval(sample.draws, sample.estimate)
                entry[figure] = found_interval.estimate
                entry[f"{figure}_ci_low"] = found_interval.low
                entry[f"{figure}_ci_high"] = found_interval.high
                resampled[figure][group] = sample
        found[dimension] = {"groups": entries, "gaps": _gaps(resampled)}
        if named:
            found[dimension]["labels"] = named
    return found


def counted_rows(entry: Mapping[str, Any], figure: str) -> int | None:
    """How many rows a group's ``figure`` is a share of: all its rows for a share flagged or labelled,
    its positive (negative, or one label's) ones for a rate; None for a figure that is no share (a
    mean signed error)."""
    if truth_of(figure):
        return int(entry[f"{figure}_rows"])
    if figure == "flagged_share" or figure.startswith("share_labelled."):
        return int(entry["rows"])
    return None


class Resampled(NamedTuple):
    """A figure of one group: its value, and its value in each bootstrap sample."""

    estimate: float
    draws: Array


def _resample(figures: Mapping[str, tuple[Array, Array]], group: Array, seed: int) -> dict[str, Resampled]:
    """Every figure of the ``group`` rows that has any, from the same bootstrap samples of them."""
    kept = {f: (among[group], values[group]) for f, (among, values) in figures.items() if among[group].any()}
    rows = int(group.sum())
    # A row's kind: whether each figure counts it, and its value there.
    found = _kinds([column for among, values in kept.values() for column in (among, values)])
    if found is not None:
        # Resampling n rows draws each kind's count from a multinomial: the same distribution,
        # drawn at once, where 400,000 live answers drawn row by row take seconds a group.
        kinds, count = found
        drawn = np.random.default_rng(seed).multinomial(rows, count / rows, size=uncertainty.ROUNDS)
        numerators = drawn @ (kinds[:, 0::2] * kinds[:, 1::2])
        denominators = drawn @ kinds[:, 0::2]
        with np.errstate(invalid="ignore", divide="ignore"):  # a sample with none of a rate's rows
            by_sample = numerators / denominators
    else:
        by_sample = np.array([_sample(kept, counts) for counts in uncertainty.resamples(rows, seed=seed)])
    return {
        f: Resampled(float(np.mean(values[among])), by_sample[:, i])
        for i, (f, (among, values)) in enumerate(kept.items())
    }


#: Columns up to which a row's kind is counted as a number of that many bits (a table of 2**16).
KIND_BITS = 16


def _kinds(columns: Sequence[Array]) -> tuple[Array, Array] | None:
    """The kinds of rows present and how many of each, when every column is 0 or 1 (a classifier's:
    flagged or given a label or not, among a rate's rows or not); None otherwise (a regressor's errors).

    Each row's kind is built a column at a time, not from the columns stacked as floats and copied
    as integers: 12 columns a row for three labels, 200 bytes per row of a group of 350,000 live
    answers."""
    if not all(np.isin(column, (0, 1)).all() for column in columns):
        return None
    if len(columns) > KIND_BITS:  # many labels: too many kinds to count by their bits
        # Sorted with the first column least significant, as the bits order them: the same kinds
        # in the same order draw the same samples.
        rows = np.column_stack([np.asarray(column, dtype=np.uint8) for column in reversed(columns)])
        kinds, count = np.unique(rows, axis=0, return_counts=True)
        return kinds[:, ::-1].astype(float), count
    kind = np.zeros(len(columns[0]), dtype=np.int64)  # never none: a share counts every row
    for bit, column in enumerate(columns):
        kind[np.asarray(column, dtype=bool)] += 1 << bit
    bits = 2 ** np.arange(len(columns))
    count = np.bincount(kind, minlength=2 ** len(columns))
    present = np.flatnonzero(count)
    return (present[:, None] // bits % 2).astype(float), count[present]


def _sample(kept: Mapping[str, tuple[Array, Array]], counts: Array) -> list[float]:
    """Each figure of one bootstrap sample, given how many times it drew each row."""
    figures = []
    for among, values in kept.values():
        weights = counts * among
        total = weights.sum()
        # A sample can hold none of a small subset's rows (no churner): that sample has no rate.
        figures.append(float(np.dot(weights, values) / total) if total else np.nan)
    return figures


def _gaps(resampled: Mapping[str, Mapping[str, Resampled]]) -> dict[str, dict[str, Any]]:
    """Per figure, the highest group's minus the lowest group's, with its two-sample interval."""
    gaps: dict[str, dict[str, Any]] = {}
    for figure, by_group in resampled.items():
        if len(by_group) < 2:
            continue
        # Two groups named even when every group has the same figure (a label none is given).
        ranked = sorted(by_group, key=lambda group: by_group[group].estimate)
        lowest, highest = ranked[0], ranked[-1]
        high, low = by_group[highest], by_group[lowest]
        difference = uncertainty.percentile_interval(high.draws - low.draws, high.estimate - low.estimate)
        gap: dict[str, Any] = {
            "highest": highest,
            "lowest": lowest,
            "gap": difference.estimate,
            "ci_low": difference.low,
            "ci_high": difference.high,
        }
        if figure == "flagged_share" and high.estimate > 0:
            gap["ratio"] = low.estimate / high.estimate
        gaps[figure] = gap
    return gaps


def as_run_metrics(parity: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The figures as MLflow metrics: ``parity.<dimension>.<group>.<figure>`` and
    ``parity.<dimension>.<figure>.gap`` (``.ratio`` for the flagged share)."""
    metrics: dict[str, float] = {}
    for dimension, found in parity.items():
        prefix = f"parity.{metric_name(dimension)}"
        for group, entry in found["groups"].items():
            for figure in figures_of(found):
                if figure in entry:
                    metrics[f"{prefix}.{metric_name(group)}.{figure}"] = float(entry[figure])
        for figure, gap in found["gaps"].items():
            metrics[f"{prefix}.{figure}.gap"] = float(gap["gap"])
            if "ratio" in gap:
                metrics[f"{prefix}.{figure}.ratio"] = float(gap["ratio"])
    return metrics
