"""A comparison of two versions made within each group of the recipe's dimensions, as on the whole.

A challenger better on the whole can be worse for one country, one age band, one kind of text: a
reviewer of its promotion must see that before it, not after. A shadow's answers are paired with
the served ones to the same requests, so its groups are paired too; a canary's and the stable
version's answers are of different requests, so each group is two samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from servekit.evaluation.joining import Grouper
from servekit.evaluation.quality import Verdict
from servekit.training import uncertainty
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


#: Compares one group: its dimension, its name, and the mask of its answers.
CompareGroup = Callable[[str, str, np.ndarray], GroupComparison]


def within_groups(
    grouper: Grouper, groups: Sequence[tuple[str, ...]], compare: CompareGroup
) -> tuple[GroupComparison, ...]:
    """``compare`` on each group of each dimension, in the recipe's order, of the answers whose
    groups are ``groups``."""
    return tuple(
        compare(dimension, group, mask)
        for dimension, labels in grouper.series_of(groups).items()
        for group, mask in each_group(labels)
    )


class ComparedByGroup:
    """A comparison that holds its ``groups`` (a dataclass field of the class that mixes it in)."""

    groups: tuple[GroupComparison, ...]

    @property
    def groups_worse(self) -> list[GroupComparison]:
        """The groups for which the version compared is worse beyond the noise."""
        return [g for g in self.groups if g.verdict == "worse"]
