"""The files ``mlp score`` reads and writes: CSV, Parquet or JSON Lines, any one into any other.

Each format reads its file in chunks, each twice in step: typed, for validation, and as it is in
the file, for the copy into the output (so an id keeps its leading zeros in a CSV and its type in
a Parquet file). It writes a chunk's copy beside its scores, and foresees from its first chunk
how many chunks the file holds (``servekit.scoring.pool`` decides by it whether workers pay).
A directory is read as one table of parts (``servekit.scoring.files``).

The output's name says its format (``.parquet``, ``.pq``, ``.csv``, ``.jsonl`` or ``.ndjson``);
a name that says none gets the input's. Across formats the input's columns are copied as
faithfully as the output can hold them:

- into Parquet, a CSV file's cells as text (a CSV cell has no type, and a guess could drop an
  id's leading zeros), an empty cell as null; a JSON Lines file's values as their JSON text (a
  string as itself), a null as null;
- into CSV, a Parquet file's values as CSV text and a JSON Lines file's as their JSON text, a
  null as an empty cell; a nested or binary Parquet column has no CSV text and is refused before
  anything is read;
- into JSON Lines, a Parquet file's values as JSON (a decimal as text, bytes as base64), a CSV
  file's cells as strings, an empty cell as null.

The added columns are the same in every format, typed as in Parquet; an explanation or a list
is JSON text in CSV and Parquet and the JSON document itself in JSON Lines.

CSV and JSON Lines named ``.gz`` are gzip-compressed, read and written (BigQuery's ``EXPORT
DATA`` with ``compression = 'GZIP'``). Every input column is copied unless the run names those
it keeps (``kept_columns``), as the key that joins the scores back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from servekit.scoring.csv_files import CsvFile, CsvOutput
from servekit.scoring.files import (
    Chunk,
    JsonText,
    Kind,
    Partitions,
    ScoringError,
    Sink,
    check_output,
    input_kind,
    is_gzipped,
    kept_columns,
    output_kind,
    parts,
)
from servekit.scoring.jsonl_files import JsonLinesFile, JsonLinesOutput
from servekit.scoring.parquet_files import ParquetInput, ParquetOutput, added_schema, with_added

__all__ = [
    "Chunk",
    "CsvFile",
    "InputFile",
    "JsonLinesFile",
    "OutputFormat",
    "ParquetInput",
    "ScoringError",
    "added_schema",
    "check_output",
    "kept_columns",
    "open_input",
    "output_format",
]


class InputFile(Protocol):
    @property
    def kind(self) -> Kind:
        """The format it is in."""

    def chunks(self, chunk_rows: int, fields: Sequence[str]) -> Iterator[Chunk]:
        """The file's chunks; ``fields`` (the request's) are the columns the typed read needs."""

    def names(self) -> list[str]:
        """The file's columns, before a chunk is read: its first part's header, or its schema."""

    @property
    def partition_keys(self) -> tuple[str, ...]:
        """The columns whose values are in the parts' paths (``key=value`` directories), as text."""

    def chunks_left(self, first: Chunk) -> float:
        """About how many chunks the file holds past ``first``."""

    def copied_schema(self, kept: tuple[str, ...] | None) -> pa.Schema:
        """The Arrow schema of the columns copied (``kept``: those alone) into Parquet scores."""

    def check_csv(self, kept: tuple[str, ...] | None) -> None:
        """A ScoringError when a column copied has no CSV text."""

    def notes(self, fields: Sequence[str]) -> list[str]:
        """What the run should tell of how the request ``fields`` were read from the file."""


class OutputFormat(Protocol):
    """How a chunk's copy and scores are written: in the worker that scored it, and in the file."""

    @property
    def name(self) -> str:
        """The format as a run's summary names it: ``parquet``, ``csv``, ``csv.gz``, ``jsonl``..."""

    def encode(self, copy: Any, scores: pd.DataFrame, first_row: int) -> Any:
        """The chunk's rows as written (picklable: a worker hands them back)."""

    def writer(self, path: Sink) -> AbstractContextManager[Callable[[Any], object]]:
        """Writes the encoded chunks into ``path``, in the order given."""


def open_input(source: Path) -> InputFile:
    """The file or directory ``source`` as the chunks of one table, its parts checked alike."""
    found = parts(source)
    partitions = Partitions.of(source, found)
    kind = input_kind(found[0])
    if kind == "parquet":
        return ParquetInput(found, partitions)
    return JsonLinesFile(found, partitions) if kind == "jsonl" else CsvFile(found, partitions)


def _check_named(names: Sequence[str], kind: str) -> None:
    """Empty names are kept as the header wrote them (a CSV file pandas wrote with its index
    starts ``,RowNumber,...``), but Parquet and JSON Lines find a column by its name: one empty
    name is a column named "", a second would be read as the first (Arrow finds two matches, a
    JSON object keeps one key)."""
    empty = [number for number, name in enumerate(names, start=1) if name == ""]
    if len(empty) > 1:
        written = "Parquet" if kind == "parquet" else "JSON Lines"
        raise ScoringError(
            f"columns {', '.join(map(str, empty[:-1]))} and {empty[-1]} have no name, and {written} "
            "tells a column by its name; name them in the header, copy the others alone with --keep, "
            "or write CSV scores"
        )


def output_format(
    reader: InputFile,
    *,
    response: type[BaseModel],
    added: Mapping[str, Any],
    prefix: str,
    output: Path,
    kept: tuple[str, ...] | None = None,
) -> OutputFormat:
    """How the scores are written into ``output``: in the format its name says (``output_kind``),
    with ``added`` (an answer's cells) after the input's columns (``kept``: those alone, in that
    order; ``kept_columns`` checked them), each named with ``prefix``."""
    kind = output_kind(output, reader.kind)
    if kind != "csv":
        _check_named(reader.names() if kept is None else list(kept), kind)
    if kind == "parquet":
        return ParquetOutput(with_added(reader.copied_schema(kept), response, added, prefix), kept)
    if kind == "csv":
        reader.check_csv(kept)
        return CsvOutput(is_gzipped(output), kept)
    documents = frozenset(f"{prefix}{name}" for name, value in added.items() if isinstance(value, JsonText))
    return JsonLinesOutput(
        with_added(pa.schema([]), response, added, prefix), is_gzipped(output), kept, documents
    )
