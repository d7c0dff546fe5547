"""A comparison of two versions made within each group of the recipe's dimensions, as on the whole.

A challenger better on the whole can be worse for one country, one age band, one kind of text: a
reviewer of its promotion must see that before it, not after. A shadow's answers are paired with
the served ones to the same requests, so its groups are paired too; a canary's and the stable
version's answers are of different requests, so each group is two samples.

The groups' intervals hold together at 95 %, not each: with eight groups at 95 % each, two
versions alike for everyone would be called apart for some group in a third of the runs, and a
good challenger would be held back by noise (the ``groups_worse`` tag, the ShadowBetter alert). So
each of ``m`` groups' intervals is at 1 - 0.05/m (Bonferroni: :func:`uncertainty.each_of`), with
the bootstrap samples that level's ends need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

import numpy as np

from servekit.evaluation.joining import Grouper
from servekit.evaluation.verdicts import Verdict, verdict_of, why_no_figure
from servekit.training import uncertainty
from servekit.training.recipe import TrainingRecipe
from servekit.training.segments import each_group


@dataclass(frozen=True)
class GroupComparison:
    """One version against another on one group's answers."""

    dimension: str
    group: str
    #: The group's answers with their truth (a canary's own, where the two sides differ).
    rows: int
    #: The difference on the group's answers; None: why, in ``note``.
    difference: uncertainty.Interval | None = None
    verdict: Verdict | None = None
    note: str = ""
    #: The other side's answers in the group (the stable version's, beside a canary); None where
    #: the two sides are the same answers (a shadow's).
    other_rows: int | None = None

    def describe(self) -> str:
        """``Germany -0.0312 (-0.0580 to -0.0047, 412) worse``, or why the group has none."""
        rows = f"{self.rows:,}" if self.other_rows is None else f"{self.rows:,} against {self.other_rows:,}"
        if self.difference is None:
            return f"{self.group} none ({rows}: {self.note})"
        d = self.difference
        return f"{self.group} {d.estimate:+.4f} ({d.low:+.4f} to {d.high:+.4f}, {rows}) {self.verdict}"


class Sides(Protocol):
    """The two versions' answers to compare, of which a mask picks one group's."""

    def rows(self, mask: np.ndarray) -> tuple[int, int | None]:
        """The group's answers with their truth: the version's, and the other's where they differ."""

    def why_none(self, mask: np.ndarray) -> str:
        """Why the group has no comparison (too few answers, one class only), or empty."""

    def difference(self, mask: np.ndarray, level: float) -> uncertainty.Interval:
        """The version's figure minus the other's on the group's answers, at ``level``."""


class Sample(NamedTuple):
    """The truths, outputs and groups (a tuple of labels each, one per dimension) of some answers."""

    truths: np.ndarray
    outputs: np.ndarray
    groups: list[tuple[str, ...]]


class TwoSamples:
    """Two samples that share no answer (a canary's and the stable version's, a version's live
    answers and its held-out rows), one after the other: a mask over both picks each side's
    (:class:`Sides`). ``names`` says what each side is, in the note of a group without a figure."""

    def __init__(
        self,
        recipe: TrainingRecipe,
        first: Sample,
        second: Sample,
        names: tuple[str, str],
        *,
        min_rows: int,
        seed: int,
    ) -> None:
        self.recipe, self.first, self.second, self.names = recipe, first, second, names
        self.min_rows, self.seed = min_rows, seed
        self.split = len(first.truths)

    def rows(self, mask: np.ndarray) -> tuple[int, int | None]:
        return int(mask[: self.split].sum()), int(mask[self.split :].sum())

    def why_none(self, mask: np.ndarray) -> str:
        sides = (self.first.truths[mask[: self.split]], self.second.truths[mask[self.split :]])
        for side, truths in zip(self.names, sides, strict=True):
            note = why_no_figure(self.recipe, truths, min_rows=self.min_rows)
            if note:
                return f"{side}: {note}"
        return ""

    def difference(self, mask: np.ndarray, level: float) -> uncertainty.Interval:
        # Both samples are at hand, so each is resampled on its own rather than their intervals combined.
        first, second = mask[: self.split], mask[self.split :]
        return uncertainty.unpaired_difference(
            self.recipe.primary(),
            self.first.truths[first],
            self.first.outputs[first],
            self.second.truths[second],
            self.second.outputs[second],
            level=level,
            seed=self.seed,
        ).difference


def within_groups(
    grouper: Grouper, groups: Sequence[tuple[str, ...]], sides: Sides
) -> tuple[GroupComparison, ...]:
    """The comparison of ``sides`` within each group of each dimension, in the recipe's order, of
    the answers whose groups are ``groups``; the intervals of those compared hold together at 95 %."""
    found, masks = [], []
    for dimension, labels in grouper.series_of(groups).items():
        for group, mask in each_group(labels):
            rows, other_rows = sides.rows(mask)
            found.append(
                GroupComparison(dimension, group, rows, note=sides.why_none(mask), other_rows=other_rows)
            )
            masks.append(mask)
    level = uncertainty.each_of(sum(not g.note for g in found))
    greater_is_better = grouper.recipe.greater_is_better
    for i, (g, mask) in enumerate(zip(found, masks, strict=True)):
        if not g.note:
            d = sides.difference(mask, level)
            found[i] = replace(g, difference=d, verdict=verdict_of(d, greater_is_better))
    return tuple(found)


class ComparedByGroup:
    """A comparison that holds its ``groups`` (a dataclass field of the class that mixes it in)."""

    groups: tuple[GroupComparison, ...]

    @property
    def groups_worse(self) -> list[GroupComparison]:
        """The groups for which the version compared is worse beyond the noise."""
        return [g for g in self.groups if g.verdict == "worse"]

    @property
    def groups_compared(self) -> int:
        """The groups with a comparison: the family whose intervals hold together."""
        return sum(g.difference is not None for g in self.groups)

    @property
    def groups_level(self) -> str:
        """``each at 99.4% (Bonferroni over 8 groups: 95% together)``, or empty with none compared."""
        compared = [g.difference for g in self.groups if g.difference is not None]
        return uncertainty.held_together(len(compared), compared[0].level, "groups") if compared else ""
