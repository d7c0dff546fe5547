"""Data files: the error a file that does not fit its schema raises, where the shared
real data sets live, and the rule for tests that need them."""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servekit.csv_shape import separator_problem, shape_problem
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
    separator = separator_problem(Path(path))
    if separator:
        raise DatasetError(separator)
    try:
        frame: pd.DataFrame = pd.read_csv(path, **options)
        problem = shape_problem(Path(path))
    except (ValueError, csv.Error, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # pandas' ParserError and EmptyDataError, a bad byte, a .gz file cut short
        raise DatasetError(f"not a CSV file: {one_line(exc)}") from None
    if problem:
        raise DatasetError(problem)
    return without_trailing_empty_rows(frame)


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


def refuse_lines(name: str, values: pd.Series, bad: Any, problem: str) -> None:
    """Raise :class:`DatasetError` naming column ``name``'s first bad lines, if ``bad`` marks any.

    ``values`` is a column as read from a CSV file, one row per line after the header, so
    row ``i`` is line ``i + 2``: the line a user opens the file at.
    """
    positions = np.flatnonzero(np.asarray(bad, dtype=bool))
    if not len(positions):
        return
    lines = ", ".join(str(p + 2) for p in positions[:5])
    more = f" and {len(positions) - 5} more" if len(positions) > 5 else ""
    example = values.iloc[positions[0]]
    raise DatasetError(f"column {name!r}: {problem}; line(s) {lines}{more}, e.g. {example!r}")


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
