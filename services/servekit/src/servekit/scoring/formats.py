"""The files ``mlp score`` reads and writes: CSV, or Parquet, either way round.

Each format reads its file in chunks, each twice in step: typed, for validation, and as it is in
the file, for the copy into the output (so an id keeps its leading zeros in a CSV and its type in
a Parquet file). It writes a chunk's copy beside its scores, and foresees from its first chunk
how many chunks the file holds (``servekit.scoring.pool`` decides by it whether workers pay).

A directory is read as one table: its files in the order of their names, as a warehouse or a
Spark job writes a large table in parts (``part-00000.parquet``, ...). Every part must be of one
format and have the same columns; names beginning with ``_`` or ``.`` are not parts (Spark's
``_SUCCESS``, Hadoop's ``.crc`` files), as Hadoop and Arrow read such a directory.

Parquet is what a warehouse exports (BigQuery's ``EXPORT DATA``, Athena's ``UNLOAD``, a Spark
job's output): its columns keep their types, so nothing is guessed from text, and its footer
counts the rows, so the share of the file done is counted rather than estimated. Parquet scores
are written one row group per chunk, with the input's columns and schema as they are and the
answer's fields typed from the service's response model.

The output's name says its format (``.parquet``, ``.pq`` or ``.csv``); a name that says neither
gets the input's. Across formats the input's columns are copied as faithfully as the output can
hold them: a CSV file's cells as text in Parquet (a CSV cell has no type, and a guess could drop
an id's leading zeros), an empty cell as null; a Parquet file's values as CSV text, a null as an
empty cell. A nested or binary Parquet column has no CSV text and is refused before anything is
read. CSV named ``.gz`` is gzip-compressed, read and written (BigQuery's ``EXPORT DATA`` with
``compression = 'GZIP'``). Every input column is copied unless the run names those it keeps
(``kept_columns``), as the key that joins the scores back.
"""

from __future__ import annotations

import gzip
import io
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from servekit.scoring.reasons import reason_type

#: A chunk of the file: typed, for validation, and as it is in the file, for the copy.
Chunk = tuple[pd.DataFrame, Any]
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_SUFFIX = ".gz"
CSV_SUFFIXES = (".csv", ".csv.gz")
#: The four bytes a Parquet file begins (and ends) with.
PARQUET_MAGIC = b"PAR1"


class ScoringError(ValueError):
    """The file cannot be scored at all (a column missing, one that would be overwritten)."""


class InputFile(Protocol):
    def chunks(self, chunk_rows: int, fields: Sequence[str]) -> Iterator[Chunk]:
        """The file's chunks; ``fields`` (the request's) are the columns the typed read needs."""

    def names(self) -> list[str]:
        """The file's columns, before a chunk is read: its first part's header, or its schema."""

    def chunks_left(self, first: Chunk) -> float:
        """About how many chunks the file holds past ``first``."""

    def output_format(
        self,
        response: type[BaseModel],
        added: Mapping[str, Any],
        prefix: str,
        output: Path,
        kept: tuple[str, ...] | None = None,
    ) -> OutputFormat:
        """How the scores are written into ``output``: as Parquet or CSV (``writes_parquet``), with
        ``added`` (an answer's cells) after the input's columns (``kept``: those alone, in that
        order; ``kept_columns`` checked them), each named with ``prefix``."""


class OutputFormat(Protocol):
    """How a chunk's copy and scores are written: in the worker that scored it, and in the file."""

    @property
    def name(self) -> str:
        """The format as a run's summary names it: ``parquet``, ``csv`` or ``csv.gz``."""

    def encode(self, copy: Any, scores: pd.DataFrame, first_row: int) -> Any:
        """The chunk's rows as written (picklable: a worker hands them back)."""

    def writer(self, path: Path) -> AbstractContextManager[Callable[[Any], object]]:
        """Writes the encoded chunks into ``path``, in the order given."""


def is_parquet(path: Path) -> bool:
    """Whether the name says Parquet."""
    return path.suffix.lower() in PARQUET_SUFFIXES


