"""``mlp evaluate``: how good the served answers were, once the truth is known.

Drift says that the inputs moved; only the truth says whether the answers got worse. The truth
comes later, and elsewhere: whether a customer left shows a quarter on, the fare when the trip
ends, a tweet's sentiment when someone reads it. Prediction capture (:mod:`servekit.capture`)
keeps each answer with its request id and its place in the request; a truth file names answers
by the same two and says what happened. Joined, each version's primary metric on the answers it
gave, with its bootstrap interval, is held against the figure the version scored on its own
held-out split when it was trained (SageMaker Model Monitor's model-quality job, on the
platform's own capture and registry).

The capture log is read as it is joined (it can be gigabytes): only captures with a truth row
are kept, and of each only the scored output, its groups, the variant that gave it, how the
router chose it, and when.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from servekit.datasets import DatasetError, refuse_lines
from servekit.errors import ServekitError
from servekit.loading import one_line
from servekit.replay import Captured, CaptureLineError
from servekit.routing import DRAWN
from servekit.training import parity, uncertainty
from servekit.training.recipe import TrainingRecipe
from servekit.training.segments import MIN_SEGMENT_ROWS, as_run_metrics, group_metrics, metric_name
from servekit.training.versions import (
    HELD_OUT_ANSWERS,
    LIVE_ANSWERS_TAG,
    LIVE_CI_TAG,
    LIVE_FIGURE_TAG,
    LIVE_RUN_TAG,
    LIVE_VERDICT_TAG,
    SERVING_METADATA,
)

#: The truth file's columns that name an answer: the request's id and the instance's place in it.
REQUEST_COLUMN = "request_id"
INSTANCE_COLUMN = "instance"
#: Answers a version needs for a figure (``--min-rows``); as for a group of held-out rows.
MIN_ROWS = MIN_SEGMENT_ROWS
#: The tag and run tag that mark what ``mlp evaluate --log`` records in MLflow.
KIND_TAG = "mlp.kind"
KIND = "live-evaluation"

#: What the rows of a live figure are, in a group's note.
LIVE_ROWS = "answers with their truth"

Key = tuple[str, int]
Verdict = Literal["worse", "within the noise", "better"]


def read_truth(path: Path | str, recipe: TrainingRecipe) -> dict[Key, Any]:
    """The truth file as ``{(request id, instance): truth}``; a bad file raises ``DatasetError``.

    A CSV file with ``request_id``, the recipe's target column and, for the instances of batch
    requests, ``instance`` (0 when absent: a single prediction). Every cell is read as written:
    no value is guessed missing, so a request id ``NA`` is an id.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise DatasetError(f"not a CSV file: {one_line(exc)}") from None
    missing = [c for c in (REQUEST_COLUMN, recipe.target) if c not in frame.columns]
    if missing:
        raise DatasetError(f"missing column(s): {', '.join(missing)}")
    if frame.empty:
        raise DatasetError("no rows")
    requests = frame[REQUEST_COLUMN].str.strip()
    refuse_lines(REQUEST_COLUMN, frame[REQUEST_COLUMN], requests == "", "every row must name its request")
    if INSTANCE_COLUMN in frame.columns:
        text = frame[INSTANCE_COLUMN].str.strip()
        refuse_lines(
            INSTANCE_COLUMN, frame[INSTANCE_COLUMN], ~text.str.fullmatch(r"\d{1,9}"), "must be 0, 1, 2, ..."
        )
        instances = text.astype(np.int64).to_numpy()
    else:
        instances = np.zeros(len(frame), dtype=np.int64)
    keys = list(zip(requests, (int(i) for i in instances), strict=True))
    twice = pd.Series(keys).duplicated(keep=False).to_numpy()
    refuse_lines(REQUEST_COLUMN, frame[REQUEST_COLUMN], twice, "an answer has two truth rows")
    truths = recipe.truth(frame[recipe.target])
    return dict(zip(keys, truths, strict=True))


