"""CSV in and out of ``mlp score``: read laxly in chunks, each twice in step, written as pandas
formats it; ``.csv.gz`` gzip-compressed both ways (BigQuery's ``EXPORT DATA`` with
``compression = 'GZIP'``)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa

from servekit.csv_shape import CSV_ENCODING, csv_rows, first_non_utf8, repeated_name, width_problem
from servekit.scoring.files import (
    GZIP_ERRORS,
    Chunk,
    Kind,
    Partitions,
    ScoringError,
    Sink,
    copied,
    naming,
    part_name,
    text_bytes,
    written_bytes,
)


@dataclass(frozen=True)
class CsvFile:
    """CSV files with one header, read laxly: their cells carry no types, so "42" is an age."""

    paths: tuple[Path, ...]
    partitions: Partitions = field(default_factory=Partitions)
    kind: ClassVar[Kind] = "csv"

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return self.partitions.keys

    def chunks(self, chunk_rows: int, fields: Sequence[str]) -> Iterator[Chunk]:
        """Each file read twice in step: typed, and every cell as written, as text.

        Copying the typed read would turn 10 into 10.0 where a column has a gap and drop an id's
        leading zeros. A file pandas cannot read is a ScoringError naming the line.
        """
        self._check_headers()
        for path in self.paths:
            values = self.partitions.of_part(path)
            text = {key: "" if value is None else value for key, value in values.items()}
            with naming(path, self.paths):
                for typed, written in _csv_chunks(path, chunk_rows):
                    yield (typed.assign(**values), written.assign(**text)) if values else (typed, written)

    def _check_headers(self) -> None:
        """Every part's columns are the first's: the output has one header."""
        if len(self.paths) == 1:
            return  # its header is read with its first chunk
        headers = [list(self._header), *(_csv_header(path, self.paths) for path in self.paths[1:])]
        for path, header in zip(self.paths[1:], headers[1:], strict=True):
            if header != headers[0]:
                raise ScoringError(
                    f"{part_name(path, self.paths)} has the columns {header}, not those of "
                    f"{part_name(self.paths[0], self.paths)}: {headers[0]}"
                )

    def chunks_left(self, first: Chunk) -> float:
        """From the files' size and the first chunk's."""
        # The file's cells, not the paths' values (by position: empty names may repeat).
        written: pd.DataFrame = first[1].iloc[:, : len(self._header)]
        # Each cell's bytes as written, and a comma or line end after each: the chunk's size but
        # for quotes. Bytes, not characters: a tweet's emoji is four of the file's bytes.
        cells = (cell for _, column in written.items() for cell in column)
        chunk_bytes = sum(len(cell.encode("utf-8")) for cell in cells) + written.size
        size = sum(text_bytes(path) for path in self.paths)
        return max(0.0, size - chunk_bytes) / max(chunk_bytes, 1)

    def names(self) -> list[str]:
        return self.partitions.after(self._header)

    @cached_property
    def _header(self) -> tuple[str, ...]:
        """The first part's header, read once: the run checks it and may copy it into a schema."""
        return tuple(_csv_header(self.paths[0], self.paths))

    def copied_schema(self, kept: tuple[str, ...] | None) -> pa.Schema:
        """As Parquet, every cell is text: a CSV cell has no type, and a guessed one could drop
        an id's leading zeros."""
        return pa.schema([(name, pa.string()) for name in (self.names() if kept is None else kept)])

    def check_csv(self, kept: tuple[str, ...] | None) -> None:
        """Every CSV cell is CSV text."""

    def notes(self, fields: Sequence[str]) -> list[str]:
        """A CSV cell is text, read as the API reads JSON's: nothing to tell."""
        return []


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """The file's rows read twice in step, and a third time to count each chunk's cells before
    it is scored (``csv_shape``): a row pandas would read with empty cells or one column over is
    refused, naming its line, as pandas refuses most rows too long. 2 to 3 % of a run's time."""
    with _csv_errors(path):
        typed = pd.read_csv(path, chunksize=chunk_rows, encoding=CSV_ENCODING)
        written = pd.read_csv(
            path, chunksize=chunk_rows, encoding=CSV_ENCODING, dtype=str, keep_default_na=False
        )
        with typed, written, csv_rows(path) as rows:
            header = next(rows, (0, []))[1]
            width = len(header)
            for chunk in zip(typed, written, strict=True):
                _refuse(width_problem(islice(rows, len(chunk[1])), width))
                for frame in chunk:
                    frame.columns = _as_written(frame.columns, header)
                yield chunk
            _refuse(width_problem(rows, width))


def _refuse(problem: str | None) -> None:
    if problem:
        raise ScoringError(problem)


def _csv_header(path: Path, paths: Sequence[Path]) -> list[str]:
    with naming(path, paths), _csv_errors(path):
        with csv_rows(path) as rows:
            header = next(rows, (0, []))[1]
            _refuse(repeated_name(header))
        return _as_written(pd.read_csv(path, nrows=0, encoding=CSV_ENCODING).columns, header)


def _as_written(read: pd.Index, header: Sequence[str]) -> list[str]:
    """The columns' names as the header writes them: pandas renames an empty one ``Unnamed: 0``
    (the index column pandas writes has none), which would be copied into the output as a name
    the file never had."""
    return list(header) if len(read) == len(header) else [str(name) for name in read]


@contextmanager
def _csv_errors(path: Path) -> Iterator[None]:
    """What pandas cannot read, as one ScoringError naming the line or the byte."""
    try:
        yield
    except pd.errors.ParserError as exc:
        raise ScoringError(f"not CSV as read: {exc}".strip()) from None
    except UnicodeDecodeError as exc:
        # Its offset is within the reader's buffer (pandas reads 3 MiB at a time), not the file.
        found = first_non_utf8(path)
        where = f"line {found.line}, byte {found.byte} of the {found.of}: " if found else ""
        raise ScoringError(f"not UTF-8 text ({where}{exc.reason}); save it as UTF-8 CSV") from None
    except csv.Error as exc:  # pandas read the same bytes first, so seldom met
        raise ScoringError(f"not CSV as read: {exc}") from None
    except GZIP_ERRORS as exc:
        raise ScoringError(f"not gzip as read: {exc}") from None
    except pd.errors.EmptyDataError:
        raise ScoringError("is empty: not even a header") from None


@dataclass(frozen=True)
class CsvOutput:
    gzipped: bool = False
    #: The input columns copied, in this order (None: every one).
    kept: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return "csv.gz" if self.gzipped else "csv"

    def encode(self, copy: Any, scores: pd.DataFrame, first_row: int) -> str:
        """The rows as CSV text, with the header when they are the file's first."""
        copy = copied(copy, self.kept)
        frame: pd.DataFrame
        if isinstance(copy, pd.DataFrame):
            frame = copy
        elif isinstance(copy, pa.RecordBatch):
            # Arrow's own types in pandas: an integer column with a null stays integers (10, not 10.0).
            frame = copy.to_pandas(types_mapper=pd.ArrowDtype)
        else:  # JSON rows: each value as its JSON text, a null as an empty cell
            frame = pd.DataFrame(copy.text_columns()).fillna("")
        rows = pd.concat([frame, scores.set_axis(frame.index)], axis=1)
        return rows.to_csv(header=first_row == 1, index=False)

    @contextmanager
    def writer(self, path: Sink) -> Iterator[Callable[[str], object]]:
        # Encoded as they come: pandas formatted the rows, with its line ends, as to_csv writes them.
        with written_bytes(path, self.gzipped) as raw:
            yield lambda rows: raw.write(rows.encode("utf-8"))