def writes_parquet(output: Path, reader: InputFile) -> bool:
    """Whether the scores are written as Parquet: as the output's name says (.parquet, .pq or
    .csv, .csv.gz), or, named neither, as the input is."""
    if output.name.lower().endswith(CSV_SUFFIXES):
        return False
    return is_parquet(output) or isinstance(reader, ParquetInput)


def csv_output(output: Path, kept: tuple[str, ...] | None = None) -> CsvOutput:
    """CSV scores, gzip-compressed when the output's name ends in .gz (as pandas reads it)."""
    return CsvOutput(gzipped=output.suffix.lower() == GZIP_SUFFIX, kept=kept)


def kept_columns(names: Sequence[str], keep: Sequence[str] | None) -> tuple[str, ...] | None:
    """The input columns ``keep`` names, checked to be the file's, in the order named (None: every one)."""
    if keep is None:
        return None
    missing = [name for name in keep if name not in names]
    if missing:
        raise ScoringError(
            f"no column {', '.join(map(repr, missing))} to keep; the file's columns are {', '.join(names)}"
        )
    return tuple(dict.fromkeys(keep))


def _copied(
    copy: pd.DataFrame | pa.RecordBatch, kept: tuple[str, ...] | None
) -> pd.DataFrame | pa.RecordBatch:
    """The chunk's copy of the columns kept (all when ``kept`` is None)."""
    if kept is None:
        return copy
    return copy.select(list(kept)) if isinstance(copy, pa.RecordBatch) else copy[list(kept)]


def holds_parquet(path: Path) -> bool:
    """Whether an input file is Parquet: its name says so, or, named neither .parquet nor .csv, its
    first bytes are Parquet's magic number. Athena's UNLOAD and some Spark writers name their
    Parquet files with no suffix (``20261201_050012_00005_x9b2k_0d8e...``)."""
    if is_parquet(path):
        return True
    if path.suffix.lower() == ".csv":
        return False
    with path.open("rb") as handle:
        return handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC


def parts(source: Path) -> tuple[Path, ...]:
    """The files ``source`` names: itself, or a directory's parts in the order of their names."""
    if not source.is_dir():
        return (source,)
    found = tuple(
        sorted(path for path in source.iterdir() if path.is_file() and not path.name.startswith(("_", ".")))
    )
    if not found:
        raise ScoringError("is a directory with no file to score")
    kinds = {holds_parquet(path) for path in found}
    if len(kinds) > 1:
        raise ScoringError(
            "holds Parquet files and others; score a directory of one format "
            f"({', '.join(path.name for path in found[:4])}{', ...' if len(found) > 4 else ''})"
        )
    return found


def open_input(source: Path) -> InputFile:
    """The file or directory ``source`` as the chunks of one table, its parts checked alike."""
    found = parts(source)
    return ParquetInput(found) if holds_parquet(found[0]) else CsvFile(found)


def check_output(source: Path, output: Path) -> None:
    """Scores are written neither over the input nor where they would be read as one of its parts."""
    if source.resolve() == output.resolve():
        raise ScoringError(f"{output} is the input file; write the scores elsewhere")
    if source.is_dir() and output.resolve().is_relative_to(source.resolve()):
        raise ScoringError(f"{output} is inside the input directory; write the scores elsewhere")


