from pathlib import Path

import pandas as pd
import pytest

from bankchurn import data
from servekit.datasets import shared_file


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return data.generate_raw(300, seed=1)


def test_real_file_loads_without_identifiers() -> None:
    frame = data.load_csv(shared_file("bankchurn", "Churn_Modelling.csv"))
    assert len(frame) == 8000
    assert list(frame.columns) == [*data.FEATURES, data.TARGET]
    assert frame[data.TARGET].mean() == pytest.approx(0.201, abs=0.001)


def test_generator_is_deterministic_and_has_the_real_schema(raw: pd.DataFrame) -> None:
    assert raw.equals(data.generate_raw(300, seed=1))
    assert not raw.equals(data.generate_raw(300, seed=2))
    assert list(raw.columns) == [*data.IDENTIFIERS[:2], "Surname", *data.FEATURES, data.TARGET]


def test_synthetic_churn_is_near_20_percent_and_driven_by_plausible_factors() -> None:
    frame = data.generate(20_000, seed=0)
    assert 0.17 <= frame[data.TARGET].mean() <= 0.23
    by = frame.groupby
    assert by("IsActiveMember")[data.TARGET].mean()[0] > by("IsActiveMember")[data.TARGET].mean()[1]
    assert by("Geography")[data.TARGET].mean()["Germany"] > by("Geography")[data.TARGET].mean()["France"]
    products = by("NumOfProducts")[data.TARGET].mean()
    assert products[3] > products[1] > products[2]
    middle_aged = frame[frame.Age.between(45, 60)][data.TARGET].mean()
    young = frame[frame.Age < 30][data.TARGET].mean()
    assert middle_aged > 2 * young


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        (lambda f: f.drop(columns=["Age"]), "Age", "missing column"),
        (lambda f: f.assign(Age=f.Age.astype(object).where(f.index != 3, "old")), "Age", "non-numeric"),
        (lambda f: f.assign(CreditScore=f.CreditScore.where(f.index != 0, 900)), "CreditScore", "outside"),
        (lambda f: f.assign(Geography=f.Geography.where(f.index != 0, "Mars")), "Geography", "unknown value"),
        (
            lambda f: f.assign(Tenure=f.Tenure.astype(float).where(f.index != 0, 2.5)),
            "Tenure",
            "whole numbers",
        ),
        (lambda f: f.assign(Balance=f.Balance.where(f.index != 0, None)), "Balance", "missing value"),
        (lambda f: f.assign(Exited=f.Exited.where(f.index != 0, 2)), "Exited", "outside"),
    ],
)
def test_bad_files_name_the_column(raw: pd.DataFrame, tmp_path: Path, change, column, words) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    change(raw).to_csv(path, index=False)
    with pytest.raises(data.DatasetError, match=column) as error:
        data.load_csv(path)
    assert words in str(error.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.assign(Age=f.Age.astype(object).where(f.index != 3, "forty")),
            "column 'Age': non-numeric value(s); line(s) 5, e.g. 'forty'",
        ),
        (
            lambda f: f.assign(Age=f.Age.astype(float).where(~f.index.isin([0, 9]), 42.5)),
            "column 'Age': must hold whole numbers; line(s) 2, 11, e.g. 42.5",
        ),
        (
            lambda f: f.assign(Balance=f.Balance.where(f.index < 293, None)),
            "column 'Balance': missing value(s); line(s) 295, 296, 297, 298, 299 and 2 more",
        ),
        (
            lambda f: f.assign(CreditScore=f.CreditScore.where(f.index != 7, 99999)),
            "column 'CreditScore': value(s) outside [300, 850]; line(s) 9, e.g. 99999",
        ),
        (
            lambda f: f.assign(Gender=f.Gender.where(f.index != 1, "F")),
            "column 'Gender': unknown value(s); expected one of ('Female', 'Male'); line(s) 3, e.g. 'F'",
        ),
    ],
    ids=["non-numeric", "fraction", "missing", "outside", "unknown"],
)
def test_a_bad_value_is_named_with_its_file_lines(raw: pd.DataFrame, tmp_path: Path, change, message) -> None:  # type: ignore[no-untyped-def]
    """They named no line (``column Age: non-numeric value 'forty' in 1 row(s)``, ``column Age:
    must hold whole numbers``), where ``mlp score`` and ``mlp evaluate`` name the file's."""
    path = tmp_path / "bad.csv"
    change(raw).to_csv(path, index=False)
    with pytest.raises(data.DatasetError) as error:
        data.load_csv(path)
    assert str(error.value) == message


def test_the_lines_named_are_the_files_after_a_blank_line_or_a_quoted_line_end(
    raw: pd.DataFrame, tmp_path: Path
) -> None:
    """Row i is line i + 2 only in a file of one line per row: row 4 is line 8 here."""
    bad = raw.assign(
        Surname=raw.Surname.where(raw.index != 1, "Two\nLines"),  # row 1 on lines 3 and 4
        Geography=raw.Geography.where(raw.index != 4, "Mars"),
    )
    header, *rows = bad.to_csv(index=False).splitlines(keepends=True)  # the quoted cell split too
    path = tmp_path / "bad.csv"
    path.write_text(header + "".join(rows[:4]) + "\n" + "".join(rows[4:]))  # a blank line 6
    with pytest.raises(data.DatasetError) as error:
        data.load_csv(path)
    assert str(error.value).endswith("; line(s) 8, e.g. 'Mars'")


def test_a_file_cut_short_or_naming_a_column_twice_is_refused(raw: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    text = raw.to_csv(index=False)
    # A copy that stopped mid-row: pandas would read the salary as 1013 and a missing label.
    body = text.rstrip("\n")
    path.write_text(body[: body.rindex(",") - 3])
    with pytest.raises(data.DatasetError, match=r"line 301 has 13 cells, not the header's 14"):
        data.load_csv(path)
    raw.assign(Age2=raw.Age).rename(columns={"Age2": "Age"}).to_csv(path, index=False)
    with pytest.raises(data.DatasetError, match=r"names the column 'Age' twice \(columns 7 and 15\)"):
        data.load_csv(path)
