"""``mlp promote`` of a version whose training run did not finish is refused; one registered
without a run (from elsewhere) is not. With a server, in tests/integration/test_registry.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from toy import TOY

from servekit import cli
from servekit.testing import new_tracking_database
from servekit.training import trainer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A registry on a SQLite file holding one trained version of ``toy``, its champion."""
    directory = tmp_path_factory.mktemp("registry")
    uri = new_tracking_database(directory / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment(
        "toy", artifact_location=str(directory / "artifacts")
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
        trainer.train(TOY, uri, None, seed=2)
    yield uri, directory
    mlflow.set_tracking_uri(None)


def promote(uri: str, version: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> tuple[int, str]:
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    capsys.readouterr()
    status = cli.main(["promote", "toy", version, "--tracking-uri", uri])
    return status, capsys.readouterr().err.splitlines()[-1] if status else ""


def test_a_version_of_a_failed_training_is_refused_and_one_without_a_run_is_promoted(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    uri, _ = store
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    files = mlflow.artifacts.download_artifacts("models:/toy/1", dst_path=str(tmp_path), tracking_uri=uri)
    run = client.create_run(client.get_experiment_by_name("toy").experiment_id).info.run_id
    failed = str(client.create_model_version("toy", files, run_id=run).version)
    client.set_terminated(run, "FAILED")
    assert promote(uri, failed, monkeypatch, capsys) == (
        2,
        f"mlp: toy v{failed}'s training run {run} did not finish (FAILED): it was never compared "
        "with the champion; train again",
    )
    going = client.create_run(client.get_experiment_by_name("toy").experiment_id).info.run_id
    running = str(client.create_model_version("toy", files, run_id=going).version)
    assert promote(uri, running, monkeypatch, capsys) == (
        2,
        f"mlp: toy v{running}'s training run {going} has not finished (RUNNING: still training, or "
        "stopped while the tracking server was down): it was never compared with the champion; "
        "train again",
    )
    runless = client.create_model_version("toy", files)
    assert not runless.run_id
    assert promote(uri, str(runless.version), monkeypatch, capsys) == (0, "")
    assert str(client.get_model_version_by_alias("toy", "champion").version) == str(runless.version)
