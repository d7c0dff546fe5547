"""``ChurnRecipe.rows_all_requestable``: every row the recipe reads is one the request schema accepts,
which ``mlp evaluate`` relies on to hold an old version's live answers against the held-out figure
its run logged without its training file (the live-evaluation Job never has it)."""

from __future__ import annotations

import pandas as pd
import pytest

from bankchurn import data
from bankchurn.service import SERVICE as SPEC
from servekit.datasets import DatasetError
from servekit.training import baselines
from servekit.training.splitting import to_records


def _requestable(frame: pd.DataFrame) -> baselines.Requestable:
    return baselines.requestable(to_records(SPEC.recipe.features(frame)), SPEC)


def test_the_recipe_declares_it_and_every_synthetic_row_is_a_request() -> None:
    assert SPEC.recipe.rows_all_requestable
    assert _requestable(data.generate(2000, seed=3)).left_out == 0


@pytest.mark.parametrize("end", [0, 1])
def test_a_file_at_the_bounds_is_requests_and_past_them_is_refused(end: int) -> None:
    raw = data.generate_raw(20, seed=1)
    for column, bounds in data.BOUNDS.items():
        raw[column] = bounds[end]
    for column, allowed in data.ALLOWED.items():
        raw[column] = allowed[end]
    assert _requestable(data.validate_frame(raw)).left_out == 0
    for column, (low, high) in data.BOUNDS.items():
        beyond = raw.assign(**{column: high + 1 if end else low - 1})
        with pytest.raises(DatasetError, match=column):
            data.validate_frame(beyond)
