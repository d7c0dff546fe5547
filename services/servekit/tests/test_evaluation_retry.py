"""What the live-evaluation Job's retry meets: ``mlp evaluate`` exits 1 only for what a retry can
change (the registry failing), and a retry of ``--log`` logs only what the Job had not."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from evaluation_logs import capture_line
from toy import TOY, registered

from servekit import cli
from servekit.errors import ServekitError
from servekit.evaluation import KIND, SHADOW_KIND, recording
from servekit.training.versions import HELD_OUT_ANSWERS, JOB_TAG, SERVING_METADATA


def _files(
    tmp_path: Path, name: str, served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], shadow: bool
) -> list[str]:
    """A capture log of ``name`` v1's answers (with v2 shadowing them) and its truth file; the
    command's arguments before the options."""
    rows, answers, truth = served
    lines = []
    for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        lines.append(capture_line(f"r{i:04d}", 0, row, answer, name=name))
        if shadow:
            lines.append(capture_line(f"r{i:04d}", 0, row, answer, "shadow", name=name, version="2"))
    (tmp_path / "captures.log").write_text("\n".join(lines) + "\n")
    frame = pd.DataFrame({"request_id": [f"r{i:04d}" for i in range(len(truth))], "y": truth})
    frame.to_csv(tmp_path / "truth.csv", index=False)
    return ["evaluate", name, str(tmp_path / "captures.log"), "--truth", str(tmp_path / "truth.csv")]


