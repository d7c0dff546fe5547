"""``mlp evaluate`` end to end: a real server captures its answers, the truth arrives later as a
CSV file, and each version is scored against its held-out figure in the real registry, where the
live figures are recorded too."""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from processes import Server, metric_value, start_service
from registered import registered_again
from servekit import http_client, registry
from servekit.evaluation import KIND, KIND_TAG
from servekit.metrics import MetricNames
from servekit.routing import percentile_of
from servekit.testing import valid_requests
from servekit.training.splitting import to_records
from servekit.training.trainer import TrainResult
from servekit.training.uncertainty import each_of, percent
from servekit.training.versions import SERVING_METADATA

pytestmark = pytest.mark.integration

NAME = "bankchurn"
BATCH = 100
#: Every answer captured, as JSON lines, and none of the service's INFO lines around them.
CAPTURING = {
    "BANKCHURN_CAPTURE_PERCENT": "100",
    "BANKCHURN_LOG_FORMAT": "json",
    "BANKCHURN_LOG_LEVEL": "WARNING",
}


def customers(count: int, seed: int) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """``count`` synthetic customers, drawn as the training data was, and their requests."""
    spec = registry.get_service(NAME)
    frame = spec.recipe.generate(count, seed)
    return frame, valid_requests(spec, to_records(frame.drop(columns=[spec.recipe.target])))


