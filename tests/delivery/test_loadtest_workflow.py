""".github/workflows/loadtest.yml's training-data steps, run as GitHub runs them (``bash -e``).

The load test only checked out the repository: a model Retrain trained on
``$RUNNER_TEMP/training-data/<service>.csv`` (its ``GET /model``'s ``data.source``) had no file of
its own on the runner and was sent synthetic rows, which set off its drift alerts for an hour. The
workflow now copies each file from Retrain's ``TRAINING_DATA_DIR`` to Retrain's path: these tests
run both workflows' copy steps and compare where the files land. The S3 copy runs the real AWS CLI
against moto's S3 server; ``gcloud`` is a stub on PATH that records its arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from processes import ROOT
from workflow_steps import run_script

sys.path.insert(0, str(ROOT / "tests" / "k8s"))
from buckets import aws_environment, create_bucket, s3_server

SERVICES = ("bankchurn", "nlpinsight", "chicagotaxi")


def job(workflow: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())["jobs"][
        name
    ]
    return found


LOADTEST = job("loadtest.yml", "locust")
RETRAIN = job("retrain.yml", "train")


def steps(of: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step.get("id", step.get("name")): step for step in of["steps"]}


def run_step(
    step: dict[str, Any], work: Path, path: str = os.environ["PATH"], **env: str
) -> tuple[int, str, str]:
    """The step's script with ``RUNNER_TEMP`` under ``work/..`` (shared by the steps of one test):
    status, output, and what went to ``$GITHUB_OUTPUT``."""
    return run_script(step["run"], work, work.parent / "runner-temp", path, **env)


@pytest.mark.parametrize(
    ("data", "cloud", "identity"),
    [("gs://acme-ml/training", "gs", "GCP_IDENTITY"), ("s3://acme-ml/training/", "s3", "AWS_IDENTITY")],
)
def test_retrains_bucket_folder_picks_the_cloud_to_sign_in_to_as_retrain_does(
    data: str, cloud: str, identity: str, tmp_path: Path
) -> None:
    assert run_step(steps(LOADTEST)["where"], tmp_path, DATA=data, **{identity: "reader"}) == (
        0,
        "",
        f"cloud={cloud}\n",
    )
    assert steps(LOADTEST)["where"]["env"]["DATA"] == steps(RETRAIN)["where"]["env"]["DATA"]
    assert LOADTEST["permissions"] == RETRAIN["permissions"]
    assert steps(LOADTEST)["data"]["if"] == steps(RETRAIN)["data"]["if"]


def test_the_load_test_signs_in_to_its_own_environment_as_a_reader_of_the_training_data() -> None:
    """It ran in `production`: every load test, of staging too, waited for a deploy reviewer, was a
    production deployment, and signed in as the deploy identity against a URL the dispatcher typed."""
    assert (LOADTEST["environment"], RETRAIN["environment"]) == ("loadtest", "training")

    def sign_ins(of: dict[str, Any]) -> dict[str, dict[str, str]]:
        return {
            step["uses"].split("@")[0]: step["with"]
            for step in of["steps"]
            if step.get("name", "").startswith("Authenticate")
        }

    theirs, ours = sign_ins(RETRAIN), sign_ins(LOADTEST)
    assert ours == {
        "google-github-actions/auth": {
            **theirs["google-github-actions/auth"],
            "service_account": "${{ vars.LOADTEST_GCP_SERVICE_ACCOUNT }}",
        },
        "aws-actions/configure-aws-credentials": {
            **theirs["aws-actions/configure-aws-credentials"],
            "role-to-assume": "${{ vars.LOADTEST_AWS_ROLE_ARN }}",
        },
    }
    text = (ROOT / ".github" / "workflows" / "loadtest.yml").read_text()
    for deploys in (
        "GCP_DEPLOY_SERVICE_ACCOUNT",
        "AWS_DEPLOY_ROLE_ARN",
        "_RETRAIN_",
        "MLFLOW_TRACKING_TOKEN",
    ):
        assert deploys not in text
    # What a user creates is said where the deploys' environment and identities are.
    for overlay, variable in (("gke", "LOADTEST_GCP_SERVICE_ACCOUNT"), ("eks", "LOADTEST_AWS_ROLE_ARN")):
        readme = (ROOT / "k8s" / "overlays" / overlay / "README.md").read_text()
        assert "## Load test from CI" in readme
        section = readme.split("## Load test from CI")[1].split("\n## ")[0]
        for named in ("`loadtest`", variable, "TRAINING_DATA_DIR"):
            assert named in section


def test_without_a_bucket_nothing_is_fetched_and_a_typo_stops_the_job(tmp_path: Path) -> None:
    status, said, output = run_step(steps(LOADTEST)["where"], tmp_path, DATA="")
    assert (status, output) == (0, "")
    assert said.startswith("::notice::TRAINING_DATA_DIR is not set in the loadtest environment")
    status, said, output = run_step(steps(LOADTEST)["where"], tmp_path, DATA="/data/training")
    assert (status, output) == (1, "")
    assert said.startswith("::error::TRAINING_DATA_DIR=/data/training is not a bucket folder")


@pytest.mark.parametrize(
    ("data", "variable", "other"),
    [
        ("gs://acme-ml/training", "LOADTEST_GCP_SERVICE_ACCOUNT", "AWS_IDENTITY"),
        ("s3://acme-ml/training", "LOADTEST_AWS_ROLE_ARN", "GCP_IDENTITY"),
    ],
)
def test_a_bucket_without_its_reader_stops_the_job_naming_the_variable(
    data: str, variable: str, other: str, tmp_path: Path
) -> None:
    """Not the deploy identity in its place: the sign-in would fail with the action's own words."""
    status, said, output = run_step(steps(LOADTEST)["where"], tmp_path, DATA=data, **{other: "reader"})
    assert (status, output) == (1, "")
    assert said.startswith(f"::error::TRAINING_DATA_DIR={data} but {variable} is not set: set it in the ")


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    with s3_server() as server:
        yield server


