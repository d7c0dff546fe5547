"""What every format of ``mlp score`` shares: which format a file is, a table's parts, the checks
made before anything is read, and a text file written plain or gzip-compressed.

A directory is read as one table: every file under it, in the order of their paths, as a
warehouse or a Spark job writes a large table in parts (``part-00000.parquet``, ...; Hive-style
``dt=2026-11-01/part-0.parquet``). Every part must be of one format and have the same columns;
names beginning with ``_`` or ``.`` are not parts at any depth (Spark's ``_SUCCESS`` and
``_temporary/``, Hadoop's ``.crc`` files), as Hadoop and Arrow read such a directory. A
``key=value`` directory's key is a column (``Partitions``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import sys
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal
from urllib.parse import unquote

import pandas as pd

from servekit.csv_shape import repeated_name

#: A chunk of the file: typed, for validation, and as it is in the file, for the copy.
Chunk = tuple[pd.DataFrame | list[Any], Any]
Kind = Literal["csv", "parquet", "jsonl"]
#: Where a format writes: a file's path, or a stream already open (standard output).
Sink = Path | BinaryIO
#: ``--output -``: the scores streamed to standard output.
STANDARD_OUTPUT = "-"

PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_SUFFIX = ".gz"
CSV_SUFFIXES = (".csv", ".csv.gz")
#: JSON Lines: one JSON object per line (Vertex AI's batch prediction input, SageMaker Batch
#: Transform's ``application/jsonlines``, BigQuery's newline-delimited JSON export).
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
#: The first bytes of every Parquet file.
PARQUET_MAGIC = b"PAR1"
#: A gzip file's header and trailer: no smaller file holds a size.
GZIP_SMALLEST = 18
#: What reading a ``.gz`` file raises when it was cut short, or is not gzip at all.
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


class JsonText(str):
    """A cell holding a JSON document (an explanation, a list): text in CSV and Parquet, which
    have no type for it, and the document itself in JSON Lines."""

    __slots__ = ()


class ScoringError(ValueError):
    """The file cannot be scored at all (a column missing, one that would be overwritten)."""


def named_kind(path: Path) -> Kind | None:
    """The format a file's name says (None: it says none of them)."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    return None


def input_kind(path: Path) -> Kind:
    """An input file's format: as its name says, or, named none, Parquet when its first bytes are
    Parquet's magic number and CSV otherwise. Athena's UNLOAD and some Spark writers name their
    Parquet files with no suffix (``20261201_050012_00005_x9b2k_0d8e...``)."""
    named = named_kind(path)
    if named is not None:
        return named
    with path.open("rb") as handle:
        return "parquet" if handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC else "csv"


#: Names that promise a format ``mlp score`` does not write: such a file would hold CSV, Parquet
#: or JSON Lines under a name that says otherwise (``scores.json`` read as one JSON document,
#: ``scores.parquet.gz`` as gzip-compressed Parquet, ``scores.xlsx`` opened by a spreadsheet).
OTHER_FORMATS = (
    ".json",
    ".xlsx",
    ".xls",
    ".tsv",
    ".feather",
    ".arrow",
    ".orc",
    ".avro",
    ".xml",
    ".html",
    ".zip",
    ".bz2",
    ".xz",
    ".zst",
)
#: What an output may be named, for the message refusing another name.
OUTPUT_NAMES = ".csv, .csv.gz, .parquet, .pq, .jsonl, .ndjson, .jsonl.gz or .ndjson.gz"


def output_kind(output: Path, input_is: Kind) -> Kind:
    """The scores' format: as the output's name says, or, named none, the input's.

    A name that says another format (``output_name_problem``) is refused, as is a ``.gz`` name
    for Parquet scores: Parquet compresses its own pages, and is never gzipped whole."""
    problem = output_name_problem(output)
    if problem:
        raise ScoringError(f"{output}: {problem}")
    kind = named_kind(output) or input_is
    if kind == "parquet" and is_gzipped(output):
        raise ScoringError(
            f"{output}: Parquet scores (the input's format) are not gzip-compressed, Parquet compresses "
            f"its own pages; name the output {OUTPUT_NAMES}"
        )
    return kind