def test_captured_answers_are_scored_against_the_truth_and_recorded_in_mlflow(
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
    request: pytest.FixtureRequest,
) -> None:
    spec = registry.get_service(NAME)
    names = MetricNames(NAME)
    version = registered[NAME].version
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "BANKCHURN_MODEL_URI": f"models:/{NAME}/{version}",
        "BANKCHURN_LIVE_EVALUATION_REFRESH_SECONDS": "1",
        **CAPTURING,
    }
    # Customers drawn as the training data was: the live figure should match the held-out one.
    frame, rows = customers(620, 11)
    exited = frame[spec.recipe.target].tolist()
    server = start_service(NAME, tmp_path, env, label="bankchurn-evaluate")
    # Served until the end: the pod reads the evaluation logged below while it serves the version.
    request.addfinalizer(server.stop)
    sent: list[tuple[str, int]] = []  # (request id, instance) of each row, in order
    labels: list[str] = []  # the label each row was given
    server.wait_for("/readyz")
    for start in range(0, 600, BATCH):
        request_id = f"batch-{start // BATCH}"
        response = http_client.post(
            f"{server.url}/predict/batch",
            json={"instances": rows[start : start + BATCH]},
            headers={"X-Request-ID": request_id},
        )
        assert response.status_code == 200, response.text
        sent += [(request_id, i) for i in range(BATCH)]
        labels += [p["label"] for p in response.json()["predictions"]]
    for i, row in enumerate(rows[600:]):
        response = http_client.post(
            f"{server.url}/predict", json=row, headers={"X-Request-ID": f"customer-{i}"}
        )
        assert response.status_code == 200, response.text
        sent.append((f"customer-{i}", 0))
        labels.append(response.json()["label"])
    log = tmp_path / "bankchurn-evaluate.log"

    def truth_file(path: Path, labels: list[int]) -> Path:
        # The last 20 customers' truth is not known yet; one row is of a request never captured.
        lines = ["request_id,instance,Exited"]
        lines += [f"{r},{i},{y}" for (r, i), y in zip(sent[:-20], labels[:-20], strict=True)]
        lines.append("never-sent,0,1")
        path.write_text("\n".join(lines) + "\n")
        return path

    # As the live-evaluation component's Job runs it, naming itself.
    job = f"{NAME}-live-evaluation-29000000"
    truth = truth_file(tmp_path / "truth.csv", exited)
    report = mlp("evaluate", NAME, str(log), "--truth", str(truth), "--log", "--job", job)
    head = report.splitlines()[0]
    figure = re.search(r": 600 answers with their truth: roc_auc (\d\.\d{4}) \(95% CI ", head)
    assert figure is not None, report
    # Resampled against the held-out answers its training run kept, not two intervals combined.
    assert head.endswith(", within the noise"), report
    assert " held out (95% CI " in head
    assert f"{NAME} v{version}:   Geography: France " in report
    assert f"{NAME}: 600 of 620 captured answers have a truth row in " in report
    assert f"{NAME}: 1 truth row without a captured answer" in report
    # Every line is the report's: MLflow's own "View run ... at" links are not printed among them.
    assert "View run" not in report
    logged_run = re.fullmatch(rf"{NAME} v{version}: logged as run (\w+) .*", report.splitlines()[-1])
    assert logged_run is not None, report

    # Recorded: a run of the service's experiment, and a tag on the version. (test_live_prometheus
    # may have logged another evaluation of the same version in this session: the run is the one named.)
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.`{KIND_TAG}` = '{KIND}' and tags.`model.version` = '{version}'"
    )
    runs = [run for run in runs if run.info.run_id == logged_run[1]]
    assert len(runs) == 1
    assert runs[0].data.metrics["live.rows"] == 600
    assert f"{runs[0].data.metrics['live.roc_auc']:.4f}" == figure[1]
    assert runs[0].data.tags["live.verdict"] == "within the noise"
    # The decisions per group are the labels the server gave, read back from its capture.
    assert f"{NAME} v{version}:   Geography decisions: share flagged " in report
    for country in ("France", "Germany", "Spain"):
        given = [
            label
            for label, geography in zip(labels[:600], frame["Geography"][:600], strict=True)
            if geography == country
        ]
        logged = runs[0].data.metrics[f"live.parity.Geography.{country}.flagged_share"]
        assert logged == pytest.approx(given.count("churn") / len(given), rel=1e-12)
    # Each group's rates against the same group's on the training run's held-out rows, as logged there.
    assert f"{NAME} v{version}:   Geography decisions against held out: " in report
    trained = json.loads(
        Path(client.download_artifacts(registered[NAME].run_id, SERVING_METADATA, str(tmp_path))).read_text()
    )["parity"]["Geography"]["groups"]
    for country in ("France", "Germany", "Spain"):
        metrics = runs[0].data.metrics
        moved = metrics[f"live.parity.Geography.{country}.flagged_share_minus_held_out"]
        live_share = metrics[f"live.parity.Geography.{country}.flagged_share"]
        assert moved == pytest.approx(live_share - trained[country]["flagged_share"], abs=1e-12)
    # Their intervals hold together at 95 %: the level of each is the run's, and the report's.
    changes = sum(name.endswith("_minus_held_out") for name in metrics if name.startswith("live.parity."))
    assert metrics["live.parity.changes_level"] == each_of(changes)
    assert (
        f"{NAME} v{version}:   decisions against held out, each at {percent(each_of(changes))} "
        f"(Bonferroni over {changes} rates: 95% together)\n"
    ) in report
    # Each group against the same group's held-out rows, which the training run kept with their
    # groups: the live answers are the model's to rows like those, so no group is worse.
    assert f"{NAME} v{version}:   Geography against held out: France " in report
    assert metrics["live.segment.Geography.France.other_rows"] == trained["France"]["rows"]
    tags = client.get_model_version(NAME, version).tags
    assert tags["live.groups_worse"] == "none"
    registered_metrics = client.get_run(registered[NAME].run_id).data.metrics
    assert tags["live.figure"] == f"roc_auc {figure[1]}"
    assert (tags["live.answers"], tags["live.verdict"], tags["live.run"]) == (
        "600",
        "within the noise",
        runs[0].info.run_id,
    )
    # The pod serving the version reads it within its refresh (1 s here): in GET /model, and in
    # /metrics beside the held-out figure, which its training run logged.
    deadline = time.monotonic() + 30
    # (test_live_prometheus may have logged one of this version before: the pod holds that one first.)
    while (latest := http_client.get(f"{server.url}/model").json()["live_evaluation"]["latest"] or {}).get(
        "run_id"
    ) != logged_run[1]:
        assert time.monotonic() < deadline, "the pod did not read the evaluation: " + server.logs()[-2000:]
        time.sleep(0.5)
    assert (latest["answers"], latest["verdict"], latest["job"]) == (600, "within the noise", job)
    assert f"{latest['estimate']:.4f}" == figure[1]
    live = {"split": "live", "metric": "roc_auc"}
    for bound, key in (("estimate", "roc_auc"), ("ci_low", "roc_auc_ci_low"), ("ci_high", "roc_auc_ci_high")):
        assert (
            metric_value(server, names.model_quality, **live, bound=bound)
            == runs[0].data.metrics[f"live.{key}"]
        )
        held_out = metric_value(server, names.model_quality, split="held_out", metric="roc_auc", bound=bound)
        assert held_out == registered_metrics[key]
    assert metric_value(server, names.model_live_answers) == 600
    assert metric_value(server, names.model_live_verdict, verdict="within the noise") == 1
    assert metric_value(server, names.model_live_verdict, verdict="worse") == 0
    # Labelled with the Job, by the name kube-state-metrics gives it (LiveEvaluationFailed joins them).
    ended = metric_value(server, names.model_live_evaluation_timestamp_seconds, job_name=job)
    assert ended == runs[0].info.end_time / 1000
    # mlp versions shows the latest live figure beside the held-out one.
    listed = next(line for line in mlp("versions", NAME).splitlines() if line.startswith(f"{version} "))
    assert f"roc_auc {figure[1]} on 600, within the noise" in listed

    # The same log as a store exports it, gzipped: the same figures.
    (tmp_path / "export").write_bytes(gzip.compress(log.read_bytes()))
    again = mlp("evaluate", NAME, str(tmp_path / "export"), "--truth", str(tmp_path / "truth.csv"))
    assert again.splitlines()[0] == head
    # As the live-evaluation component's copy leaves it: Firehose's objects by hour, gzipped, in a
    # directory (and a partial download beside them). The same figures.
    captured = log.read_text().splitlines(keepends=True)
    # Named against time order here (the last hour's answers are read first): the same figures and
    # intervals, as the answers are scored in the order of their request ids, not as read.
    third = len(captured) // 3 + 1
    thirds = [captured[i * third : (i + 1) * third] for i in range(3)]
    for hour, part in enumerate(reversed(thirds)):
        (tmp_path / "window" / "2026" / "12" / "04" / f"{hour:02d}").mkdir(parents=True)
        (tmp_path / "window" / "2026" / "12" / "04" / f"{hour:02d}" / "stream-1").write_bytes(
            gzip.compress("".join(part).encode())
        )
    (tmp_path / "window" / "2026" / "12" / "04" / ".stream-2.part").write_text('{"capture": {')
    again = mlp("evaluate", NAME, str(tmp_path / "window"), "--truth", str(tmp_path / "truth.csv"))
    assert again.splitlines()[0] == head

    # A version the registry no longer holds: scored, but neither compared nor recorded.
    lines = log.read_text().splitlines()
    moved = [line.replace(f'"version":"{version}"', '"version":"999"') for line in lines]
    (tmp_path / "moved.log").write_text("\n".join(moved) + "\n")
    report = mlp(
        "evaluate", NAME, str(tmp_path / "moved.log"), "--truth", str(tmp_path / "truth.csv"), "--log"
    )
    assert f"{NAME} v999: 600 answers with their truth: roc_auc {figure[1]} " in report
    assert report.splitlines()[0].endswith("; not compared: version 999 is not in the registry"), report
    assert "logged as run" not in report

    # The customers behave against the model's reading of them: it is worse beyond the noise, exit 3.
    flipped = truth_file(tmp_path / "flipped.csv", [1 - y for y in exited])
    report = mlp("evaluate", NAME, str(log), "--truth", str(flipped), status=3)
    assert report.splitlines()[0].endswith(", worse"), report


