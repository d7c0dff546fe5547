"""JSON Lines in and out of ``mlp score``: one JSON object per line.

It is the input of Vertex AI's batch prediction and of SageMaker Batch Transform
(``application/jsonlines``), and what BigQuery exports as newline-delimited JSON; ``.gz`` is
gzip-compressed both ways. An object's values keep their JSON types, so they are validated as
the API validates a request's, and copied into JSON Lines scores as they were.

The file's columns are every key of every object, in the order they first appear: an export
leaves out a null field, so the first line need not name them all. They are found by reading the
file once before scoring it (a fraction of the scoring's time). A line that is not a JSON object
is a rejected row, named by its line number, as a row that fails validation is; a blank line is
no row. A first line that is not an object means the file is not JSON Lines at all, and nothing
is scored.
"""

from __future__ import annotations

import base64
import decimal
import gzip
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import jiter
import orjson
import pandas as pd
import pyarrow as pa

from servekit.scoring.files import (
    GZIP_ERRORS,
    Chunk,
    Kind,
    Partitions,
    ScoringError,
    Sink,
    copied,
    is_gzipped,
    naming,
    part_name,
    text_bytes,
    written_bytes,
)
from servekit.scoring.parquet_files import typed_columns

#: A byte-order mark some editors write before the first line; no part of the JSON.
BYTE_ORDER_MARK = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class JsonRows:
    """A chunk's objects as read (the copy): each one's values for ``columns``, absent as None."""

    objects: list[dict[str, Any]]
    columns: tuple[str, ...]
    #: The chunk's bytes in the file, lines ends included (how far into the file it reaches).
    size: int = 0

    def select(self, columns: Sequence[str]) -> JsonRows:
        return JsonRows(self.objects, tuple(columns), self.size)

    def value_columns(self) -> dict[str, list[Any]]:
        """Each column's values as parsed, for JSON Lines, an absent value None."""
        return {name: [row.get(name) for row in self.objects] for name in self.columns}

    def text_columns(self) -> dict[str, list[str | None]]:
        """Each column's values as text, for CSV and Parquet: a string as itself, anything else
        as its JSON text (``true``, ``42``, ``{"a": 1}``), a null or absent value as None."""
        return {name: [_text(value) for value in values] for name, values in self.value_columns().items()}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class JsonLinesFile:
    """JSON Lines files, read a chunk of lines at a time."""

    paths: tuple[Path, ...]
    partitions: Partitions = field(default_factory=Partitions)
    kind: ClassVar[Kind] = "jsonl"

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return self.partitions.keys

    def names(self) -> list[str]:
        return list(self._keys)

    @cached_property
    def _keys(self) -> tuple[str, ...]:
        """Every object's keys, in the order they first appear, the whole file read once."""
        keys: dict[str, None] = {}
        first = True
        for path in self.paths:
            with naming(path, self.paths):
                for number, line in _lines(path):
                    try:  # orjson is the faster parser; a line's problem is named by the API's
                        parsed = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        parsed = None
                    if not isinstance(parsed, dict):
                        parsed = _parsed(number, line)
                    if first and isinstance(parsed, str):
                        raise ScoringError(f"is not JSON Lines: {parsed}")
                    first = False
                    if isinstance(parsed, dict):
                        keys.update(dict.fromkeys(parsed))
        if first:
            raise ScoringError("is empty: not one JSON object")
        return tuple(self.partitions.after(tuple(keys)))

    def copied_schema(self, kept: tuple[str, ...] | None) -> pa.Schema:
        """As Parquet, every value is text, as in a CSV file: a JSON value's type may change from
        line to line, and one chunk's guess could differ from the next's."""
        return pa.schema([(name, pa.string()) for name in (self.names() if kept is None else kept)])

    def check_csv(self, kept: tuple[str, ...] | None) -> None:
        """Every JSON value has a JSON text, which a CSV cell holds."""

    def notes(self, fields: Sequence[str]) -> list[str]:
        """A JSON value is read as the API reads it: nothing to tell."""
        return []

    def chunks(self, chunk_rows: int, fields: Sequence[str]) -> Iterator[Chunk]:
        """``chunk_rows`` objects at a time: their request fields (or, for a line that is no
        object, the problem), and the objects themselves for the copy."""
        columns = tuple(self.names())
        for path in self.paths:
            part = part_name(path, self.paths) if len(self.paths) > 1 else ""
            values = self.partitions.of_part(path)
            with naming(path, self.paths):
                lines = _lines(path)
                while block := list(islice(lines, chunk_rows)):
                    typed: list[dict[str, Any] | str] = []
                    objects = []
                    for number, line in block:
                        parsed = _parsed(number, line, part)
                        row = {**parsed, **values} if isinstance(parsed, dict) else dict(values)
                        objects.append(row)
                        typed.append(
                            parsed if isinstance(parsed, str) else {k: row[k] for k in fields if k in row}
                        )
                    size = sum(len(line) + 1 for _, line in block)
                    yield typed, JsonRows(objects, columns, size)

    def chunks_left(self, first: Chunk) -> float:
        """From the files' size and the first chunk's."""
        chunk_bytes: int = first[1].size
        size = sum(text_bytes(path) for path in self.paths)
        return max(0.0, size - chunk_bytes) / max(chunk_bytes, 1)


