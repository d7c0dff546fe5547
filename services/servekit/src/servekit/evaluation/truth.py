"""The truth file: what happened to the answers, named by request id and instance."""

from __future__ import annotations

import csv
import hashlib
import re
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servekit.csv_shape import csv_rows
from servekit.datasets import (
    NAMED_LINES,
    DatasetError,
    missing_columns,
    python_value,
    read_csv,
    refuse_lines,
    rows_of,
)
from servekit.training.recipe import TrainingRecipe

REQUEST_COLUMN = "request_id"
INSTANCE_COLUMN = "instance"

Key = tuple[str, int]

#: Truth rows read at a time. A truth file is cumulative (each day's fetch copies all of it), so
#: it outgrows memory long before the answers captured do: only the rows of captured answers are
#: kept, and the others checked a chunk at a time.
CHUNK_ROWS = 200_000


class Truth(dict[Key, Any]):
    """The truth file's rows ``{(request id, instance): truth}`` of the captured answers (all of
    them where no captures were named), and what was not kept."""

    def __init__(self, rows: dict[Key, Any], record: TruthRecord) -> None:
        super().__init__(rows)
        self.record = record


@dataclass(frozen=True)
class TruthRecord:
    """What a truth file held beside the rows kept: its rows, their hash, those of answers not
    captured, and those whose value training would have dropped."""

    name: str
    sha256: str
    rows: int
    #: Rows of no captured answer (requests not sampled, refused, or captured in another file).
    uncaptured: int = 0
    #: Rows whose value training leaves out: how many, and the first few as ``line 7 '-5'``.
    left_out: int = 0
    left_out_examples: tuple[str, ...] = ()
    #: What such values are, in the recipe's words (``TrainingRecipe.truth_left_out``).
    left_out_what: str = TrainingRecipe.truth_left_out

    def left_out_line(self, service: str) -> str:
        """``3 truth rows with a fare training leaves out (...): line 7 '-5', ...``; empty with none."""
        if not self.left_out:
            return ""
        unnamed = self.left_out - len(self.left_out_examples)
        more = f" and {unnamed:,} more" if unnamed else ""
        rows = f"{self.left_out:,} truth row{'' if self.left_out == 1 else 's'}"
        return (
            f"{service}: {rows} with {self.left_out_what}: left out, as their answers would be of "
            f"held-out rows: {', '.join(self.left_out_examples)}{more}"
        )


def read_truth(path: Path | str, recipe: TrainingRecipe, captured: Collection[Key] | None = None) -> Truth:
    """The truth file's rows of the ``captured`` answers (None: every row); a bad file raises
    ``DatasetError``.

    A CSV file with ``request_id``, the recipe's target column and, for the instances of batch
    requests, ``instance`` (0 when absent: a single prediction). Every cell is read as written:
    no value is guessed missing, so a request id ``NA`` is an id. Every row is checked, captured
    or not: whether a file is good does not depend on the log it is joined with. A value the
    recipe's ``truth`` returns as NaN (one training would have dropped) is left out and counted.
    """
    frame = read_csv(path, dtype=str, keep_default_na=False, nrows=1)
    missing = [c for c in (REQUEST_COLUMN, recipe.target) if c not in frame.columns]
    if missing:
        raise DatasetError(missing_columns(missing, frame.columns))
    if frame.empty:
        raise DatasetError("no rows")
    try:
        rows, record = _streamed(path, recipe, captured)
    except (DatasetError, ValueError, UnicodeError, csv.Error, EOFError, zlib.error):
        # A bad file (or two rows whose keys' hashes agree): read whole, which names every bad
        # line as the file numbers it; a file refused costs its memory once, a good one never.
        rows, record = _whole(path, recipe, captured)
    return Truth(rows, record)


def _whole(
    path: Path | str, recipe: TrainingRecipe, captured: Collection[Key] | None
) -> tuple[dict[Key, Any], TruthRecord]:
    frame = read_csv(path, dtype=str, keep_default_na=False)
    if frame.empty:
        raise DatasetError("no rows")
    with rows_of(path):
        keys, values, left = _checked(frame, recipe)
        twice = pd.Series(keys).duplicated(keep=False).to_numpy()
        refuse_lines(REQUEST_COLUMN, frame[REQUEST_COLUMN], twice, "an answer has two truth rows")
    kept = _Kept(path, recipe, captured)
    kept.add(keys, values, left, frame[recipe.target], 0)
    return kept.rows, kept.record(len(frame))


