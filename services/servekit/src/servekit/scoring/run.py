"""A file scored by ``mlp score``: its columns checked, then its chunks validated, scored and written.

What can be checked is checked before anything is written: the columns, the output, and the
model's own answer to its example, which fixes the added columns. The chunks are then scored
here or in worker processes (``servekit.scoring.pool``); a worker is sent a ``ChunkJob`` once
and finds it again by this module's path when it unpickles it.
"""

from __future__ import annotations

import decimal
import functools
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError

from servekit.datasets import named_near
from servekit.errors import rejection
from servekit.inference import run_model
from servekit.model import ServedModel
from servekit.scoring.cells import ERROR_COLUMN, VERSION_COLUMN, prediction_cells
from servekit.scoring.files import Tally, parquet_stream_problem
from servekit.scoring.fingerprints import file_states
from servekit.scoring.formats import (
    Chunk,
    OutputFormat,
    ScoringError,
    check_output,
    kept_columns,
    open_input,
    output_format,
)
from servekit.scoring.outputs import written_whole
from servekit.scoring.pool import ScoringPool
from servekit.scoring.progress import Progress
from servekit.scoring.summary import SHOWN_REJECTIONS, ScoreSummary
from servekit.spec import ServiceSpec
from servekit.training.splitting import to_records


def answer_cells(model: ServedModel, explain: bool, reasons: int = 0) -> dict[str, Any]:
    """The cells a prediction adds, from the model's own answer to its input example."""
    example = model.example()[:1]
    [cells] = prediction_cells(run_model(model, example, explain, reasons=reasons), reasons)
    return {**cells, VERSION_COLUMN: model.artifact.version, ERROR_COLUMN: None}


def check_columns(
    spec: ServiceSpec,
    columns: Sequence[str],
    added: Sequence[str],
    kept: Sequence[str] | None = None,
    prefix: str = "",
) -> None:
    """The request's required fields are columns, and no column copied has the name of one the
    prediction adds (``added``, each named with ``prefix`` already)."""
    fields = spec.request.model_fields
    missing = [name for name, info in fields.items() if info.is_required() and name not in columns]
    if missing:
        raise ScoringError(
            f"no column {', '.join(named_near(missing, columns, quote=True))}: "
            f"{spec.name} needs {', '.join(fields)} "
            "(the request fields; other columns are copied through)"
        )
    copied = columns if kept is None else kept
    clashing = [name for name in added if name in copied]
    if clashing:
        # The suggestion is a prefix that clashes with none of the columns copied, and not the one
        # given: "--prefix p_" clashing with a column p_fare was told to try --prefix predicted_
        # whatever it was, and a file holding predicted_value too was told to try predicted_.
        names = [name[len(prefix) :] for name in added]
        other = _free_prefix(names, copied, prefix)
        mend = (
            f"--prefix {prefix} names them so too; choose another prefix (e.g. --prefix {other})"
            if prefix
            else f"name the prediction's columns apart with --prefix (e.g. --prefix {other})"
        )
        raise ScoringError(
            f"column {', '.join(map(repr, clashing))} would be overwritten by the prediction's; {mend}"
        )


#: The prefixes ``check_columns`` suggests, the first that clashes with no column; then predicted2_, ...
SUGGESTED_PREFIXES = ("predicted_", "scored_", "model_")


def _free_prefix(names: Sequence[str], copied: Sequence[str], given: str) -> str:
    """A prefix, not ``given``, that names none of ``names`` as a column of ``copied``."""
    taken = set(copied)
    numbered = (f"predicted{number}_" for number in range(2, len(taken) + 3))
    for prefix in (*SUGGESTED_PREFIXES, *numbered):
        if prefix != given and not any(f"{prefix}{name}" in taken for name in names):
            return prefix
    raise AssertionError("unreachable: more prefixes are tried than there are columns")  # pragma: no cover


