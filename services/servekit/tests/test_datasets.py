"""Reading a data file: what pandas cannot read, or would read wrongly, is a DatasetError."""

import gzip
from pathlib import Path

import pytest

from servekit.datasets import DatasetError, read_csv


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a CSV file: EmptyDataError: No columns to parse from file"),
        (b'a,b\n"1,2\n', "not a CSV file: ParserError: Error tokenizing data"),
        ("a,b\n1,r\xe9d\n".encode("latin-1"), "not a CSV file: UnicodeDecodeError"),
        (b"a,b,a\n1,2,3\n", "names the column 'a' twice (columns 1 and 3)"),
        (b"a,b\n1,2\n3", "line 3 has 1 cells, not the header's 2: a row cut short"),
    ],
)
def test_a_file_pandas_cannot_read_or_would_read_wrongly_is_a_dataset_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as raised:
        read_csv(path)
    assert str(raised.value).startswith(message)


def test_a_gzip_file_cut_short_is_a_dataset_error(tmp_path: Path) -> None:
    packed = gzip.compress(b"a,b\n" + b"1,2\n" * 10_000)
    path = tmp_path / "in.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DatasetError, match=r"^not a CSV file: EOFError: Compressed file ended"):
        read_csv(path)


def test_a_good_file_is_read_with_the_options_given(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("a,b\n007,NA\n")
    assert read_csv(path, dtype=str, keep_default_na=False).to_numpy().tolist() == [["007", "NA"]]
    with pytest.raises(FileNotFoundError):
        read_csv(tmp_path / "missing.csv")


def test_a_file_separated_by_semicolons_is_named_so(tmp_path: Path) -> None:
    """European Excel's "CSV": read with commas it is one column, and the errors blamed a row."""
    path = tmp_path / "in.csv"
    path.write_bytes("\ufeffCreditScore;Geography;Balance\r\n619;France;1234,5\r\n".encode())
    with pytest.raises(DatasetError, match=r"^the header is one column holding ';': the file is separated"):
        read_csv(path)


def test_a_spreadsheets_trailing_empty_rows_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("a,b\n1,x\n,\n2,y\n,\n , \n,\n")
    frame = read_csv(path)
    assert len(frame) == 3  # the empty row between two others stays: later rows keep their lines
    assert frame["b"].iloc[[0, 2]].tolist() == ["x", "y"]
    assert read_csv(path, dtype=str, keep_default_na=False).to_numpy().tolist() == [
        ["1", "x"],
        ["", ""],
        ["2", "y"],
    ]
