"""Chunk jobs for the scoring pool's tests.

A worker process imports a job by its module's name. Tests run under ``--import-mode=importlib``,
which a spawned process cannot import a test module by, so the jobs live here, beside ``toy``.
"""

from __future__ import annotations

import os

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
