"""``validate_table``: a tabular service's training rows, checked column by column, each bad value
refused naming its column, the value and its lines (a service's loader and its synthetic generator
both call it)."""

from pathlib import Path

import pandas as pd
import pytest

from servekit.datasets import DatasetError, validate_table

BOUNDS = {"age": (18, 100), "balance": (0, 1_000_000), "churned": (0, 1)}


def checked(raw: pd.DataFrame, path: Path | None = None) -> pd.DataFrame:
    """``raw`` checked as a churn file's rows: two whole-number columns, a float and a category."""
    return validate_table(
        raw,
        columns=("age", "country", "balance", "churned"),
        numeric_bounds=BOUNDS,
        integers=("age", "churned"),
        allowed={"country": ("France", "Spain")},
        path=path,
    )


def table(**columns: list[object]) -> pd.DataFrame:
    rows = {
        "id": [7, 8, 9],
        "age": [30, 41, 52],
        "country": ["France", "Spain", "France"],
        "balance": [0, 12.5, 990],
        "churned": [0, 1, 0],
    }
    return pd.DataFrame({**rows, **columns})


def test_the_checked_frame_has_the_columns_in_order_typed_and_renumbered() -> None:
    frame = checked(table().set_index(pd.Index([5, 6, 7])))
    assert list(frame.columns) == ["age", "country", "balance", "churned"]  # id dropped
    numeric = frame.drop(columns=["country"]).dtypes.astype(str).to_dict()
    assert numeric == {"age": "int64", "balance": "float64", "churned": "int64"}
    assert [type(value) for value in frame["country"]] == [str] * 3
    assert list(frame.index) == [0, 1, 2]
    # Whole numbers written as text or floats (a CSV file's "41.0") are read as the integers they are.
    assert checked(table(age=["30", 41.0, 52]))["age"].tolist() == [30, 41, 52]


def test_missing_columns_are_named_together() -> None:
    with pytest.raises(DatasetError, match=r"^missing column\(s\): age, churned$"):
        checked(table().drop(columns=["churned", "age"]))


def test_a_missing_column_names_the_files_column_it_differs_from_only_in_case_or_spaces() -> None:
    """A header with a trailing space (``Age ``), or lower-cased, was named missing and nothing more:
    the file seemed to lack a column it showed."""
    renamed = table().rename(columns={"age": "Age ", "churned": "CHURNED"}).drop(columns=["balance"])
    with pytest.raises(DatasetError) as missing:
        checked(renamed)
    assert str(missing.value) == (
        "missing column(s): age (the file has 'Age '), balance, churned (the file has 'CHURNED')"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"age": [30, "forty", 52]}, "column 'age': non-numeric value(s); line(s) 3, e.g. 'forty'"),
        ({"balance": [0, None, 990]}, "column 'balance': missing value(s); line(s) 3"),
        ({"age": [30, 41.5, 52]}, "column 'age': must hold whole numbers; line(s) 3, e.g. 41.5"),
        ({"age": [30, 41, 101]}, "column 'age': value(s) outside [18, 100]; line(s) 4, e.g. 101"),
        (
            {"balance": [-1, 12.5, -2]},
            "column 'balance': value(s) outside [0, 1000000]; line(s) 2, 4, e.g. -1.0",
        ),
        (
            {"country": ["France", "Italy", "France"]},
            "column 'country': unknown value(s); expected one of ('France', 'Spain'); "
            "line(s) 3, e.g. 'Italy'",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_its_column_value_and_lines(
    change: dict[str, list[object]], message: str
) -> None:
    with pytest.raises(DatasetError) as raised:
        checked(table(**change))
    assert str(raised.value) == message


def test_a_float_column_may_hold_fractions_and_a_column_checked_by_neither_passes_as_read() -> None:
    frame = validate_table(table(), columns=("id", "balance"), numeric_bounds={"balance": (0, 1000)})
    assert frame["balance"].tolist() == [0, 12.5, 990]
    assert frame["id"].tolist() == [7, 8, 9]


def test_the_lines_are_the_files_when_its_path_is_given(tmp_path: Path) -> None:
    """With the file's path, a row after a quoted line end is named on the line it starts on."""
    path = tmp_path / "rows.csv"
    path.write_text('age,country,balance,churned\n30,"Fra\nnce",0,0\n17,Spain,1,1\n')
    raw = pd.read_csv(path)
    with pytest.raises(DatasetError, match=r"^column 'age': value\(s\) outside \[18, 100\]; line\(s\) 4, "):
        checked(raw, path)
    with pytest.raises(DatasetError, match=r"line\(s\) 3, "):  # without: row i on line i + 2
        checked(raw)


def test_the_first_column_is_refused_first() -> None:
    """Numeric columns in their mapping's order, then the categorical ones: the error names the first."""
    with pytest.raises(DatasetError, match=r"^column 'balance': "):
        checked(table(balance=[-1, 0, 0], country=["Italy"] * 3, churned=[0, 1, 2]))
