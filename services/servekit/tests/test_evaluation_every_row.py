"""``mlp evaluate`` on a version trained before the held-out figures left out the rows no request can
be: its figure recomputed over those a request can be, or no verdict against it, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from evaluation_logs import capture_line
from sklearn.metrics import mean_absolute_error
from toy import TOY

from servekit import cli
from servekit.datasets import DatasetError
from servekit.evaluation import held_out_figure
from servekit.evaluation.every_row import MORE_REQUESTS
from servekit.evaluation.recording import HELD_OUT_TAG
from servekit.loading import load_artifact
from servekit.testing import new_tracking_database
from servekit.training import splitting, trainer
from servekit.training.versions import HELD_OUT_ANSWERS, LIVE_VERDICT_TAG, SERVING_METADATA


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """v1 trained now on a file where a fifth of the rows have an x the API refuses (and far worse
    truths there, as ChicagoTaxi's trips without miles); v2, the same model logged as servekit
    e4f1518 logged it: its figure and held-out answers over every held-out row, no row counts, no
    input baseline, no groups."""
    return _registry(tmp_path, monkeypatch, refused=0.2)


@pytest.fixture
def requests_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The same, on a file every row of which a request can be (BankChurn's, NLPInsight's)."""
    return _registry(tmp_path, monkeypatch, refused=0.0)


def _registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: float) -> dict[str, Any]:
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    uri = new_tracking_database(tmp_path / "mlflow.db")
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    client.create_experiment("toy", artifact_location=str(tmp_path / "artifacts"))
    rows = TOY.recipe.generate(2000, seed=4)
    out = np.random.default_rng(4).random(len(rows)) < refused
    rows.loc[out, "x"] = 12 + 3 * np.random.default_rng(5).random(out.sum())
    rows.loc[out, "y"] = np.random.default_rng(6).normal(0, 20, out.sum())
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    trainer.train(TOY, uri, path, seed=1)
    artifact = load_artifact("toy", "models:/toy/1", uri)
    data = splitting.split(TOY, TOY.recipe.load(path, 1)[0], 1)
    outputs = artifact.pipeline.predict(data.x_test)
    asked = data.x_test["x"].le(10).to_numpy()
    params = client.get_run(artifact.run_id).data.params
    old = {k: v for k, v in params.items() if not k.startswith("data.held_out") and k != "data.seed"}
    run = client.create_run(client.get_experiment_by_name("toy").experiment_id).info.run_id
    for key, value in old.items():
        client.log_param(run, key, value)
    every_row = float(mean_absolute_error(data.y_test, outputs))
    for key, value in (("mae", every_row), ("mae_ci_low", every_row - 0.2), ("mae_ci_high", every_row + 0.2)):
        client.log_metric(run, key, value)
    answers = {"target": data.y_test.tolist(), "output": outputs.tolist()}
    client.log_text(run, json.dumps(answers), HELD_OUT_ANSWERS)
    metadata = {k: v for k, v in artifact.metadata.items() if k not in ("input_baseline", "parity")}
    client.log_text(run, json.dumps(metadata), SERVING_METADATA)
    client.create_model_version("toy", "models:/toy/1", run_id=run)
    client.set_terminated(run)
    requests = splitting.to_records(data.x_test[asked])
    served = artifact.pipeline.predict(data.x_test[asked])
    lines = [
        capture_line(f"r{i:04d}", 0, row, {"value": float(value)}, version="2")
        for i, (row, value) in enumerate(zip(requests, served, strict=True))
    ]
    (tmp_path / "captures.log").write_text("\n".join(lines) + "\n")
    truth = pd.DataFrame({"request_id": [f"r{i:04d}" for i in range(len(requests))], "y": data.y_test[asked]})
    truth.to_csv(tmp_path / "truth.csv", index=False)
    over_requests = float(mean_absolute_error(data.y_test[asked], served))
    argv = ["evaluate", "toy", str(tmp_path / "captures.log"), "--truth", str(tmp_path / "truth.csv")]
    return {
        "tmp_path": tmp_path,
        "truth": truth,
        "uri": uri,
        "client": client,
        "path": path,
        "every_row": every_row,
        "over_requests": over_requests,
        "asked": asked,
        "argv": [*argv, "--tracking-uri", uri],
    }