def test_each_services_file_lands_where_retrain_trained_on_it(s3: tuple[str, Any], tmp_path: Path) -> None:
    endpoint, client = s3
    create_bucket(client, "loadtest-data")
    for service in SERVICES:
        client.put_object(
            Bucket="loadtest-data", Key=f"weekly/{service}.csv", Body=f"{service}\n1\n".encode()
        )
    settings = {"DATA": "s3://loadtest-data/weekly/", "CLOUD": "s3", **aws_environment(endpoint, tmp_path)}
    status, said, output = run_step(steps(LOADTEST)["data"], tmp_path / "loadtest", **settings)
    assert status == 0, said
    fetched = dict(line.split("=", 1) for line in output.splitlines())
    assert set(fetched) == set(SERVICES)
    for service in SERVICES:
        # Retrain's copy on a runner of the same RUNNER_TEMP: the path its model names.
        retrained = run_step(
            steps(RETRAIN)["data"], tmp_path / f"retrain-{service}", SERVICE=service, **settings
        )
        assert retrained[0] == 0, retrained[1]
        assert retrained[2] == f"file={fetched[service]}\n"
        assert Path(fetched[service]).read_text() == f"{service}\n1\n"


def test_a_file_missing_from_the_bucket_is_a_warning_and_the_others_are_fetched(
    s3: tuple[str, Any], tmp_path: Path
) -> None:
    """One missing file failed the job before Locust started: no service was load-tested, not even
    one of synthetic data, and allow_synthetic could not help. The load test decides per model."""
    endpoint, client = s3
    create_bucket(client, "part-data")
    for service in ("bankchurn", "chicagotaxi"):
        client.put_object(Bucket="part-data", Key=f"weekly/{service}.csv", Body=b"a\n1\n")
    settings = {"DATA": "s3://part-data/weekly", "CLOUD": "s3", **aws_environment(endpoint, tmp_path)}
    status, said, output = run_step(steps(LOADTEST)["data"], tmp_path / "missing", **settings)
    assert status == 0, said
    files = tmp_path / "runner-temp" / "training-data"
    fetched = ("bankchurn", "chicagotaxi")
    assert output.splitlines() == [f"{service}={files / service}.csv" for service in fetched]
    assert sorted(path.name for path in files.iterdir()) == ["bankchurn.csv", "chicagotaxi.csv"]
    assert (
        "::warning::cannot copy s3://part-data/weekly/nlpinsight.csv (TRAINING_DATA_DIR/nlpinsight.csv): "
        "does it exist, and may the loadtest environment's identity read it? A nlpinsight model trained on "
        "it is not load-tested (unless allow_synthetic); one trained on synthetic data is"
    ) in said.splitlines()


