"""Chunk jobs for the scoring pool's tests.

A worker process imports a job by its module's name. Tests run under ``--import-mode=importlib``,
which a spawned process cannot import a test module by, so the jobs live here, beside ``toy``.
"""

from __future__ import annotations

import os
import signal
import time

import pandas as pd

Chunk = tuple[pd.DataFrame, pd.DataFrame]


def rows_and_process(chunk: Chunk, first_row: int) -> tuple[int, int, int]:
    """Which rows the chunk was told it holds, how many it holds, and which process scored it."""
    return first_row, len(chunk[0]), os.getpid()


class FailsPastFirstChunk:
    """A job that fails in whichever process scores a chunk after the file's first."""

    def __call__(self, chunk: Chunk, first_row: int) -> int:
        if first_row > 1:
            raise ValueError(f"cannot score the chunk from row {first_row}")
        return len(chunk[0])


class DiesOnRow:
    """A job whose worker is killed (SIGKILL, as the kernel's OOM killer does) on the chunk that
    holds ``row``, and whose other workers hang in their chunk, deaf to SIGTERM (as the survivor of
    the run that hung was to the pool's): only SIGKILL ends them. The parent's chunks are scored."""

    def __init__(self, row: int) -> None:
        self.row = row
        self.parent = os.getpid()

    def __call__(self, chunk: Chunk, first_row: int) -> int:
        if os.getpid() != self.parent:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if first_row <= self.row < first_row + len(chunk[0]):
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(600)
        return len(chunk[0])


class OutOfMemoryPastFirstChunk:
    """A job that runs out of memory in whichever process scores a chunk after the file's first."""

    def __call__(self, chunk: Chunk, first_row: int) -> int:
        if first_row > 1:
            raise MemoryError("Unable to allocate 68.8 MiB for an array")
        return len(chunk[0])