@dataclass(frozen=True)
class CsvFile:
    """CSV files with one header, read laxly: their cells carry no types, so "42" is an age."""

    paths: tuple[Path, ...]

    def chunks(self, chunk_rows: int, fields: Sequence[str]) -> Iterator[Chunk]:
        """Each file read twice in step: typed, and every cell as written, as text.

        Copying the typed read would turn 10 into 10.0 where a column has a gap and drop an id's
        leading zeros. A file pandas cannot read is a ScoringError naming the line.
        """
        self._check_headers()
        for path in self.paths:
            with _naming(path, self.paths):
                yield from _csv_chunks(path, chunk_rows)

    def _check_headers(self) -> None:
        """Every part's columns are the first's: the output has one header."""
        if len(self.paths) == 1:
            return  # its header is read with its first chunk
        headers = [self.names(), *(_csv_header(path, self.paths) for path in self.paths[1:])]
        for path, header in zip(self.paths[1:], headers[1:], strict=True):
            if header != headers[0]:
                raise ScoringError(
                    f"{path.name} has the columns {header}, not those of {self.paths[0].name}: {headers[0]}"
                )

    def chunks_left(self, first: Chunk) -> float:
        """From the files' size and the first chunk's."""
        written: pd.DataFrame = first[1]
        # Each cell's bytes as written, and a comma or line end after each: the chunk's size but
        # for quotes. Bytes, not characters: a tweet's emoji is four of the file's bytes.
        cells = (cell for column in written for cell in written[column])
        chunk_bytes = sum(len(cell.encode("utf-8")) for cell in cells) + written.size
        size = sum(_text_bytes(path) for path in self.paths)
        return max(0.0, size - chunk_bytes) / max(chunk_bytes, 1)

    def names(self) -> list[str]:
        return list(self._header)

    @cached_property
    def _header(self) -> tuple[str, ...]:
        """The first part's header, read once: the run checks it and may copy it into a schema."""
        return tuple(_csv_header(self.paths[0], self.paths))

    def output_format(
        self,
        response: type[BaseModel],
        added: Mapping[str, Any],
        prefix: str,
        output: Path,
        kept: tuple[str, ...] | None = None,
    ) -> OutputFormat:
        if not writes_parquet(output, self):
            return csv_output(output, kept)
        text = pa.schema([(name, pa.string()) for name in (self.names() if kept is None else kept)])
        return ParquetOutput(with_added(text, response, added, prefix), kept)


def _text_bytes(path: Path) -> int:
    """A part's bytes as text: a gzip file's own count of them (its last four bytes, modulo 4 GiB:
    BigQuery's parts are 1 GB at most), else its size."""
    size = path.stat().st_size
    if path.suffix.lower() != GZIP_SUFFIX or size < GZIP_SMALLEST:
        return size
    with path.open("rb") as handle:
        handle.seek(-4, io.SEEK_END)
        return int.from_bytes(handle.read(4), "little")


#: A gzip file's header and trailer: no smaller file holds a size.
GZIP_SMALLEST = 18


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    with _csv_errors():
        typed = pd.read_csv(path, chunksize=chunk_rows, encoding=CSV_ENCODING)
        written = pd.read_csv(
            path, chunksize=chunk_rows, encoding=CSV_ENCODING, dtype=str, keep_default_na=False
        )
        with typed, written:
            yield from zip(typed, written, strict=True)


def _csv_header(path: Path, paths: Sequence[Path]) -> list[str]:
    with _naming(path, paths), _csv_errors():
        return [str(name) for name in pd.read_csv(path, nrows=0, encoding=CSV_ENCODING).columns]


#: utf-8-sig: a spreadsheet's export starts with a byte-order mark, which would otherwise become
#: part of the first column's name.
CSV_ENCODING = "utf-8-sig"


