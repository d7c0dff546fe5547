"""Parquet in and out of ``mlp score``, and the Arrow types of the columns a run adds.

Parquet is what a warehouse exports (BigQuery's ``EXPORT DATA``, Athena's ``UNLOAD``, a Spark
job's output): its columns keep their types, so nothing is guessed from text, and its footer
counts the rows, so the share of the file done is counted rather than estimated. Parquet scores
are written one row group per chunk, with the input's columns and schema as they are and the
answer's fields typed from the service's response model.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from servekit.scoring.files import (
    Chunk,
    Kind,
    Partitions,
    ScoringError,
    Sink,
    check_named_once,
    copied,
    naming,
    part_name,
)
from servekit.scoring.reasons import reason_type


@dataclass(frozen=True)
class ParquetInput:
    """Parquet files of one schema, read a chunk at a time; their footers count the rows."""

    paths: tuple[Path, ...]
    partitions: Partitions = field(default_factory=Partitions)
    kind: ClassVar[Kind] = "parquet"

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return self.partitions.keys

    def open(self, path: Path) -> pq.ParquetFile:
        with naming(path, self.paths):
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
        """The files' schema, then the partition keys' columns, as text."""
        names = self.partitions.after(self.file_schema.names)
        return pa.schema([*self.file_schema, *((key, pa.string()) for key in names[len(self.file_schema) :])])

    @cached_property
    def file_schema(self) -> pa.Schema:
        """The first part's schema, which every part must have (their metadata aside)."""
        schema: pa.Schema = self._footers[0][0]
        with naming(self.paths[0], self.paths):
            check_named_once(schema.names)
        for path, (found, _) in zip(self.paths[1:], self._footers[1:], strict=True):
            if not found.equals(schema, check_metadata=False):
                raise ScoringError(
                    f"{part_name(path, self.paths)} has another schema than "
                    f"{part_name(self.paths[0], self.paths)}: "
                    f"{_schema_text(found)}, not {_schema_text(schema)}"
                )
        return schema

    def names(self) -> list[str]:
        return list(self.schema.names)

    def copied_schema(self, kept: tuple[str, ...] | None) -> pa.Schema:
        """The input's own schema, of the columns kept."""
        return self.schema if kept is None else pa.schema([self.schema.field(name) for name in kept])

    def notes(self, fields: Sequence[str]) -> list[str]:
        """A request field that is a time with a zone: sent as instants, which the service reads as
        it reads an offset. A table may store local times labelled UTC (a city's records loaded
        into a warehouse), which only its owner knows: said once, rather than guessed."""
        zoned = [
            (name, kind.tz)
            for name, kind in zip(self.schema.names, self.schema.types, strict=True)
            if name in fields and pa.types.is_timestamp(kind) and kind.tz
        ]
        return [
            f"{name} is a TIMESTAMP in {zone}: each value was sent as the instant it is (ISO 8601 with "
            "its offset) and read as the API reads an offset; a table storing local times labelled "
            f"{zone} must send them without the zone (a DATETIME) instead"
            for name, zone in zoned
        ]

    def check_csv(self, kept: tuple[str, ...] | None) -> None:
        """A nested or binary column has no CSV text: refused before anything is read."""
        without_text = [field for field in self.copied_schema(kept) if not _has_csv_text(field.type)]
        if without_text:
            field = without_text[0]
            raise ScoringError(
                f"column {field.name!r} is {field.type}, which a CSV cell cannot hold; "
                "write the scores as Parquet (--output NAME.parquet) or JSON Lines (NAME.jsonl)"
            )

    def chunks(self, chunk_rows: int, fields: Sequence[str]) -> Iterator[Chunk]:
        """Arrow's batches as they are (the copy), and their request fields as a frame."""
        names = self.schema.names
        present = [name for name in fields if name in names]
        for batch in _rebatched(self._batches(chunk_rows), chunk_rows):
            yield _times_as_text(batch.select(present)).to_pandas(), batch

    def _batches(self, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        for path in self.paths:
            values = self.partitions.of_part(path)
            with self.open(path) as parquet, naming(path, self.paths):
                try:
                    for batch in parquet.iter_batches(batch_size=chunk_rows):
                        yield _with_values(batch, values)
                except pa.ArrowException as exc:
                    raise ScoringError(f"not Parquet as read: {exc}") from None

    def chunks_left(self, first: Chunk) -> float:
        rows = sum(rows for _, rows in self._footers)
        return max(0, rows - len(first[0])) / max(len(first[0]), 1)


def _times_as_text(fields: pa.RecordBatch) -> pa.RecordBatch:
    """A time or a date in a request field as the ISO 8601 text a JSON client sends, and the JSON
    Lines output writes (``2013-03-07T19:15:00``, with its offset when the column has a time
    zone). The request model reads JSON, which has no time type: a warehouse's TIMESTAMP column
    (ChicagoTaxi's ``trip_start_timestamp``) was refused on every row."""
    if not any(pa.types.is_timestamp(kind) or pa.types.is_date(kind) for kind in fields.schema.types):
        return fields
    columns = [
        pa.array([None if value is None else value.isoformat() for value in column.to_pylist()], pa.string())
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)
        else column
        for column in fields.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=fields.schema.names)


def _with_values(batch: pa.RecordBatch, values: Mapping[str, str | None]) -> pa.RecordBatch:
    """The batch with a text column per partition key, its value on every row."""
    for key, value in values.items():
        batch = batch.append_column(key, pa.repeat(pa.scalar(value, pa.string()), batch.num_rows))
    return batch


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

    def encode(self, copy: Any, scores: pd.DataFrame, first_row: int) -> pa.RecordBatch:
        copy = copied(copy, self.kept)
        columns: list[pa.Array]
        if isinstance(copy, pa.RecordBatch):
            columns = copy.columns
        elif isinstance(copy, pd.DataFrame):
            columns = [_text(copy[name]) for name in copy]
        else:  # JSON rows: each value as its JSON text (a string as itself), a null as null
            columns = [pa.array(cells, type=pa.string()) for cells in copy.text_columns().values()]
        added = typed_columns(self.schema, len(columns), scores, first_row)
        return pa.RecordBatch.from_arrays([*columns, *added], schema=self.schema)

    @contextmanager
    def writer(self, path: Sink) -> Iterator[Callable[[pa.RecordBatch], object]]:
        with pq.ParquetWriter(path, self.schema) as out:
            yield out.write_batch


def typed_columns(schema: pa.Schema, start: int, scores: pd.DataFrame, first_row: int) -> list[pa.Array]:
    """The added columns (``schema``'s from ``start``) of ``scores`` as their Arrow types: a whole
    number a gap made a float (a chunk's rejected row) is an integer again."""
    added = []
    for column in schema.names[start:]:
        kind = schema.field(column).type
        values = scores[column]
        try:
            # As Python values, gaps as None: a column of a chunk whose rows were all rejected
            # is pandas' NaN, which Arrow would not take as text.
            added.append(pa.array(values.astype(object).where(values.notna(), None), type=kind))
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise RuntimeError(f"rows from {first_row}: column {column} is not {kind}: {exc}") from exc
    return added


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
