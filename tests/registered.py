"""Model versions the integration tests register beside the session's champions."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion

from bankchurn.data import generate_raw
from processes import Server
from servekit import registry
from servekit.training.trainer import TrainResult, train


def train_another_bankchurn(mlflow_server: Server, directory: Path, seed: int) -> TrainResult:
    """A genuinely different model, on 400 rows of other synthetic data, left as challenger only.

    On its own held-out split it may beat the champion (it does for some seeds), and the trainer
    would promote it: the champion is put back, as the tests that use it expect.
    """
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    champion = client.get_model_version_by_alias("bankchurn", "champion").version
    small = directory / "small.csv"
    generate_raw(400, seed=seed).to_csv(small, index=False)
    result = train(registry.get_service("bankchurn"), mlflow_server.url, data_path=small)
    client.set_registered_model_alias("bankchurn", "champion", champion)
    return result


def corrupt_copy(client: mlflow.MlflowClient, version: str, directory: Path) -> ModelVersion:
    """A new version of bankchurn whose model file is garbage, as a bad upload leaves it.

    The model is copied through a directory of its own under ``directory``: what is uploaded is the
    model's files and nothing else the caller keeps there (a running Prometheus's data, say)."""
    copy = directory / f"corrupt-copy-of-v{version}"
    copy.mkdir()
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/bankchurn/{version}", dst_path=str(copy)))
    for path in model_dir.rglob("*.skops"):
        path.write_bytes(b"not a model")
    run = client.create_run(client.get_experiment_by_name("bankchurn").experiment_id)
    client.log_artifacts(run.info.run_id, str(model_dir), "model")
    client.set_terminated(run.info.run_id)
    return client.create_model_version("bankchurn", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)


def registered_again(mlflow_server: Server, trained: TrainResult) -> str:
    """The version ``trained`` registered, registered again (the same model, no alias): its number."""
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    original = client.get_model_version(trained.name, trained.version)
    model_id = str(original.source).removeprefix("models:/")
    again = client.create_model_version(
        trained.name, original.source, run_id=original.run_id, model_id=model_id
    )
    return str(again.version)