def test_a_damaged_file_of_a_training_run_exits_2_which_the_job_does_not_retry(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    mlflow_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 502 was exit 1, "worth retrying", and the CronJob retried a file that reads the same way
    every time."""
    for name, logged, damaged in (
        ("damaged-answers", HELD_OUT_ANSWERS, '{"target": [1.0]}'),
        ("damaged-metadata", SERVING_METADATA, '{"parity": [1]}'),
    ):
        monkeypatch.setattr(cli.registry, "get_service", lambda _, name=name: replace(TOY, name=name))
        registered(mlflow_client, name, 1)
        run_id = mlflow_client.get_model_version(name, "1").run_id
        mlflow_client.log_metric(run_id, "mae", 0.3)
        if logged == SERVING_METADATA:  # the answers read, the rates do not
            mlflow_client.log_text(run_id, '{"target": [1.0], "output": [1.0]}', HELD_OUT_ANSWERS)
        mlflow_client.log_text(run_id, damaged, logged)
        argv = _files(tmp_path, name, served, shadow=False)
        assert cli.main([*argv, "--tracking-uri", mlflow_client._registry_uri]) == 2
        assert f"version 1's run {run_id}: {logged} does not read: " in capsys.readouterr().err


def runs_of(client: Any, name: str, kind: str, version: str) -> list[Any]:
    experiment = client.get_experiment_by_name(name) or client.get_experiment_by_name("toy")
    found = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`mlp.kind` = '{kind}' and tags.`model.version` = '{version}'",
    )
    return [run for run in found if run.data.tags.get("evaluation.captures")]


def test_a_retry_of_the_job_logs_only_what_it_had_not(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    mlflow_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The registry failed after v1's live record was logged and before v2's shadow comparison: the
    Job's retry logged v1 again, a second run of the same evaluation."""
    name = "retried"
    monkeypatch.setattr(cli.registry, "get_service", lambda _: replace(TOY, name=name))
    registered(mlflow_client, name, 2)
    argv = [*_files(tmp_path, name, served, shadow=True), "--tracking-uri", mlflow_client._registry_uri]
    job = f"{name}-live-evaluation-29000000"
    shadow_run = recording.log_shadow_run

    def failing(*args: Any, **kwargs: Any) -> str:
        raise ServekitError(503, "registry_unavailable", "the registry failed: connection reset")

    monkeypatch.setattr(recording, "log_shadow_run", failing)
    monkeypatch.setattr("servekit.evaluation.log_shadow_run", failing)
    assert cli.main([*argv, "--log", "--job", job]) == 1  # worth retrying
    assert len(runs_of(mlflow_client, name, KIND, "1")) == 1
    assert not runs_of(mlflow_client, name, SHADOW_KIND, "2")

    monkeypatch.setattr("servekit.evaluation.log_shadow_run", shadow_run)
    capsys.readouterr()
    assert cli.main([*argv, "--log", "--job", job]) == 0
    out = capsys.readouterr().out
    (live,) = runs_of(mlflow_client, name, KIND, "1")
    assert f"{name} v1: logged by Job {job} already, as run {live.info.run_id}; not logged again" in out
    assert re.search(rf"^{name} shadow v2: logged as run ", out, re.M)
    assert len(runs_of(mlflow_client, name, SHADOW_KIND, "2")) == 1

    # Once more: nothing is logged twice, and each skip is said.
    assert cli.main([*argv, "--log", "--job", job]) == 0
    out = capsys.readouterr().out
    assert f"{name} shadow v2 against v1: logged by Job {job} already, as run " in out
    assert (
        len(runs_of(mlflow_client, name, KIND, "1"))
        == len(runs_of(mlflow_client, name, SHADOW_KIND, "2"))
        == 1
    )
    # Another Job's evaluation, or one by hand, is a new record.
    assert cli.main([*argv, "--log", "--job", f"{name}-live-evaluation-29000060"]) == 0
    assert cli.main([*argv, "--log"]) == 0
    jobs = [run.data.tags.get(JOB_TAG) for run in runs_of(mlflow_client, name, KIND, "1")]
    assert sorted(jobs, key=str) == sorted([job, f"{name}-live-evaluation-29000060", None], key=str)


def test_a_shadow_compared_with_two_served_versions_logs_both_comparisons(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    mlflow_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The champion moved from v1 to v2 in the period captured: v3's comparison with v2, the
    champion now, was skipped as "logged by Job already", for its comparison with v1 logged a
    moment before by the same evaluation."""
    name = "twoserved"
    monkeypatch.setattr(cli.registry, "get_service", lambda _: replace(TOY, name=name))
    registered(mlflow_client, name, 3)
    rows, answers, truth = served
    lines = []
    for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        served_version = "1" if i < len(rows) // 2 else "2"
        lines.append(capture_line(f"r{i:04d}", 0, row, answer, name=name, version=served_version))
        lines.append(capture_line(f"r{i:04d}", 0, row, answer, "shadow", name=name, version="3"))
    (tmp_path / "captures.log").write_text("\n".join(lines) + "\n")
    frame = pd.DataFrame({"request_id": [f"r{i:04d}" for i in range(len(truth))], "y": truth})
    frame.to_csv(tmp_path / "truth.csv", index=False)
    argv = ["evaluate", name, str(tmp_path / "captures.log"), "--truth", str(tmp_path / "truth.csv")]
    argv += ["--tracking-uri", mlflow_client._registry_uri, "--log", "--job", f"{name}-live-evaluation-1"]

    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "logged by Job" not in out
    assert len(re.findall(rf"^{name} shadow v3: logged as run ", out, re.M)) == 2
    against = sorted(
        run.data.tags["shadow.served_version"] for run in runs_of(mlflow_client, name, SHADOW_KIND, "3")
    )
    assert against == ["1", "2"]
    # The Job's retry logs neither again, and says which it skips.
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for served_version in ("1", "2"):
        assert (
            f"{name} shadow v3 against v{served_version}: logged by Job {name}-live-evaluation-1 already"
            in out
        )
    assert len(runs_of(mlflow_client, name, SHADOW_KIND, "3")) == 2


def test_a_job_name_used_again_after_its_jobs_life_logs_anew(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    mlflow_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The runbook's re-run is always ``<svc>-live-evaluation-now``: it found the run of an incident
    40 days before under that name, and logged nothing."""
    name = "rerun"
    monkeypatch.setattr(cli.registry, "get_service", lambda _: replace(TOY, name=name))
    registered(mlflow_client, name, 1)
    job = f"{name}-live-evaluation-now"
    experiment = mlflow_client.create_experiment(name)
    days_ago = int((time.time() - 40 * 86400) * 1000)
    old = mlflow_client.create_run(
        experiment,
        start_time=days_ago,
        tags={"mlp.kind": KIND, "model.version": "1", JOB_TAG: job, "evaluation.captures": "old"},
    ).info.run_id
    mlflow_client.set_terminated(old, "FINISHED")
    argv = [*_files(tmp_path, name, served, shadow=False), "--tracking-uri", mlflow_client._registry_uri]
    assert cli.main([*argv, "--log", "--job", job]) == 0
    assert "logged by Job" not in capsys.readouterr().out
    assert len(runs_of(mlflow_client, name, KIND, "1")) == 2
    # A run of the Job within its life is a retry's: the Job's pods all end within its deadline.
    recent = recording.logged_by_job(mlflow_client, name, KIND, "1", job)
    assert recent not in (None, old)


def test_a_job_lives_no_longer_than_runs_are_looked_for() -> None:
    """An earlier pod of the Job logged within its ``activeDeadlineSeconds``, retries included."""
    manifest = Path(__file__).parents[3] / "k8s" / "components" / "live-evaluation" / "live-evaluation.yaml"
    cronjob = yaml.safe_load(manifest.read_text())
    assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < recording.JOB_LIFE_SECONDS
