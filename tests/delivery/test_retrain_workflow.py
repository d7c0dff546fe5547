""".github/workflows/retrain.yml's shell steps, run as GitHub runs them (``bash -e``), outside GitHub.

The weekly schedule trained on synthetic data when ``TRAINING_DATA_DIR`` was unset, and when it was
set nothing put the files on the runner, so ``--data`` named a file that was not there. The S3 copy
runs the real AWS CLI against moto's S3 server; ``gcloud`` is a stub on PATH that records its
arguments (Cloud Storage cannot be reached from here).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from processes import ROOT
from workflow_steps import run_script

sys.path.insert(0, str(ROOT / "tests" / "k8s"))
from buckets import aws_environment, create_bucket, s3_server

WORKFLOW = ROOT / ".github" / "workflows" / "retrain.yml"
JOB = yaml.safe_load(WORKFLOW.read_text())["jobs"]["train"]
STEPS = {step.get("id", step.get("name")): step for step in JOB["steps"]}


def run_step(step_id: str, work: Path, path: str = os.environ["PATH"], **env: str) -> tuple[int, str, str]:
    """The step's script: status, output, and what it wrote to ``$GITHUB_OUTPUT``."""
    return run_script(STEPS[step_id]["run"], work, work / "runner-temp", path, **env)


@pytest.mark.parametrize("data", ["", "/data/training", "https://bucket/training"])
def test_the_schedule_refuses_to_run_without_a_bucket_of_real_data(data: str, tmp_path: Path) -> None:
    status, said, output = run_step("where", tmp_path, DATA=data, EVENT="schedule")
    assert status == 1
    [error] = [line for line in said.splitlines() if line.startswith("::error::")]
    assert error.startswith(f"::error::TRAINING_DATA_DIR{'=' + data if data else ''} is not")
    assert "gs://" in error
    assert "s3://" in error
    assert output == ""


def test_run_by_hand_without_data_it_trains_on_the_synthetic_data_saying_so(tmp_path: Path) -> None:
    status, said, output = run_step("where", tmp_path, DATA="", EVENT="workflow_dispatch")
    assert status == 0
    assert said.startswith("::warning::TRAINING_DATA_DIR is not set: training on the synthetic data")
    assert output == ""  # no cloud: no sign-in, no copy, no --data


@pytest.mark.parametrize(
    ("data", "cloud"), [("gs://acme-ml/training", "gs"), ("s3://acme-ml/training/", "s3")]
)
def test_a_bucket_folder_picks_the_cloud_to_sign_in_to(data: str, cloud: str, tmp_path: Path) -> None:
    readers = {"GCP_IDENTITY": "reader@p.iam.gserviceaccount.com", "AWS_IDENTITY": "arn:aws:iam::1:role/r"}
    for event in ("schedule", "workflow_dispatch"):
        assert run_step("where", tmp_path, DATA=data, EVENT=event, **readers) == (0, "", f"cloud={cloud}\n")
    # Each cloud's sign-in runs for its own buckets only, with the job's OIDC token.
    assert JOB["permissions"]["id-token"] == "write"
    signs_in = {
        step["uses"].split("@")[0]: step["if"]
        for step in JOB["steps"]
        if step.get("name", "").startswith("Authenticate")
    }
    assert signs_in == {
        "google-github-actions/auth": "steps.where.outputs.cloud == 'gs'",
        "aws-actions/configure-aws-credentials": "steps.where.outputs.cloud == 's3'",
    }
    assert STEPS["data"]["if"] == "steps.where.outputs.cloud != ''"


@pytest.mark.parametrize(
    ("data", "variable", "other"),
    [
        ("gs://acme-ml/training", "GCP_RETRAIN_SERVICE_ACCOUNT", "AWS_IDENTITY"),
        ("s3://acme-ml/training", "AWS_RETRAIN_ROLE_ARN", "GCP_IDENTITY"),
    ],
)
def test_a_bucket_without_its_reader_stops_the_job_naming_the_variable(
    data: str, variable: str, other: str, tmp_path: Path
) -> None:
    """Retrain signed in as the deploy's identity (GCP_SERVICE_ACCOUNT, AWS_ROLE_ARN), which could
    change the cluster; its own may only read the training data, and a repository that has not set
    it yet is told which variable to set."""
    assert JOB["environment"] == "training"
    signed_in = [step["with"] for step in JOB["steps"] if step.get("name", "").startswith("Authenticate")]
    assert [w.get("service_account", w.get("role-to-assume")) for w in signed_in] == [
        "${{ vars.GCP_RETRAIN_SERVICE_ACCOUNT }}",
        "${{ vars.AWS_RETRAIN_ROLE_ARN }}",
    ]
    status, said, output = run_step("where", tmp_path, DATA=data, EVENT="schedule", **{other: "reader"})
    assert (status, output) == (1, "")
    assert said.startswith(f"::error::TRAINING_DATA_DIR={data} but {variable} is not set: set it in the ")


