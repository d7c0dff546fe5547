"""Whether a figure's difference is beyond the noise, and whether answers can have a figure at all:
the rules every comparison of ``mlp evaluate`` shares (a version against its held-out figure, a
shadow or a canary against the served version, each group of them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from servekit.training import uncertainty
from servekit.training.recipe import TrainingRecipe
from servekit.training.segments import MIN_SEGMENT_ROWS

#: Answers a version needs for a figure (``--min-rows``); as for a group of held-out rows.
MIN_ROWS = MIN_SEGMENT_ROWS

Verdict = Literal["worse", "within the noise", "better"]


def why_no_figure(recipe: TrainingRecipe, truths: Sequence[Any] | np.ndarray, *, min_rows: int) -> str:
    """Why answers with these truths get no figure; empty when they get one."""
    if len(truths) < min_rows:
        return f"fewer than {min_rows} answers with their truth (--min-rows)"
    if recipe.primary().output == "positive_probability" and len(np.unique(np.asarray(truths))) < 2:
        return "one class only in their truth"
    return ""


def verdict_of(difference: uncertainty.Interval, greater_is_better: bool) -> Verdict:
    """Beyond the noise one way or the other, by the metric's good direction, or within it."""
    if difference.high < 0:
        return "worse" if greater_is_better else "better"
    if difference.low > 0:
        return "better" if greater_is_better else "worse"
    return "within the noise"
