"""The truth file: what happened to the answers, named by request id and instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servekit.datasets import DatasetError, missing_columns, read_csv, refuse_lines, rows_of
from servekit.training.recipe import TrainingRecipe

REQUEST_COLUMN = "request_id"
INSTANCE_COLUMN = "instance"

Key = tuple[str, int]


def read_truth(path: Path | str, recipe: TrainingRecipe) -> dict[Key, Any]:
    """The truth file as ``{(request id, instance): truth}``; a bad file raises ``DatasetError``.

    A CSV file with ``request_id``, the recipe's target column and, for the instances of batch
    requests, ``instance`` (0 when absent: a single prediction). Every cell is read as written:
    no value is guessed missing, so a request id ``NA`` is an id.
    """
    frame = read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in (REQUEST_COLUMN, recipe.target) if c not in frame.columns]
    if missing:
        raise DatasetError(missing_columns(missing, frame.columns))
    if frame.empty:
        raise DatasetError("no rows")
    # Lines named where each row starts in the file, across quoted line ends (a note with a newline).
    with rows_of(path):
        return _truths(frame, recipe)


def _truths(frame: pd.DataFrame, recipe: TrainingRecipe) -> dict[Key, Any]:
    requests = frame[REQUEST_COLUMN].str.strip()
    refuse_lines(REQUEST_COLUMN, frame[REQUEST_COLUMN], requests == "", "every row must name its request")
    if INSTANCE_COLUMN in frame.columns:
        text = frame[INSTANCE_COLUMN].str.strip()
        refuse_lines(
            INSTANCE_COLUMN, frame[INSTANCE_COLUMN], ~text.str.fullmatch(r"\d{1,9}"), "must be 0, 1, 2, ..."
        )
        instances = text.astype(np.int64).to_numpy()
    else:
        instances = np.zeros(len(frame), dtype=np.int64)
    keys = list(zip(requests, (int(i) for i in instances), strict=True))
    twice = pd.Series(keys).duplicated(keep=False).to_numpy()
    refuse_lines(REQUEST_COLUMN, frame[REQUEST_COLUMN], twice, "an answer has two truth rows")
    truths = recipe.truth(frame[recipe.target])
    # As Python values: a 0 or 1 is then the interpreter's one shared object, not a numpy scalar
    # of 32 bytes per row.
    values = truths.tolist() if hasattr(truths, "tolist") else list(truths)
    return dict(zip(keys, values, strict=True))
