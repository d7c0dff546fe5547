from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from toy import TOY, ToyModel

from servekit.model import ModelArtifact
from servekit.testing import new_tracking_database, request_rows, serving_in_memory, train_in_memory
from servekit.training.splitting import Split


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    """configure_logging replaces the root handlers and captures warnings; undo both."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture(scope="session")
def toy_trained() -> tuple[ModelArtifact, Split]:
    return train_in_memory(TOY, rows=800)


@pytest.fixture(scope="module")
def served() -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """300 held-out rows, the toy model's answers to them and the truth of each (``mlp evaluate``'s
    tests, test_evaluation_*)."""
    artifact, data = train_in_memory(TOY, rows=1500)
    rows = request_rows(data, 300)
    assert len(rows) == 300
    truth = data.y_test.head(300).to_numpy()
    return rows, ToyModel(artifact).predict(rows), truth


@pytest.fixture
def toy_client(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[TestClient]:
    with serving_in_memory(TOY, toy_trained[0], max_batch_size=8, max_body_bytes=4096) as client:
        yield client


@pytest.fixture(scope="module")
def mlflow_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A registry on a SQLite file, holding versions 1 and 2 of ``toy``."""
    import mlflow

    directory = tmp_path_factory.mktemp("mlflow")
    uri = new_tracking_database(directory / "mlflow.db")
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("toy", artifact_location=str(directory / "artifacts"))
    client.create_registered_model("toy")
    for _ in range(2):
        run = client.create_run(experiment)
        client.create_model_version("toy", str(directory / "artifacts"), run_id=run.info.run_id)
    return client
