"""Reading a data file: what pandas cannot read, or would read wrongly, is a DatasetError."""

import gzip
from pathlib import Path

import pandas as pd
import pytest

from servekit.datasets import DatasetError, bad_lines, read_csv, refuse_lines, row_lines


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a CSV file: EmptyDataError: No columns to parse from file"),
        (b'a,b\n"1,2\n', "not a CSV file: ParserError: Error tokenizing data"),
        ("a,b\n1,r\xe9d\n".encode("latin-1"), "not UTF-8 at line 2, byte 7 (invalid continuation "),
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


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_byte_that_is_not_utf8_is_named_by_its_line_and_byte_in_the_file(
    tmp_path: Path, gzipped: bool
) -> None:
    """pandas names an offset within its read buffer: the error said "not a CSV file:
    UnicodeDecodeError: 'utf-8' codec can't decode byte 0xed in position 9" for a byte 600,019 in."""
    # José in UTF-8, then María's í in latin-1.
    rows = b"id,name\n" + b"1,abc\n" * 100_000 + b"2,Jos\xc3\xa9 Mar\xeda\n3,x\n"
    bad_byte = 8 + 6 * 100_000 + len(b"2,Jos\xc3\xa9 Mar")  # the é before it is UTF-8: 2 bytes
    path = tmp_path / ("in.csv.gz" if gzipped else "in.csv")
    path.write_bytes(gzip.compress(rows) if gzipped else rows)
    with pytest.raises(UnicodeDecodeError) as pandas_says:
        pd.read_csv(path)
    assert pandas_says.value.start != bad_byte
    with pytest.raises(DatasetError) as raised:
        read_csv(path, dtype=str)
    of = " of the decompressed text" if gzipped else ""
    assert str(raised.value) == (
        f"not UTF-8 at line 100002, byte {bad_byte}{of} (invalid continuation byte): save it as UTF-8"
    )


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


def test_a_parquet_file_is_named_so_not_as_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"  # its name says nothing: its first bytes do
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_parquet(path)
    with pytest.raises(DatasetError) as parquet:
        read_csv(path)
    assert (
        str(parquet.value) == "a Parquet file, not CSV: only CSV (or CSV compressed with gzip) is read here"
    )


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


def test_bad_rows_are_named_by_the_lines_they_start_on(tmp_path: Path) -> None:
    """One row per line after the header unless told the file: then a quoted line end and a
    blank line (both of which pandas reads past) move the rows after them down."""
    path = tmp_path / "in.csv"
    path.write_text('a,b\r\n1,"two\r\nlines"\r\n\r\n2,x\r\n3,"3\nlines\nhere"\n4,y\n5,z\n', newline="")
    frame = read_csv(path, dtype=str, keep_default_na=False)
    assert row_lines(path) == [2, 5, 6, 9, 10]
    bad = frame["a"] != "1"
    assert bad_lines(bad) == "line(s) 3, 4, 5, 6"
    assert bad_lines(bad, path) == "line(s) 5, 6, 9, 10"
    with pytest.raises(DatasetError) as raised:
        refuse_lines("b", frame["b"], frame["b"] == "x", "not x", path)
    assert str(raised.value) == "column 'b': not x; line(s) 5, e.g. 'x'"
    many = pd.Series([None, *range(7)], dtype=object)
    with pytest.raises(DatasetError) as raised:
        refuse_lines("n", many, [True] * 8, "bad")
    assert str(raised.value) == "column 'n': bad; line(s) 2, 3, 4, 5, 6 and 3 more"  # no e.g. None
