"""Each version's figure on its live answers, per group, and against its held-out figure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from servekit.evaluation.groups import ComparedByGroup, GroupComparison, Sample, TwoSamples, within_groups
from servekit.evaluation.held_out import HeldOutAnswers
from servekit.evaluation.joining import Answers, Grouper
from servekit.evaluation.verdicts import MIN_ROWS, Verdict, verdict_of, why_no_figure
from servekit.training import parity, uncertainty
from servekit.training.recipe import TrainingRecipe
from servekit.training.segments import group_metrics

#: What the rows of a live figure are, in a group's note.
LIVE_ROWS = "answers with their truth"


@dataclass(frozen=True)
class Quality(ComparedByGroup):
    """One version's primary metric on its live answers, against its held-out figure."""

    name: str
    version: str
    metric: str
    rows: int
    live: uncertainty.Interval | None = None
    #: Why there is no live figure (too few answers, one class only).
    note: str = ""
    held_out: uncertainty.Interval | None = None
    #: Why there is no held-out figure to compare with (version not in the registry, say); with
    #: one, what rows it is over where that is not what its run logged (``HeldOut.note``).
    held_out_note: str = ""
    #: live - held out, and whether that is beyond the noise of both samples, and which way.
    difference: uncertainty.Interval | None = None
    verdict: Verdict | None = None
    #: The difference's interval resamples the held-out rows' answers; False: it combines the
    #: two intervals (a training run that did not keep them).
    resampled: bool = False
    segments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Decision and error rates per group, as served (``servekit.training.parity``).
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Per dimension, each group's rates as served against the same group's held out
    #: (:func:`parity_against_held_out`); empty when the training run kept none.
    parity_changes: dict[str, list[ParityChange]] = field(default_factory=dict)
    #: Why there are no changes to show where there are live rates: the run reported none.
    parity_changes_note: str = ""
    #: Each group's live figure against the same group's held-out rows (:mod:`.groups`), when the
    #: training run kept its held-out rows' answers and groups; else why not, in ``groups_note``.
    groups: tuple[GroupComparison, ...] = ()
    groups_note: str = ""
    #: Answers left out as rows the version was trained on (:mod:`.trained_on`); None: not checked.
    training_rows_left_out: int | None = None
    #: How many were left out, or why it could not be checked; empty when none was.
    training_rows_note: str = ""


def assess(
    answers: Answers,
    grouper: Grouper,
    held_out: uncertainty.Interval | None,
    *,
    held_out_note: str = "",
    held_out_rows: HeldOutAnswers | None = None,
    held_out_parity: Mapping[str, Mapping[str, Any]] | None = None,
    min_rows: int = MIN_ROWS,
    seed: int = 0,
) -> Quality:
    """The live figure with its bootstrap interval, per group too, and how it compares.

    With the held-out rows' truth and outputs (``held_out_rows``), the difference is a
    two-sample bootstrap, as a canary's is, and so is each group's against the same group's
    held-out rows when the run kept their groups; without them, the two intervals combined, and
    no group compared.
    """
    recipe = grouper.recipe
    base = Quality(
        answers.name,
        answers.version,
        recipe.primary_metric,
        len(answers.truths),
        held_out=held_out,
        held_out_note=held_out_note,
    )
    note = why_no_figure(recipe, answers.truths, min_rows=min_rows)
    if note:
        return replace(base, note=note)
    target, outputs = np.asarray(answers.truths), np.asarray(answers.outputs)
    groups = grouper.series(answers)
    segments = group_metrics(
        recipe, groups, target, outputs, seed=seed, min_rows=min_rows, rows_are=LIVE_ROWS
    )
    rates = live_parity(recipe, answers, groups, target, outputs, seed=seed, min_rows=min_rows)
    changes = parity_against_held_out(rates, held_out_parity or {}, seed=seed)
    changes_note = ""
    if rates and not changes and held_out is not None:  # else the version is not compared at all
        changes_note = (
            "its training run reported no rates per group (trained before they were)"
            if not held_out_parity
            else "no group has a rate both live and held out"
        )
    if held_out is not None and held_out_rows is not None:
        live, difference = uncertainty.unpaired_difference(
            recipe.primary(), target, outputs, held_out_rows.target, held_out_rows.output, seed=seed
        )
        live_sample = Sample(target, outputs, answers.groups)
        by_group, groups_note = against_held_out(
            grouper, live_sample, held_out_rows, min_rows=min_rows, seed=seed
        )
        base = replace(base, groups=by_group, groups_note=groups_note)
    else:
        live = uncertainty.interval(recipe.primary(), target, outputs, seed=seed)
        if held_out is None:
            return replace(
                base,
                live=live,
                segments=segments,
                parity=rates,
                parity_changes=changes,
                parity_changes_note=changes_note,
            )
        difference = independent_difference(live, held_out)
    verdict = verdict_of(difference, recipe.greater_is_better)
    return replace(
        base,
        live=live,
        difference=difference,
        verdict=verdict,
        segments=segments,
        parity=rates,
        parity_changes=changes,
        parity_changes_note=changes_note,
        resampled=held_out_rows is not None,
    )