@contextmanager
def _csv_errors() -> Iterator[None]:
    """What pandas cannot read, as one ScoringError naming the line or the byte."""
    try:
        yield
    except pd.errors.ParserError as exc:
        raise ScoringError(f"not CSV as read: {exc}".strip()) from None
    except UnicodeDecodeError as exc:
        raise ScoringError(f"not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise ScoringError("is empty: not even a header") from None


@contextmanager
def _naming(path: Path, paths: Sequence[Path]) -> Iterator[None]:
    """A part's error names the part; a single file's is the file's (the command names it)."""
    try:
        yield
    except ScoringError as exc:
        if len(paths) == 1:
            raise
        raise ScoringError(f"{path.name}: {exc}") from None


@dataclass(frozen=True)
class CsvOutput:
    gzipped: bool = False
    #: The input columns copied, in this order (None: every one).
    kept: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return "csv.gz" if self.gzipped else "csv"

    def encode(self, copy: pd.DataFrame | pa.RecordBatch, scores: pd.DataFrame, first_row: int) -> str:
        """The rows as CSV text, with the header when they are the file's first."""
        copy = _copied(copy, self.kept)
        frame: pd.DataFrame = copy
        if isinstance(copy, pa.RecordBatch):
            # Arrow's own types in pandas: an integer column with a null stays integers (10, not 10.0).
            frame = copy.to_pandas(types_mapper=pd.ArrowDtype)
        rows = pd.concat([frame, scores.set_axis(frame.index)], axis=1)
        return rows.to_csv(header=first_row == 1, index=False)

    @contextmanager
    def writer(self, path: Path) -> Iterator[Callable[[str], object]]:
        # Encoded as they come: pandas formatted the rows, with its line ends, as to_csv writes them.
        with ExitStack() as stack:
            raw: io.BufferedIOBase = stack.enter_context(path.open("wb"))
            if self.gzipped:
                # No name nor time in the header: the same scores are the same bytes, run after run.
                raw = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0))
            yield lambda rows: raw.write(rows.encode("utf-8"))


