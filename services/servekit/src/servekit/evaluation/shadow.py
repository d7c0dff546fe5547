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
from servekit.evaluation.verdicts import MIN_ROWS, Verdict, verdict_of, why_no_figure
from servekit.training import uncertainty
from servekit.training.recipe import TrainingRecipe


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
    sides = _Paired(recipe, pair, min_rows=min_rows, seed=seed)
    difference = sides.difference(np.ones(len(sides.truths), bool), uncertainty.LEVEL)
    metric = recipe.primary()
    return replace(
        found,
        shadow_figure=metric.score(sides.truths, sides.shadow),
        served_figure=metric.score(sides.truths, sides.served),
        difference=difference,
        verdict=verdict_of(difference, recipe.greater_is_better),
        groups=within_groups(grouper, pair.groups, sides),
    )


class _Paired:
    """A shadow's and the served version's answers to the same requests (:class:`groups.Sides`)."""

    def __init__(self, recipe: TrainingRecipe, pair: ShadowAnswers, *, min_rows: int, seed: int) -> None:
        self.recipe, self.min_rows, self.seed = recipe, min_rows, seed
        self.truths = np.asarray(pair.truths)
        self.shadow, self.served = np.asarray(pair.outputs), np.asarray(pair.served_outputs)

    def rows(self, mask: np.ndarray) -> tuple[int, int | None]:
        return int(mask.sum()), None

    def why_none(self, mask: np.ndarray) -> str:
        return why_no_figure(self.recipe, self.truths[mask], min_rows=self.min_rows)

    def difference(self, mask: np.ndarray, level: float) -> uncertainty.Interval:
        return uncertainty.paired_difference(
            self.recipe.primary(),
            self.truths[mask],
            self.shadow[mask],
            self.served[mask],
            level=level,
            seed=self.seed,
        )