#: What each side of a version's comparison with its held-out rows is, in a group's note.
HELD_OUT_SIDES = ("the live answers", "the held-out rows")


def against_held_out(
    grouper: Grouper, live: Sample, held_out: HeldOutAnswers, *, min_rows: int, seed: int
) -> tuple[tuple[GroupComparison, ...], str]:
    """Each group's live figure (``live``: a version's answers with their truth) against the same
    group's on the held-out rows: a two-sample bootstrap, the groups' intervals held together at
    95 %; or why there is none.

    The overall figure can hold while one group's falls: a campaign brings in customers of one
    country the model has learnt less of, a new kind of headline appears. That is where a live
    evaluation earns its keep, and what a reviewer of the model asks first.
    """
    if held_out.groups is None:
        return (), "its training run kept no groups of its held-out rows (trained before they were)"
    dimensions = list(grouper.dimensions)
    missing = [d for d in dimensions if d not in held_out.groups]
    if missing:
        return (), f"its training run kept no group of {', '.join(missing)} for its held-out rows"
    rows = len(held_out.target)
    labels: list[tuple[str, ...]] = (
        list(zip(*(held_out.groups[d] for d in dimensions), strict=True)) if dimensions else [()] * rows
    )
    sides = TwoSamples(
        grouper.recipe,
        live,
        Sample(held_out.target, held_out.output, labels),
        HELD_OUT_SIDES,
        min_rows=min_rows,
        seed=seed,
    )
    return within_groups(grouper, live.groups + labels, sides), ""


def live_parity(
    recipe: TrainingRecipe,
    answers: Answers,
    groups: Mapping[str, pd.Series],
    target: np.ndarray,
    outputs: np.ndarray,
    *,
    seed: int,
    min_rows: int,
) -> dict[str, dict[str, Any]]:
    """The decision and error rates per group of the answers as they were served.

    A binary model's decisions are the labels it gave (at the threshold of the version that
    answered), not recomputed; a multiclass model's are the labels it gave; a regressor's error is
    its served number minus the truth.
    """
    if recipe.task == "binary":
        if len(answers.decisions) != len(target) or None in answers.decisions:
            return {}  # the recipe does not say which answers are the positive decision
        outputs = np.asarray(answers.decisions, dtype=float)  # flagged from 0.5: 1 and only 1
    elif recipe.task not in ("multiclass", "regression"):
        return {}
    return parity.group_parity(
        recipe.task, groups, target, outputs, threshold=0.5, seed=seed, min_rows=min_rows, rows_are=LIVE_ROWS
    )


