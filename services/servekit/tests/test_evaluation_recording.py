"""``mlp evaluate --log`` against a version really trained: answers of its own training rows left
out, every figure printed logged with the truth file it was over, and a run without a figure that
leaves a standing verdict alone."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from evaluation_logs import Offered, capture_line, held_out_rates, offered_log
from toy import TOY

from servekit import cli
from servekit.evaluation import Grouper, HeldOutAnswers, assess, join, render
from servekit.evaluation.recording import run_figures
from servekit.evaluation.trained_on import TrainingTypes
from servekit.replay.capture_lines import read_lines
from servekit.testing import new_tracking_database, valid_requests
from servekit.training import splitting, trainer, uncertainty
from servekit.training.training_rows import row_hashes

NAME = "toy"
SEED = 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Toy v1 trained on synthetic rows, which log their hashes, and the split it learnt from."""
    directory = tmp_path_factory.mktemp("trained-on")
    uri = new_tracking_database(directory / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment(NAME, artifact_location=str(directory / "a"))
    spec = TOY
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
        trainer.train(spec, uri, None, seed=SEED)
    frame, _ = spec.recipe.load(None, SEED)
    yield {"uri": uri, "spec": spec, "data": splitting.split(spec, frame, SEED), "dir": directory}
    mlflow.set_tracking_uri(None)


def _served(spec: Any, features: Any) -> list[dict[str, Any]]:
    """The rows as the service captures them: validated, dumped, and through JSON."""
    records = valid_requests(spec, splitting.to_records(features))
    return [json.loads(json.dumps(spec.request.model_validate(r).model_dump())) for r in records]


def _evaluate(trained: dict[str, Any], tmp_path: Path, rows: list[tuple[dict[str, Any], float]]) -> list[str]:
    captures, truth = tmp_path / "captures.log", tmp_path / "truth.csv"
    captures.write_text(
        "".join(capture_line(f"r{i}", 0, row, {"value": y + 0.5}) + "\n" for i, (row, y) in enumerate(rows))
    )
    truth.write_text("request_id,y\n" + "".join(f"r{i},{y!r}\n" for i, (_, y) in enumerate(rows)))
    return ["evaluate", NAME, str(captures), "--truth", str(truth), "--tracking-uri", trained["uri"], "--log"]


def test_a_row_captured_from_the_serving_path_hashes_as_training_hashed_it(trained: dict[str, Any]) -> None:
    spec, data = trained["spec"], trained["data"]
    inputs = _served(spec, data.x_train.head(50))
    hashes = TrainingTypes(spec.recipe).hashes(inputs, data.y_train.head(50).tolist())
    assert hashes is not None
    assert hashes.tolist() == row_hashes(data.x_train.head(50), data.y_train.head(50)).tolist()


def test_answers_of_training_rows_are_left_out_counted_and_logged(
    trained: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, data = trained["spec"], trained["data"]
    monkeypatch.setattr(cli.registry, "get_service", lambda _: spec)
    seen = list(zip(_served(spec, data.x_train.head(120)), data.y_train.head(120).tolist(), strict=True))
    new = list(zip(_served(spec, data.x_test.head(300)), data.y_test.head(300).tolist(), strict=True))
    argv = _evaluate(trained, tmp_path, seen + new)
    assert cli.main(argv) in (0, 3)
    out = capsys.readouterr().out
    assert (
        f"{NAME} v1:   training rows: 120 of 420 answers with their truth were rows v1 was trained on" in out
    )
    # The figure is the one over the other 300 alone.
    grouper = Grouper(spec.recipe)
    lines = [capture_line(f"n{i}", 0, row, {"value": y + 0.5}) for i, (row, y) in enumerate(new)]
    alone = join(read_lines(lines), "toy", grouper, {(f"n{i}", 0): y for i, (_, y) in enumerate(new)})
    figure = assess(alone.versions[0], grouper, None).live
    assert figure is not None
    assert f"{NAME} v1: 300 answers with their truth: mae {figure.estimate:.4f}" in out
    client = mlflow.MlflowClient(trained["uri"], registry_uri=trained["uri"])
    run_id = re.search(r"logged as run (\w+)", out)
    assert run_id is not None
    run = client.get_run(run_id[1]).data
    assert run.metrics["live.training_rows_left_out"] == 120
    assert run.metrics["live.rows"] == 300
    # The truth file the run was over, by name, rows and hash.
    truth = Path(argv[argv.index("--truth") + 1])
    import hashlib

    assert run.params == {
        "evaluation.truth_file": "truth.csv",
        "evaluation.truth_rows": "420",
        "evaluation.truth_sha256": hashlib.sha256(truth.read_bytes()).hexdigest(),
    }
    report = [line for line in out.splitlines() if line.startswith(f"{NAME} v1:") and "logged as" not in line]
    assert not _unlogged(report, run.metrics)


def _unlogged(report: list[str], metrics: dict[str, float]) -> set[str]:
    """The figures printed (with 2 to 4 decimals) that no metric rounds to."""
    printed = {f for line in report for f in re.findall(r"(?<!\d)[-+]?\d+\.\d{2,4}\b", line)}
    logged = {f"{v:+.{n}f}" for v in metrics.values() for n in (2, 3, 4)}
    return {f for f in printed if f"{float(f):+.{len(f.split('.')[1])}f}" not in logged}


def test_every_figure_printed_of_a_version_with_groups_is_among_its_run_metrics() -> None:
    """Each group's interval, and those of the decisions against held out, beside their points:
    the run alone says which calls were beyond the noise."""
    lines, truth, frame = offered_log()
    recipe = Offered()
    grouper = Grouper(recipe)
    joined = join(read_lines(lines), "toy", grouper, truth)
    target, outputs = frame["truth"].to_numpy(), frame["p"].to_numpy()
    quality = assess(
        joined.versions[0],
        grouper,
        uncertainty.interval(recipe.primary(), target, outputs),
        held_out_rows=HeldOutAnswers(target, outputs, {"color": frame["color"].tolist()}),
        held_out_parity=held_out_rates(frame, frame["p"] >= 0.5),
    )
    report = render(joined, [quality], "truth.csv").splitlines()
    assert any("decisions against held out:" in line for line in report)
    assert any(" (0." in line and "color:" in line for line in report)
    figures = run_figures(quality)
    assert {"live.segment.color.red.roc_auc_ci_low", "live.segment.color.red.roc_auc_ci_high"} <= set(figures)
    assert not _unlogged([line for line in report if line.startswith("toy v1")], figures)


def test_a_run_without_a_figure_leaves_the_standing_verdict_as_it_was(
    trained: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, data = trained["spec"], trained["data"]
    monkeypatch.setattr(cli.registry, "get_service", lambda _: spec)
    client = mlflow.MlflowClient(trained["uri"], registry_uri=trained["uri"])
    worse = {"live.figure": "mae 0.9000", "live.answers": "2856", "live.verdict": "worse", "live.run_id": "r"}
    for tag, value in worse.items():
        client.set_model_version_tag(NAME, "1", tag, value)
    few = list(zip(_served(spec, data.x_test.head(40)), data.y_test.head(40).tolist(), strict=True))
    assert cli.main(_evaluate(trained, tmp_path, few)) == 0
    out = capsys.readouterr().out
    assert f"{NAME} v1: logged as run " in out
    assert (
        "; its verdict left as it was (mae 0.9000 on 2856, worse): this run has no figure to replace "
        "it (fewer than 100 answers with their truth (--min-rows))" in out
    )
    tags = client.get_model_version(NAME, "1").tags
    assert {tag: tags[tag] for tag in worse} == worse