def test_an_old_versions_figure_is_recomputed_over_the_rows_a_request_can_be(
    registry: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """ChicagoTaxi v2 (e4f1518): mae 0.4757 live against 0.7065 over every held-out row, "better"
    beyond the noise, logged to its tags; over the rows a request can be it is 0.5383, within it."""
    client, asked = registry["client"], registry["asked"]
    assert registry["every_row"] > registry["over_requests"] + 1  # what it was held against
    found = held_out_figure(client, "toy", "2", "mae")
    assert found.figure is not None
    assert found.figure.estimate == pytest.approx(registry["over_requests"])
    assert found.rows is not None
    assert len(found.rows.target) == asked.sum()
    assert found.rows.groups is not None  # the groups are found again with the rows
    assert found.note == (
        f"recomputed over the {asked.sum():,} of its {len(asked):,} held-out rows a request can be; its "
        f"run's mae {registry['every_row']:.4f} over every held-out row, counts the {(~asked).sum():,} "
        "the request schema refuses"
    )
    # v1, trained since, is read as its run logged it.
    since = held_out_figure(client, "toy", "1", "mae")
    assert (since.note, since.figure and since.figure.estimate) == (
        "",
        pytest.approx(registry["over_requests"]),
    )

    capsys.readouterr()
    assert cli.main([*registry["argv"], "--log"]) == 0
    said = capsys.readouterr().out
    assert f"against {registry['over_requests']:.4f} held out" in said, said
    assert "within the noise" in said.splitlines()[0]
    assert f"toy v2:   held out: {found.note}" in said
    tags = client.get_model_version("toy", "2").tags
    assert tags[LIVE_VERDICT_TAG] == "within the noise"
    # Beside the verdict on the version, where `mlp versions` and `mlp promote` read it.
    assert tags[HELD_OUT_TAG] == found.note


def test_without_its_training_file_an_old_version_gets_no_verdict_and_is_told_what_to_do(
    registry: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    client = registry["client"]
    registry["path"].rename(registry["path"].with_suffix(".gone"))
    found = held_out_figure(client, "toy", "2", "mae")
    assert (found.figure, found.rows, found.parity) == (None, None, None)
    assert found.note == (
        f"its held-out mae {registry['every_row']:.4f} is over every held-out row, and toy's request "
        "schema can refuse rows its training data holds (trained before the held-out figures left out "
        "the rows no request can be; how many of them the request schema refuses is not recorded); it "
        "cannot be recomputed over the rows a request can be: its training file "
        f"{registry['path']} is not here to tell which held-out rows a request can be (run `mlp "
        "evaluate` where that path finds it); retrain it (`mlp train` scores the held-out figures over "
        "the rows a request can be), or compare it with another version on the same captured requests "
        "(as a shadow or a canary)"
    )
    capsys.readouterr()
    assert cli.main([*registry["argv"], "--log"]) == 0
    said = capsys.readouterr().out
    assert f"; not compared: {found.note}" in said.splitlines()[0], said
    assert "better" not in said
    tags = client.get_model_version("toy", "2").tags
    assert tags[LIVE_VERDICT_TAG] == f"not compared: {found.note}"
    # A file that changed since is no more its held-out rows than a missing one.
    changed = pd.read_csv(registry["path"].with_suffix(".gone")).head(1500)
    changed.to_csv(registry["path"], index=False)
    assert "has changed since it was trained" in held_out_figure(client, "toy", "2", "mae").note


def _worse_truth(registry: dict[str, Any]) -> None:
    """Truths the answers miss by 5 each: a model that collapsed on live traffic."""
    truth = registry["truth"].assign(y=registry["truth"]["y"] + 5)
    truth.to_csv(registry["tmp_path"] / "truth.csv", index=False)


def test_an_old_version_of_a_service_whose_training_rows_are_all_requests_is_compared_without_its_file(
    requests_only: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """BankChurn v1 (e4f1518), in the live-evaluation Job (no data mounted): roc_auc 0.5394 live
    against 0.8558 held out was "not compared" and exit 0, so LiveEvaluationFailed never fired;
    its validation refuses a file with a row its request schema refuses, so its figure is over
    requests whatever file it was trained on."""
    monkeypatch.setattr(TOY.recipe, "rows_all_requestable", True)
    client = requests_only["client"]
    requests_only["path"].unlink()
    found = held_out_figure(client, "toy", "2", "mae")
    assert found.figure is not None
    assert (found.figure.estimate, found.note) == (pytest.approx(requests_only["every_row"]), "")
    assert found.rows is not None
    assert len(found.rows.target) == len(requests_only["asked"])
    _worse_truth(requests_only)
    capsys.readouterr()
    assert cli.main([*requests_only["argv"], "--log"]) == 3
    said = capsys.readouterr().out
    assert said.splitlines()[0].endswith(", worse"), said
    tags = client.get_model_version("toy", "2").tags
    assert (tags[LIVE_VERDICT_TAG], tags[HELD_OUT_TAG]) == ("worse", "")


def test_an_old_version_whose_held_out_rows_are_all_requests_is_held_against_its_logged_figure(
    requests_only: dict[str, Any],
) -> None:
    """Recomputed from its file, the request schema refuses none of its held-out rows: the figure
    its run logged is over requests, and says nothing more ("recomputed over the 400 of its 400
    ..., counts the 0 the request schema refuses")."""
    found = held_out_figure(requests_only["client"], "toy", "2", "mae")
    assert found.figure is not None
    assert (found.figure.estimate, found.figure.low, found.note) == (
        pytest.approx(requests_only["every_row"]),
        pytest.approx(requests_only["every_row"] - 0.2),
        "",
    )


def test_a_training_file_that_does_not_read_is_why_an_old_version_is_not_compared(
    registry: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that does not read was a traceback and exit 1 (the Job's "retry"), and no version
    was evaluated."""

    def unreadable(path: Path) -> pd.DataFrame:
        raise DatasetError("missing column(s): y")

    monkeypatch.setattr(TOY.recipe, "load_csv", unreadable)
    found = held_out_figure(registry["client"], "toy", "2", "mae")
    assert found.figure is None
    assert (
        f"cannot be recomputed over the rows a request can be: its training file {registry['path']} "
        "does not read now: DatasetError: missing column(s): y; retrain it"
    ) in found.note
    capsys.readouterr()
    assert cli.main(registry["argv"]) == 0
    assert f"; not compared: {found.note}" in capsys.readouterr().out


def test_a_version_over_every_row_as_too_few_were_requests_is_compared_with_the_figure_its_card_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trained now on a file with few rows a request can be, its figures are over every held-out
    row (``trainer.scored_rows``), as its card says: it is compared with them, saying so, without
    its training file read again (it is gone here) to recompute a figure no rows can reach."""
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    uri = new_tracking_database(tmp_path / "mlflow.db")
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    client.create_experiment("toy", artifact_location=str(tmp_path / "artifacts"))
    rows = TOY.recipe.generate(2000, seed=4)
    out = np.random.default_rng(4).random(len(rows)) < 0.97
    rows.loc[out, "x"] = 12 + 3 * np.random.default_rng(5).random(out.sum())
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    result = trainer.train(TOY, uri, path, seed=1)
    assert MORE_REQUESTS in result.held_out_note
    path.unlink()
    logged = client.get_run(result.run_id).data
    found = held_out_figure(client, "toy", result.version, "mae")
    assert found.figure is not None
    assert found.figure.estimate == pytest.approx(logged.metrics["mae"])
    scored = logged.params["data.held_out_scored"]
    assert found.note == f"over {scored} (as its card shows); {MORE_REQUESTS}"
    assert found.note.startswith("over every held-out row: only ")

    artifact = load_artifact("toy", f"models:/toy/{result.version}", uri)
    data = splitting.split(TOY, rows.reset_index(drop=True), 1)
    asked = data.x_test["x"].le(10).to_numpy()
    requests = splitting.to_records(data.x_test[asked])
    served = artifact.pipeline.predict(data.x_test[asked])
    lines = [
        capture_line(f"r{i:04d}", 0, row, {"value": float(value)}, version=result.version)
        for i, (row, value) in enumerate(zip(requests, served, strict=True))
    ]
    (tmp_path / "captures.log").write_text("\n".join(lines) + "\n")
    truth = pd.DataFrame({"request_id": [f"r{i:04d}" for i in range(len(requests))], "y": data.y_test[asked]})
    truth.to_csv(tmp_path / "truth.csv", index=False)
    argv = ["evaluate", "toy", str(tmp_path / "captures.log"), "--truth", str(tmp_path / "truth.csv")]
    capsys.readouterr()
    assert cli.main([*argv, "--min-rows", "2", "--tracking-uri", uri, "--log"]) == 0
    said = capsys.readouterr().out
    assert "not compared" not in said.splitlines()[0], said
    assert f"toy v{result.version}:   held out: {found.note}" in said
    assert client.get_model_version("toy", result.version).tags[HELD_OUT_TAG] == found.note