def _parsed(number: int, line: bytes, part: str = "") -> dict[str, Any] | str:
    """The line's object, or what is wrong with it, naming the line (and ``part``, the file's
    name in a directory of parts).

    Parsed as the API parses a body: a key given twice is refused rather than one value silently
    kept, and NaN and Infinity are read, for the request model to refuse by the field's name.
    """
    where = f"{part} line {number}" if part else f"line {number}"
    try:
        parsed = jiter.from_json(line, catch_duplicate_keys=True)
    except ValueError as exc:
        # The parser counts lines within the one it was given: the column is what locates it.
        problem = _WITHIN_LINE.sub("", str(exc))
        repeated = _REPEATED.match(problem)
        if repeated:
            return f"{where}: {repeated['key']!r} given more than once in one object; send each field once"
        return f"{where}: not JSON ({problem})"
    if not isinstance(parsed, dict):
        return f"{where}: a JSON {_JSON_TYPES.get(type(parsed), 'value')}, not an object"
    return parsed


_WITHIN_LINE = re.compile(r" line 1(?= column \d+$)")
_REPEATED = re.compile(r'Detected duplicate key "(?P<key>.*)" at column \d+$')
_JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Each non-blank line and its number from 1, gzip-decompressed when named ``.gz``."""
    with _opened(path) as handle:
        try:
            for number, read in enumerate(handle, 1):
                line = read.removeprefix(BYTE_ORDER_MARK) if number == 1 else read
                if line.strip():
                    yield number, line.rstrip(b"\r\n")
        except (OSError, *GZIP_ERRORS) as exc:  # a truncated or corrupt gzip file
            raise ScoringError(f"not gzip as read: {exc}") from None


@contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    with path.open("rb") as raw:
        if is_gzipped(path):
            with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
                yield unpacked  # type: ignore[misc]
        else:
            yield raw


@dataclass(frozen=True)
class JsonLinesOutput:
    """One object per row: the copied columns, then the added ones, typed (``added_schema``), an
    explanation or a list as the JSON document it is rather than its text."""

    added: pa.Schema
    gzipped: bool = False
    #: The input columns copied, in this order (None: every one).
    kept: tuple[str, ...] | None = None
    #: The added columns holding JSON documents (``JsonText``), written as the documents.
    documents: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return "jsonl.gz" if self.gzipped else "jsonl"

    def encode(self, copy: Any, scores: pd.DataFrame, first_row: int) -> bytearray:
        """The rows as lines of JSON, each object made as its line is written."""
        copy = copied(copy, self.kept)
        names: list[str]
        columns: list[list[Any]]
        if isinstance(copy, JsonRows):
            parsed = copy.value_columns()
            names, columns = list(parsed), list(parsed.values())
        elif isinstance(copy, pa.RecordBatch):
            names, columns = copy.schema.names, [column.to_pylist() for column in copy.columns]
        else:  # CSV text: an empty cell is a null, as in Parquet
            names = [str(name) for name in copy.columns]
            columns = [[None if cell == "" else cell for cell in copy[name].tolist()] for name in names]
        for name, column in zip(
            self.added.names, typed_columns(self.added, 0, scores, first_row), strict=True
        ):
            values = column.to_pylist()
            if name in self.documents:
                values = [None if value is None else orjson.Fragment(value.encode()) for value in values]
            names.append(name)
            columns.append(values)
        lines = bytearray()
        for row in zip(*columns, strict=True):
            # Appended one at a time: orjson's bytes keep the capacity they were written into
            # (about 4 KiB), so a chunk's lines held in a list took ten times their size.
            lines += orjson.dumps(dict(zip(names, row, strict=True)), default=_json_value, option=_LINE)
        return lines

    @contextmanager
    def writer(self, path: Sink) -> Iterator[Callable[[bytearray], object]]:
        with written_bytes(path, self.gzipped) as raw:
            yield raw.write


_LINE = orjson.OPT_APPEND_NEWLINE


def _json_value(value: Any) -> Any:
    """What JSON has no type for, as BigQuery's JSON export writes it: a decimal as text (every
    digit kept), bytes as base64."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} has no JSON form")
