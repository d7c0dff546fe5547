"""A CSV file's shape, checked where pandas reads it wrongly and says nothing."""

import gzip
from pathlib import Path

import pandas as pd
import pytest

from servekit.csv_shape import csv_rows, repeated_name, shape_problem


def written(tmp_path: Path, content: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    return path


@pytest.mark.parametrize("name", ["in.csv", "in.csv.gz"])
def test_rows_are_read_as_pandas_reads_them_each_with_the_line_it_ends_on(tmp_path: Path, name: str) -> None:
    content = b'\xef\xbb\xbfid,note\r\n1,"two\r\nlines"\r\n\r\n   \r\n2,"a ""quoted"" word"\r\n3,\r\n'
    path = written(tmp_path, content, name)
    with csv_rows(path) as rows:
        read = list(rows)
    assert read == [
        (1, ["id", "note"]),
        (3, ["1", "two\r\nlines"]),
        (6, ["2", 'a "quoted" word']),
        (7, ["3", ""]),
    ]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert [list(frame.columns), *frame.to_numpy().tolist()] == [cells for _, cells in read]


def test_a_cell_larger_than_the_csv_modules_default_limit_is_read(tmp_path: Path) -> None:
    path = written(tmp_path, b"id,text\n1," + b"x" * 200_000 + b"\n")
    assert shape_problem(path) is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"a,b\n1,2\n3,4\n", None),
        (b"", None),
        # A spreadsheet's trailing empty columns have no name, and may be many.
        (b"a,b,,\n1,2,,\n", None),
        (b"a,b,a\n1,2,3\n", "names the column 'a' twice (columns 1 and 3)"),
        (b"a,b,c\n1,2,3\n4,5\n", "line 3 has 2 cells, not the header's 3: a row cut short"),
        (b'a,b\n1,"x\ny"\n2\n', "line 4 has 1 cells, not the header's 2: a row cut short"),
        (b"a,b\n0,1,2\n", "line 2 has 3 cells, not the header's 2: a comma too many"),
    ],
)
def test_the_first_problem_of_a_files_shape_names_its_line_or_column(
    tmp_path: Path, content: bytes, problem: str | None
) -> None:
    found = shape_problem(written(tmp_path, content))
    assert found == problem if problem is None else found is not None and found.startswith(problem)


def test_a_name_given_twice_is_found_whatever_the_table() -> None:
    assert repeated_name(["Age", "Tenure", "age"]) is None
    assert repeated_name(["", "", "Age"]) is None
    assert (repeated_name(["Age", "Tenure", "Age"]) or "").startswith("names the column 'Age' twice")