def validate_rows(
    spec: ServiceSpec,
    rows: pd.DataFrame | Sequence[Mapping[str, Any] | str],
    *,
    lax: bool = False,
    text: Collection[str] = (),
) -> tuple[list[int], list[dict[str, Any]], dict[int, str]]:
    """The positions and validated records of the rows the request model accepts, and why the rest
    not. ``rows``: a frame (its request fields are read), or each row's request fields (JSON
    Lines) or, for a row that has none, what is wrong with it.

    Validated as the API validates the same JSON values, with the request model's own config
    (strict: ``"42"`` is no age, ``true`` no 1), unless ``lax``: a CSV file's cells, which are
    text whatever they hold, read in pydantic's lax mode (``"42"`` is an age), every constraint
    still held. Before, every format was read laxly, so a Parquet text column or a JSON Lines
    string where the API wants a number was scored where the API answers 422. ``text``: the
    columns whose values are text whatever the file's types, a partition key's from its path
    (``Tenure=3/``), each read as a CSV cell is.
    """
    frame = isinstance(rows, pd.DataFrame)
    if isinstance(rows, pd.DataFrame):
        rows = to_records(rows[[name for name in spec.request.model_fields if name in rows.columns]])
    strict = False if lax else None  # None: the model's config says
    positions, records, problems = [], [], {}
    for position, record in enumerate(rows):
        if isinstance(record, str):
            problems[position] = record
            continue
        sent = record
        # A typed file's decimal or NumPy value, as the JSON value it is (a JSON Lines file's are).
        if frame and not lax and any(type(value) not in _JSON_SCALARS for value in record.values()):
            sent = {name: json_value(value) for name, value in record.items()}
        if text and not lax:
            sent = {**sent, **{k: from_text(spec.request, k, sent[k]) for k in text if k in sent}}
        try:
            instance = spec.request.model_validate(sent, strict=strict)
        except ValidationError as exc:
            problems[position] = rejection(exc)
            continue
        positions.append(position)
        records.append(instance.model_dump())
    return positions, records, problems


def from_text(request: type[BaseModel], name: str, value: Any) -> Any:
    """A text ``value`` of field ``name`` as a CSV cell is read (``"3"`` is a whole number); as it
    is when the field's type does not take it, for the request model to refuse, naming the field."""
    if not isinstance(value, str):
        return value
    reader = _text_reader(request, name)
    try:
        return value if reader is None else reader.validate_python(value, strict=False)
    except ValidationError:
        return value


@functools.lru_cache(maxsize=256)
def _text_reader(request: type[BaseModel], name: str) -> TypeAdapter[Any] | None:
    field = request.model_fields.get(name)
    return None if field is None or field.annotation is None else TypeAdapter(field.annotation)


