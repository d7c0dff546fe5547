"""Capture logs opened: a file, gzipped or not, every file under a directory, or standard input."""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, cast

from servekit.replay.capture_lines import read_lines
from servekit.replay.capture_objects import Captured, CaptureLineError
from servekit.scoring.files import GZIP_ERRORS

GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def open_log(path: str) -> Iterator[IO[str]]:
    """A capture log file to read as text, through gzip when it is gzipped (see :func:`as_text`)."""
    # The file itself is closed here: a GzipFile given a file object leaves it open.
    with open(path, "rb") as raw, as_text(raw) as text:
        yield text


def as_text(raw: BinaryIO) -> IO[str]:
    """A capture log's bytes as text, through gzip when they are gzipped.

    Told by the first bytes, not a name: Firehose's S3 objects are gzipped without a ``.gz``.
    Several gzip members one after another (Firehose's record batches) read as one stream. The
    first bytes are peeked, not read, so a pipe (``<(...)``, a FIFO, standard input) loses none.
    """
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
    stream: BinaryIO = buffered
    if buffered.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC:
        stream = cast(BinaryIO, gzip.GzipFile(fileobj=buffered))
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace")


def log_files(path: Path) -> list[Path]:
    """The files a capture log is: ``path`` itself, or every file under a directory, in path order.

    A directory is how the log stores deliver: Cloud Logging's sink to Cloud Storage writes an
    object per log and hour (``stderr/2026/12/04/03:00:00_03:59:59_S0.json``), Firehose one per
    buffer (``2026/12/04/03/<stream>-…``), and a job copies a window of them into one directory.
    Path order is time order in both layouts. Hidden files (a copy tool's partial ``.file``) are
    not read.
    """
    if not path.is_dir():
        return [path]
    return sorted(
        (
            f
            for f in path.rglob("*")
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
        ),
        key=lambda f: f.relative_to(path).parts,
    )


def read_log(path: str, stdin: IO[str] | None = None) -> Iterator[Captured]:
    """The captures in a log (``-``: ``stdin``): a file, or every file under a directory.

    A line that cannot be read raises :class:`CaptureLineError` naming its line and, in a
    directory, the file it is in.
    """
    if path == "-":
        yield from _read_stream(stdin if stdin is not None else _standard_input())
        return
    root = Path(path)
    for file in log_files(root):
        with open_log(str(file)) as lines:
            try:
                yield from _read_stream(lines)
            except CaptureLineError as exc:
                if file == root:
                    raise
                raise CaptureLineError(f"{file.relative_to(root)}: {exc}") from None


def _standard_input() -> IO[str]:
    """Standard input as text, through gzip when it is gzipped; a text stream put in its place
    (one without bytes beneath it, as an embedding program's) as it is."""
    binary = getattr(sys.stdin, "buffer", None)
    return sys.stdin if binary is None else as_text(binary)


def _read_stream(lines: IO[str]) -> Iterator[Captured]:
    try:
        yield from read_lines(lines)
    except GZIP_ERRORS as exc:  # a partial download of a gzipped object, or a false .gz
        raise CaptureLineError(f"not gzip as read: {exc}") from None
