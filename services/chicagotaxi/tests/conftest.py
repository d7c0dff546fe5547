"""A tiny ChicagoTaxi model trained at test time (seconds, no MLflow), an app serving it, and the
shared real file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chicagotaxi.service import SERVICE
from servekit.model import ModelArtifact
from servekit.testing import serving_in_memory, train_in_memory
from servekit.training.splitting import Split

sys.path.insert(0, str(Path(__file__).parent))

from taxi_trips import REAL_CSV, require_real_csv


@pytest.fixture(scope="session")
def trained() -> tuple[ModelArtifact, Split]:
    return train_in_memory(SERVICE, rows=3000, seed=3)


@pytest.fixture(scope="session")
def client(trained: tuple[ModelArtifact, Split]) -> Iterator[TestClient]:
    with serving_in_memory(SERVICE, trained[0], max_batch_size=64) as test_client:
        yield test_client


@pytest.fixture
def real_csv() -> Path:
    return require_real_csv(REAL_CSV)
