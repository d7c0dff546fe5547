"""A chunk job whose module holds a spawned worker at its start, as a model's imports do.

A worker imports the job's module before its initializer runs: that second or more is when a
Ctrl-C found a worker unprotected. Imported with ``HELD_JOBS_DIR`` set (by the parent once it
has imported it: a worker inherits it), this module says so (a file ``started-<pid>`` there) and
waits for a file ``release`` (a minute at most), so that a test can signal the workers while they
are starting, not guess when they are.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

Chunk = tuple[pd.DataFrame, pd.DataFrame]


def _held_at_start() -> None:
    place = os.environ.get("HELD_JOBS_DIR")
    if place is None:
        return
    (Path(place) / f"started-{os.getpid()}").touch()
    for _ in range(1200):
        if (Path(place) / "release").exists():
            return
        time.sleep(0.05)


_held_at_start()


def rows(chunk: Chunk, first_row: int) -> int:
    return len(chunk[0])