def stable_key(i: int) -> str:
    """A routing key of customer ``i`` that the router draws for the stable model at 50 %."""
    return next(key for j in range(1000) if percentile_of(key := f"customer-{i}-{j}") >= 50)


def test_a_canary_is_scored_against_the_stable_answers_of_its_own_period(
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    """The champion answers 150 customers alone, then a canary (the same run, loaded as
    ``runs:/``, so an unregistered version) is drawn for half of them by their routing keys, and
    a smoke test asks the canary for 20 more: the canary is held against the champion's drawn
    answers from its own first to last drawn answer only, read from the captures' times and
    routing."""
    spec = registry.get_service(NAME)
    version = registered[NAME].version
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "BANKCHURN_CANARY_MODEL_URI": f"runs:/{registered[NAME].run_id}/model",
        "BANKCHURN_CANARY_TRAFFIC_PERCENT": "50",
        **CAPTURING,
    }
    frame, rows = customers(450, 12)
    keys = [stable_key(i) if i < 150 else f"customer-{i}" for i in range(len(rows))]
    drawn = [i for i, key in enumerate(keys) if percentile_of(key) < 50]
    first, last = drawn[0], drawn[-1]
    asked = list(range(150, 450, 15))
    server = start_service(NAME, tmp_path, env, label="bankchurn-canary-evaluate")
    try:
        server.wait_for("/readyz")
        with http_client.client() as client:
            for i, row in enumerate(rows):
                if i in (first, last + 1):
                    time.sleep(0.01)  # times are to the millisecond: the period's ends stand alone
                headers = {"X-Request-ID": f"customer-{i}", "X-Routing-Key": keys[i]}
                response = client.post(f"{server.url}/predict", json=row, headers=headers)
                assert response.status_code == 200, response.text
                if first < i < last and i in asked:
                    headers = {"X-Request-ID": f"asked-{i}", "X-Model-Variant": "canary"}
                    response = client.post(f"{server.url}/predict", json=row, headers=headers)
                    assert response.status_code == 200, response.text
    finally:
        server.stop()
    truth = tmp_path / "truth.csv"
    exited = frame[spec.recipe.target].tolist()
    lines = ["request_id,Exited"] + [f"customer-{i},{y}" for i, y in enumerate(exited)]
    lines += [f"asked-{i},{exited[i]}" for i in asked if first < i < last]
    truth.write_text("\n".join(lines) + "\n")

    report = mlp("evaluate", NAME, str(tmp_path / "bankchurn-canary-evaluate.log"), "--truth", str(truth))
    smoke = sum(first < i < last for i in asked)
    # A version served from a run is scored, but has no held-out figure to be compared with.
    assert f"{NAME} vunregistered: {len(drawn) + smoke} answers with their truth: roc_auc " in report
    assert (
        "; not compared: version unregistered: served from a run or artifact URI, not the registry" in report
    )
    canary = next(line for line in report.splitlines() if " canary v" in line)
    assert canary.startswith(
        f"{NAME} canary vunregistered against stable v{version} on the same traffic, "
    ), report
    # The champion's answers drawn between the canary's first and last drawn answer.
    in_period = sum(first < i < last for i in range(len(rows)) if i not in drawn)
    stable_answers = len(rows) - len(drawn)
    assert (
        f" UTC ({in_period} of v{version}'s {stable_answers} answers with their truth; "
        f"vunregistered's {smoke} answers asked for by their requests left out): roc_auc "
    ) in canary, report
    assert canary.endswith(", within the noise"), report