def test_each_services_file_is_copied_from_cloud_storage_with_gcloud(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "gcloud-calls"
    (bin_dir / "gcloud").write_text(f'#!/bin/sh\necho "$@" >>"{calls}"\necho "fare,miles" >"$4"\n')
    (bin_dir / "gcloud").chmod(0o755)
    status, said, _ = run_step(
        steps(LOADTEST)["data"],
        tmp_path / "work",
        path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        DATA="gs://acme-ml/training",
        CLOUD="gs",
    )
    assert status == 0, said
    files = tmp_path / "runner-temp" / "training-data"
    assert calls.read_text().splitlines() == [
        f"storage cp gs://acme-ml/training/{service}.csv {files / service}.csv" for service in SERVICES
    ]


def test_the_load_test_sends_synthetic_rows_to_a_model_of_real_data_only_when_asked() -> None:
    inputs = yaml.safe_load((ROOT / ".github" / "workflows" / "loadtest.yml").read_text())[True]
    allow = inputs["workflow_dispatch"]["inputs"]["allow_synthetic"]
    assert (allow["type"], allow["default"]) == ("boolean", False)
    env = steps(LOADTEST)["Locust (make loadtest; thresholds fail the job)"]["env"]
    assert env["LOADTEST_ALLOW_SYNTHETIC"] == "${{ inputs.allow_synthetic && '1' || '' }}"
    # The fetch never stops the job: whether a model may get synthetic rows is the load test's call.
    assert "exit" not in steps(LOADTEST)["data"]["run"]


# --- The duration input: it reaches make and Locust's command line ------------------------------

INJECTIONS = ("5m; touch {marker}; echo", "$(touch {marker})", "`touch {marker}`", "5m\n::notice::x")


def test_a_duration_that_is_not_a_run_time_stops_the_job_before_anything_else(tmp_path: Path) -> None:
    """`make loadtest LOAD_TIME="$LOAD_TIME"` with the Makefile's unquoted `--run-time $(LOAD_TIME)`:
    a dispatcher's duration `5m; touch /tmp/x; echo` ran the touch on the runner, in the environment
    whose identity reads the training data."""
    [first, *_] = LOADTEST["steps"]
    assert first["env"] == {"DURATION": "${{ inputs.duration }}"}
    for good in ("5m", "90s", "2h"):
        assert run_step(first, tmp_path / good, DURATION=good)[:2] == (0, "")
    marker = tmp_path / "INJECTED"
    for bad in ("", "5", "m", "1h30m", *(i.format(marker=marker) for i in INJECTIONS)):
        status, said, _ = run_step(first, tmp_path / "bad", DURATION=bad)
        assert status == 1, bad
        [line] = said.splitlines()  # the refused text quoted on the one line: no workflow command of its own
        assert line.startswith("::error::duration ")
        assert line.endswith("is not a Locust run time: give a whole number and s, m or h (e.g. 90s, 5m, 2h)")
    assert not marker.exists()


def test_the_duration_reaches_make_through_the_environment_not_its_command_line(tmp_path: Path) -> None:
    """make expands $(...) in a variable given on its command line, quoted or not; one from the
    environment is passed on as it is."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "make-calls"
    (bin_dir / "make").write_text(f'#!/bin/sh\necho "$# $* LOAD_TIME=$LOAD_TIME" >"{calls}"\n')
    (bin_dir / "make").chmod(0o755)
    step = steps(LOADTEST)["Locust (make loadtest; thresholds fail the job)"]
    assert step["env"]["LOAD_TIME"] == "${{ inputs.duration }}"
    status, said, _ = run_step(
        step,
        tmp_path / "work",
        path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        TARGET="https://ml",
        LOAD_TIME="5m",
    )
    assert status == 0, said
    assert calls.read_text() == "1 loadtest LOAD_TIME=5m\n"


def fake_locust(tmp_path: Path) -> Path:
    """A ``locust`` in ``tmp_path/bin`` that writes each argument it gets on a line of ``args``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    locust = bin_dir / "locust"
    locust.write_text(f'#!/bin/sh\nfor a; do printf "%s\\n" "$a"; done >"{tmp_path / "args"}"\n')
    locust.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("given", ["command line", "environment"])
def test_make_loadtest_hands_each_variable_to_locust_as_one_argument_and_runs_nothing_in_it(
    given: str, tmp_path: Path
) -> None:
    """`make loadtest UV=true BIN=fakebin LOAD_TIME='5m; touch /tmp/INJECTED; echo'` ran the touch:
    the recipe pasted LOAD_TIME, LOAD_USERS, LOAD_TAGS and LOAD_REPORTS into its shell command."""
    bin_dir = fake_locust(tmp_path)
    marker = tmp_path / "INJECTED"
    injected = f"; touch {marker}; echo "
    reports = tmp_path / f"reports{injected}"
    settings = {
        "LOAD_TIME": f"5m{injected}",
        "LOAD_USERS": f"6{injected}",
        "LOAD_TAGS": f"bankchurn {injected} `touch {marker}`",
        "LOAD_REPORTS": str(reports),
    }
    assignments = [f"{name}={value}" for name, value in settings.items()] if given == "command line" else []
    ran = subprocess.run(
        ["make", "-s", "-o", "sync", "loadtest", f"BIN={bin_dir}", *assignments],
        cwd=ROOT,
        env={**os.environ, **(settings if given == "environment" else {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert not marker.exists()
    args = (tmp_path / "args").read_text().splitlines()
    assert args[args.index("--users") + 1] == settings["LOAD_USERS"]
    assert args[args.index("--run-time") + 1] == settings["LOAD_TIME"]
    assert args[args.index("--csv") + 1] == f"{reports}/locust"
    # The tags are words, as Locust's --tags takes them, and nothing else.
    assert args[args.index("--tags") + 1 :] == settings["LOAD_TAGS"].split()
    assert reports.is_dir()
    assert ran.stdout.splitlines()[-1] == f"reports: {reports}/"


def test_make_loadtest_without_tags_passes_none(tmp_path: Path) -> None:
    bin_dir = fake_locust(tmp_path)
    ran = subprocess.run(
        ["make", "-s", "-o", "sync", "loadtest", f"BIN={bin_dir}", f"LOAD_REPORTS={tmp_path / 'reports'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert "--tags" not in args
    assert args[args.index("--run-time") + 1] == "60s"


# --- The target: the job sends the API keys and the training data's rows to it --------------------

LISTED = "https://ml.example.com\n  https://staging.ml.example.com/ \n"
LOCUST_STEP = "Locust (make loadtest; thresholds fail the job)"


def test_the_target_is_checked_before_any_identity_secret_or_data_is_used() -> None:
    """`inputs.target` was free text handed to Locust with the production keys and training rows:
    anyone who may dispatch the workflow could point it at a host of their own."""
    names = [step.get("id", step.get("name")) for step in LOADTEST["steps"]]
    check = names.index("target")
    assert steps(LOADTEST)["target"]["env"] == {
        "TARGET": "${{ inputs.target }}",
        "TARGETS": "${{ vars.LOADTEST_TARGETS }}",
    }
    for step in LOADTEST["steps"][:check]:
        assert "uses" not in step, step
        assert "secrets." not in str(step), step
        assert "vars." not in str(step), step
    # Every sign-in, fetch, secret and the load test itself come after it, and the load test gets
    # the listed URL the check wrote, never the input.
    for step in LOADTEST["steps"][check + 1 :]:
        assert "inputs.target" not in str(step), step
    assert steps(LOADTEST)[LOCUST_STEP]["env"]["TARGET"] == "${{ steps.target.outputs.url }}"
    text = (ROOT / ".github" / "workflows" / "loadtest.yml").read_text()
    assert text.count("inputs.target") == 1
    # What an administrator sets is said where the loadtest environment is made.
    for overlay in ("gke", "eks"):
        readme = (ROOT / "k8s" / "overlays" / overlay / "README.md").read_text()
        section = readme.split("## Load test from CI")[1].split("\n## ")[0]
        assert "`LOADTEST_TARGETS`" in section
        assert "gh variable set LOADTEST_TARGETS --env loadtest" in section


@pytest.mark.parametrize(
    ("target", "url"),
    [
        ("https://ml.example.com", "https://ml.example.com"),
        ("https://ml.example.com/", "https://ml.example.com"),
        ("https://staging.ml.example.com", "https://staging.ml.example.com"),
    ],
)
def test_a_listed_target_is_the_one_the_load_test_gets(target: str, url: str, tmp_path: Path) -> None:
    assert run_step(steps(LOADTEST)["target"], tmp_path, TARGET=target, TARGETS=LISTED) == (
        0,
        "",
        f"url={url}\n",
    )


TARGET_INJECTIONS = ("https://ml.example.com; touch {marker}", "$(touch {marker})", "`touch {marker}`")


@pytest.mark.parametrize(
    "target",
    [
        "https://attacker.example.net",
        "https://ml.example.com.attacker.example.net",
        "https://ml.example.com@attacker.example.net",
        "https://ml.example.com/../x",
        "http://ml.example.com",
        "https://ML.example.com",
        "https://ml.example.com\n::notice::x",
        "",
        *TARGET_INJECTIONS,
    ],
)
def test_a_target_the_repository_does_not_list_stops_the_job(target: str, tmp_path: Path) -> None:
    marker = tmp_path / "INJECTED"
    target = target.format(marker=marker)
    status, said, output = run_step(
        steps(LOADTEST)["target"], tmp_path / "work", TARGET=target, TARGETS=LISTED
    )
    assert (status, output) == (1, "")
    [line] = said.splitlines()  # the refused text quoted on the one line: no workflow command of its own
    assert line.startswith("::error::target ")
    assert line.endswith(
        " is not one of LOADTEST_TARGETS (https://ml.example.com https://staging.ml.example.com/): give one "
        "of those, or have an administrator list it in the loadtest environment; nothing was sent"
    )
    assert not marker.exists()


@pytest.mark.parametrize("targets", ["", " \n "])
def test_without_listed_targets_no_target_is_load_tested(targets: str, tmp_path: Path) -> None:
    status, said, output = run_step(
        steps(LOADTEST)["target"], tmp_path, TARGET="https://ml.example.com", TARGETS=targets
    )
    assert (status, output) == (1, "")
    assert said.startswith("::error::LOADTEST_TARGETS is not set in the loadtest environment: set it to ")
