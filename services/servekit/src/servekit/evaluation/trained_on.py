"""Which live answers are of rows the version was trained on: left out of its figure.

A model scores its own training rows better than any other (v2 scored on the first 1,500 rows of
the file it learnt from: roc_auc 0.9082 against 0.8558 held out, "better"), so a live figure over
them says nothing of the answers to new requests. A training run logs a hash of each training row
(``training_rows.npy``, :func:`servekit.training.training_rows.row_hashes`, of its features and
target); an answer's captured input with its truth, typed as training typed them, hashes alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from servekit.evaluation.joining import Answers
from servekit.training.recipe import TrainingRecipe
from servekit.training.training_rows import row_hashes

#: Rows generated for the training frame's columns and types: a recipe validates its synthetic
#: data as its real file (``TrainingRecipe.generate``), so both load with the same types.
TYPED_ROWS = 200


class TrainingTypes:
    """The columns and types of a recipe's training rows, in their order, found once."""

    def __init__(self, recipe: TrainingRecipe) -> None:
        self.recipe = recipe
        self._types: tuple[pd.Series, Any] | None = None
        self._as_trained: dict[Any, Any] = {}

    def types(self) -> tuple[pd.Series, Any]:
        """The features' types (by column, in training's order) and the target's."""
        if self._types is None:
            frame = self.recipe.generate(TYPED_ROWS, 0)
            target = frame[self.recipe.target]
            self._types = (self.recipe.features(frame).dtypes, target.dtype)
            if not pd.api.types.is_float_dtype(target.dtype):
                # A class's truth as mlp evaluate reads it (NLPInsight's "bearish") against its
                # value in the training frame (the code 0), which the training hashes are of.
                self._as_trained = dict(zip(self.recipe.truth(target.astype(str)), target, strict=True))
        return self._types

    def hashes(self, inputs: Sequence[Mapping[str, Any]], truths: Sequence[Any]) -> np.ndarray | None:
        """Each answer's row hash as training hashed its rows; None when the inputs cannot be
        typed as training's were (a column of another type since: not one of its rows either)."""
        columns, target = self.types()
        frame = pd.DataFrame.from_records(list(inputs))
        try:
            typed = pd.DataFrame(
                {
                    str(c): _typed(frame[c] if c in frame.columns else pd.Series([None] * len(frame)), t)
                    for c, t in columns.items()
                }
            )
            truth = _typed(pd.Series([self._as_trained.get(t, t) for t in truths]), target)
        except (TypeError, ValueError, OverflowError):
            return None
        return row_hashes(typed, truth)


def _typed(values: pd.Series, dtype: Any) -> pd.Series:
    """``values`` (from JSON: a missing one None, a date a string) as a training column of ``dtype``."""
    values = values.reset_index(drop=True)
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(values, categories=dtype.categories, ordered=dtype.ordered))
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return pd.Series(pd.to_datetime(values)).astype(dtype)
    if pd.api.types.is_object_dtype(dtype):
        # A CSV's missing cell is NaN in training's frame, where JSON's is None: they hash apart.
        return values.astype(object).where(values.notna(), np.nan)
    return values.astype(dtype)


def training_rows(client: Any, name: str, version: str, tracking_uri: str) -> tuple[np.ndarray | None, str]:
    """The hashes of the rows ``version`` was trained on, as its run logged them; None and why
    when they cannot be had (a run of a release before they were logged, or a store failing)."""
    from servekit.evaluation.held_out import registered_run_id
    from servekit.training.training_rows import (
        TRAINING_ROWS,
        TrainingRowsUnreadableError,
        logged_training_rows,
    )

    run_id = registered_run_id(client, name, version)
    if not run_id:
        return None, "the version names no training run"
    try:
        params = dict(client.get_run(run_id).data.params)
        found = logged_training_rows(client, run_id, tracking_uri, params)
    except TrainingRowsUnreadableError as exc:
        return None, str(exc)
    if found is None:
        return None, f"its run logged no {TRAINING_ROWS} (trained before runs did)"
    return found, ""


class LeftOut(NamedTuple):
    """A version's answers without those of its training rows, and how many those were (None:
    its run logged no training rows, so none could be checked)."""

    answers: Answers
    left_out: int | None


def without_training_rows(answers: Answers, trained: np.ndarray | None) -> LeftOut:
    """``answers`` less those whose row hash is among ``trained`` (the version's run's)."""
    if trained is None or answers.rows is None:
        return LeftOut(answers, None)
    seen = np.isin(np.asarray(answers.rows, dtype=np.uint64), trained)
    if not seen.any():
        return LeftOut(answers, 0)
    return LeftOut(answers.only(np.flatnonzero(~seen).tolist()), int(seen.sum()))


def left_out_note(version: str, answers: int, left: LeftOut, why_unchecked: str) -> str:
    """What ``mlp evaluate`` says of a version's answers of its own training rows (``answers``:
    all it had with their truth); empty when there were none."""
    if left.left_out is None:
        return (
            f"whether any answer was of a row v{version} was trained on could not be checked: {why_unchecked}"
        )
    if not left.left_out:
        return ""
    return (
        f"{left.left_out:,} of {answers:,} answers with their truth were rows v{version} was trained on: "
        "left out of its figures, as a model scores its own training rows better than new ones"
    )
