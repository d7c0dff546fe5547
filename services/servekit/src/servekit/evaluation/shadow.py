"""A shadow version held against the served version on the same requests, once the truth is known.

The shadow's metrics on the pod (``<svc>_shadow_predictions_total``) say how often a challenger
disagrees with the champion, not which of them was right. With the capture on, the shadow's
answers to the captured requests are captured too (:mod:`servekit.capture`), so each answer the
truth names has both models' answers beside it. That is the strongest comparison the platform
can make before a promotion: the same requests, answered by both, scored against what happened.
The samples are paired, so the difference's interval is the paired bootstrap's
(:func:`uncertainty.paired_difference`), as ``mlp train`` compares a new version with the champion
on the same held-out rows, and much narrower than a canary's two samples give.

The same pairing is made within each group of the recipe's dimensions (:mod:`.groups`).

A shadow serves nobody: its verdict informs a promotion and never fails ``mlp evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from servekit.evaluation.groups import ComparedByGroup, GroupComparison, within_groups
from servekit.evaluation.joining import Grouper, Joined, ShadowAnswers
from servekit.evaluation.quality import MIN_ROWS, Verdict, verdict_of, why_no_figure
from servekit.training import uncertainty


@dataclass(frozen=True)
class ShadowComparison(ComparedByGroup):
    """A shadow version's figure against the served version's, on the answers both gave."""

    name: str
    shadow: str
    served: str
    metric: str
    #: Answers with their truth that both versions gave.
    rows: int
    #: Each version's figure on those answers; None without a comparison.
    shadow_figure: float | None = None
    served_figure: float | None = None
    #: shadow - served, paired over the same resampled answers.
    difference: uncertainty.Interval | None = None
    verdict: Verdict | None = None
    #: Why there is no comparison (too few answers with their truth, one class only).
    note: str = ""
    #: The same comparison per group of each dimension, in the recipe's order.
    groups: tuple[GroupComparison, ...] = ()


def compare_shadows(
    joined: Joined, grouper: Grouper, *, min_rows: int = MIN_ROWS, seed: int = 0
) -> list[ShadowComparison]:
    """Each shadow version against each version it shadowed, on the same answers, whole and per group."""
    return [_compared(pair, grouper, min_rows=min_rows, seed=seed) for pair in joined.shadows]


def _compared(pair: ShadowAnswers, grouper: Grouper, *, min_rows: int, seed: int) -> ShadowComparison:
    recipe = grouper.recipe
    found = ShadowComparison(pair.name, pair.version, pair.served, recipe.primary_metric, len(pair.truths))
    note = why_no_figure(recipe, pair.truths, min_rows=min_rows)
    if note:
        return replace(found, note=note)
    metric = recipe.primary()
    truths = np.asarray(pair.truths)
    shadow, served = np.asarray(pair.outputs), np.asarray(pair.served_outputs)
    difference = uncertainty.paired_difference(metric, truths, shadow, served, seed=seed)

    def within(dimension: str, group: str, mask: np.ndarray) -> GroupComparison:
        """The same comparison on one group's answers."""
        compared = GroupComparison(dimension, group, int(mask.sum()))
        why = why_no_figure(recipe, truths[mask], min_rows=min_rows)
        if why:
            return replace(compared, note=why)
        d = uncertainty.paired_difference(metric, truths[mask], shadow[mask], served[mask], seed=seed)
        return replace(compared, difference=d, verdict=verdict_of(d, recipe.greater_is_better))

    groups = within_groups(grouper, pair.groups, within)
    return replace(
        found,
        shadow_figure=metric.score(truths, shadow),
        served_figure=metric.score(truths, served),
        difference=difference,
        verdict=verdict_of(difference, recipe.greater_is_better),
        groups=groups,
    )
