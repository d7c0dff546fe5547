"""k8s/components/batch-scoring: each service's exported table scored every month by its champion.

The CronJobs as rendered on both overlays (the three steps, their images, identity, failure policy,
schedule against the alert, network and price), and the copy steps, transfer.sh, run with the real
AWS CLI against moto's S3 server around a real ``mlp score`` of what was fetched (the bucket is the
only stand-in: S3 cannot be reached from here). The Google Cloud CLI is on neither PyPI nor
Debian's archive, so the gs:// branch is not run here.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
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

from mixin.cluster import batch_scoring
from scripts import load_k8s_cost
from servekit import cli, loading, mlflow_registry, registry
from servekit.cli import score as score_command
from servekit.scoring.pool import usable_cpus
from servekit.testing import train_in_memory

COMPONENT = ROOT / "k8s" / "components" / "batch-scoring"
TRANSFER = COMPONENT / "transfer.sh"
#: k8s/cost.py, the module make cost runs.
cost = load_k8s_cost()
#: The shortest month: the alert must allow a whole run past it.
SHORTEST_MONTH_SECONDS = 28 * 86400


@pytest.fixture(scope="module", params=OVERLAYS)
def scoring(request: pytest.FixtureRequest) -> Rendered:
    return render(request.param, components=["batch-scoring"])


def steps(cronjob: Obj) -> dict[str, Obj]:
    """The pod's containers by name, in the order they run: fetch, score (init), upload."""
    spec = job_pod(cronjob)
    return {c["name"]: c for c in spec["initContainers"] + spec["containers"]}