def output_name_problem(output: Path) -> str | None:
    """Why the output's name promises what ``mlp score`` would not write, or None. A suffix that
    names no format (``scores``, ``scores.out``) gets the input's format, as documented."""
    name = output.name.lower()
    if str(output) == STANDARD_OUTPUT or named_kind(output) is not None:
        return None
    inner = name.removesuffix(GZIP_SUFFIX)
    if inner.endswith(PARQUET_SUFFIXES):
        return f"Parquet is not gzip-compressed whole (it compresses its own pages); name it {inner!r}"
    said = next((suffix for suffix in OTHER_FORMATS if inner.endswith(suffix)), None)
    if said is None:
        return None
    return (
        f"{said} names a format mlp score does not write; name the output {OUTPUT_NAMES} (a name "
        "with none of these suffixes gets the input's format)"
    )


def is_gzipped(path: Path) -> bool:
    return path.suffix.lower() == GZIP_SUFFIX


def parts(source: Path) -> tuple[Path, ...]:
    """The files ``source`` names: itself, or every file under a directory, in the order of their
    paths within it. A part in a subdirectory is read too (a Hive-style export's ``dt=2026-11-01/``,
    a copy that kept its sub-prefixes), rather than left out unseen."""
    if not source.is_dir():
        return (source,)
    found = tuple(sorted(_files_under(source, set()), key=lambda path: path.relative_to(source).parts))
    if not found:
        raise ScoringError("is a directory with no file to score")
    _refuse_files_read_twice(found)
    kinds = {input_kind(path) for path in found}
    if len(kinds) > 1:
        names = [part_name(path, found) for path in found[:4]]
        raise ScoringError(
            f"holds files of more than one format ({', '.join(sorted(kinds))}); score a directory of one "
            f"format ({', '.join(names)}{', ...' if len(found) > 4 else ''})"
        )
    return found


def _files_under(directory: Path, entered: set[Path]) -> Iterator[Path]:
    """Its files and its subdirectories', but none whose name, or whose directory's, begins with
    ``_`` or ``.``: Spark's ``_SUCCESS``, Hadoop's ``.crc``, a ``_temporary/`` being written.

    A link to a directory already entered (``entered``, by real path) is refused: a link back up
    the tree had every file read once per turn of the loop, forty times, without a word."""
    entered.add(directory.resolve())
    for path in directory.iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if path.is_dir():
            if path.resolve() in entered:
                raise ScoringError(
                    f"{path} links to a directory already read ({path.resolve()}); its files would be "
                    "read twice"
                )
            yield from _files_under(path, entered)
        elif path.is_file():
            yield path


def _refuse_files_read_twice(found: Sequence[Path]) -> None:
    """Two names of one file (links) would score its rows twice."""
    first: dict[Path, Path] = {}
    for path in found:
        real = path.resolve()
        if real in first:
            raise ScoringError(
                f"{part_name(path, found)} and {part_name(first[real], found)} are one file "
                f"({real}); its rows would be scored twice"
            )
        first[real] = path