@dataclass(frozen=True)
class ParityChange:
    """One group's decision or error rate as served, against the same group's on the held-out rows."""

    group: str
    figure: str
    live: float
    held_out: float
    #: live - held out, with a two-sample interval.
    difference: uncertainty.Interval

    @property
    def beyond_the_noise(self) -> bool:
        return self.difference.low > 0 or self.difference.high < 0


def parity_against_held_out(
    live: Mapping[str, Mapping[str, Any]], held_out: Mapping[str, Mapping[str, Any]], *, seed: int = 0
) -> dict[str, list[ParityChange]]:
    """Each group's rates as served against the same group's held out, for every figure both have.

    A rate is a share of a known count of rows on each side (the group's rows, or its positive or
    negative ones), so each side is drawn on its own, as a canary's two samples are, and the
    difference's interval is their samples'. Each draw is of the rate itself, from the Jeffreys
    posterior of that many rows (Beta(k + 1/2, n - k + 1/2)): as a binomial draw's spread for many
    rows, but not none when the share is 0 or 1, where a binomial draw of the observed share never
    moves. A group's one churner missed was a true-positive rate of 0 "beyond the noise" of the
    held-out 0.16, which misses one of one 84 % of the time. A mean
    signed error (a regressor's) keeps no such count: its two intervals are combined. A group too
    small on either side has no figure there, and no change.

    A version has a few dozen such changes (BankChurn's eight groups, three or four rates each), so
    at 95 % each one or two would move beyond the noise in every run by chance alone, and a reader
    could not tell them from a real move. Their intervals hold together at 95 % instead: each at
    the Bonferroni level of their number (:func:`uncertainty.each_of`).
    """
    rng = np.random.default_rng(seed)
    compared = [
        (dimension, group, figure, now, then)
        for dimension, found in live.items()
        for group, now in found["groups"].items()
        if (then := held_out.get(dimension, {}).get("groups", {}).get(group, {}))
        for figure in parity.figures_of(found)
        if figure in now and figure in then
    ]
    level = uncertainty.each_of(len(compared))
    rounds = uncertainty.rounds_for(level)
    changes: dict[str, list[ParityChange]] = {}
    for dimension, group, figure, now, then in compared:
        estimate = now[figure] - then[figure]
        live_rows, held_out_rows = parity.counted_rows(now, figure), parity.counted_rows(then, figure)
        if live_rows is not None and held_out_rows is not None:
            live_draws, held_out_draws = (
                rng.beta(share * rows + 0.5, (1 - share) * rows + 0.5, size=rounds)
                for share, rows in ((now[figure], live_rows), (then[figure], held_out_rows))
            )
            difference = uncertainty.percentile_interval(live_draws - held_out_draws, estimate, level)
        else:
            difference = independent_difference(
                *(
                    uncertainty.Interval(e[figure], e[f"{figure}_ci_low"], e[f"{figure}_ci_high"])
                    for e in (now, then)
                ),
                level=level,
            )
        changes.setdefault(dimension, []).append(
            ParityChange(group, figure, now[figure], then[figure], difference)
        )
    return changes


def independent_difference(
    live: uncertainty.Interval, held_out: uncertainty.Interval, *, level: float = uncertainty.LEVEL
) -> uncertainty.Interval:
    """Interval of ``live - held_out`` for figures measured on different rows, at ``level``.

    The two samples share no row, so no paired bootstrap is possible. Each interval's half-width
    is z standard errors of its figure, so the difference's half-width is the two added in
    quadrature (a normal approximation of the two percentile intervals), widened from their level
    to ``level`` by the ratio of the two z. A held-out figure logged without an interval counts as
    exact.
    """
    spread = float(np.hypot((live.high - live.low) / 2, (held_out.high - held_out.low) / 2))
    spread *= _z(level) / _z(live.level)
    estimate = live.estimate - held_out.estimate
    return uncertainty.Interval(estimate, estimate - spread, estimate + spread, level)


def _z(level: float) -> float:
    """The standard normal's quantile that leaves (1 - level) / 2 beyond each side."""
    return float(norm.ppf(1 - (1 - level) / 2))