def concurrency_groups(service: str, dispatched: str | None) -> set[str]:
    """The concurrency groups Retrain's job for ``service`` is in, workflow-level and job-level, as
    GitHub evaluates them: ``dispatched`` is the manual run's input, None for the weekly run."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    contexts = {
        "inputs": SimpleNamespace(service=dispatched or ""),
        "matrix": SimpleNamespace(service=service),
    }

    def evaluated(expression: re.Match[str]) -> str:
        python = expression.group(1).replace("||", " or ").replace("&&", " and ")
        return str(eval(python, {"__builtins__": {}}, contexts))  # the workflow file's own text

    groups = set()
    for holder in (workflow, JOB):
        if "concurrency" in holder:
            # A run that finds its group busy waits for it; it never cancels a training.
            assert holder["concurrency"]["cancel-in-progress"] is False
            groups.add(re.sub(r"\$\{\{\s*(.*?)\s*\}\}", evaluated, holder["concurrency"]["group"]))
    return groups


def test_two_trainings_of_one_model_never_run_at_once() -> None:
    """`retrain-${{ inputs.service || 'all' }}`: the weekly run was in retrain-all and a manual
    bankchurn run in retrain-bankchurn, so both trained bankchurn at once, each registering a
    challenger and promoting against the same champion. Different models still train side by side."""
    services = yaml.safe_load(WORKFLOW.read_text())[True]["workflow_dispatch"]["inputs"]["service"]["options"]
    for service in services:
        weekly, manual = concurrency_groups(service, None), concurrency_groups(service, service)
        assert weekly & manual, (service, weekly, manual)
        for other in set(services) - {service}:
            assert not weekly & concurrency_groups(other, other), (service, other)


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    with s3_server() as server:
        yield server


def test_the_services_file_is_copied_from_s3_and_handed_to_mlp_train(
    s3: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, client = s3
    create_bucket(client, "retrain-data")
    client.put_object(Bucket="retrain-data", Key="weekly/bankchurn.csv", Body=b"CreditScore,Exited\n600,1\n")
    aws = aws_environment(endpoint, tmp_path)
    settings = {"DATA": "s3://retrain-data/weekly/", "CLOUD": "s3", **aws}
    status, said, output = run_step("data", tmp_path, SERVICE="bankchurn", **settings)
    assert status == 0, said
    copied = tmp_path / "runner-temp" / "training-data" / "bankchurn.csv"
    assert copied.read_bytes() == b"CreditScore,Exited\n600,1\n"
    assert output == f"file={copied}\n"

    # A service whose file is not in the bucket: the step fails naming the object.
    status, said, output = run_step("data", tmp_path, SERVICE="nlpinsight", **settings)
    assert status == 1
    assert (
        "::error::cannot copy s3://retrain-data/weekly/nlpinsight.csv (TRAINING_DATA_DIR/nlpinsight.csv): "
        "does it exist, and may this workflow's identity read it?"
    ) in said.splitlines()
    assert output == ""


def test_the_services_file_is_copied_from_cloud_storage_with_gcloud(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "gcloud-calls"
    gcloud = bin_dir / "gcloud"
    # Records its arguments and writes the destination, as `gcloud storage cp SRC DST` does.
    gcloud.write_text(f'#!/bin/sh\necho "$@" >>"{calls}"\necho "fare,miles" >"$4"\n')
    gcloud.chmod(0o755)
    status, said, output = run_step(
        "data",
        tmp_path,
        path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        DATA="gs://acme-ml/training",
        CLOUD="gs",
        SERVICE="chicagotaxi",
    )
    assert status == 0, said
    copied = tmp_path / "runner-temp" / "training-data" / "chicagotaxi.csv"
    assert calls.read_text() == f"storage cp gs://acme-ml/training/chicagotaxi.csv {copied}\n"
    assert output == f"file={copied}\n"


def mlp_stub(work: Path, status: int) -> Path:
    """``.venv/bin/mlp`` in ``work`` that prints its arguments and exits with ``status``."""
    mlp = work / ".venv" / "bin" / "mlp"
    mlp.parent.mkdir(parents=True)
    mlp.write_text(f'#!/bin/sh\necho "mlp $*"\nexit {status}\n')
    mlp.chmod(0o755)
    return mlp


def test_the_fetched_file_is_trained_on_and_a_failed_training_fails_the_step(tmp_path: Path) -> None:
    """``mlp train | tee`` under ``bash -e`` had tee's status: a refused training passed."""
    assert STEPS["train"]["env"]["FILE"] == "${{ steps.data.outputs.file }}"
    mlp_stub(tmp_path / "ok", 0)
    status, said, _ = run_step("train", tmp_path / "ok", SERVICE="bankchurn", FILE="/runner/bankchurn.csv")
    assert (status, said) == (0, "mlp train bankchurn --data /runner/bankchurn.csv\n")
    assert (tmp_path / "ok" / "train.log").read_text() == said
    mlp_stub(tmp_path / "refused", 2)
    status, said, _ = run_step("train", tmp_path / "refused", SERVICE="bankchurn", FILE="")
    assert (status, said) == (2, "mlp train bankchurn\n")
