"""The stratified held-out split every figure of a version, and every comparison of two, is on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
from sklearn.model_selection import train_test_split

from servekit.datasets import DatasetError, python_value
from servekit.spec import ServiceSpec


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records (NaN → None, numpy scalars → Python)."""
    try:
        # Arrow makes Python values of a frame five times as fast as pandas' to_dict: it is most of
        # the cost of reading a chunk of ``mlp score``'s file, beside the model's.
        records: list[dict[str, Any]] = pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
        return records
    except (pa.ArrowException, TypeError, ValueError):
        pass  # a column Arrow cannot type (ints and text in one, as a CSV's gaps can make): pandas
    clean = frame.astype(object).where(frame.notna(), None)
    return [{str(k): python_value(v) for k, v in row.items()} for row in clean.to_dict(orient="records")]


def split(spec: ServiceSpec, frame: pd.DataFrame, seed: int, test_size: float | None = None) -> Split:
    """Training and held-out rows of ``frame``: the same frame, seed and test size give the same
    split (stratified by the target of a classifier), which is how the rows of a champion that
    logged none are found again (:func:`champion_rows`).

    ``test_size``: the recipe's unless given (a champion's own, as its run records it).
    """
    recipe = spec.recipe
    if frame.empty:
        raise DatasetError("no rows to train on (a header and nothing under it?)")
    features, target = recipe.features(frame), frame[recipe.target]
    stratify = target if recipe.task != "regression" else None
    if target.nunique() < 2:
        # A constant target is learnt perfectly and scores perfectly on held-out rows of the same
        # constant: a regressor of it would beat, and replace, any real champion.
        learns = (
            "a regressor learns from a target that varies"
            if stratify is None
            else "a classifier learns from rows of two classes or more"
        )
        raise DatasetError(
            f"column {recipe.target!r}: every one of the {len(frame):,} rows is "
            f"{target.dropna().iloc[0] if target.notna().any() else 'missing'}; {learns}"
        )
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            features,
            target,
            test_size=recipe.test_size if test_size is None else test_size,
            random_state=seed,
            stratify=stratify,
        )
    except ValueError as exc:  # too few rows, or of one class, for a held-out split
        counts = "" if stratify is None else f" ({_class_counts(target)})"
        raise DatasetError(
            f"{len(frame):,} rows{counts} cannot be split into training and held-out rows: {exc}"
        ) from None
    if stratify is not None and min(y_train.nunique(), y_test.nunique()) < 2:
        # A class too rare for the split (2 churners in 200 rows: none held out) leaves a side of
        # one class, which no classifier metric can score.
        raise DatasetError(
            f"{len(frame):,} rows ({_class_counts(target)}) leave {len(y_test):,} held-out rows of "
            f"{y_test.nunique()} class(es) and {len(y_train):,} training rows of {y_train.nunique()}: "
            "too few rows of a class to hold some out; add rows of the rarer class"
        )
    return Split(x_train, x_test, y_train, y_test)


def _class_counts(target: pd.Series) -> str:
    return ", ".join(f"{count:,} of {label}" for label, count in target.value_counts().sort_index().items())
