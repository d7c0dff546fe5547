import numpy as np
import pandas as pd
import pytest
from toy import squared

from servekit.features import FEW_ROWS, Derived, RecordEncoder, as_float, outside_ranges


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


def test_fitting_keeps_the_range_of_every_numeric_and_derived_column() -> None:
    enc = encoder()
    # x, and x2 derived from it; the categorical column's codes have no range worth stating.
    assert enc.training_ranges() == {0: (1.0, 3.0), 2: (1.0, 9.0)}


def test_fit_transform_encodes_as_transform_does() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "color": ["red", "blue", "red"]})
    fresh = RecordEncoder(numeric=("x",), categorical=("color",), derived=(Derived("x2", "x", squared),))
    np.testing.assert_array_equal(fresh.fit_transform(frame), encoder().transform(frame))


def test_values_outside_the_training_range_are_named_per_row_and_column() -> None:
    enc = encoder()
    rows = [
        {"x": 2.0, "color": "red"},  # inside
        {"x": 3.0, "color": "blue"},  # on the edge: inside
        {"x": 4.0, "color": "red"},  # above: x, and x2 derived from it
        {"x": None, "color": "green"},  # missing, and an unseen category: neither is outside
        {"x": 0.5, "color": "red"},  # below x's range; 0.25 below x2's
    ]
    found = enc.outside_training(enc.transform(rows))
    assert found is not None
    as_json = [[item.as_json() for item in row] for row in found]
    assert as_json[:2] == [[], []]
    assert as_json[2] == [
        {"field": "x", "column": "x", "value": 4.0, "training_min": 1.0, "training_max": 3.0},
        {"field": "x", "column": "x2", "value": 16.0, "training_min": 1.0, "training_max": 9.0},
    ]
    assert as_json[3] == []
    assert [(item["column"], item["value"]) for item in as_json[4]] == [("x", 0.5), ("x2", 0.25)]


def test_a_column_never_seen_with_a_value_has_no_range() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "empty": [None, None]})
    enc = RecordEncoder(numeric=("x", "empty")).fit(frame)
    assert enc.training_ranges() == {0: (1.0, 2.0)}
    assert enc.outside_training(enc.transform([{"x": 1.5, "empty": 7.0}])) == [[]]


def test_an_encoder_fitted_before_ranges_were_kept_says_nothing_either_way() -> None:
    enc = encoder()
    del enc.training_min_, enc.training_max_  # as unpickled from a model trained before they existed
    assert enc.outside_training(enc.transform([{"x": 40.0, "color": "red"}])) is None
    assert enc.training_ranges() is None


def test_the_ranges_are_plain_arrays_an_older_servekit_can_unpickle() -> None:
    # Only numpy and builtins: an image of servekit from before these attributes loads the model.
    enc = encoder()
    kept = {k: v for k, v in vars(enc).items() if k.startswith("training_")}
    assert set(kept) == {"training_min_", "training_max_"}
    assert all(type(v) is np.ndarray for v in kept.values())


def test_a_few_rows_and_many_find_the_same_values_outside() -> None:
    enc = encoder()
    rng = np.random.default_rng(0)
    rows = [{"x": float(x), "color": "red"} for x in rng.uniform(-2, 6, FEW_ROWS * 4)]
    rows[3]["x"] = None
    matrix = enc.transform(rows)
    low, high = enc.training_min_, enc.training_max_
    in_one_batch = outside_ranges(matrix, low, high)  # numpy: more than FEW_ROWS rows
    one_by_one = [(i, c) for i in range(len(rows)) for _, c in outside_ranges(matrix[i : i + 1], low, high)]
    assert in_one_batch == one_by_one
    assert {column for _, column in in_one_batch} == {0, 2}  # x and x2; never the category
    assert all(i != 3 for i, _ in in_one_batch)  # the missing x


def hour(values: object) -> np.ndarray:
    return np.mod(np.asarray(values, dtype=np.float64), 24.0)


def test_a_derived_column_with_a_domain_is_held_against_it_not_the_training_rows_extremes() -> None:
    """An hour of day wraps at midnight: training rows rounded to the quarter hour stop at 23.75,
    and 23.77 is no more outside them than 0.0 is."""
    enc = RecordEncoder(
        numeric=["t"],
        derived=[Derived("t_hour", "t", hour, domain=(0.0, 24.0)), Derived("t_raw", "t", as_float)],
    ).fit(pd.DataFrame({"t": [0.25, 12.0, 23.75]}))
    late = enc.transform([{"t": 23.77}])
    assert [(o.column, o.value) for o in enc.outside_training(late)[0]] == [("t", 23.77), ("t_raw", 23.77)]
    assert enc.training_ranges() == {0: (0.25, 23.75), 1: (0.0, 24.0), 2: (0.25, 23.75)}
    # A Derived pickled before domains existed reads as having none.
    assert Derived("old", "t", hour).domain is None
