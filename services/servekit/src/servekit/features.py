"""Turning raw request records into the model matrix, identically at training and serving.

:class:`RecordEncoder` is the first step of every tabular pipeline. It accepts a
DataFrame (training) or a list of dicts (serving) and runs the same code on
both: numeric fields pass through as float (``None`` → NaN), categorical fields
map to integer codes learned at fit time (unseen → NaN, which the trees route
as missing), and derived columns apply a pure function of ONE field. Nothing is
computed from the batch being transformed, so a prediction never depends on
what else was in the request.

Every output column records the raw field it came from, so SHAP contributions
of one-hot or engineered columns can be summed back to the field a user sent.

It also keeps the range of every numeric column over the rows it was fitted on:
beyond its training range a tree predicts as at the nearest edge (a trip of 90
miles fares like the longest trip it saw), so an answer says which of its
inputs were outside (:meth:`RecordEncoder.outside_training`). A derived column
whose values have a known domain (the hour of the day, the day of the week)
declares it, and its range is that domain: 23:59 is no extrapolation because the
training rows, rounded to the quarter hour, stop at 23:45.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin

Records = pd.DataFrame | Sequence[Mapping[str, Any]]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class OutsideTraining:
    """One input of one record outside the range of the model's training rows."""

    field: str
    #: The model column that is outside: the field itself, or a column derived from it (a year).
    column: str
    value: float
    training_min: float
    training_max: float

    def as_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "column": self.column,
            "value": self.value,
            "training_min": self.training_min,
            "training_max": self.training_max,
        }


#: Up to this many rows, :func:`outside_ranges` compares in Python rather than numpy.
FEW_ROWS = 8


def outside_ranges(matrix: FloatArray, low: FloatArray, high: FloatArray) -> list[tuple[int, int]]:
    """(row, column) of each value of ``matrix`` outside its column's [low, high]; NaN never is."""
    if matrix.shape[0] <= FEW_ROWS:
        # A few rows compare faster as Python floats: numpy's calls cost more than the work
        # (a 10 µs share of a 70 µs prediction, against 2 µs so).
        lows, highs = low.tolist(), high.tolist()
        return [
            (row, column)
            for row, values in enumerate(matrix.tolist())
            for column, value in enumerate(values)
            if value < lows[column] or value > highs[column]
        ]
    rows, columns = np.nonzero((matrix < low) | (matrix > high))
    return list(zip(rows.tolist(), columns.tolist(), strict=True))


@dataclass(frozen=True)
class Derived:
    """A model column computed from one raw field by a module-level (picklable) function.

    ``domain``: the (min, max) every value of the function lies in, when it has one (hour of day
    0-24, month 1-12). It is the column's range for ``outside_training``: the training rows' own
    extremes of a cyclic column are an accident of sampling (a day's last trip at 23:45), and a
    value within the domain is not beyond anything the trees can extrapolate from.
    """

    name: str
    field: str
    function: Callable[[NDArray[Any]], FloatArray]
    domain: tuple[float, float] | None = None


def column_values(records: Records, field: str) -> NDArray[Any] | list[Any]:
    """The values of one field, as an array (frame) or a list (records)."""
    if isinstance(records, pd.DataFrame):
        return records[field].to_numpy()
    return [record.get(field) for record in records]


