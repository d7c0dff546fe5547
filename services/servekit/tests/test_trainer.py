"""``to_records``: a frame as the Python values a request's JSON would give, gaps as None; ``split``:
rows that cannot be split are a DatasetError."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from toy import TOY, ToyRecipe

from servekit.datasets import DatasetError
from servekit.training.champion import too_few_to_judge
from servekit.training.splitting import split, to_records

FRAME = pd.DataFrame(
    {
        "age": [42, 37],  # numpy ints -> int
        "balance": [1.5, np.nan],  # NaN -> None
        "geography": ["France", None],
        "band": pd.Categorical(["low", "high"]),
        "active": [True, False],
    },
    index=[7, 9],  # the frame's index is not a field
)
EXPECTED = [
    {"age": 42, "balance": 1.5, "geography": "France", "band": "low", "active": True},
    {"age": 37, "balance": None, "geography": None, "band": "high", "active": False},
]


def test_records_are_python_values_with_gaps_as_none() -> None:
    records = to_records(FRAME)
    assert records == EXPECTED
    assert [type(value) for value in records[0].values()] == [int, float, str, str, bool]


def test_a_column_arrow_cannot_type_is_made_records_by_pandas_alike() -> None:
    # A CSV's chunk can hold ints and text in one column (pandas' low-memory reading). The other
    # columns come out of the fallback as they come out of Arrow.
    mixed = FRAME.assign(code=pd.Series([42, "forty"], dtype=object, index=FRAME.index))
    records = to_records(mixed)
    assert records == [{**row, "code": code} for row, code in zip(EXPECTED, [42, "forty"], strict=True)]
    assert [type(value) for value in records[0].values()] == [int, float, str, str, bool, int]


def test_rows_too_few_or_of_one_class_to_split_are_a_dataset_error_not_a_traceback() -> None:
    class Binary(ToyRecipe):
        task = "binary"

    spec = dataclasses.replace(TOY, recipe=Binary())
    frame = TOY.recipe.generate(40, seed=1).assign(y=[0, 1] * 20)
    assert len(split(spec, frame, seed=0).x_test) == 8
    with pytest.raises(DatasetError, match=r"^column 'y': every one of the 40 rows is 0; a classifier"):
        split(spec, frame.assign(y=0), seed=0)
    with pytest.raises(DatasetError, match=r"^2 rows \(1 of 0, 1 of 1\) cannot be split into training and"):
        split(spec, frame.head(2), seed=0)


def test_a_constant_regression_target_is_a_dataset_error_naming_the_column() -> None:
    # Learnt perfectly and scored perfectly on held-out rows of the same constant, it would beat,
    # and replace, any champion.
    frame = TOY.recipe.generate(40, seed=1)
    with pytest.raises(
        DatasetError, match=r"^column 'y': every one of the 40 rows is 10.0; a regressor learns"
    ):
        split(TOY, frame.assign(y=10.0), seed=0)


class BinaryToy(ToyRecipe):
    task = "binary"


@pytest.mark.parametrize("recipe", [ToyRecipe(), BinaryToy()], ids=["regression", "binary"])
def test_a_file_of_a_header_and_no_rows_is_a_dataset_error(recipe: ToyRecipe) -> None:
    spec = dataclasses.replace(TOY, recipe=recipe)
    empty = TOY.recipe.generate(40, seed=1).head(0)
    # A classifier's came as pandas' "single positional indexer is out-of-bounds".
    with pytest.raises(DatasetError, match=r"^no rows to train on \(a header and nothing under it\?\)$"):
        split(spec, empty, seed=0)


def test_a_class_too_rare_to_be_held_out_is_a_dataset_error_not_a_traceback() -> None:
    """2 of one class in 200: the stratified split holds none out, and every classifier metric of
    the held-out rows (BankChurn's log loss first) raised."""
    spec = dataclasses.replace(TOY, recipe=BinaryToy())
    frame = TOY.recipe.generate(200, seed=1).assign(y=[1, 1] + [0] * 198)
    with pytest.raises(
        DatasetError, match=r"^200 rows \(198 of 0, 2 of 1\) leave 40 held-out rows of 1 class\(es\)"
    ):
        split(spec, frame, seed=0)


@pytest.mark.parametrize(
    ("y_test", "classes", "said"),
    [
        (pd.Series([1.0] * 40), False, "40 held-out rows"),
        (pd.Series([0] * 195 + [1] * 5), True, "5 held-out rows of class 1"),
        (pd.Series([0] * 150 + [1] * 50), True, None),
        (pd.Series([2.5] * 100), False, None),
    ],
)
def test_a_comparison_on_too_few_held_out_rows_says_so(
    y_test: pd.Series, classes: bool, said: str | None
) -> None:
    # One held-out row resampled is that row: its interval was a point, "beyond the noise".
    assert too_few_to_judge(y_test, classes=classes) == said