@dataclass
class Answers:
    """One version's captured answers that have a truth row, in the order they were read."""

    name: str
    version: str
    outputs: list[Any] = field(default_factory=list)
    truths: list[Any] = field(default_factory=list)
    #: Each answer's group in each of the recipe's dimensions (``TrainingRecipe.segments``).
    groups: list[tuple[str, ...]] = field(default_factory=list)
    #: Which variant gave each answer (``stable``, ``canary``): a version promoted while the log
    #: was written answered as both.
    answered_as: list[str] = field(default_factory=list)
    #: When each answer was given, in seconds since the epoch (None: the capture does not say).
    times: list[float | None] = field(default_factory=list)
    #: How the router chose the variant of each answer (:data:`servekit.routing.ROUTED`; empty:
    #: the capture does not say).
    routed: list[str] = field(default_factory=list)
    #: Whether each answer was the positive decision, as served (``TrainingRecipe.served_decision``;
    #: None: the recipe makes none).
    decisions: list[bool | None] = field(default_factory=list)

    def drawn(self, index: int) -> bool:
        """Whether the router drew this answer's variant at random (or the capture does not say)."""
        return self.routed[index] in (DRAWN, "")


@dataclass
class Joined:
    """The captures of one service joined with the truth, and what did not meet."""

    versions: list[Answers]
    #: Captures of the service read, and how many of them have no truth row (yet).
    captured: int
    without_truth: int
    #: Truth rows that meet no capture: requests not sampled, or captured in another file.
    truth_unmatched: int
    #: Answers captured more than once (a request id sent again): left out, as the truth cannot
    #: say which of the answers it is the truth of.
    ambiguous: int
    #: Captures of other services in the file, skipped.
    other_services: int
    #: Each version's first and last answer drawn as the canary (all such captures, with a truth
    #: row or not), for the versions whose captures say when they were answered.
    canary_periods: dict[str, tuple[float, float]] = field(default_factory=dict)