def as_float(values: NDArray[Any] | list[Any]) -> FloatArray:
    """Float array with None/NA → NaN.

    The fast path (plain numbers and None, as validated requests carry) costs a
    microsecond; pandas' coercion handles what real frames hold (pd.NA, strings).
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        coerced = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        return coerced.to_numpy(np.float64, na_value=np.nan)


class RecordEncoder(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Raw records → float matrix, with a record of which field each column came from.

    ``max_categories`` keeps the most frequent values of each categorical field
    (ties broken by value), so free-text fields such as a company name cannot
    grow the model without bound; the rest share the missing code.
    """

    def __init__(
        self,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        derived: Sequence[Derived] = (),
        max_categories: int = 64,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.derived = derived
        self.max_categories = max_categories

    # Layout: numeric, categorical, derived — fixed at construction, so a pipeline
    # can name the categorical columns before fitting.
    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric, *self.categorical, *(d.name for d in self.derived)]

    @property
    def source_fields(self) -> list[str]:
        """The raw field of each output column, in column order."""
        return [*self.numeric, *self.categorical, *(d.field for d in self.derived)]

    @property
    def fields(self) -> list[str]:
        """The raw fields the encoder reads, each once, in first-seen order."""
        return list(dict.fromkeys(self.source_fields))

    @property
    def categorical_indices(self) -> list[int]:
        start = len(self.numeric)
        return list(range(start, start + len(self.categorical)))

    def fit(self, records: Records, y: object = None) -> RecordEncoder:
        self.fit_transform(records)
        return self

    def fit_transform(self, records: Records, y: object = None, **params: Any) -> FloatArray:
        # The ranges are read off the encoded rows, which a Pipeline asks for next: encoded once.
        self.categories_: dict[str, dict[Any, int]] = {}
        for field in self.categorical:
            counts = pd.Series(column_values(records, field)).dropna().value_counts()
            ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
            kept = sorted((value for value, _ in ranked[: self.max_categories]), key=str)
            self.categories_[field] = {value: code for code, value in enumerate(kept)}
        matrix = self.transform(records)
        self._keep_ranges(matrix)
        return matrix

    def _keep_ranges(self, matrix: FloatArray) -> None:
        # Plain arrays, not an object of a class of this module: a model trained now still loads
        # in an image of servekit from before (a rollback), which ignores attributes it lacks.
        # Categorical codes get no range (-inf to inf): a value not kept at fit is encoded as
        # missing, as the training rows' rarer values were, so the trees have seen its like.
        coded = set(self.categorical_indices)
        self.training_min_ = np.full(matrix.shape[1], -np.inf)
        self.training_max_ = np.full(matrix.shape[1], np.inf)
        first_derived = len(self.numeric) + len(self.categorical)
        for column in range(matrix.shape[1]):
            values = matrix[:, column]
            domain = self.derived[column - first_derived].domain if column >= first_derived else None
            if domain is not None:
                self.training_min_[column], self.training_max_[column] = domain
            elif column not in coded and not np.isnan(values).all():
                self.training_min_[column] = np.nanmin(values)
                self.training_max_[column] = np.nanmax(values)

    def _kept_ranges(self) -> tuple[FloatArray, FloatArray] | None:
        """``training_min_`` and ``training_max_``; None for an encoder fitted before they were kept."""
        low: FloatArray | None = getattr(self, "training_min_", None)
        high: FloatArray | None = getattr(self, "training_max_", None)
        return None if low is None or high is None else (low, high)

    def training_ranges(self) -> dict[int, tuple[float, float]] | None:
        """The min and max of each ranged column over the rows fitted on, by column index; None for
        an encoder fitted before ranges were kept."""
        kept_ranges = self._kept_ranges()
        if kept_ranges is None:
            return None
        low, high = kept_ranges
        kept = np.isfinite(low) & np.isfinite(high)
        return {int(c): (float(low[c]), float(high[c])) for c in np.flatnonzero(kept)}

    def outside_training(self, matrix: FloatArray) -> list[list[OutsideTraining]] | None:
        """Per row of ``matrix`` (this encoder's output), its values outside the training range.

        None for an encoder fitted before ranges were kept: nothing can be said either way.
        Missing values (NaN) are never outside.
        """
        kept_ranges = self._kept_ranges()
        if kept_ranges is None:
            return None
        low, high = kept_ranges
        found: list[list[OutsideTraining]] = [[] for _ in range(matrix.shape[0])]
        names, sources = self.feature_names, self.source_fields
        for row, column in outside_ranges(matrix, low, high):
            found[row].append(
                OutsideTraining(
                    field=sources[column],
                    column=names[column],
                    value=float(matrix[row, column]),
                    training_min=float(low[column]),
                    training_max=float(high[column]),
                )
            )
        return found

    def transform(self, records: Records) -> FloatArray:
        n_rows = len(records)
        matrix = np.empty((n_rows, len(self.feature_names)), dtype=np.float64)
        col = 0
        for field in self.numeric:
            matrix[:, col] = as_float(column_values(records, field))
            col += 1
        for field in self.categorical:
            codes = self.categories_[field]
            matrix[:, col] = [codes.get(v, np.nan) for v in column_values(records, field)]
            col += 1
        for derived in self.derived:
            matrix[:, col] = derived.function(np.asarray(column_values(records, derived.field)))
            col += 1
        return matrix

    def get_feature_names_out(self, input_features: object = None) -> NDArray[np.str_]:
        return np.asarray(self.feature_names, dtype=str)
