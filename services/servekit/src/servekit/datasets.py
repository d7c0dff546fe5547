"""Data files: the error a file that does not fit its schema raises, where the shared
real data sets live, and the rule for tests that need them."""

from __future__ import annotations

import csv
import gzip
import math
import os
import re
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servekit.csv_shape import csv_rows, first_non_utf8, separator_problem, shape_problem
from servekit.loading import one_line

#: ``../shared/datasets`` beside the repository (the CI layout), overridable.
SHARED = Path(
    os.environ.get("MLP_SHARED_DATASETS", Path(__file__).resolve().parents[4] / ".." / "shared" / "datasets")
)


class DatasetError(ValueError):
    """A data file that does not fit its service's schema; the message names the column.

    ``mlp train --data`` reports it in one line (exit status 2), not as a traceback.
    """


def read_csv(path: str | os.PathLike[str], **options: Any) -> pd.DataFrame:
    """``pd.read_csv``, with what it cannot read, and what it would read wrongly and say nothing
    of (``csv_shape``: a column named twice, a row of the wrong length), as a DatasetError naming
    the line or the column. A missing file is FileNotFoundError, as it is."""
    if is_parquet(path):  # read as text, its first byte not UTF-8 was named as a CSV file's
        raise DatasetError("a Parquet file, not CSV: only CSV (or CSV compressed with gzip) is read here")
    separator = separator_problem(Path(path))
    if separator:
        raise DatasetError(separator)
    try:
        frame: pd.DataFrame = pd.read_csv(path, **options)
        problem = shape_problem(Path(path))
    except UnicodeDecodeError as exc:
        # Its position is within pandas' read buffer, not the file: the file is read again.
        raise DatasetError(_not_utf8(Path(path), exc)) from None
    except (ValueError, csv.Error, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # pandas' ParserError and EmptyDataError, a .gz file cut short
        raise DatasetError(f"not a CSV file: {one_line(exc)}") from None
    if problem:
        raise DatasetError(problem)
    return without_trailing_empty_rows(frame)


def is_parquet(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` begins as every Parquet file does; False for one not read."""
    from servekit.scoring.files import PARQUET_MAGIC

    try:
        with open(path, "rb") as file:
            return file.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    except OSError:
        return False


def _not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    """What is wrong with a file pandas could not decode: the line (from 1, the header's) and
    the byte (from 0) of its first byte that is not UTF-8, as ``mlp score`` names them."""
    found = first_non_utf8(path)
    if found is None:  # gone or changed since pandas read it: told without a place
        return f"not UTF-8 ({error.reason}): save it as UTF-8"
    of = "" if found.of == "file" else f" of the {found.of}"
    return f"not UTF-8 at line {found.line}, byte {found.byte}{of} ({found.reason}): save it as UTF-8"


def without_trailing_empty_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the rows of empty cells at its end (``,,,,``), which a spreadsheet's
    export leaves after rows once filled in. Only trailing ones: a row dropped before others would
    move every later row off the line number an error names."""
    end = len(frame)
    while end and all(pd.isna(cell) or not str(cell).strip() for cell in frame.iloc[end - 1]):
        end -= 1
    return frame if end == len(frame) else frame.iloc[:end]


def shared_file(*parts: str) -> Path:
    """A shared data file. A missing file FAILS the test (CI always has ``../shared``), unless the user
    opted out with ``MLP_SKIP_REAL_DATA=1`` on a machine that has no copy of the shared data."""
    import pytest  # only tests call this; pytest is not a dependency of a served image

    path = SHARED.joinpath(*parts).resolve()
    if not path.is_file():
        message = f"real data set not found at {path} (expected ../shared/datasets beside the repository)"
        if os.environ.get("MLP_SKIP_REAL_DATA") == "1":
            pytest.skip(f"{message}; MLP_SKIP_REAL_DATA=1 set")
        pytest.fail(message)
    return path


#: How many bad lines an error names; the others are counted.
NAMED_LINES = 5

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def row_lines(path: str | os.PathLike[str]) -> list[int]:
    """The line (from 1, the header's) each row of the CSV file at ``path`` starts on, in the
    order :func:`read_csv` reads them: blank lines are skipped, and a quoted cell (a tweet) may
    hold line ends, so row ``i`` is line ``i + 2`` only in a file of neither."""
    with csv_rows(Path(path)) as rows:
        next(rows, None)  # the header
        # The reader gives the line a row ends on; the line ends inside its cells come before.
        return [end - sum(len(_LINE_BREAK.findall(cell)) for cell in cells) for end, cells in rows]


#: The CSV file whose rows are being checked, for a check not handed its path (see rows_of).
_CHECKING: ContextVar[str | os.PathLike[str] | None] = ContextVar("checking", default=None)


@contextmanager
def rows_of(path: str | os.PathLike[str]) -> Iterator[None]:
    """Within it, a refusal of rows in file order names the lines they start on in the CSV file
    at ``path``: a column check a service writes (a recipe's ``truth``) is not handed the path."""
    token = _CHECKING.set(path)
    try:
        yield
    finally:
        _CHECKING.reset(token)


def bad_lines(bad: Any, path: str | os.PathLike[str] | None = None) -> str:
    """``line(s) 3, 7 and 2 more``: the file lines of the first rows ``bad`` marks (by position).

    With the CSV file's ``path`` (or within :func:`rows_of`) the lines are those its rows start
    on (:func:`row_lines`); without, row ``i`` is taken to be line ``i + 2``, one row per line
    after the header.
    """
    path = _CHECKING.get() if path is None else path
    positions = np.flatnonzero(np.asarray(bad, dtype=bool))
    first = [int(p) for p in positions[:NAMED_LINES]]
    starts: list[int] = []
    if path is not None:
        try:
            starts = row_lines(path)
        except (OSError, UnicodeError, csv.Error, EOFError, zlib.error):
            starts = []  # changed since it was read: one row per line
    lines = [starts[p] if p < len(starts) else p + 2 for p in first]
    more = f" and {len(positions) - NAMED_LINES} more" if len(positions) > NAMED_LINES else ""
    return f"line(s) {', '.join(map(str, lines))}{more}"


def python_value(value: Any) -> Any:
    """A NumPy scalar as its Python value, as an error quotes it (``900``, not ``np.int64(900)``);
    any other value as it is."""
    return value.item() if isinstance(value, np.generic) else value


def refuse_lines(
    name: str, values: pd.Series, bad: Any, problem: str, path: str | os.PathLike[str] | None = None
) -> None:
    """Raise :class:`DatasetError` naming column ``name``'s first bad lines, if ``bad`` marks any,
    and the first bad value (none for a missing one).

    ``values`` is a column as read from a CSV file, one row per line after the header, so
    row ``i`` is line ``i + 2``: the line a user opens the file at. With the file's ``path``,
    the line each row starts on (:func:`bad_lines`).
    """
    positions = np.flatnonzero(np.asarray(bad, dtype=bool))
    if not len(positions):
        return
    example = python_value(values.iloc[positions[0]])
    missing = example is None or (isinstance(example, float) and math.isnan(example))
    shown = "" if missing else f", e.g. {example!r}"
    raise DatasetError(f"column {name!r}: {problem}; {bad_lines(bad, path)}{shown}")


def missing_columns(missing: Sequence[str], present: Iterable[object]) -> str:
    """``missing column(s): ...``, each named as :func:`named_near` names it."""
    return f"missing column(s): {', '.join(named_near(missing, present))}"


def named_near(missing: Sequence[str], present: Iterable[object], quote: bool = False) -> list[str]:
    """Each of ``missing`` with the file's column it differs from only in case or in spaces around
    it, if it has one (``Age (the file has 'Age ')``; ``'Age'`` first with ``quote``): a header a
    spreadsheet left a space in, or a lower-cased one, was named missing beside the column that
    held it."""
    near: dict[str, str] = {}
    for column in present:
        near.setdefault(str(column).strip().casefold(), str(column))
    return [
        (repr(column) if quote else column)
        + (f" (the file has {near[key]!r})" if (key := column.strip().casefold()) in near else "")
        for column in missing
    ]


def validate_table(
    raw: pd.DataFrame,
    *,
    columns: Sequence[str],
    numeric_bounds: Mapping[str, tuple[float, float]],
    integers: Collection[str] = (),
    allowed: Mapping[str, Sequence[str]] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """``raw``'s ``columns`` (any other dropped), each checked, renumbered from 0: a tabular
    service's training file as its loader and its synthetic generator both hand it to the recipe.

    A column of ``numeric_bounds`` must hold numbers (none missing) within its inclusive bounds,
    whole ones if it is in ``integers`` (then int64, else float64); a column of ``allowed`` one of
    its values (then str). Columns are checked in that order, each mapping's in its own, and the
    first bad value is refused (:func:`refuse_lines`) naming the column, the value and its lines in
    the CSV file at ``path`` (without, row ``i`` is line ``i + 2``). A column listed in neither is
    passed on as read.
    """
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise DatasetError(missing_columns(missing, raw.columns))
    frame = raw[list(columns)].copy()
    for column, (low, high) in numeric_bounds.items():
        cells = frame[column]
        values = pd.to_numeric(cells, errors="coerce")
        refuse_lines(column, cells, values.isna() & cells.notna(), "non-numeric value(s)", path)
        refuse_lines(column, cells, values.isna(), "missing value(s)", path)
        if column in integers:
            refuse_lines(column, cells, values != values.round(), "must hold whole numbers", path)
        outside = (values < low) | (values > high)
        refuse_lines(column, cells, outside, f"value(s) outside [{low}, {high}]", path)
        frame[column] = values.astype("int64" if column in integers else "float64")
    for column, values_allowed in (allowed or {}).items():
        unknown = ~frame[column].isin(values_allowed)
        problem = f"unknown value(s); expected one of {values_allowed}"
        refuse_lines(column, frame[column], unknown, problem, path)
        frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)


def binary_column(name: str, values: pd.Series) -> np.ndarray[Any, np.dtype[np.int64]]:
    """A column of 0 and 1, written as such (a CSV file's cells, read as strings)."""
    text = values.astype(str).str.strip()
    refuse_lines(name, values, ~text.isin(["0", "1"]), "every value must be 0 or 1")
    return np.asarray(text.to_numpy(dtype=object), dtype=np.int64)


def number_column(name: str, values: pd.Series) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A column of finite numbers (a CSV file's cells, read as strings)."""
    numbers = pd.to_numeric(values.astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    refuse_lines(name, values, ~np.isfinite(numbers), "every value must be a finite number")
    return numbers
