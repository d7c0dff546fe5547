"""Data files: the error a file that does not fit its schema raises, where the shared
real data sets live, and the rule for tests that need them."""

from __future__ import annotations

import os
from pathlib import Path

#: ``../shared/datasets`` beside the repository (the CI layout), overridable.
SHARED = Path(
    os.environ.get("MLP_SHARED_DATASETS", Path(__file__).resolve().parents[4] / ".." / "shared" / "datasets")
)


class DatasetError(ValueError):
    """A data file that does not fit its service's schema; the message names the column.

    ``mlp train --data`` reports it in one line (exit status 2), not as a traceback.
    """


def shared_file(*parts: str) -> Path:
    """A shared data file. A missing file FAILS the test (CI always has ``../shared``), unless the user
    opted out with ``MLP_SKIP_REAL_DATA=1`` on a machine that has no copy of the shared data."""
    import pytest  # only tests call this; pytest is not a dependency of a served image

    path = SHARED.joinpath(*parts).resolve()
    if not path.is_file():
        message = f"real data set not found at {path} (expected ../shared/datasets beside the repository)"
        if os.environ.get("MLP_SKIP_REAL_DATA") == "1":
            pytest.skip(f"{message}; MLP_SKIP_REAL_DATA=1 set")
        pytest.fail(message)
    return path
