"""k8s/components/live-evaluation: each service's answers scored every day against the truth.

The CronJobs as rendered on both overlays (what runs, with which image, identity and network),
and the copy step, fetch.sh, run with the real AWS CLI against moto's S3 server (the bucket is the
only part that is a stand-in: S3 cannot be reached from here). The Google Cloud CLI is not on PyPI
nor in Debian's archive, so the gs:// branch is not run here.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from buckets import aws_environment, create_bucket
from manifests import (
    OVERLAYS,
    ROOT,
    SERVICES,
    Obj,
    Rendered,
    check_runs_end_before_overdue,
    check_unprivileged,
    container,
    failing_at_once,
    job_pod,
    render,
)
from test_manifests import flow, pod

from mixin.cluster import live_evaluation
from servekit.cli.captures import EVALUATE_WORSE
from servekit.replay.log_files import read_log

COMPONENT = ROOT / "k8s" / "components" / "live-evaluation"
FETCH = COMPONENT / "fetch.sh"


@pytest.fixture(scope="module", params=OVERLAYS)
def evaluated(request: pytest.FixtureRequest) -> Rendered:
    return render(request.param, components=["prediction-capture", "live-evaluation"])


def fetch_container(cronjob: Obj) -> Obj:
    [fetch] = job_pod(cronjob)["initContainers"]
    return dict(fetch)


def env(c: Obj) -> dict[str, Any]:
    """Each variable's value, or where it comes from (``valueFrom``)."""
    return {e["name"]: e["value"] if "value" in e else e["valueFrom"] for e in c["env"]}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_evaluated_by_its_own_image_against_its_own_truth(
    evaluated: Rendered, service: str
) -> None:
    cronjob = evaluated.get("CronJob", live_evaluation(service))
    [evaluate] = job_pod(cronjob)["containers"]
    # The service's own image: its package holds the recipe the answers are scored by.
    assert evaluate["image"] == container(evaluated.get("Deployment", service))["image"]
    assert [evaluate["command"][0], *evaluate["args"]] == [
        "mlp",
        "evaluate",
        service,
        "/work/captures",
        "--truth",
        "/work/truth.csv",
        "--log",
        "--job",
        "$(JOB_NAME)",
    ]
    given = env(evaluate)
    assert given["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # The runs name the Job that logged them (kube-state-metrics' job_name, the pods' label of the
    # verdict they read back), which the Job controller sets on its pods; Kubernetes expands
    # $(JOB_NAME) in args from the container's environment.
    assert given["JOB_NAME"] == {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}
    fetch = fetch_container(cronjob)
    values = evaluated.values()
    assert fetch["image"] == values["cloudCliImage"]
    given = env(fetch)
    assert given["CAPTURES"] == values["liveEvaluationCaptures"]
    assert given["TRUTH_PREFIX"] == values["liveEvaluationTruth"]
    assert given["TRUTH_FILE"] == f"{service}.csv"
    # The copy and the scoring share only the window copied, which the scoring cannot change.
    mounts = {m["name"]: m for m in evaluate["volumeMounts"]}
    assert mounts["work"]["mountPath"] == "/work"
    assert mounts["work"]["readOnly"] is True
    script = {v["name"]: v for v in job_pod(cronjob)["volumes"]}["fetch"]["configMap"]["name"]
    assert evaluated.configmap("live-evaluation-fetch")["metadata"]["name"] == script
    assert evaluated.configmap("live-evaluation-fetch")["data"]["fetch.sh"] == FETCH.read_text()


def test_a_worse_verdict_fails_the_job_at_once_and_other_failures_are_retried(evaluated: Rendered) -> None:
    for service in SERVICES:
        [fail] = failing_at_once(evaluated.get("CronJob", live_evaluation(service)))
        # mlp evaluate: 3 the verdict is worse, 2 it cannot run on these files; neither changes on
        # a second try, where a lost node or a registry restart (1: MLflow is recreated on every
        # deploy) may.
        assert fail["action"] == "FailJob"
        assert fail["onExitCodes"] == {
            "containerName": "evaluate",
            "operator": "In",
            "values": [2, EVALUATE_WORSE],
        }
        assert 1 not in fail["onExitCodes"]["values"]


def test_the_schedule_is_daily_and_the_overdue_alert_allows_a_whole_run_past_a_day(
    evaluated: Rendered,
) -> None:
    cronjobs = [evaluated.get("CronJob", live_evaluation(service)) for service in SERVICES]
    for cronjob in cronjobs:
        assert cronjob["spec"]["schedule"].split()[2:] == ["*", "*", "*"], cronjob["spec"]["schedule"]
    check_runs_end_before_overdue(cronjobs, 24 * 3600)


def test_it_runs_unprivileged_with_the_clouds_identity_and_no_kubernetes_token(evaluated: Rendered) -> None:
    cronjobs = [evaluated.get("CronJob", live_evaluation(service)) for service in SERVICES]
    check_unprivileged(evaluated, "live-evaluation", cronjobs)


def test_it_reaches_mlflow_the_bucket_and_the_credentials_and_nothing_else(evaluated: Rendered) -> None:
    policies = evaluated.of_kind("NetworkPolicy")
    template = evaluated.get("CronJob", live_evaluation(SERVICES[0]))["spec"]["jobTemplate"]["spec"][
        "template"
    ]
    job = {"labels": template["metadata"]["labels"], "namespace": "ml-platform"}
    mlflow, prometheus = pod(evaluated, "mlflow"), pod(evaluated, "prometheus")
    assert flow(policies, job, mlflow, 5000)
    assert flow(policies, job, {"ip": "142.250.1.1"}, 443)  # Cloud Storage, S3, STS
    # The credentials: GKE's metadata server there, EKS Pod Identity's agent there; on EKS never the
    # node's instance metadata (169.254.169.254), whose credentials are the node role's.
    gke_metadata, eks_agent = {"ip": "169.254.169.254"}, {"ip": "169.254.170.23"}
    on_gke = evaluated.overlay == "gke"
    assert flow(policies, job, gke_metadata, 80) is on_gke
    assert flow(policies, job, eks_agent, 80) is not on_gke
    # Not the model servers, not Prometheus, and nothing reaches it.
    assert not flow(policies, job, pod(evaluated, SERVICES[0]), 8080)
    assert not flow(policies, job, prometheus, 9090)
    assert not flow(policies, prometheus, job, 8080)
    assert not flow(policies, job, {"ip": "142.250.1.1"}, 80)


def test_without_the_component_nothing_of_it_renders() -> None:
    for overlay in OVERLAYS:
        plain = render(overlay)
        assert not plain.of_kind("CronJob")
        assert not [o for o in plain.objects if "live-evaluation" in o["metadata"]["name"]]


# The copy step, against a bucket.

NOW = datetime(2026, 12, 4, 3, 17, tzinfo=UTC)


def capture_line(request_id: str) -> str:
    capture = {"model": {"name": "bankchurn", "version": "2"}, "instance": 0, "input": {}, "prediction": {}}
    return json.dumps({"logger": "servekit.capture", "request_id": request_id, "capture": capture})


def fetch(endpoint: str, work: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **aws_environment(endpoint, work / "home"),
        "WORK": str(work),
        "NOW": str(int(NOW.timestamp())),
        **settings,
    }
    return subprocess.run(
        ["/bin/sh", str(FETCH)], env=environment, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_copy_takes_the_last_days_of_captures_as_firehose_lays_them_out_and_the_truth(
    s3: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, client = s3
    create_bucket(client, "capture")

    def put(day: datetime, hour: int, name: str, ids: list[str]) -> str:
        key = f"firehose/{day:%Y/%m/%d}/{hour:02d}/{name}"
        body = gzip.compress(("\n".join(capture_line(i) for i in ids) + "\n").encode())
        client.put_object(Bucket="capture", Key=key, Body=body)
        return key.removeprefix("firehose/")

    today, yesterday = NOW, NOW - timedelta(days=1)
    inside = [
        put(yesterday, 23, "stream-1-2026-12-03-23-00", ["r1", "r2"]),
        put(today, 0, "stream-1-2026-12-04-00-00", ["r3"]),
        put(today, 2, "stream-1-2026-12-04-02-00", ["r4"]),
    ]
    put(NOW - timedelta(days=2), 12, "stream-1-2026-12-02-12-00", ["too-old"])
    # Another prefix of the bucket: not captures.
    client.put_object(Bucket="capture", Key="other/2026/12/04/00/x", Body=b"not ours")
    truth = "request_id,Exited\nr1,1\nr3,0\n"
    client.put_object(Bucket="capture", Key="truth/bankchurn.csv", Body=truth.encode())
    client.put_object(Bucket="capture", Key="truth/chicagotaxi.csv", Body=b"request_id,fare\n")

    settings = {
        "CAPTURES": "s3://capture/firehose/",
        "TRUTH_PREFIX": "s3://capture/truth",
        "TRUTH_FILE": "bankchurn.csv",
        "DAYS": "2",
    }
    result = fetch(endpoint, tmp_path, **settings)
    assert result.returncode == 0, result.stderr
    copied = sorted(
        p.relative_to(tmp_path / "captures").as_posix()
        for p in (tmp_path / "captures").rglob("*")
        if p.is_file()
    )
    assert copied == sorted(inside)
    assert (tmp_path / "truth.csv").read_text() == truth
    assert result.stdout.strip().endswith(
        "fetch: 3 capture file(s) of the last 2 day(s) from s3://capture/firehose, and s3://capture/truth/bankchurn.csv"
    )
    # What mlp evaluate then reads: the window's answers, in time order.
    assert [c.request_id for c in read_log(str(tmp_path / "captures"))] == ["r1", "r2", "r3", "r4"]

    # A window without captures copies none, and is not an error of the copy (mlp evaluate says it).
    empty = fetch(endpoint, tmp_path / "empty", **{**settings, "CAPTURES": "s3://capture/nothing"})
    assert empty.returncode == 0, empty.stderr
    assert not [p for p in (tmp_path / "empty" / "captures").rglob("*") if p.is_file()]


def test_a_missing_truth_file_or_a_url_of_no_bucket_fails_the_copy_saying_which(
    s3: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, client = s3
    create_bucket(client, "quiet")
    settings = {
        "CAPTURES": "s3://quiet/c",
        "TRUTH_PREFIX": "s3://quiet/truth",
        "TRUTH_FILE": "x.csv",
        "DAYS": "1",
    }
    missing = fetch(endpoint, tmp_path / "a", **settings)
    assert missing.returncode != 0
    assert "404" in missing.stderr or "does not exist" in missing.stderr, missing.stderr
    assert not (tmp_path / "a" / "truth.csv").exists()

    local = fetch(endpoint, tmp_path / "b", **{**settings, "CAPTURES": "/var/log/capture"})
    assert local.returncode == 2
    assert "fetch: CAPTURES=/var/log/capture: not a gs:// or s3:// URL" in local.stderr
    # A truth prefix that is no bucket is refused too, before any day is copied.
    local_truth = fetch(endpoint, tmp_path / "t", **{**settings, "TRUTH_PREFIX": "truth"})
    assert local_truth.returncode == 2
    assert "fetch: TRUTH_PREFIX=truth: not a gs:// or s3:// URL" in local_truth.stderr
    assert not (tmp_path / "t" / "captures").exists()

    unset = fetch(endpoint, tmp_path / "c", **{k: v for k, v in settings.items() if k != "DAYS"})
    assert unset.returncode != 0
    assert "DAYS" in unset.stderr
