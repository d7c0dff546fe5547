"""An output of ``mlp score`` that appears whole or not at all.

A run that fails halfway must not leave a file that looks like its scores. The scores and the
summary are written beside their name and renamed once they are whole; what cannot be renamed
(standard output, a device, a pipe) is written straight through.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from servekit.scoring.files import Sink, Tally, is_standard_output, partial_name, replaced, streamed


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