@dataclass(frozen=True)
class ParquetInput:
    """Parquet files of one schema, read a chunk at a time; their footers count the rows."""

    paths: tuple[Path, ...]

    def open(self, path: Path) -> pq.ParquetFile:
        with _naming(path, self.paths):
            try:
                return pq.ParquetFile(path)
            except (pa.ArrowException, OSError) as exc:
                raise ScoringError(f"not Parquet as read: {exc}") from None

    @cached_property
    def _footers(self) -> list[tuple[pa.Schema, int]]:
        """Each part's schema and rows, read once (a part may be on a bucket mounted as a volume)."""
        footers = []
        for path in self.paths:
            with self.open(path) as parquet:
                footers.append((parquet.schema_arrow, int(parquet.metadata.num_rows)))
        return footers

    @cached_property
    def schema(self) -> pa.Schema:
        """The first part's schema, which every part must have (their metadata aside)."""
        schema: pa.Schema = self._footers[0][0]
        for path, (found, _) in zip(self.paths[1:], self._footers[1:], strict=True):
            if not found.equals(schema, check_metadata=False):
                raise ScoringError(
                    f"{path.name} has another schema than {self.paths[0].name}: "
                    f"{_schema_text(found)}, not {_schema_text(schema)}"
                )
        return schema

    def names(self) -> list[str]:
        return list(self.schema.names)

    def output_format(
        self,
        response: type[BaseModel],
        added: Mapping[str, Any],
        prefix: str,
        output: Path,
        kept: tuple[str, ...] | None = None,
    ) -> OutputFormat:
        copied = self.schema if kept is None else pa.schema([self.schema.field(name) for name in kept])
        if writes_parquet(output, self):
            return ParquetOutput(with_added(copied, response, added, prefix), kept)
        without_text = [field for field in copied if not _has_csv_text(field.type)]
        if without_text:
            field = without_text[0]
            raise ScoringError(
                f"column {field.name!r} is {field.type}, which a CSV cell cannot hold; "
                "write the scores as Parquet (--output NAME.parquet)"
            )
        return csv_output(output, kept)

    def chunks(self, chunk_rows: int, fields: Sequence[str]) -> Iterator[Chunk]:
        """Arrow's batches as they are (the copy), and their request fields as a frame."""
        names = self.schema.names
        present = [name for name in fields if name in names]
        for batch in _rebatched(self._batches(chunk_rows), chunk_rows):
            yield batch.select(present).to_pandas(), batch

    def _batches(self, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        for path in self.paths:
            with self.open(path) as parquet, _naming(path, self.paths):
                try:
                    yield from parquet.iter_batches(batch_size=chunk_rows)
                except pa.ArrowException as exc:
                    raise ScoringError(f"not Parquet as read: {exc}") from None

    def chunks_left(self, first: Chunk) -> float:
        rows = sum(rows for _, rows in self._footers)
        return max(0, rows - len(first[0])) / max(len(first[0]), 1)


def _has_csv_text(kind: pa.DataType) -> bool:
    """Whether a column's values print as CSV cells: not a list, struct or map, nor raw bytes."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    binary = pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)
    return not (pa.types.is_nested(kind) or binary)


def _schema_text(schema: pa.Schema) -> str:
    return ", ".join(f"{field.name} {field.type}" for field in schema)


def _rebatched(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of ``rows`` rows, the last fewer.

    Arrow's batches end where the file's row groups do: a file written 1,000 rows a group would
    otherwise be scored 1,000 rows a chunk, each paying a chunk's fixed cost.
    """
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            # One chunk per column (dictionaries unified), so a slice of it is one batch.
            table = pa.Table.from_batches(pending).combine_chunks()
            yield from table.slice(0, rows).to_batches()
            pending, held = table.slice(rows).to_batches(), held - rows
    if held:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


@dataclass(frozen=True)
class ParquetOutput:
    """The input's schema, then the added columns, typed (``added_schema``)."""

    schema: pa.Schema
    #: The input columns copied, in this order (None: every one).
    kept: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return "parquet"

    def encode(
        self, copy: pa.RecordBatch | pd.DataFrame, scores: pd.DataFrame, first_row: int
    ) -> pa.RecordBatch:
        copy = _copied(copy, self.kept)
        copied = copy.columns if isinstance(copy, pa.RecordBatch) else [_text(copy[name]) for name in copy]
        added = []
        for column in self.schema.names[len(copied) :]:
            kind = self.schema.field(column).type
            values = scores[column]
            try:
                # As Python values, gaps as None: a column of a chunk whose rows were all rejected
                # is pandas' NaN, which Arrow would not take as text.
                added.append(pa.array(values.astype(object).where(values.notna(), None), type=kind))
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise RuntimeError(f"rows from {first_row}: column {column} is not {kind}: {exc}") from exc
        return pa.RecordBatch.from_arrays([*copied, *added], schema=self.schema)

    @contextmanager
    def writer(self, path: Path) -> Iterator[Callable[[pa.RecordBatch], object]]:
        with pq.ParquetWriter(path, self.schema) as out:
            yield out.write_batch


def _text(cells: pd.Series[str]) -> pa.Array:
    """A CSV column's cells as Parquet text, an empty cell null (what an empty CSV cell means)."""
    return pa.array(cells.to_numpy(dtype=object), type=pa.string(), mask=(cells == "").to_numpy())


def with_added(
    schema: pa.Schema, response: type[BaseModel], added: Mapping[str, Any], prefix: str
) -> pa.Schema:
    """``schema`` (the input's columns) followed by the added columns, typed (``added_schema``)."""
    for name, kind in added_schema(response, added, prefix):
        schema = schema.append(pa.field(name, kind))
    return schema


def added_schema(
    response: type[BaseModel], example: Mapping[str, Any], prefix: str
) -> list[tuple[str, pa.DataType]]:
    """The added columns' Arrow types: from the response model where it types the field, else
    from the example answer's value, else text (an explanation or a list is written as JSON)."""
    typed = dict(_response_types(response))
    return [
        (f"{prefix}{name}", typed.get(name) or reason_type(name) or _value_type(value) or pa.string())
        for name, value in example.items()
    ]


def _response_types(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, pa.DataType | None]]:
    """Each field of the response as ``flatten`` names it (nested models as dotted names)."""
    for name, info in model.model_fields.items():
        annotation = _without_none(info.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _response_types(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", _annotation_type(annotation)


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def _annotation_type(annotation: Any) -> pa.DataType | None:
    if typing.get_origin(annotation) is Literal:
        kinds = {type(value) for value in typing.get_args(annotation)}
        return _value_type(typing.get_args(annotation)[0]) if len(kinds) == 1 else None
    return _PYTHON_TYPES.get(annotation)


_PYTHON_TYPES: dict[Any, pa.DataType] = {
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
}


def _value_type(value: Any) -> pa.DataType | None:
    return _PYTHON_TYPES.get(type(value))
