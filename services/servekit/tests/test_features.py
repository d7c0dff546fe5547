import numpy as np
import pandas as pd
import pytest
from toy import squared

from servekit.features import Derived, RecordEncoder, as_float


def encoder() -> RecordEncoder:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "color": ["red", "blue", "red"]})
    return RecordEncoder(numeric=("x",), categorical=("color",), derived=(Derived("x2", "x", squared),)).fit(
        frame
    )


def test_frame_and_records_encode_identically() -> None:
    enc = encoder()
    frame = pd.DataFrame({"x": [1.5, None, 4.0], "color": ["blue", "red", None]})
    records = [{"x": 1.5, "color": "blue"}, {"x": None, "color": "red"}, {"x": 4.0, "color": None}]
    np.testing.assert_array_equal(enc.transform(frame), enc.transform(records))


def test_no_statistic_of_the_batch_leaks_into_a_row() -> None:
    enc = encoder()
    alone = enc.transform([{"x": 2.0, "color": "red"}])
    in_batch = enc.transform([{"x": 2.0, "color": "red"}, {"x": 9.0, "color": "blue"}])
    np.testing.assert_array_equal(alone[0], in_batch[0])


def test_unseen_category_is_missing_not_an_error() -> None:
    row = encoder().transform([{"x": 1.0, "color": "green"}])[0]
    assert np.isnan(row[1])


def test_every_column_knows_its_field() -> None:
    enc = encoder()
    assert enc.feature_names == ["x", "color", "x2"]
    assert enc.source_fields == ["x", "color", "x"]
    assert enc.fields == ["x", "color"]
    assert enc.categorical_indices == [1]


def test_max_categories_keeps_the_most_frequent() -> None:
    frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"]})
    enc = RecordEncoder(categorical=("c",), max_categories=2).fit(frame)
    assert set(enc.categories_["c"]) == {"a", "b"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, None, 2.5], [1.0, np.nan, 2.5]), ([pd.NA, "3"], [np.nan, 3.0])],
)
def test_as_float(values: list[object], expected: list[float]) -> None:
    np.testing.assert_array_equal(as_float(values), np.array(expected))