class Grouper:
    """Each answer's groups, found a chunk of inputs at a time so that only the labels are kept.

    A capture's input is the largest part of it (a text, or ten fields), where its groups are a
    few short labels: held until the end, the inputs would grow with every answer that has its
    truth.
    """

    def __init__(self, recipe: TrainingRecipe) -> None:
        self.recipe = recipe
        #: The recipe's dimensions, each with its groups' order when it declares one (age bands
        #: low to high), else None (sorted).
        self.dimensions: dict[str, list[str] | None] = {}

    def labels(self, inputs: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
        found = self.recipe.segments(pd.DataFrame.from_records(list(inputs)))
        for dimension, labels in found.items():
            declared = isinstance(labels.dtype, pd.CategoricalDtype)
            self.dimensions[dimension] = [str(c) for c in labels.cat.categories] if declared else None
        columns = [np.asarray(labels.astype(str), dtype=object) for labels in found.values()]
        return list(zip(*columns, strict=True)) if columns else [() for _ in inputs]

    def series(self, answers: Answers) -> dict[str, pd.Series]:
        """The answers' groups per dimension, categorical where the recipe declared an order."""
        found: dict[str, pd.Series] = {}
        for position, (dimension, order) in enumerate(self.dimensions.items()):
            values = [groups[position] for groups in answers.groups]
            found[dimension] = pd.Series(pd.Categorical(values, categories=order) if order else values)
        return found


#: Inputs turned into their groups at once.
GROUPING_CHUNK = 8192


def join(captures: Iterable[Captured], service: str, grouper: Grouper, truth: Mapping[Key, Any]) -> Joined:
    """Each capture of ``service`` with its truth row, grouped by the version that answered."""
    recipe = grouper.recipe
    # key -> [version, scored output, the input until its groups are found then the groups,
    # variant, time, how it was routed, the decision]
    met: dict[Key, list[Any]] = {}
    canary_periods: dict[str, tuple[float, float]] = {}
    pending: list[Key] = []
    seen: set[Key] = set()
    ambiguous: set[Key] = set()
    captured = without = others = 0

    def group_pending() -> None:
        for key, groups in zip(pending, grouper.labels([met[k][2] for k in pending]), strict=True):
            met[key][2] = groups
        pending.clear()

    for c in captures:
        if c.name != service:
            others += 1
            continue
        captured += 1
        if c.variant == "canary" and c.routed in (DRAWN, "") and c.answered_at is not None:
            first, last = canary_periods.get(c.version, (c.answered_at, c.answered_at))
            canary_periods[c.version] = (min(first, c.answered_at), max(last, c.answered_at))
        key = (c.request_id, c.instance)
        # Only keys of the truth are remembered: memory follows the truth file, not the log.
        if key not in truth:
            without += 1
            continue
        if key in seen:
            ambiguous.add(key)
            continue
        seen.add(key)
        try:
            output = recipe.served_output(c.prediction)
            decision = recipe.served_decision(c.prediction)
        except (KeyError, TypeError) as exc:
            raise CaptureLineError(f"line {c.line}: a {service} answer without {exc}") from None
        met[key] = [c.version, output, c.input, c.variant, c.answered_at, c.routed, decision]
        pending.append(key)
        if len(pending) >= GROUPING_CHUNK:
            group_pending()
    if pending:
        group_pending()
    versions: dict[str, Answers] = {}
    for key, (version, output, groups, variant, answered_at, routed, decision) in met.items():
        if key in ambiguous:
            continue
        answers = versions.setdefault(version, Answers(service, version))
        answers.outputs.append(output)
        answers.truths.append(truth[key])
        answers.groups.append(groups)
        answers.answered_as.append(variant)
        answers.times.append(answered_at)
        answers.routed.append(routed)
        answers.decisions.append(decision)
    return Joined(
        versions=list(versions.values()),
        captured=captured,
        without_truth=without,
        truth_unmatched=sum(key not in seen for key in truth),
        ambiguous=len(ambiguous),
        other_services=others,
        canary_periods=canary_periods,
    )


@dataclass(frozen=True)
class Quality:
    """One version's primary metric on its live answers, against its held-out figure."""

    name: str
    version: str
    metric: str
    rows: int
    live: uncertainty.Interval | None = None
    #: Why there is no live figure (too few answers, one class only).
    note: str = ""
    held_out: uncertainty.Interval | None = None
    #: Why there is no held-out figure to compare with (version not in the registry, say).
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


def assess(
    answers: Answers,
    grouper: Grouper,
    held_out: uncertainty.Interval | None,
    *,
    held_out_note: str = "",
    held_out_rows: tuple[np.ndarray, np.ndarray] | None = None,
    held_out_parity: Mapping[str, Mapping[str, Any]] | None = None,
    min_rows: int = MIN_ROWS,
    seed: int = 0,
) -> Quality:
    """The live figure with its bootstrap interval, per group too, and how it compares.

    With the held-out rows' truth and outputs (``held_out_rows``), the difference is a
    two-sample bootstrap, as a canary's is; without them, the two intervals combined.
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
            recipe.primary(), target, outputs, *held_out_rows, seed=seed
        )
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
    verdict = _verdict(difference, recipe.greater_is_better)
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
    answered), not recomputed; a regressor's error is its served number minus the truth.
    """
    if recipe.task == "binary":
        if len(answers.decisions) != len(target) or None in answers.decisions:
            return {}  # the recipe does not say which answers are the positive decision
        outputs = np.asarray(answers.decisions, dtype=float)  # flagged from 0.5: 1 and only 1
    elif recipe.task != "regression":
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
    negative ones), so its bootstrap is a binomial draw of that many rows: each side is drawn on its
    own, as a canary's two samples are, and the difference's interval is their samples'. A mean
    signed error (a regressor's) keeps no such count: its two intervals are combined. A group too
    small on either side has no figure there, and no change.
    """
    rng = np.random.default_rng(seed)
    changes: dict[str, list[ParityChange]] = {}
    for dimension, found in live.items():
        before = held_out.get(dimension, {}).get("groups", {})
        for group, now in found["groups"].items():
            then = before.get(group, {})
            for figure in parity.MEANING:
                if figure not in now or figure not in then:
                    continue
                estimate = now[figure] - then[figure]
                live_rows, held_out_rows = parity.counted_rows(now, figure), parity.counted_rows(then, figure)
                if live_rows is not None and held_out_rows is not None:
                    live_draws, held_out_draws = (
                        rng.binomial(rows, share, size=uncertainty.ROUNDS) / rows
                        for share, rows in ((now[figure], live_rows), (then[figure], held_out_rows))
                    )
                    difference = uncertainty.percentile_interval(live_draws - held_out_draws, estimate)
                else:
                    difference = independent_difference(
                        *(
                            uncertainty.Interval(e[figure], e[f"{figure}_ci_low"], e[f"{figure}_ci_high"])
                            for e in (now, then)
                        )
                    )
                changes.setdefault(dimension, []).append(
                    ParityChange(group, figure, now[figure], then[figure], difference)
                )
    return changes


def why_no_figure(recipe: TrainingRecipe, truths: Sequence[Any] | np.ndarray, *, min_rows: int) -> str:
    """Why answers with these truths get no figure; empty when they get one."""
    if len(truths) < min_rows:
        return f"fewer than {min_rows} answers with their truth (--min-rows)"
    if recipe.primary().output == "positive_probability" and len(np.unique(np.asarray(truths))) < 2:
        return "one class only in their truth"
    return ""


def _verdict(difference: uncertainty.Interval, greater_is_better: bool) -> Verdict:
    """Beyond the noise one way or the other, by the metric's good direction, or within it."""
    if difference.high < 0:
        return "worse" if greater_is_better else "better"
    if difference.low > 0:
        return "better" if greater_is_better else "worse"
    return "within the noise"


def independent_difference(
    live: uncertainty.Interval, held_out: uncertainty.Interval
) -> uncertainty.Interval:
    """Interval of ``live - held_out`` for figures measured on different rows.

    The two samples share no row, so no paired bootstrap is possible. Each interval's half-width
    is z standard errors of its figure, so the difference's half-width is the two added in
    quadrature (a normal approximation of the two percentile intervals). A held-out figure
    logged without an interval counts as exact.
    """
    spread = float(np.hypot((live.high - live.low) / 2, (held_out.high - held_out.low) / 2))
    estimate = live.estimate - held_out.estimate
    return uncertainty.Interval(estimate, estimate - spread, estimate + spread)


@dataclass(frozen=True)
class CanaryComparison:
    """A canary's live figure against the stable version's, on the same period's traffic."""

    name: str
    canary: str
    #: The version that answered as the stable one beside it; empty when there is none to say.
    stable: str
    metric: str
    #: The canary's first and last answer as the canary; None when the captures do not say when
    #: they were answered, and the stable version's answers over the whole log are used.
    period: tuple[float, float] | None
    #: The canary's answers with their truth, and the stable version's that the comparison used,
    #: of how many it gave as the stable version.
    canary_rows: int = 0
    stable_rows: int = 0
    stable_answers: int = 0
    #: The canary's answers with their truth that their requests asked for: left out.
    canary_asked: int = 0
    #: Some compared answers do not say how they were routed (captures written before ``routed``).
    routing_unknown: bool = False
    difference: uncertainty.Interval | None = None
    verdict: Verdict | None = None
    #: Why there is no comparison (too few stable answers in the canary's period, say).
    note: str = ""


def compare_canaries(
    joined: Joined, recipe: TrainingRecipe, *, min_rows: int = MIN_ROWS, seed: int = 0
) -> list[CanaryComparison]:
    """Each version's answers as the canary against the stable version's of the same period.

    The router gives the canary a random share of the requests (or of the routing keys), so
    while the canary answers, the two versions answer alike customers: a randomised experiment
    whose outcome is the truth. Only the answers the router drew belong to it: those a request
    asked for (a smoke test, a case reproduced by hand) are anyone's choice of customers, and
    the canary's share answered by the stable model (the canary loading or stopped) is not the
    stable share. Only while it answers: the stable version's answers before the canary started
    or after it ended come from other days, whose customers and truth may differ (a season, a
    campaign), and would confound the comparison. So the stable side is the answers drawn for
    the stable version between the canary's first and last drawn answer, which must all be one
    version's; a canary promoted later keeps its answers as the canary. The rows differ, so the
    difference is unpaired: a two-sample bootstrap (:func:`uncertainty.unpaired_difference`).

    Captures that do not say when they were answered (written before ``answered_at``) are
    compared over the whole log, and only where one version answered as the stable one
    throughout and the canary only as the canary.
    """
    found = []
    for canary in joined.versions:
        if "canary" not in canary.answered_as:
            continue
        period = joined.canary_periods.get(canary.version)
        as_canary = [
            i for i, variant in enumerate(canary.answered_as) if variant == "canary" and canary.drawn(i)
        ]
        asked = canary.answered_as.count("canary") - len(as_canary)
        alone = CanaryComparison(
            canary.name,
            canary.version,
            "",
            recipe.primary_metric,
            period,
            canary_rows=len(as_canary),
            canary_asked=asked,
        )
        if not as_canary:
            note = f"its {asked:,} answers as the canary with their truth were all asked for, none drawn"
            found.append(replace(alone, note=note))
            continue
        if period is None:
            steady = [a for a in joined.versions if set(a.answered_as) == {"stable"}]
            if len(steady) != 1 or canary.answered_as.count("canary") != len(canary.answered_as):
                continue
            stable = steady[0]
            used = _as_stable(stable)
        else:
            beside = {a.version: (a, _as_stable(a, within=period)) for a in joined.versions}
            beside = {version: pair for version, pair in beside.items() if pair[1]}
            if len(beside) != 1:
                named = ", ".join(f"v{version}" for version in sorted(beside))
                note = (
                    f"{named} all answered as the stable version in its period"
                    if beside
                    else "no answer as the stable version in its period"
                )
                found.append(replace(alone, note=note))
                continue
            stable, used = next(iter(beside.values()))
        comparison = replace(
            alone,
            stable=stable.version,
            stable_rows=len(used),
            stable_answers=stable.answered_as.count("stable"),
            routing_unknown=any(canary.routed[i] == "" for i in as_canary)
            or any(stable.routed[i] == "" for i in used),
        )
        found.append(
            _compared(
                comparison,
                recipe,
                _rows_of(canary, as_canary),
                _rows_of(stable, used),
                min_rows=min_rows,
                seed=seed,
            )
        )
    return found


def _as_stable(answers: Answers, within: tuple[float, float] | None = None) -> list[int]:
    """The answers drawn for the stable version (only those ``within`` the period, if given)."""
    chosen = [i for i, variant in enumerate(answers.answered_as) if variant == "stable" and answers.drawn(i)]
    if within is None:
        return chosen
    first, last = within
    return [i for i in chosen if (t := answers.times[i]) is not None and first <= t <= last]


def _rows_of(answers: Answers, chosen: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The truths and outputs of the chosen answers."""
    return np.asarray(answers.truths)[chosen], np.asarray(answers.outputs)[chosen]


def _compared(
    comparison: CanaryComparison,
    recipe: TrainingRecipe,
    canary: tuple[np.ndarray, np.ndarray],
    stable: tuple[np.ndarray, np.ndarray],
    *,
    min_rows: int,
    seed: int,
) -> CanaryComparison:
    for side, (truths, _) in (
        ("the canary's answers", canary),
        ("the stable version's answers in its period", stable),
    ):
        note = why_no_figure(recipe, truths, min_rows=min_rows)
        if note:
            return replace(comparison, note=f"{side}: {note}")
    # Both samples are at hand, so each is resampled on its own rather than their intervals combined.
    difference = uncertainty.unpaired_difference(recipe.primary(), *canary, *stable, seed=seed).difference
    return replace(comparison, difference=difference, verdict=_verdict(difference, recipe.greater_is_better))


class VersionNotRegisteredError(LookupError):
    """A captured version the registry does not hold (deleted since, or another registry's)."""


class HeldOut(NamedTuple):
    """A version's held-out figure from its training run (None: why, in ``note``), and its
    held-out rows' truth and outputs when the run kept them."""

    figure: uncertainty.Interval | None
    note: str = ""
    rows: tuple[np.ndarray, np.ndarray] | None = None
    #: The decision and error rates per group its training run reported (``serving_metadata.json``).
    parity: dict[str, dict[str, Any]] | None = None


def held_out_figure(client: Any, name: str, version: str, metric: str) -> HeldOut:
    """The version's held-out figure and interval from its training run, or why there is none,
    with the held-out rows' answers (:func:`held_out_answers`).

    Raises :class:`VersionNotRegisteredError` for a version the registry lacks.
    """
    from mlflow.exceptions import MlflowException

    if not version.isdigit():  # "unregistered": served from a runs:/ or artifact URI
        raise VersionNotRegisteredError(
            f"version {version}: served from a run or artifact URI, not the registry"
        )
    try:
        run_id = client.get_model_version(name, version).run_id
        metrics = client.get_run(run_id).data.metrics if run_id else {}
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise _registry_failed(exc) from exc
        raise VersionNotRegisteredError(f"version {version} is not in the registry") from None
    if metric not in metrics:
        return HeldOut(None, f"its training run logged no {metric}")
    estimate = metrics[metric]
    low, high = metrics.get(f"{metric}_ci_low", estimate), metrics.get(f"{metric}_ci_high", estimate)
    return HeldOut(
        uncertainty.Interval(estimate, low, high),
        rows=held_out_answers(client, run_id, version),
        parity=held_out_parity(client, run_id, version),
    )


def held_out_parity(client: Any, run_id: str, version: str) -> dict[str, dict[str, Any]] | None:
    """The rates per group the version's training run reported on its held-out rows; None for a run
    that logged none (trained before they were reported)."""
    import json

    text = run_artifact_text(client, run_id, SERVING_METADATA)
    if text is None:
        return None
    try:
        found = json.loads(text).get("parity", {})
        if not isinstance(found, dict):
            raise ValueError(f"'parity' is a {type(found).__name__}, not a mapping")
    except (ValueError, AttributeError) as exc:
        # servekit wrote it: a file that does not read is damaged, not a run without figures.
        why = " ".join(str(exc).split())
        problem = f"version {version}'s run {run_id}: {SERVING_METADATA} does not read: {why}"
        raise ServekitError(502, "serving_metadata_unreadable", problem) from exc
    return found or None


def run_artifact_text(client: Any, run_id: str, path: str) -> str | None:
    """A file a training run logged, as text; None when the run has no such file."""
    import tempfile

    from mlflow.exceptions import MlflowException

    try:
        if path not in {a.path for a in client.list_artifacts(run_id)}:
            return None
        with tempfile.TemporaryDirectory() as folder:
            return Path(client.download_artifacts(run_id, path, folder)).read_text(encoding="utf-8")
    except MlflowException as exc:
        raise _registry_failed(exc) from exc


def held_out_answers(client: Any, run_id: str, version: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The truth and primary-metric outputs of the held-out rows, as the version's training run
    logged them; None for a run trained before they were kept."""
    import json

    text = run_artifact_text(client, run_id, HELD_OUT_ANSWERS)
    if text is None:
        return None
    try:
        answers = json.loads(text)
        target, output = np.asarray(answers["target"]), np.asarray(answers["output"])
        if target.ndim != 1 or target.shape != output.shape:
            raise ValueError(f"{target.size} truths and {output.size} outputs")
    except KeyError as exc:
        problem = f"no {exc.args[0]!r} list"
    except (ValueError, TypeError) as exc:
        problem = " ".join(str(exc).split())
    else:
        return target, output
    # servekit wrote it: a file that does not read is damaged, and a verdict must not rest on it.
    problem = f"version {version}'s run {run_id}: {HELD_OUT_ANSWERS} does not read: {problem}"
    raise ServekitError(502, "held_out_answers_unreadable", problem)


def _registry_failed(exc: Exception) -> ServekitError:
    return ServekitError(503, "registry_unavailable", f"the registry failed: {one_line(exc)}")


def log_run(client: Any, quality: Quality, source: str) -> str:
    """The live figures as an MLflow run of the service's experiment, and as tags of the version.

    The run holds ``live.<metric>`` with its interval, the answer count and each group's figure,
    so MLflow keeps a version's live record beside its training runs. The version's tags
    (:func:`version_tags`) hold the latest, which ``mlp versions`` shows. Returns the run id.
    """
    from mlflow.entities import Metric

    experiment = client.get_experiment_by_name(quality.name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(quality.name)
    run = client.create_run(
        experiment_id,
        run_name=f"{quality.name}-v{quality.version}-live",
        tags={KIND_TAG: KIND, "model.version": quality.version, "evaluation.captures": source},
    )
    run_id = str(run.info.run_id)
    key = quality.metric
    figures = {"live.rows": float(quality.rows)}
    if quality.live is not None:
        figures.update(
            {
                f"live.{key}": quality.live.estimate,
                f"live.{key}_ci_low": quality.live.low,
                f"live.{key}_ci_high": quality.live.high,
            }
        )
    if quality.difference is not None:
        figures[f"live.{key}_minus_held_out"] = quality.difference.estimate
    figures.update({f"live.{k}": v for k, v in as_run_metrics(quality.segments, key).items()})
    figures.update({f"live.{k}": v for k, v in parity.as_run_metrics(quality.parity).items()})
    figures.update(
        {
            f"live.parity.{metric_name(dimension)}.{metric_name(c.group)}.{c.figure}_minus_held_out": (
                c.difference.estimate
            )
            for dimension, changes in quality.parity_changes.items()
            for c in changes
        }
    )
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(name, value, now, 0) for name, value in figures.items()])
    client.set_tag(run_id, LIVE_VERDICT_TAG, verdict(quality))
    with run_links_unprinted():
        client.set_terminated(run_id)
    for tag, value in version_tags(quality, run_id).items():
        client.set_model_version_tag(quality.name, quality.version, tag, value)
    return run_id


#: MLflow writes "View run ... at: <url>" to stdout as a run ends, unless this is set.
SUPPRESS_RUN_LINKS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@contextlib.contextmanager
def run_links_unprinted() -> Iterator[None]:
    """MLflow's run links left out of stdout while the block runs: between the report's lines they
    read as part of it, and ``mlp evaluate`` names each run it logs on a line of its own."""
    before = os.environ.get(SUPPRESS_RUN_LINKS)
    os.environ[SUPPRESS_RUN_LINKS] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ[SUPPRESS_RUN_LINKS]
        else:
            os.environ[SUPPRESS_RUN_LINKS] = before


def version_tags(quality: Quality, run_id: str) -> dict[str, str]:
    """The version's tags of this evaluation, which ``mlp versions`` reads back."""
    live = quality.live
    return {
        LIVE_FIGURE_TAG: f"{quality.metric} {live.estimate:.4f}" if live is not None else "none",
        LIVE_CI_TAG: f"{live.low:.4f}-{live.high:.4f}" if live is not None else "",
        LIVE_ANSWERS_TAG: str(quality.rows),
        LIVE_VERDICT_TAG: verdict(quality),
        LIVE_RUN_TAG: run_id,
    }


def verdict(quality: Quality) -> str:
    """The verdict in a word or two, else why there is none."""
    if quality.live is None:
        return f"no figure: {quality.note}"
    return quality.verdict or f"not compared: {quality.held_out_note}"


def _interval(interval: uncertainty.Interval) -> str:
    return f"95% CI {interval.low:.4f}-{interval.high:.4f}"


def render(
    joined: Joined,
    qualities: Sequence[Quality],
    truth_file: str,
    canaries: Sequence[CanaryComparison] = (),
) -> str:
    """The report: each version's figure and verdict, its groups, the canaries, then what did not meet."""
    lines: list[str] = []
    for q in qualities:
        head = f"{q.name} v{q.version}"
        answers = (
            f"{q.rows:,} answer with its truth" if q.rows == 1 else f"{q.rows:,} answers with their truth"
        )
        if q.live is None:
            lines.append(f"{head}: {answers}: no figure: {q.note}")
            continue
        figure = f"{q.metric} {q.live.estimate:.4f} ({_interval(q.live)})"
        if q.held_out is None:
            lines.append(f"{head}: {answers}: {figure}; not compared: {q.held_out_note}")
        else:
            how = "" if q.resampled else " (the two intervals combined: its run kept no held-out answers)"
            lines.append(
                f"{head}: {answers}: {figure} against {q.held_out.estimate:.4f} held out "
                f"({_interval(q.held_out)}): {q.difference}, {q.verdict}{how}"
            )
        for dimension, groups in q.segments.items():
            parts = []
            for group, entry in groups.items():
                if q.metric in entry:
                    low, high = entry[f"{q.metric}_ci_low"], entry[f"{q.metric}_ci_high"]
                    parts.append(f"{group} {entry[q.metric]:.4f} ({low:.4f}-{high:.4f}, {entry['rows']:,})")
                else:
                    parts.append(f"{group} none ({entry['rows']:,}: {entry['note']})")
            lines.append(f"{head}:   {dimension}: {'; '.join(parts)}")
        lines += [f"{head}:   {dimension} decisions: {_gaps(found)}" for dimension, found in q.parity.items()]
        lines += [
            f"{head}:   {dimension} decisions against held out: {_changes(changes)}"
            for dimension, changes in q.parity_changes.items()
        ]
        if q.parity_changes_note:
            lines.append(f"{head}:   decisions against held out: none: {q.parity_changes_note}")
    lines += [_canary_line(c) for c in canaries]
    service = qualities[0].name if qualities else ""
    lines.append(
        f"{service}: {joined.captured - joined.without_truth:,} of {joined.captured:,} captured answers "
        f"have a truth row in {truth_file}"
    )
    if joined.truth_unmatched:
        lines.append(
            f"{service}: {_rows(joined.truth_unmatched)} without a captured answer (requests the "
            f"capture did not sample, see {service.upper()}_CAPTURE_PERCENT, or captured in another file)"
        )
    if joined.ambiguous:
        lines.append(
            f"{service}: {_rows(joined.ambiguous)} left out, for answers captured more than once under "
            "one request id and instance: which answer the truth is of is unknown"
        )
    if joined.other_services:
        lines.append(f"{service}: {joined.other_services:,} captures of other services skipped")
    return "\n".join(lines)


def _gaps(found: Mapping[str, Any]) -> str:
    """Each figure's widest gap between two groups, with its interval, and the impact ratio."""
    parts = []
    for figure, gap in found["gaps"].items():
        part = (
            f"{parity.MEANING[figure]} {gap['highest']} - {gap['lowest']} {gap['gap']:+.4f} "
            f"({gap['ci_low']:+.4f} to {gap['ci_high']:+.4f})"
        )
        if "ratio" in gap:
            under = f", under {parity.FOUR_FIFTHS}" if gap["ratio"] < parity.FOUR_FIFTHS else ""
            part += f", ratio {gap['ratio']:.2f}{under}"
        parts.append(part)
    return "; ".join(parts) or "fewer than two groups with a figure"


def _changes(changes: Sequence[ParityChange]) -> str:
    """The groups' rates that moved beyond the noise since the held-out rows, else the largest move."""

    def moved(c: ParityChange) -> str:
        d = c.difference
        return (
            f"{parity.MEANING[c.figure]} {c.group} {c.live:.4f} against {c.held_out:.4f} held out: "
            f"{d.estimate:+.4f} ({d.low:+.4f} to {d.high:+.4f})"
        )

    beyond = [c for c in changes if c.beyond_the_noise]
    if not beyond:
        largest = max(changes, key=lambda c: abs(c.difference.estimate))
        return f"all {len(changes)} within the noise; the largest move: {moved(largest)}"
    others = len(changes) - len(beyond)
    return f"{'; '.join(moved(c) for c in beyond)}, beyond the noise; the other {others} within it"


def _canary_line(c: CanaryComparison) -> str:
    head = f"{c.name} canary v{c.canary}"
    if not c.canary_rows:
        return f"{head}: no comparison: {c.note}"
    if c.stable:
        head += f" against stable v{c.stable} on the same traffic"
    if c.period is None:
        when = "the whole log (its captures do not say when they were answered)"
    else:
        first, last = (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S") for t in c.period)
        when = f"{first} to {last} UTC"
        if c.stable:
            used = [f"{c.stable_rows:,} of v{c.stable}'s {c.stable_answers:,} answers with their truth"]
            if c.canary_asked:
                used.append(f"v{c.canary}'s {c.canary_asked:,} answers asked for by their requests left out")
            if c.routing_unknown:
                used.append("some captures do not say how they were routed: answers asked for may be in")
            when += f" ({'; '.join(used)})"
    if c.difference is None:
        return f"{head}, {when}: no comparison: {c.note}"
    return f"{head}, {when}: {c.metric} {c.difference}, {c.verdict}"


def _rows(count: int) -> str:
    return f"{count:,} truth row{'' if count == 1 else 's'}"
