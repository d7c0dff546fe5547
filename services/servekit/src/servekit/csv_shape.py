"""The shape of a CSV file, which pandas does not check: a header naming a column twice, and a row
with more or fewer cells than the header.

pandas reads each of them without a word and wrongly:

- a column named twice is renamed (``Age``, ``Age.1``), and the first is the one read;
- a row cut short is filled with empty cells: the last line of a copy that stopped mid-row
  (``...,1,1,1013``) would be read with a wrong number and a missing cell;
- a first row one cell longer than the header makes the first column an index, and every value
  moves one column to the right.

Training data, truth files and files to score are checked with Python's own CSV reader, which
agrees with pandas on what a row is (quotes, line ends inside quotes, blank lines skipped) and
reports each row's cells as they are.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

#: utf-8-sig: a spreadsheet's export starts with a byte-order mark, which would otherwise become
#: part of the first column's name.
CSV_ENCODING = "utf-8-sig"

#: Each row as read: the line it ends on (counted from 1, the header's) and its cells.
Row = tuple[int, list[str]]


@contextmanager
def csv_rows(path: Path) -> Iterator[Iterator[Row]]:
    """The file's rows, the header first, gzip-decompressed when named ``.gz``, without the blank
    rows pandas skips (a line of nothing or of spaces)."""
    # pandas has no limit on a cell's size (the reader's default is 128 KiB): a file it reads
    # must not be refused by this one.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    gzipped = path.suffix.lower() == ".gz"
    with (
        gzip.open(path, "rt", encoding=CSV_ENCODING, newline="")
        if gzipped
        else path.open(encoding=CSV_ENCODING, newline="")
    ) as handle:
        reader = csv.reader(handle)
        yield (
            (reader.line_num, cells)
            for cells in reader
            if cells and not (len(cells) == 1 and not cells[0].strip())
        )


def repeated_name(names: Sequence[str]) -> str | None:
    """What is wrong with a header that names a column twice, or None. Empty names may repeat: a
    spreadsheet's trailing empty columns have none, and no one reads them by name."""
    first: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if name and name in first:
            return (
                f"names the column {name!r} twice (columns {first[name]} and {number}); which one "
                "is meant would be a guess, so rename or drop one"
            )
        first.setdefault(name, number)
    return None


def width_problem(rows: Iterable[Row], width: int) -> str | None:
    """What is wrong with the first of ``rows`` whose cells are not ``width``, or None."""
    for line, cells in rows:
        if len(cells) < width:
            return (
                f"line {line} has {len(cells)} cells, not the header's {width}: a row cut short "
                "(a copy that stopped mid-row?) would be read with empty cells; fix or drop the line"
            )
        if len(cells) > width:
            return (
                f"line {line} has {len(cells)} cells, not the header's {width}: a comma too many "
                "or a column with no name in the header; fix or drop the line"
            )
    return None


def separator_problem(path: Path) -> str | None:
    """What is wrong with a file separated by semicolons, as Excel writes "CSV" where the decimal
    point is a comma (most of Europe), or None. Read with commas it is one column, and each error
    that follows would blame a row rather than the separator."""
    try:
        with csv_rows(path) as rows:
            header = next(rows, None)
    except (OSError, UnicodeError, csv.Error, EOFError):
        return None  # not readable as text: pandas' reading says why
    if header is None or len(header[1]) != 1 or header[1][0].count(";") < 1:
        return None
    return (
        "the header is one column holding ';': the file is separated by semicolons (Excel's CSV "
        "where the decimal point is a comma); save it with commas between cells and '.' as the "
        "decimal point"
    )


def shape_problem(path: Path) -> str | None:
    """What is wrong with the whole file's shape, or None (also for a file with no header)."""
    with csv_rows(path) as rows:
        header = next(rows, None)
        if header is None:
            return None
        return repeated_name(header[1]) or width_problem(rows, len(header[1]))


#: Bytes read at a time to find the first that is not UTF-8.
SCAN_BYTES = 1 << 20


class NotUtf8(NamedTuple):
    """Where a file's first byte that is not UTF-8 is: its line (from 1, the header's), its byte
    (from 0), what the byte counts (``file``, or a ``.gz`` file's ``decompressed text``) and why."""

    line: int
    byte: int
    of: str
    reason: str


def first_non_utf8(path: Path) -> NotUtf8 | None:
    """Where ``path``'s first byte that is not UTF-8 is; None if every byte is, or if the file is
    gone or changed since it was read. pandas names an offset within its read buffer (3 MiB at a
    time), not the file, and no line: training loaders and ``mlp score`` name this instead."""
    gzipped = path.suffix.lower() == ".gz"
    of = "decompressed text" if gzipped else "file"
    line, offset, carried = 1, 0, b""
    try:
        with gzip.open(path, "rb") if gzipped else path.open("rb") as stream:
            while block := stream.read(SCAN_BYTES):
                text = carried + block
                try:
                    text.decode("utf-8")
                    read = len(text)
                except UnicodeDecodeError as exc:
                    if exc.reason != "unexpected end of data":
                        where = line + text.count(b"\n", 0, exc.start)
                        return NotUtf8(where, offset + exc.start, of, exc.reason)
                    read = exc.start  # a character cut by the block's end: decoded with the next
                line += text.count(b"\n", 0, read)
                offset += read
                carried = text[read:]
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return None
    return NotUtf8(line, offset, of, "unexpected end of data") if carried else None  # cut short