def _streamed(
    path: Path | str, recipe: TrainingRecipe, captured: Collection[Key] | None
) -> tuple[dict[Key, Any], TruthRecord]:
    kept = _Kept(path, recipe, captured)
    hashes = []  # a key's 8 bytes, not its tuple's hundred: duplicates are found among every row's
    read = 0
    with pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS) as chunks:
        for chunk in chunks:
            keys, values, left = _checked(chunk, recipe)
            named = pd.DataFrame({"request": [k[0] for k in keys], "instance": [k[1] for k in keys]})
            hashes.append(pd.util.hash_pandas_object(named, index=False).to_numpy())
            kept.add(keys, values, left, chunk[recipe.target], read)
            read += len(chunk)
    every = np.sort(np.concatenate(hashes)) if hashes else np.empty(0, np.uint64)
    if (every[1:] == every[:-1]).any():
        raise DatasetError("two rows' keys hash alike")  # told exactly by reading the file whole
    return kept.rows, kept.record(read)


def _checked(frame: pd.DataFrame, recipe: TrainingRecipe) -> tuple[list[Key], Any, np.ndarray]:
    """The rows' keys, truths, and which truths training would have dropped (NaN from the
    recipe's ``truth``); a bad row raises ``DatasetError``."""
    requests = frame[REQUEST_COLUMN].str.strip()
    refuse_lines(REQUEST_COLUMN, frame[REQUEST_COLUMN], requests == "", "every row must name its request")
    if INSTANCE_COLUMN in frame.columns:
        text = frame[INSTANCE_COLUMN].str.strip()
        refuse_lines(
            INSTANCE_COLUMN, frame[INSTANCE_COLUMN], ~text.str.fullmatch(r"\d{1,9}"), "must be 0, 1, 2, ..."
        )
        instances = text.astype(np.int64).to_numpy()
    else:
        instances = np.zeros(len(frame), dtype=np.int64)
    keys = list(zip(requests, (int(i) for i in instances), strict=True))
    truths = recipe.truth(frame[recipe.target])
    left = np.asarray(pd.isna(truths), dtype=bool).reshape(-1)
    return keys, truths, left


class _Kept:
    """The rows kept of the chunks read, and the counts of those not."""

    def __init__(self, path: Path | str, recipe: TrainingRecipe, captured: Collection[Key] | None) -> None:
        self.path, self.captured = path, captured
        self.rows: dict[Key, Any] = {}
        self.uncaptured = self.left_out = 0
        self.examples: list[tuple[int, str]] = []  # (row position, value as written)
        self.what = recipe.truth_left_out

    def add(self, keys: list[Key], truths: Any, left: np.ndarray, written: pd.Series, offset: int) -> None:
        # As Python values: a 0 or 1 is then the interpreter's one shared object, not a numpy scalar
        # of 32 bytes per row.
        values = truths.tolist() if hasattr(truths, "tolist") else list(truths)
        for position in np.flatnonzero(left):
            self.left_out += 1
            if len(self.examples) < NAMED_LINES:
                self.examples.append((offset + int(position), str(python_value(written.iloc[position]))))
        for key, value, dropped in zip(keys, values, left, strict=True):
            if dropped:
                continue
            if self.captured is not None and key not in self.captured:
                self.uncaptured += 1
            else:
                self.rows[key] = value

    def record(self, rows: int) -> TruthRecord:
        lines = _lines(self.path, [p for p, _ in self.examples])
        return TruthRecord(
            Path(self.path).name,
            _sha256(self.path),
            rows,
            self.uncaptured,
            self.left_out,
            tuple(f"line {line} {value!r}" for line, (_, value) in zip(lines, self.examples, strict=True)),
            self.what,
        )


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _lines(path: Path | str, positions: list[int]) -> list[int]:
    """The lines rows at ``positions`` start on (a quoted cell may hold line ends), read only as
    far as the last: a list of every row's line is as big as the file's keys."""
    if not positions:
        return []
    wanted, found = set(positions), {}
    with csv_rows(Path(path)) as rows:
        next(rows, None)  # the header
        for position, (end, cells) in enumerate(rows):
            if position in wanted:
                found[position] = end - sum(len(_LINE_BREAK.findall(cell)) for cell in cells)
                if len(found) == len(wanted):
                    break
    return [found.get(p, p + 2) for p in positions]


def _sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