#: The Python values a JSON document's scalars are (a JSON Lines file's values are no others).
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_value(value: Any) -> Any:
    """A typed file's value as the JSON value a client sends for it, validated as the API
    validates that: a decimal as the number it is (``42`` with no fraction digits, else a float:
    JSON's ``42.50``), a NumPy scalar as its Python value, in a list or an object too; any other
    value as it is (text stays text, a boolean a boolean)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value.is_finite() and value.as_tuple().exponent == 0 else float(value)
    if isinstance(value, np.generic):
        return json_value(value.item())
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: json_value(item) for key, item in value.items()}
    return value


def score_file(
    spec: ServiceSpec,
    model: ServedModel,
    source: Path,
    output: Path,
    *,
    explain: bool = False,
    prefix: str = "",
    chunk_rows: int = 10_000,
    workers: int = 1,
    keep: Sequence[str] | None = None,
    reasons: int = 0,
    progress: Callable[[str], None] | None = None,
) -> ScoreSummary:
    """Score ``source`` into ``output`` (see the module's doc); raises ScoringError before writing.

    ``keep`` names the input columns copied into the output (None: all of them), ``reasons`` adds
    each row's strongest inputs (``servekit.scoring.reasons``), and ``progress`` is given a line
    now and then on a long run (``servekit.scoring.progress``).
    """
    # From the start: reading a JSON Lines file's keys before it is scored is part of the run.
    start = time.perf_counter()
    before = file_states(source)  # before its header is read, which decides the output's columns
    reader = open_input(source)
    check_output(source, output)
    kept = kept_columns(reader.names(), keep)
    added = answer_cells(model, explain, reasons)
    writer = output_format(
        reader, response=spec.response, added=added, prefix=prefix, output=output, kept=kept
    )
    summary = ScoreSummary(prefix=prefix, output_format=writer.name)
    summary.notes = reader.notes(list(spec.request.model_fields))
    # A CSV file's cells are text whatever they hold, so they are read laxly; Parquet's and JSON
    # Lines' values have types, validated as the API validates the same JSON values.
    # A partition key's values are text from the paths, whatever the format: read as a CSV cell.
    job = ChunkJob(
        spec,
        model,
        tuple(added),
        explain,
        prefix,
        writer,
        reasons,
        lax=reader.kind == "csv",
        text=reader.partition_keys,
    )
    check_columns(spec, reader.names(), job.columns, kept, prefix)
    chunks = reader.chunks(chunk_rows, list(spec.request.model_fields))
    with written_whole(output) as partial:
        if isinstance(partial, Tally) and writer.name == "parquet":
            problem = parquet_stream_problem(partial.stream)
            if problem:
                raise ScoringError(f"--output {output}: {problem}")
        with (
            ScoringPool(job, workers, reader.chunks_left) as pool,
            writer.writer(partial) as write,
        ):
            tracker = Progress(progress) if progress else None
            for rows, counted in pool.scored(chunks):
                write(rows)
                summary.add(counted)
                if tracker:
                    tracker.update(summary.rows, pool.estimated_rows)
            summary.workers = pool.started
        if summary.rows == 0:
            raise ScoringError(f"{source} has no rows to score")
        after = file_states(source)
        changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
        if changed:
            raise ScoringError(
                f"{', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''} changed while the input was "
                "scored (added, removed or rewritten); its scores could mix two versions of it, so none "
                "are written"
            )
        if isinstance(partial, Tally):
            summary.streamed_file = partial.fingerprint()
    summary.seconds = time.perf_counter() - start
    return summary


@dataclass(frozen=True)
class ChunkJob:
    """A chunk scored and encoded as the output's rows, in whichever process runs it.

    Sent to each worker once, when it starts (``servekit.scoring.pool``).
    """

    spec: ServiceSpec
    model: ServedModel
    added: tuple[str, ...]
    explain: bool
    prefix: str
    output: OutputFormat
    reasons: int = 0
    #: The rows' values validated laxly (a CSV file's cells), else as the API validates JSON's.
    lax: bool = False
    #: Columns whose values are text whatever the format (``validate_rows``' ``text``).
    text: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """The added columns' names in the output."""
        return [f"{self.prefix}{name}" for name in self.added]

    def __call__(self, chunk: Chunk, first_row: int) -> tuple[Any, ScoreSummary]:
        """The chunk's rows as the output writes them, and its counts."""
        typed, copy = chunk
        scores, summary = score_chunk(
            self.spec,
            self.model,
            typed,
            first_row=first_row,
            added=self.added,
            explain=self.explain,
            reasons=self.reasons,
            lax=self.lax,
            text=self.text,
        )
        scores.columns = self.columns
        return self.output.encode(copy, scores, first_row), summary


def score_chunk(
    spec: ServiceSpec,
    model: ServedModel,
    chunk: pd.DataFrame | Sequence[Mapping[str, Any] | str],
    *,
    first_row: int,
    added: Sequence[str],
    explain: bool,
    reasons: int = 0,
    lax: bool = False,
    text: Collection[str] = (),
) -> tuple[pd.DataFrame, ScoreSummary]:
    """The chunk's added columns, a row each, and its counts; ``first_row`` numbers its rejections
    and ``lax`` and ``text`` are ``validate_rows``'."""
    summary = ScoreSummary()
    positions, records, problems = validate_rows(spec, chunk, lax=lax, text=text)
    cells: list[dict[str, Any]] = [{} for _ in range(len(chunk))]
    expected = set(added)
    if records:
        predictions = run_model(model, records, explain, reasons=reasons)
        for prediction in predictions:
            summary.count_outside(prediction)
        answered = prediction_cells(predictions, reasons)
        for position, answer in zip(positions, answered, strict=True):
            cells[position] = {**answer, VERSION_COLUMN: model.artifact.version}
            unexpected = cells[position].keys() - expected
            if unexpected:  # the model answered with fields its example's answer lacks
                raise RuntimeError(
                    f"row {first_row + position}: answer fields {sorted(unexpected)} not in {added}"
                )
    for position, problem in problems.items():
        cells[position] = {ERROR_COLUMN: problem}
        if len(summary.rejections) < SHOWN_REJECTIONS:
            summary.rejections.append(f"row {first_row + position}: {problem}")
    summary.rows = len(chunk)
    summary.scored = len(records)
    index = chunk.index if isinstance(chunk, pd.DataFrame) else None
    return pd.DataFrame(cells, columns=list(added), index=index), summary