def env(c: Obj) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in c["env"]}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_fetched_scored_by_its_own_image_and_uploaded_in_that_order(
    scoring: Rendered, service: str
) -> None:
    cronjob = scoring.get("CronJob", batch_scoring(service))
    spec = job_pod(cronjob)
    # Init containers run one after the other, and the upload only once both succeeded.
    assert [c["name"] for c in spec["initContainers"]] == ["fetch", "score"]
    assert [c["name"] for c in spec["containers"]] == ["upload"]
    assert all("restartPolicy" not in c for c in spec["initContainers"])  # no sidecar
    fetch, score, upload = steps(cronjob).values()
    # The service's own image, as its Deployment runs it: the same package scores as serves.
    assert score["image"] == container(scoring.get("Deployment", service))["image"]
    argv = [*score["command"], *score["args"]]
    assert argv == [
        "mlp",
        "score",
        service,
        "/work/input",
        "--output",
        "/work/output/scores.parquet",
        "--max-rejected",
        "1%",
        "--summary",
        "/work/output/summary.json",
    ]
    # The real CLI parses it, with the registry the pod reaches.
    args = cli.parser().parse_args(argv[1:])
    assert (args.func, args.service, args.max_rejected.percent) == (score_command.cmd_score, service, 1.0)
    assert args.summary.parent == args.output.parent  # uploaded with the scores
    assert service in registry.available()
    assert env(score)["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"

    values = scoring.values()
    assert fetch["image"] == upload["image"] == values["cloudCliImage"]
    assert fetch["command"] == ["/bin/sh", "/etc/batch-scoring/transfer.sh", "fetch"]
    assert upload["command"] == ["/bin/sh", "/etc/batch-scoring/transfer.sh", "upload"]
    assert env(fetch)["INPUT"] == values["batchScoringInput"]
    assert env(upload)["OUTPUT"] == values["batchScoringOutput"]
    assert env(fetch)["SERVICE"] == env(upload)["SERVICE"] == service
    # The scoring writes beside the table; the upload reads the scores and cannot change them.
    mounts = {c["name"]: {m["name"]: m for m in c["volumeMounts"]} for c in (fetch, score, upload)}
    assert all(m["work"]["mountPath"] == "/work" for m in mounts.values())
    assert mounts["upload"]["work"]["readOnly"] is True
    assert "transfer" not in mounts["score"]
    script = {v["name"]: v for v in spec["volumes"]}["transfer"]["configMap"]["name"]
    generated = scoring.configmap("batch-scoring-transfer")
    assert generated["metadata"]["name"] == script
    assert generated["data"]["transfer.sh"] == TRANSFER.read_text()


def test_a_table_that_cannot_be_scored_fails_the_job_at_once_and_other_failures_are_retried(
    scoring: Rendered,
) -> None:
    for service in SERVICES:
        [score, fetch] = failing_at_once(scoring.get("CronJob", batch_scoring(service)))
        # mlp score: 3 over --max-rejected, 2 a table it cannot score; neither changes on a second
        # try, where a lost node, the bucket or a registry restart (1) may.
        assert score == {
            "action": "FailJob",
            "onExitCodes": {
                "containerName": "score",
                "operator": "In",
                "values": [2, score_command.SCORE_OVER_REJECTION_LIMIT],
            },
        }
        assert fetch == {
            "action": "FailJob",
            "onExitCodes": {"containerName": "fetch", "operator": "In", "values": [2]},
        }


def test_the_schedule_is_monthly_and_the_overdue_alert_allows_a_whole_run_past_a_month(
    scoring: Rendered,
) -> None:
    cronjobs = [scoring.get("CronJob", batch_scoring(service)) for service in SERVICES]
    for cronjob in cronjobs:
        day, *rest = cronjob["spec"]["schedule"].split()[2:]
        assert (day, rest) == ("1", ["*", "*"]), cronjob["spec"]["schedule"]
    # Even after February, the shortest month.
    check_runs_end_before_overdue(cronjobs, SHORTEST_MONTH_SECONDS)


def test_it_runs_unprivileged_with_the_clouds_identity_and_no_kubernetes_token(scoring: Rendered) -> None:
    cronjobs = [scoring.get("CronJob", batch_scoring(service)) for service in SERVICES]
    check_unprivileged(scoring, "batch-scoring", cronjobs)
    for cronjob in cronjobs:
        # mlp score runs a worker per CPU of its limit, rounded up: the request is the limit, a
        # whole number of CPUs, so it gets them.
        score = steps(cronjob)["score"]["resources"]
        assert score["requests"]["cpu"] == score["limits"]["cpu"]
        assert cost.quantity(score["limits"]["cpu"]).is_integer()


def test_it_reaches_mlflow_the_bucket_and_the_credentials_and_nothing_else(scoring: Rendered) -> None:
    policies = scoring.of_kind("NetworkPolicy")
    template = scoring.get("CronJob", batch_scoring(SERVICES[0]))["spec"]["jobTemplate"]["spec"]["template"]
    job = {"labels": template["metadata"]["labels"], "namespace": "ml-platform"}
    assert flow(policies, job, pod(scoring, "mlflow"), 5000)
    assert flow(policies, job, {"ip": "142.250.1.1"}, 443)
    # The credentials: GKE's metadata server there, EKS Pod Identity's agent there; on EKS never the
    # node's instance metadata (169.254.169.254), whose credentials are the node role's.
    on_gke = scoring.overlay == "gke"
    assert flow(policies, job, {"ip": "169.254.169.254"}, 80) is on_gke
    assert flow(policies, job, {"ip": "169.254.170.23"}, 80) is not on_gke
    assert not flow(policies, job, pod(scoring, SERVICES[0]), 8080)
    assert not flow(policies, job, pod(scoring, "prometheus"), 9090)
    assert not flow(policies, pod(scoring, "prometheus"), job, 8080)
    assert not flow(policies, job, {"ip": "142.250.1.1"}, 80)


def test_make_cost_prices_a_monthly_run_at_its_deadline(scoring: Rendered) -> None:
    jobs = [j for j in cost.scheduled(scoring.objects) if j.name.endswith("-batch-scoring")]
    assert sorted(j.name for j in jobs) == sorted(batch_scoring(s) for s in SERVICES)
    assert all(j.runs_a_month == 1 and j.hours_a_run == 4 for j in jobs)
    # The Pod as the scheduler counts it: the score step, the largest of the three.
    assert {(j.pod.cpu, j.pod.memory_gib, j.pod.ephemeral_gib) for j in jobs} == {(1.0, 1.5, 8.0)}


def test_the_readme_gives_what_make_cost_prices_a_run_at() -> None:
    readme = " ".join((ROOT / "k8s" / "components" / "batch-scoring" / "README.md").read_text().split())
    prices = yaml.safe_load(cost.PRICES.read_text())
    month = {}
    for overlay in OVERLAYS:
        job = cost.scheduled(render(overlay, components=["batch-scoring"]).objects)[0]
        month[overlay] = job.month(prices[overlay])
        pod = job.pod
        assert (
            f"a pod of {pod.cpu:g} CPU, {pod.memory_gib:g} GiB and {pod.ephemeral_gib:g} GiB of disk"
            in readme
        )
    assert (
        f"**${month['gke']:.2f} a month per service on GKE Autopilot, ${month['eks']:.2f} on EKS**" in readme
    )


def test_its_pod_fits_a_node_of_each_cloud_beside_the_daemonsets(scoring: Rendered) -> None:
    """A pod asking more than any node leaves to Pods waits Pending until its deadline, and the run
    fails as if scoring had (BatchScoringFailed): on EKS an m6i.large leaves 1.78 CPUs, not 2."""
    prices = yaml.safe_load(cost.PRICES.read_text())[scoring.overlay]
    assert cost.unschedulable(scoring.objects, prices) == []
    if prices["billing"] == "nodes":
        room = cost.node_room(prices)
        for job in cost.scheduled(scoring.objects):
            assert job.pod.cpu <= room.cpu, job.name
            assert job.pod.memory_gib <= room.memory_gib, job.name


def test_without_the_component_nothing_of_it_renders() -> None:
    for overlay in OVERLAYS:
        assert not [o for o in render(overlay).objects if "batch-scoring" in o["metadata"]["name"]]


# The copy steps, against a bucket, around a real scoring of what was fetched.

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def transfer(step: str, endpoint: str, work: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    started = transfer_started(step, endpoint, work, **settings)
    out, err = started.communicate(timeout=300)
    return subprocess.CompletedProcess(started.args, started.returncode, out, err)


def transfer_started(step: str, endpoint: str, work: Path, **settings: str) -> subprocess.Popen[str]:
    """``transfer.sh <step>`` started against the S3 server at ``endpoint``, as the pod runs it."""
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    environment = {
        **aws_environment(endpoint, work / "tmp"),
        "TMPDIR": str(work / "tmp"),
        "WORK": str(work),
        "NOW": str(int(NOW.timestamp())),
        **settings,
    }
    return subprocess.Popen(
        ["/bin/sh", str(TRANSFER), step],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def csv_bytes(table: pa.Table) -> bytes:
    return table.to_pandas().to_csv(index=False).encode()


#: How a warehouse writes a part in each format, and the suffix of its name.
EXPORTS = {"parquet": (parquet_bytes, "parquet"), "csv": (csv_bytes, "csv")}


@pytest.mark.parametrize("export_format", EXPORTS)
def test_a_warehouse_export_is_fetched_scored_and_uploaded_under_the_runs_date(
    export_format: str, s3: tuple[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Parquet export, and a CSV one with its header, end as the same Parquet scores: the CSV's
    columns as text."""
    endpoint, client = s3
    bucket = f"scoring-{export_format}-tables"
    create_bucket(client, bucket)
    encoded, suffix = EXPORTS[export_format]
    spec = registry.get_service("bankchurn")
    artifact, _ = train_in_memory(spec, rows=600)
    table = pa.Table.from_pandas(spec.recipe.generate(90, seed=5), preserve_index=False)
    # BigQuery's EXPORT DATA names: 000000000000.parquet or .csv, ...; beside them a writer's marker,
    # another service's table, and a file in a sub-prefix, none of which is this table.
    for part in range(3):
        rows = table.slice(part * 30, 30)
        client.put_object(Bucket=bucket, Key=f"export/bankchurn/{part:012}.{suffix}", Body=encoded(rows))
    client.put_object(Bucket=bucket, Key="export/bankchurn/_SUCCESS", Body=b"")
    client.put_object(Bucket=bucket, Key="export/bankchurnish/000000000000.parquet", Body=b"not ours")
    settings = {
        "SERVICE": "bankchurn",
        "INPUT": f"s3://{bucket}/export/",
        "OUTPUT": f"s3://{bucket}/scores",
    }

    fetched = transfer("fetch", endpoint, tmp_path, **settings)
    assert fetched.returncode == 0, fetched.stderr
    assert (
        fetched.stdout.strip()
        == f"fetch: 3 part(s) of s3://{bucket}/export/bankchurn/ to score, run of 2026-12-01"
    )
    assert sorted(p.name for p in (tmp_path / "input").iterdir()) == [
        f"000000000000.{suffix}",
        f"000000000001.{suffix}",
        f"000000000002.{suffix}",
        "_SUCCESS",
    ]
    # The score step as the CronJob runs it, on what was fetched: its arguments as rendered, with
    # the model from memory rather than from a registry (the registry's own test is test_score).
    monkeypatch.setattr(loading, "load_artifact", lambda name, uri, tracking_uri: artifact)
    monkeypatch.setattr(mlflow_registry, "registry_client", lambda tracking_uri: None)
    # Nothing but the steps makes the directories: the pod's emptyDir /work starts empty.
    score = steps(render("eks", components=["batch-scoring"]).get("CronJob", batch_scoring("bankchurn")))[
        "score"
    ]
    assert cli.main([arg.replace("/work", str(tmp_path)) for arg in score["args"]]) == 0

    uploaded = transfer("upload", endpoint, tmp_path, **settings)
    assert uploaded.returncode == 0, uploaded.stderr
    assert (
        uploaded.stdout.strip()
        == f"upload: scores.parquet, summary.json and _SUCCESS to s3://{bucket}/scores/bankchurn/run_date=2026-12-01/"
    )
    listed = client.list_objects_v2(Bucket=bucket, Prefix="scores/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "scores/bankchurn/run_date=2026-12-01/_SUCCESS",
        "scores/bankchurn/run_date=2026-12-01/scores.parquet",
        "scores/bankchurn/run_date=2026-12-01/summary.json",
    ]
    summary = client.get_object(Bucket=bucket, Key="scores/bankchurn/run_date=2026-12-01/summary.json")
    written = json.loads(summary["Body"].read())
    assert (written["rows"], written["scored"], written["exit_status"]) == (90, 90, 0)
    assert written["model"]["version"] == artifact.version
    assert written["output_format"] == "parquet"
    assert written["options"] == {
        "explain": False, "reasons": 0, "keep": None, "prefix": "", "chunk_rows": 10_000,
        "workers": usable_cpus(),  # the CPUs the command may use: a pod's CPU limit
    }  # fmt: skip
    body = client.get_object(Bucket=bucket, Key="scores/bankchurn/run_date=2026-12-01/scores.parquet")[
        "Body"
    ].read()
    scores = pq.read_table(io.BytesIO(body))
    copied = scores.select(table.schema.names)
    if export_format == "csv":
        # The cells as the export wrote them, as text.
        assert copied.to_pydict() == {
            name: list(map(str, table[name].to_pylist())) for name in table.column_names
        }
    else:
        assert copied.equals(table)
    assert scores.num_rows == 90
    assert scores.schema.field("churn_probability").type == pa.float64()


def test_a_hive_partitioned_export_is_fetched_and_scored_with_its_partitions_as_a_column(
    s3: tuple[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Athena's UNLOAD ... partitioned_by and Spark's partitionBy write every part under a
    key=value sub-prefix, none directly under the table's: each is a part to score, and the
    partition's value a column of the scores."""
    endpoint, client = s3
    bucket = "scoring-partitioned"
    create_bucket(client, bucket)
    spec = registry.get_service("bankchurn")
    artifact, _ = train_in_memory(spec, rows=600)
    table = pa.Table.from_pandas(spec.recipe.generate(60, seed=7), preserve_index=False)
    for day, rows in (("2026-11-01", table.slice(0, 25)), ("2026-11-02", table.slice(25, 35))):
        key = f"unload/bankchurn/dt={day}/20261201_000000_00017_abcde_{day}"  # Athena: no suffix
        client.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(rows))
        client.put_object(Bucket=bucket, Key=f"unload/bankchurn/dt={day}/_SUCCESS", Body=b"")
    settings = {"SERVICE": "bankchurn", "INPUT": f"s3://{bucket}/unload"}

    fetched = transfer("fetch", endpoint, tmp_path, **settings)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == (
        f"fetch: 2 part(s) of s3://{bucket}/unload/bankchurn/ to score, run of 2026-12-01"
    )
    monkeypatch.setattr(loading, "load_artifact", lambda name, uri, tracking_uri: artifact)
    monkeypatch.setattr(mlflow_registry, "registry_client", lambda tracking_uri: None)
    score = steps(render("eks", components=["batch-scoring"]).get("CronJob", batch_scoring("bankchurn")))[
        "score"
    ]
    assert cli.main([arg.replace("/work", str(tmp_path)) for arg in score["args"]]) == 0
    scores = pq.read_table(tmp_path / "output" / "scores.parquet")
    assert scores.num_rows == 60
    assert scores.column("dt").to_pylist() == ["2026-11-01"] * 25 + ["2026-11-02"] * 35
    assert scores.select(table.schema.names).equals(table)


def test_with_a_marker_named_the_copy_waits_for_the_export_to_finish(
    s3: tuple[str, Any], tmp_path: Path
) -> None:
    """A Spark or Glue export writes _SUCCESS last: the copy waits for it, and gives up with exit 2."""
    endpoint, client = s3
    create_bucket(client, "scoring-spark")
    table = parquet_bytes(pa.table({"x": [1.0]}))
    settings = {
        "SERVICE": "chicagotaxi",
        "INPUT": "s3://scoring-spark/out",
        "INPUT_MARKER": "_SUCCESS",
        "INPUT_MARKER_POLL_SECONDS": "1",
        "INPUT_MARKER_WAIT_SECONDS": "2",
    }
    # Parts written, the marker not yet: after the wait, nothing is copied.
    client.put_object(Bucket="scoring-spark", Key="out/chicagotaxi/part-00000.parquet", Body=table)
    late = transfer("fetch", endpoint, tmp_path / "a", **settings)
    assert late.returncode == 2
    assert "fetch: s3://scoring-spark/out/chicagotaxi/_SUCCESS did not appear within 2 s" in late.stderr
    assert not (tmp_path / "a" / "input").exists()

    # The export finishes while the copy waits.
    environment = {**settings, "INPUT_MARKER_WAIT_SECONDS": "60"}
    waiting = transfer_started("fetch", endpoint, tmp_path / "b", **environment)
    time.sleep(2.5)
    assert waiting.poll() is None  # still waiting
    client.put_object(Bucket="scoring-spark", Key="out/chicagotaxi/part-00001.parquet", Body=table)
    client.put_object(Bucket="scoring-spark", Key="out/chicagotaxi/_SUCCESS", Body=b"")
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "fetch: s3://scoring-spark/out/chicagotaxi/_SUCCESS appeared after about " in out
    assert "fetch: 2 part(s) of s3://scoring-spark/out/chicagotaxi/ to score" in out

    # Without a marker named, nothing is waited for (BigQuery's EXPORT DATA writes none).
    unnamed = {k: v for k, v in settings.items() if not k.startswith("INPUT_MARKER")}
    create_bucket(client, "scoring-bigquery")
    client.put_object(Bucket="scoring-bigquery", Key="out/chicagotaxi/000000000000.parquet", Body=table)
    direct = transfer("fetch", endpoint, tmp_path / "c", **{**unnamed, "INPUT": "s3://scoring-bigquery/out"})
    assert direct.returncode == 0, direct.stderr
    assert "appeared" not in direct.stdout


def test_nothing_exported_no_scores_or_a_url_of_no_bucket_fails_the_step_saying_which(
    s3: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, client = s3
    create_bucket(client, "scoring-quiet")
    # Markers, a writer's hidden checksum, and a part still under a writer's _temporary/: none is a
    # part mlp score would read, at the top or in a partition.
    for key in (
        "_SUCCESS",
        ".part-0.parquet.crc",
        "_temporary/0/part-0.parquet",
        "dt=2026-11-01/_SUCCESS",
        "dt=2026-11-01/.part-0.parquet.crc",
    ):
        client.put_object(Bucket="scoring-quiet", Key=f"export/nlpinsight/{key}", Body=b"not a part")
    settings = {"SERVICE": "nlpinsight", "INPUT": "s3://scoring-quiet/export"}

    only_markers = transfer("fetch", endpoint, tmp_path / "a", **settings)
    assert only_markers.returncode == 2
    assert (
        "fetch: nothing to score: no object under s3://scoring-quiet/export/nlpinsight/ but markers"
        in only_markers.stderr
    )
    assert not (tmp_path / "a" / "run-date").exists()

    nothing = transfer("fetch", endpoint, tmp_path / "b", **{**settings, "INPUT": "s3://scoring-quiet/none"})
    assert nothing.returncode == 2
    assert "nothing to score" in nothing.stderr

    local = transfer("fetch", endpoint, tmp_path / "c", **{**settings, "INPUT": "/data/export"})
    assert local.returncode == 2
    assert "fetch: INPUT=/data/export: not a gs:// or s3:// URL" in local.stderr
    (tmp_path / "d" / "output").mkdir(parents=True)
    (tmp_path / "d" / "run-date").write_text("2026-12-01\n")
    no_bucket = transfer("upload", endpoint, tmp_path / "d", SERVICE="nlpinsight", OUTPUT="scores/")
    assert no_bucket.returncode == 2
    assert "upload: OUTPUT=scores/: not a gs:// or s3:// URL" in no_bucket.stderr

    # Scores that are not there (the step run without the scoring): the copy fails, and no marker
    # is written, since it comes last.
    create_bucket(client, "scoring-scores")
    missing = transfer(
        "upload", endpoint, tmp_path / "d", SERVICE="nlpinsight", OUTPUT="s3://scoring-scores/x"
    )
    assert missing.returncode != 0
    assert "scores.parquet" in missing.stderr
    assert client.list_objects_v2(Bucket="scoring-scores").get("KeyCount") == 0

    unknown = transfer("check", endpoint, tmp_path / "e", **settings)
    assert unknown.returncode == 2
    assert "transfer.sh: check: neither fetch nor upload" in unknown.stderr
