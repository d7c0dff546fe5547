"""``mlp score``: a CSV, Parquet or JSON Lines file (or a directory of parts) scored offline, row for row.

The monthly run over every customer does not belong on the online service: it would compete
with live traffic and go through HTTP for nothing. This is SageMaker's Batch Transform and
Vertex AI's batch prediction for a file on hand, with the service's own validation and model:

* Every input row is in the output, in order, with all its columns (so an id such as
  ``CustomerId`` joins the scores back), then the prediction's fields, ``model_version``, and
  ``error``. A row the request model rejects keeps its place, with no prediction and the
  field and problem in ``error``: nothing is dropped unseen.
* CSV cells carry no types, so rows are validated in pydantic's lax mode ("42" is an age);
  every constraint of the API still holds (ranges, categories, no NaN). A Parquet file's
  columns are typed, and so are a JSON Lines file's values. The scores are written as the
  output's name says, Parquet, CSV or JSON Lines, whatever the input (``servekit.scoring.formats``).
* The file is read and written in chunks, so its size is bounded by the disk, not the memory,
  and the output appears only once it is whole (written beside it, then renamed; a link's file
  is replaced, the link kept). Standard output (``-``), a device or a pipe is written straight
  through as the rows are scored (``written_whole``).
* ``explain`` adds the explanation of each row as JSON, exactly the API's.
* A large file's chunks past the first are scored by ``workers`` processes, a few at a time,
  and written in order (``servekit.scoring.pool``): the output is the same, byte for byte, as
  scored in one process, and a file scored sooner than the workers start never waits for them.
* A tree model's answers list the inputs outside the range of its training rows
  (``outside_training``, as JSON); the summary counts those rows per field.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from servekit.errors import rejection
from servekit.inference import encode_json, run_model
from servekit.model import EXPLANATION_FIELD, OUTSIDE_TRAINING, ServedModel
from servekit.reasons import REASONS_FIELD
from servekit.scoring.files import (
    JsonText,
    Sink,
    Tally,
    is_standard_output,
    parquet_stream_problem,
    part_name,
    partial_name,
    parts,
    replaced,
    streamed,
)
from servekit.scoring.formats import (
    Chunk,
    OutputFormat,
    ScoringError,
    check_output,
    kept_columns,
    open_input,
    output_format,
)
from servekit.scoring.pool import ScoringPool
from servekit.scoring.progress import Progress
from servekit.scoring.reasons import reason_cells
from servekit.spec import ServiceSpec
from servekit.training.fingerprint import sha256_of_file
from servekit.training.splitting import to_records

VERSION_COLUMN = "model_version"
ERROR_COLUMN = "error"
#: Rejected rows named in the summary; the output's ``error`` column has every one.
SHOWN_REJECTIONS = 5


@dataclass
class ScoreSummary:
    rows: int = 0
    scored: int = 0
    rejections: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: ``--prefix``: what the added columns' names begin with.
    prefix: str = ""
    #: Scored rows with an input outside the training range, and how many of them per field.
    outside: int = 0
    outside_by_field: Counter[str] = field(default_factory=Counter)
    #: Processes that scored chunks beside this one (0: all of them scored here).
    workers: int = 0
    #: The output's format (``OutputFormat.name``).
    output_format: str = ""
    #: How the file's request fields were read, where the run should say (``InputFile.notes``).
    notes: list[str] = field(default_factory=list)
    #: A streamed output's file, where it is a regular file holding the scores alone (``Tally``).
    streamed_file: dict[str, Any] | None = None

    @property
    def rejected(self) -> int:
        return self.rows - self.scored

    @property
    def error_column(self) -> str:
        return f"{self.prefix}{ERROR_COLUMN}"

    @property
    def outside_column(self) -> str:
        return f"{self.prefix}{OUTSIDE_TRAINING}"

    def render(self, model: ServedModel, output: Path) -> str:
        artifact = model.artifact
        rate = self.rows / self.seconds if self.seconds else 0.0
        by = f" by {self.workers} worker processes" if self.workers else ""
        lines = [
            f"{artifact.name} v{artifact.version}: scored {self.scored:,} of {self.rows:,} rows in "
            f"{self.seconds:.2f} s ({rate:,.0f} rows/s{by}) into {output}"
        ]
        if self.rejected:
            lines.append(
                f"{self.rejected:,} rows rejected, each with its problem in the {self.error_column} column:"
            )
            lines.extend(f"  {r}" for r in self.rejections[:SHOWN_REJECTIONS])
            if self.rejected > SHOWN_REJECTIONS:
                lines.append(f"  … and {self.rejected - SHOWN_REJECTIONS:,} more")
        if self.outside:
            fields = ", ".join(f"{name} {count:,}" for name, count in self.outside_by_field.most_common())
            lines.append(
                f"{self.outside:,} scored rows had an input outside the range of the version's training "
                f"rows ({fields}), where its trees answer as at the edge; the {self.outside_column} "
                "column lists them"
            )
        lines.extend(self.notes)
        return "\n".join(lines)

    def as_json(self, model: ServedModel, source: Path, output: Path) -> dict[str, Any]:
        """What a run did, for whoever reads its scores (``mlp score --summary``): the registry
        version that scored them (a run's id as well as the version number, which an alias does
        not fix), the rows, the first rejections, the inputs outside the training range, the time."""
        artifact = model.artifact
        return {
            "service": artifact.name,
            "model": {
                "name": artifact.name,
                "version": artifact.version,
                "run_id": artifact.run_id,
                "uri": artifact.uri,
            },
            "input": str(source),
            "input_files": file_fingerprints(source),
            "output": str(output),
            # Streamed: hashed as written where it went into a regular file from its start, and
            # null for a pipe, a device, or a file that holds other bytes too (>>, 2>&1).
            "output_file": self.streamed_file if streamed(output) else file_fingerprints(output)[0],
            "output_format": self.output_format,
            "rows": self.rows,
            "scored": self.scored,
            "rejected": self.rejected,
            "first_rejections": self.rejections[:SHOWN_REJECTIONS],
            "outside_training": {"rows": self.outside, "by_field": dict(self.outside_by_field.most_common())},
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds else None,
            "workers": self.workers,
            "notes": self.notes,
        }

    def count_outside(self, prediction: Mapping[str, Any]) -> None:
        found = prediction.get(OUTSIDE_TRAINING)
        if found:
            self.outside += 1
            self.outside_by_field.update({item["field"] for item in found})

    def add(self, chunk: ScoreSummary) -> None:
        """Count in the next chunk's summary (chunks are added in the file's order)."""
        self.rows += chunk.rows
        self.scored += chunk.scored
        self.rejections.extend(chunk.rejections[: max(0, SHOWN_REJECTIONS - len(self.rejections))])
        self.outside += chunk.outside
        self.outside_by_field.update(chunk.outside_by_field)


def file_states(path: Path) -> dict[str, tuple[int, int] | None]:
    """Each file of ``path`` by its path within it, with its size and time of change: compared
    before and after a run, they tell a file copied or rewritten while it was read."""
    files = parts(path) if path.exists() else ()
    return {part_name(file, files): _state(file) for file in files}


def _state(file: Path) -> tuple[int, int] | None:
    try:
        found = file.stat()
    except FileNotFoundError:  # removed since the directory was listed
        return None
    return found.st_size, found.st_mtime_ns


def file_fingerprints(path: Path) -> list[dict[str, Any]]:
    """Each file of ``path`` (itself, or a directory's parts) by its path within it, size and
    sha256, as training records its data: with the version and run, what ties a scores file to
    the exact input it was made from, for an auditor who holds both."""
    files = parts(path)
    return [
        {"path": part_name(file, files), "bytes": file.stat().st_size, "sha256": sha256_of_file(file)}
        for file in files
    ]


@contextmanager
def written_whole(path: Path) -> Iterator[Sink]:
    """Where to write ``path``: a file beside it (``.<name>.partial``), renamed to it if the block
    ends well and removed either way, so that ``path`` appears whole or not at all.

    A link is followed: the file it names is replaced, and the link kept. Standard output (``-``,
    ``/dev/stdout``), a device or a pipe is written straight through (``files.streamed``): a
    device node is never replaced, and what a run that fails has written there stays written.
    """
    if is_standard_output(path):
        sys.stdout.flush()
        # A duplicate of the descriptor: its offset and O_APPEND are the shell's redirection's.
        with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as stream:
            yield Tally(stream)  # type: ignore[misc]  # a RawIOBase, written as a BinaryIO
        return
    if streamed(path):
        # Opened here, not by name in Arrow, which seeks in the file it opens: a pipe cannot.
        with path.open("wb") as stream:
            yield Tally(stream)  # type: ignore[misc]  # a RawIOBase, written as a BinaryIO
        return
    target = replaced(path)
    partial = partial_name(target)
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_summary(path: Path, summary: Mapping[str, Any]) -> None:
    """A run's summary as JSON, appearing whole or not at all, as the scores do."""
    text = (json.dumps(summary, indent=2) + "\n").encode()
    with written_whole(path) as sink:
        if isinstance(sink, Path):
            sink.write_bytes(text)
        else:
            sink.write(text)


def flatten(prediction: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A prediction as cells: nested objects as dotted columns, the explanation and lists as JSON
    documents (``JsonText``)."""
    cells: dict[str, Any] = {}
    for key, value in prediction.items():
        name = f"{prefix}{key}"
        if key == EXPLANATION_FIELD and not prefix:
            cells[name] = JsonText(encode_json(value).decode())
        elif isinstance(value, dict):  # an answer is JSON-ready; Mapping's ABC check costs 5 times as much
            cells.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            cells[name] = JsonText(encode_json(value).decode())
        else:
            cells[name] = value
    return cells


def answer_cells(model: ServedModel, explain: bool, reasons: int = 0) -> dict[str, Any]:
    """The cells a prediction adds, from the model's own answer to its input example."""
    example = model.example()[:1]
    [cells] = prediction_cells(run_model(model, example, explain, reasons=reasons), reasons)
    return {**cells, VERSION_COLUMN: model.artifact.version, ERROR_COLUMN: None}


def prediction_cells(predictions: Sequence[dict[str, Any]], reasons: int) -> list[dict[str, Any]]:
    """Each answer's cells (``flatten``), then ``reasons`` ranks of its principal reasons as
    columns (``reason_cells``)."""
    rows = []
    for prediction in predictions:
        given = prediction.pop(REASONS_FIELD, [])
        cells = flatten(prediction)
        if reasons:
            cells.update(reason_cells(given, reasons))
        rows.append(cells)
    return rows


def check_columns(
    spec: ServiceSpec, columns: Sequence[str], added: Sequence[str], kept: Sequence[str] | None = None
) -> None:
    fields = spec.request.model_fields
    missing = [name for name, info in fields.items() if info.is_required() and name not in columns]
    if missing:
        raise ScoringError(
            f"no column {', '.join(map(repr, missing))}: {spec.name} needs {', '.join(fields)} "
            "(the request fields; other columns are copied through)"
        )
    copied = columns if kept is None else kept
    clashing = [name for name in added if name in copied]
    if clashing:
        raise ScoringError(
            f"column {', '.join(map(repr, clashing))} would be overwritten by the prediction's; "
            "name the prediction's columns apart with --prefix (e.g. --prefix predicted_)"
        )


def validate_rows(
    spec: ServiceSpec, rows: pd.DataFrame | Sequence[Mapping[str, Any] | str]
) -> tuple[list[int], list[dict[str, Any]], dict[int, str]]:
    """The positions and validated records of the rows the request model accepts, and why the rest
    not. ``rows``: a frame (its request fields are read), or each row's request fields (JSON
    Lines) or, for a row that has none, what is wrong with it."""
    if isinstance(rows, pd.DataFrame):
        rows = to_records(rows[[name for name in spec.request.model_fields if name in rows.columns]])
    positions, records, problems = [], [], {}
    for position, record in enumerate(rows):
        if isinstance(record, str):
            problems[position] = record
            continue
        try:
            instance = spec.request.model_validate(record, strict=False)
        except ValidationError as exc:
            problems[position] = rejection(exc)
            continue
        positions.append(position)
        records.append(instance.model_dump())
    return positions, records, problems


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
    job = ChunkJob(spec, model, tuple(added), explain, prefix, writer, reasons)
    check_columns(spec, reader.names(), job.columns, kept)
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
) -> tuple[pd.DataFrame, ScoreSummary]:
    """The chunk's added columns, a row each, and its counts; ``first_row`` numbers its rejections."""
    summary = ScoreSummary()
    positions, records, problems = validate_rows(spec, chunk)
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
