"""A canary held against the stable version on the answers the router drew for each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from servekit.evaluation.groups import ComparedByGroup, GroupComparison, Sample, TwoSamples, within_groups
from servekit.evaluation.joining import Answers, Grouper, Joined
from servekit.evaluation.verdicts import MIN_ROWS, Verdict, verdict_of
from servekit.training import uncertainty


@dataclass(frozen=True)
class CanaryComparison(ComparedByGroup):
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
    #: The same comparison per group of each dimension, in the recipe's order (:mod:`.groups`).
    groups: tuple[GroupComparison, ...] = ()


def compare_canaries(
    joined: Joined, grouper: Grouper, *, min_rows: int = MIN_ROWS, seed: int = 0
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

    Each group of the recipe's dimensions is compared too, on its canary and stable answers.
    """
    recipe = grouper.recipe
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
                grouper,
                _sample(canary, as_canary),
                _sample(stable, used),
                min_rows=min_rows,
                seed=seed,
            )
        )
    return found


#: What each side of a canary's comparison is, in the note of a group without a figure.
CANARY_SIDES = ("the canary's answers", "the stable version's answers in its period")


def _as_stable(answers: Answers, within: tuple[float, float] | None = None) -> list[int]:
    """The answers drawn for the stable version (only those ``within`` the period, if given)."""
    chosen = [i for i, variant in enumerate(answers.answered_as) if variant == "stable" and answers.drawn(i)]
    if within is None:
        return chosen
    first, last = within
    return [i for i in chosen if (t := answers.times[i]) is not None and first <= t <= last]


def _sample(answers: Answers, chosen: Sequence[int]) -> Sample:
    """The truths, outputs and groups of the chosen answers of one version."""
    return Sample(
        np.asarray(answers.truths)[chosen],
        np.asarray(answers.outputs)[chosen],
        [answers.groups[i] for i in chosen],
    )


def _compared(
    comparison: CanaryComparison,
    grouper: Grouper,
    canary: Sample,
    stable: Sample,
    *,
    min_rows: int,
    seed: int,
) -> CanaryComparison:
    sides = TwoSamples(grouper.recipe, canary, stable, CANARY_SIDES, min_rows=min_rows, seed=seed)
    whole = np.ones(len(canary.truths) + len(stable.truths), bool)
    note = sides.why_none(whole)
    if note:
        return replace(comparison, note=note)
    difference = sides.difference(whole, uncertainty.LEVEL)
    return replace(
        comparison,
        difference=difference,
        verdict=verdict_of(difference, grouper.recipe.greater_is_better),
        groups=within_groups(grouper, canary.groups + stable.groups, sides),
    )
