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
from servekit.evaluation import held_out_figure
from servekit.loading import load_artifact
from servekit.training import trainer
from servekit.training.versions import HELD_OUT_ANSWERS, LIVE_VERDICT_TAG, SERVING_METADATA


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """v1 trained now on a file where a fifth of the rows have an x the API refuses (and far worse
    truths there, as ChicagoTaxi's trips without miles); v2, the same model logged as servekit
    e4f1518 logged it: its figure and held-out answers over every held-out row, no row counts, no
    input baseline, no groups."""
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    client.create_experiment("toy", artifact_location=str(tmp_path / "artifacts"))
    rows = TOY.recipe.generate(2000, seed=4)
    out = np.random.default_rng(4).random(len(rows)) < 0.2
    rows.loc[out, "x"] = 12 + 3 * np.random.default_rng(5).random(out.sum())
    rows.loc[out, "y"] = np.random.default_rng(6).normal(0, 20, out.sum())
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    trainer.train(TOY, uri, path, seed=1)
    artifact = load_artifact("toy", "models:/toy/1", uri)
    data = trainer.split(TOY, TOY.recipe.load(path, 1)[0], 1)
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
    requests = trainer.to_records(data.x_test[asked])
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
    assert client.get_model_version("toy", "2").tags[LIVE_VERDICT_TAG] == "within the noise"


def test_without_its_training_file_an_old_version_gets_no_verdict_and_is_told_what_to_do(
    registry: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    client = registry["client"]
    registry["path"].rename(registry["path"].with_suffix(".gone"))
    found = held_out_figure(client, "toy", "2", "mae")
    assert (found.figure, found.rows, found.parity) == (None, None, None)
    assert found.note == (
        f"its held-out mae {registry['every_row']:.4f} is over every held-out row, those no request can "
        "be included (trained before the held-out figures left out the rows no request can be (how many "
        "of them a request can be not recorded)), and cannot be recomputed over the rows a request can "
        f"be: its training file {registry['path']} is not here to tell which held-out rows a request "
        "can be; retrain it (`mlp train` scores the held-out figures over the rows a request can be), or "
        "compare it with another version on the same captured requests (as a shadow or a canary)"
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