#: How Hive writes a partition whose value is null.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class Partitions:
    """The ``key=value`` directories a part lies in, below the directory scored: a Hive-style
    export's partition columns (Athena's ``UNLOAD ... partitioned_by``, Spark's ``partitionBy``),
    whose values are in the paths and not in the files. Each becomes a text column after the
    files' own, as Arrow and Spark read such a directory; a part outside a key's directories has
    null there."""

    keys: tuple[str, ...] = ()
    values: Mapping[Path, Mapping[str, str | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, source: Path, paths: Sequence[Path]) -> Partitions:
        if not source.is_dir():
            return cls()
        keys: dict[str, None] = {}
        values: dict[Path, dict[str, str | None]] = {}
        for path in paths:
            found = values[path] = {}
            for directory in path.relative_to(source).parent.parts:
                key, equals, value = directory.partition("=")
                if equals and key:
                    key = unquote(key)
                    if key in found:
                        raise ScoringError(
                            f"{path.relative_to(source).as_posix()} names the partition {key!r} twice; "
                            "which of its values is meant would be a guess"
                        )
                    found[key] = None if value == HIVE_NULL else unquote(value)
                    keys[key] = None
        return cls(tuple(keys), values)

    def of_part(self, path: Path) -> dict[str, str | None]:
        """Each key's value for the part at ``path`` (None: the part is in no such directory)."""
        found = self.values.get(path, {})
        return {key: found.get(key) for key in self.keys}

    def after(self, names: Sequence[str]) -> list[str]:
        """The files' columns, then the keys; a key that is also a column is refused."""
        both = [key for key in self.keys if key in names]
        if both:
            raise ScoringError(
                f"{both[0]!r} is both a column of the files and a partition directory ({both[0]}=...); "
                "score the directory below it, or export the table without the column"
            )
        return [*names, *self.keys]


def part_name(path: Path, paths: Sequence[Path]) -> str:
    """How an error names a part: its path within the directory the parts share."""
    if len(paths) == 1:
        return path.name
    return path.relative_to(os.path.commonpath(paths)).as_posix()


def check_named_once(names: Sequence[str]) -> None:
    """A column named twice is refused (``csv_shape.repeated_name``): Arrow keeps both."""
    problem = repeated_name(names)
    if problem:
        raise ScoringError(problem)


def is_standard_output(output: Path) -> bool:
    """``-``, or a name of the file standard output is (``/dev/stdout``, ``/proc/self/fd/1``, or
    the file it is redirected to): the scores go there, so nothing else may."""
    if str(output) == STANDARD_OUTPUT:
        return True
    try:
        return os.path.samestat(os.stat(output), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, io.UnsupportedOperation):  # no such file; stdout closed or replaced
        return False


def streamed(output: Path) -> bool:
    """Whether the scores are written straight into ``output``: standard output, or a file that
    is not a regular one, a link followed (``/dev/null``, a device, a pipe, ``/dev/stdout``).
    Written beside such a file and renamed, the run replaced the device node (as root,
    ``/dev/stdout`` itself) with a regular file, or failed for want of a right to write in
    ``/dev``. There the scores cannot appear whole or not at all: a run that fails halfway has
    written half."""
    if is_standard_output(output):
        return True
    try:
        return not stat.S_ISREG(os.stat(output).st_mode)
    except FileNotFoundError:  # a new file (or a link to one)
        return False


def replaced(output: Path) -> Path:
    """The regular file a run replaces: ``output``, or the file a link names (the link is kept)."""
    return Path(os.path.realpath(output))


def partial_name(path: Path) -> Path:
    """Where the file ``path`` is written before it is renamed to it: beside it, hidden."""
    return path.with_name(f".{path.name}.partial")


def writable_problem(output: Path, euid: int | None = None) -> str | None:
    """Why ``output`` cannot be written, found before a row is scored (found after, it was a
    traceback at the end of a run that had scored the whole file), or None.

    An existing file is replaced, not written into, so its directory's rights are what the run
    needs; but a file made read-only is not replaced (as ``rm`` asks first), by root neither, whom
    no mode stops: the same command is refused in a root container as in the Job, which is not
    root. ``euid``: the user the run is (this process's by default).
    """
    euid = os.geteuid() if euid is None else euid
    if str(output) == STANDARD_OUTPUT:
        return None
    try:
        mode = os.stat(output).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        return exc.strerror or str(exc)
    if mode is not None and stat.S_ISDIR(mode):
        return "is a directory; name the file to write"
    if streamed(output):
        return None if os.access(output, os.W_OK) else "not writable (permission denied)"
    target = replaced(output)
    if not target.parent.is_dir():
        return f"no directory {target.parent} to write it in"
    if mode is not None:
        problem = _replace_problem(target, euid)
        if problem:
            return problem
    # os.access says nothing of a read-only mount, and root may write anywhere it says: the
    # partial file the run writes first is created, and removed.
    partial = partial_name(target)
    try:
        partial.open("wb").close()
        partial.unlink()
    except OSError as exc:
        return f"cannot write in {target.parent} ({exc.strerror or exc})"
    return None


def _replace_problem(target: Path, euid: int) -> str | None:
    """Why the existing file ``target`` may not be replaced by this user, or None."""
    found = target.stat()
    if not found.st_mode & 0o222 or (euid != 0 and not os.access(target, os.W_OK, effective_ids=True)):
        return (
            f"read-only (mode {stat.S_IMODE(found.st_mode):04o}); make it writable (chmod u+w) to replace "
            "it, or name another output"
        )
    # In a sticky directory (/tmp) only a file's owner, the directory's, or root may rename over it:
    # the partial file is written, and the rename failed with EPERM once every row was scored.
    directory = target.parent.stat()
    if directory.st_mode & stat.S_ISVTX and euid not in (0, found.st_uid, directory.st_uid):
        return (
            f"owned by another user (uid {found.st_uid}) in {target.parent}, a sticky directory, where "
            "only its owner may replace it; remove it as its owner, or name another output"
        )
    return None


def check_output(source: Path, output: Path) -> None:
    """Scores are written neither over the input nor where they would be read as one of its parts,
    and into a directory that is there: found missing once the rows were scored, it was a
    traceback at the end of the run."""
    if not output.parent.is_dir():
        raise ScoringError(f"{output}: no directory {output.parent} to write the scores in")
    if source.resolve() == output.resolve():
        raise ScoringError(f"{output} is the input file; write the scores elsewhere")
    if source.is_dir() and output.resolve().is_relative_to(source.resolve()):
        raise ScoringError(f"{output} is inside the input directory; write the scores elsewhere")


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


def copied(copy: Any, kept: tuple[str, ...] | None) -> Any:
    """The chunk's copy of the columns kept (all when ``kept`` is None): a frame's columns, or a
    record batch's or JSON rows' ``select``."""
    if kept is None:
        return copy
    return copy[list(kept)] if isinstance(copy, pd.DataFrame) else copy.select(list(kept))


def text_bytes(path: Path) -> int:
    """A part's bytes as text: a gzip file's own count of them (its last four bytes, modulo 4 GiB:
    BigQuery's parts are 1 GB at most), else its size."""
    size = path.stat().st_size
    if not is_gzipped(path) or size < GZIP_SMALLEST:
        return size
    with path.open("rb") as handle:
        handle.seek(-4, io.SEEK_END)
        return int.from_bytes(handle.read(4), "little")


class Tally(io.RawIOBase):
    """A stream written through (standard output, a device, a pipe), its bytes counted and hashed
    as they go: what the summary says of a regular file reached so (``> scores.csv``), which a
    run cannot read back from a pipe and need not read back from a file."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self.stream = stream
        self.written = 0
        self.sha256 = hashlib.sha256()
        fd = stream.fileno()
        found = os.fstat(fd)
        #: A regular file this run writes from its start (empty when it began), else None.
        self.file = found if stat.S_ISREG(found.st_mode) and found.st_size == 0 else None
        self.name = _fd_name(fd)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = self.stream.write(data)
        self.sha256.update(data)
        self.written += len(memoryview(data).cast("B"))
        return written if written is not None else len(data)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def fingerprint(self) -> dict[str, Any] | None:
        """The file's path, size and sha256 as ``file_fingerprints`` gives them, where the file holds
        what this run wrote and nothing else; None for a pipe or a device, or a file that held
        other bytes first (``>>``) or got others meanwhile (``2>&1``)."""
        if self.file is None:
            return None
        self.stream.flush()
        if os.fstat(self.stream.fileno()).st_size != self.written:
            return None
        return {"path": self.name, "bytes": self.written, "sha256": self.sha256.hexdigest()}


def _fd_name(fd: int) -> str:
    """The name of the file open at ``fd`` (Linux says it), else the descriptor's."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}")).name
    except OSError:
        return f"/dev/fd/{fd}"


def parquet_stream_problem(stream: BinaryIO) -> str | None:
    """Why Parquet scores cannot be streamed into ``stream`` (standard output, a device), or None.

    A pipe is fine. Parquet's footer ends the file and its offsets count from the file's start, so
    a regular file that holds other bytes already (``>> scores.parquet``, ``1<> ...``) would not
    be Parquet; and a terminal is shown binary, as gzip refuses to write to one.
    """
    fd = stream.fileno()
    if os.isatty(fd):
        return "is a terminal: Parquet is binary; redirect it to a file or a pipe"
    found = os.fstat(fd)
    if stat.S_ISREG(found.st_mode) and found.st_size:
        return (
            f"is a file that holds {found.st_size:,} bytes already (>> or 1<>): Parquet's footer must end "
            "the file and its offsets count from its start; redirect with > or name the file with --output"
        )
    return None


@contextmanager
def written_bytes(path: Sink, gzipped: bool) -> Iterator[io.BufferedIOBase]:
    """``path`` opened for bytes (a stream: written as it is), gzip-compressed when asked, with
    no name nor time in the gzip header: the same scores are the same bytes, run after run."""
    with ExitStack() as stack:
        raw: io.BufferedIOBase = (
            stack.enter_context(path.open("wb")) if isinstance(path, Path) else path  # type: ignore[assignment]
        )
        if gzipped:
            raw = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0))
        yield raw


@contextmanager
def naming(path: Path, paths: Sequence[Path]) -> Iterator[None]:
    """A part's error names the part; a single file's is the file's (the command names it)."""
    try:
        yield
    except ScoringError as exc:
        if len(paths) == 1:
            raise
        raise ScoringError(f"{part_name(path, paths)}: {exc}") from None
