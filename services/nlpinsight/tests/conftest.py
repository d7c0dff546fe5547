"""Shared fixtures: the real file (skip locally / FAIL in CI when absent) and fitted pipelines.

The real-data pipeline takes ~20-30 s to fit, so it is fitted once per session
and shared by the model and explanation tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from nlpinsight import data, model

#: ``../shared/datasets`` beside the repository (the CI layout).
REAL_CSV = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "nlpinsight" / "sent_train.csv"
)


def in_ci() -> bool:
    """``CI=true`` (any value but empty/0/false): a missing data file must fail, not skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


@pytest.fixture(scope="session")
def real_csv() -> Path:
    if not REAL_CSV.is_file():
        message = f"real data set not found at {REAL_CSV.resolve()}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return REAL_CSV


@pytest.fixture(scope="session")
def real_frame(real_csv: Path) -> pd.DataFrame:
    return data.load_csv(real_csv)


@pytest.fixture(scope="session")
def real_split(real_frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The acceptance split: 80/20, stratified on the label, random_state=42."""
    train, test = train_test_split(
        real_frame, test_size=0.2, stratify=real_frame[data.TARGET], random_state=42
    )
    return train, test


@pytest.fixture(scope="session")
def real_pipeline(real_split: tuple[pd.DataFrame, pd.DataFrame]) -> Pipeline:
    return model.fit(real_split[0])


@pytest.fixture(scope="session")
def synthetic_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = data.generate(4000, seed=7)
    train, test = train_test_split(frame, test_size=0.25, stratify=frame[data.TARGET], random_state=0)
    return train, test


@pytest.fixture(scope="session")
def synthetic_pipeline(synthetic_split: tuple[pd.DataFrame, pd.DataFrame]) -> Pipeline:
    return model.fit(synthetic_split[0])