def test_a_shadows_captured_answers_are_held_against_the_served_ones_and_recorded_on_its_version(
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
    request: pytest.FixtureRequest,
) -> None:
    """The champion's model registered again as a new version with no alias, and loaded as the
    shadow: its captured answers meet the served ones request for request, and as the two are the
    same model, the paired difference is exactly 0 in every sample. The server serving them reads
    the comparison back for its Shadow series."""
    names = MetricNames(NAME)
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    version = registered[NAME].version
    shadow = registered_again(mlflow_server, registered[NAME])
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "BANKCHURN_MODEL_URI": f"models:/{NAME}/{version}",
        "BANKCHURN_SHADOW_MODEL_URI": f"models:/{NAME}/{shadow}",
        "BANKCHURN_LIVE_EVALUATION_REFRESH_SECONDS": "1",
        **CAPTURING,
    }
    frame, rows = customers(300, 13)
    server = start_service(NAME, tmp_path, env, label="bankchurn-shadow-evaluate")
    # Served until the end: the pod reads the comparison logged below while its shadow runs.
    request.addfinalizer(server.stop)
    server.wait_for("/readyz")
    deadline = time.monotonic() + 60
    while not http_client.get(f"{server.url}/model").json()["shadow"]["ready"]:
        assert time.monotonic() < deadline, "the shadow did not load: " + server.logs()[-2000:]
        time.sleep(0.5)
    for start in range(0, 300, BATCH):
        response = http_client.post(
            f"{server.url}/predict/batch",
            json={"instances": rows[start : start + BATCH]},
            headers={"X-Request-ID": f"shadowed-{start // BATCH}"},
        )
        assert response.status_code == 200, response.text
    # The shadow's worker captures its answers once it has scored them.
    while metric_value(server, names.captured_instances_total) < 600:
        assert time.monotonic() < deadline, "the shadow's answers were not captured: " + server.logs()[-2000:]
        time.sleep(0.2)
    truth = tmp_path / "truth.csv"
    exited = frame[registry.get_service(NAME).recipe.target].tolist()
    lines = [f"shadowed-{i // BATCH},{i % BATCH},{y}" for i, y in enumerate(exited)]
    truth.write_text("\n".join(["request_id,instance,Exited", *lines]) + "\n")

    report = mlp(
        "evaluate", NAME, str(tmp_path / "bankchurn-shadow-evaluate.log"), "--truth", str(truth), "--log"
    )
    compared = next(line for line in report.splitlines() if " shadow v" in line and "against served" in line)
    figure = re.search(r"roc_auc (\d\.\d{4}) against (\d\.\d{4}): ", compared)
    assert figure is not None, report
    assert figure[1] == figure[2]  # one model: the same figure on the same answers
    assert compared == (
        f"{NAME} shadow v{shadow} against served v{version} on the same 300 answers: roc_auc {figure[1]} "
        f"against {figure[1]}: paired difference +0.0000 (95% CI +0.0000 to +0.0000), within the noise"
    ), report
    assert f"{NAME}: 300 of 300 captured answers (and 300 of the shadow's 300) have a truth row" in report
    # The served version is scored on its answers alone, as without a shadow.
    assert f"{NAME} v{version}: 300 answers with their truth: roc_auc {figure[1]} " in report
    logged = re.search(rf"{NAME} shadow v{shadow}: logged as run (\w+) ", report)
    assert logged is not None, report
    tags = client.get_model_version(NAME, shadow).tags
    assert tags["shadow.comparison"] == (
        f"roc_auc +0.0000 (+0.0000 to +0.0000) against v{version} on 300, within the noise"
    )
    assert tags["shadow.run"] == logged[1]
    assert client.get_run(logged[1]).data.metrics["shadow.rows"] == 300
    # Per group too (country, gender, age band, country and gender): a group's answers, paired,
    # differ by nothing, or are too few to compare; no group is worse.
    groups = [
        part.split(" ", 1)[1]
        for line in re.findall(rf"^{NAME} shadow v{shadow}:   \w+: (.+)$", report, re.M)
        for part in line.split("; ")
    ]
    compared = [g for g in groups if not g.startswith("none (")]
    assert len(groups) >= 5, report  # three countries, two genders, and the age bands
    assert compared, report
    assert all(
        re.fullmatch(r"\+0\.0000 \(\+0\.0000 to \+0\.0000, \d+\) within the noise", g) for g in compared
    )
    assert tags["shadow.groups_worse"] == "none"
    # The groups' intervals hold together at 95 %: each is wider by as many as were compared.
    level = (
        f"each at {percent(each_of(len(compared)))} (Bonferroni over {len(compared)} groups: 95% together)"
    )
    assert f"{NAME} shadow v{shadow}:   per group, {level}\n" in report
    assert client.get_run(logged[1]).data.metrics["shadow.groups_level"] == each_of(len(compared))
    # The server whose shadow it is reads it within its refresh: GET /model and the Shadow series.
    deadline = time.monotonic() + 30
    while (
        (http_client.get(f"{server.url}/model").json()["shadow"]["live_comparison"]["latest"] or {}).get(
            "run_id"
        )
    ) != logged[1]:
        assert time.monotonic() < deadline, "the pod did not read the comparison: " + server.logs()[-2000:]
        time.sleep(0.5)
    for bound in ("estimate", "ci_low", "ci_high"):
        labels = {"metric": "roc_auc", "bound": bound, "against": version}
        assert metric_value(server, names.shadow_live_difference, **labels) == 0.0
    assert metric_value(server, names.shadow_live_answers) == 300
    assert metric_value(server, names.shadow_live_verdict, verdict="within the noise") == 1
    assert metric_value(server, names.shadow_live_groups_worse) == 0
    listed = next(line for line in mlp("versions", NAME).splitlines() if line.startswith(f"{shadow} "))
    assert listed.endswith(tags["shadow.comparison"])
    # Promoted by hand, the operator reads the evidence beside what changed; then the champion is
    # put back as it was.
    promoted = mlp("promote", NAME, shadow).splitlines()
    assert promoted[-1] == f"{NAME}: v{shadow} on live traffic: as a shadow: {tags['shadow.comparison']}"
    restored = mlp("promote", NAME, version).splitlines()
    assert restored[-1].startswith(f"{NAME}: v{version} on live traffic: ")
