"""``mlp package-sagemaker``: a package is written only when its model loads as the service's, and
every refusal is one line with the exit status of its cause."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from servekit import cli, registry
from servekit.cli import serving
from servekit.loading import ModelLoadError
from servekit.managed import packaging, sagemaker
from servekit.testing import new_tracking_database, train_in_memory

#: Where no registry answers: a command that asks it before refusing exits 1, not 2.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite registry of bankchurn: v1 (champion) sound, v2 with its artifacts deleted (MLflow
    downloads it as an empty directory), v3 with a model file that does not deserialise, v4 sound
    but its run deleted and garbage-collected (``mlflow gc``)."""
    import mlflow

    directory = tmp_path_factory.mktemp("registry")
    uri = new_tracking_database(directory / "mlflow.db")
    artifact, _ = train_in_memory(registry.get_service("bankchurn"), rows=400)
    sound = packaging.save_mlflow_model(
        artifact, directory / "sound", packaging.installed_pins(["scikit-learn", "lightgbm", "skops"])
    )
    deleted = directory / "deleted"
    deleted.mkdir()
    corrupt = Path(shutil.copytree(sound, directory / "corrupt"))
    (corrupt / "model.skops").write_bytes(b"not a model")
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("bankchurn", artifact_location=str(directory / "artifacts"))
    client.create_registered_model("bankchurn")
    for source in (sound, deleted, corrupt, shutil.copytree(sound, directory / "orphan")):
        run = client.create_run(experiment)
        client.create_model_version("bankchurn", str(source), run_id=run.info.run_id)
    client.set_registered_model_alias("bankchurn", "champion", "1")
    client.delete_run(run.info.run_id)
    gc = ["gc", "--backend-store-uri", uri, "--tracking-uri", uri, "--run-ids", run.info.run_id]
    subprocess.run([sys.executable, "-m", "mlflow", *gc], check=True, capture_output=True)
    return uri


def package(tracking_uri: str, *options: str) -> list[str]:
    return ["package-sagemaker", "bankchurn", "--tracking-uri", tracking_uri, *options]


def refusal(capsys: pytest.CaptureFixture[str]) -> str:
    """The command's one line, after what MLflow logs (a new SQLite file, an empty download)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()[-1] + "\n"


def test_the_champion_is_packaged_and_loads_as_the_endpoint_loads_it(
    tmp_path: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "model.tar.gz"
    output.parent.mkdir()  # as `mlp score`, it writes in a directory that exists (a typo is refused)
    assert cli.main(package(tracking_uri, "--output", str(output))) == 0
    assert capsys.readouterr().out.endswith(f"bankchurn: models:/bankchurn@champion packaged as {output}\n")
    with tarfile.open(output) as tar:
        assert {"MLmodel", "model.skops", "servekit.json", "code/inference.py"} <= set(tar.getnames())
    loaded = sagemaker.model_fn(str(packaging.extract(output, tmp_path / "opt-ml-model")))
    assert loaded.model.artifact.version == "1"


@pytest.mark.parametrize(
    ("model_uri", "says"),
    [
        (
            "models:/bankchurn/2",
            "mlp: models:/bankchurn/2 holds no MLflow model (found nothing): were its artifacts deleted "
            "from the artifact store?\n",
        ),
        ("models:/bankchurn/3", "mlp: models:/bankchurn/3 does not load as bankchurn's model: "),
        (
            "models:/chicagotaxi@champion",
            "mlp: models:/chicagotaxi@champion is a version of chicagotaxi, not of bankchurn: the package "
            "would say bankchurn and hold chicagotaxi's model\n",
        ),
        ("models:/chicagotaxi/latest", "mlp: models:/chicagotaxi/latest is a version of chicagotaxi, "),
    ],
    ids=["artifacts-deleted", "does-not-load", "another-model", "another-model-latest"],
)
def test_a_model_that_would_not_serve_the_service_is_refused_and_nothing_written(
    tmp_path: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str], model_uri: str, says: str
) -> None:
    """Each was packaged, exit 0: a tarball holding servekit.json alone, or a service's name on
    another's model; the endpoint found out, failing to start."""
    output = tmp_path / "model.tar.gz"
    assert cli.main(package(tracking_uri, "--model-uri", model_uri, "--output", str(output))) == 2
    assert refusal(capsys).startswith(says)
    assert not output.exists()


@pytest.mark.parametrize(
    ("model_uri", "says"),
    [
        ("models:/bankchurn@nosuch", "mlp: resolving models:/bankchurn@nosuch at "),
        ("models:/bankchurn/99", "mlp: resolving models:/bankchurn/99 at "),
        ("garbage", "mlp: downloading garbage: "),
    ],
)
def test_a_model_the_registry_does_not_hold_is_one_line_exit_2(
    tmp_path: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str], model_uri: str, says: str
) -> None:
    output = tmp_path / "model.tar.gz"
    assert cli.main(package(tracking_uri, "--model-uri", model_uri, "--output", str(output))) == 2
    assert refusal(capsys).startswith(says)
    assert not output.exists()


@pytest.mark.parametrize("command", ["package-sagemaker", "score"])
def test_a_version_whose_run_is_gone_is_one_line_exit_2_as_promote_says(
    tmp_path: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Exit 1 ("worth retrying") was wrong: a garbage-collected run never comes back."""
    import mlflow

    run_id = mlflow.MlflowClient(tracking_uri).get_model_version("bankchurn", "4").run_id
    output = tmp_path / "out"
    if command == "score":
        rows = tmp_path / "customers.csv"
        rows.write_text("CreditScore\n600\n")
        argv = ["score", "bankchurn", str(rows), "--output", str(output), "--tracking-uri", tracking_uri]
        said = "mlp: score: models:/bankchurn/4: "
    else:
        argv = package(tracking_uri, "--output", str(output))
        said = "mlp: "
    assert cli.main([*argv, "--model-uri", "models:/bankchurn/4"]) == 2
    assert refusal(capsys) == (
        f"{said}bankchurn v4: its run {run_id} is gone (deleted and garbage-collected?), and the "
        "version's figures are read from it: name another version, or register the model again from a "
        "run that is kept\n"
    )
    assert not output.exists()


def test_a_service_without_a_champion_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    empty = new_tracking_database(tmp_path / "empty.db")  # a registry: no file is refused first
    assert cli.main(package(empty, "--output", str(tmp_path / "model.tar.gz"))) == 2
    assert refusal(capsys).startswith("mlp: resolving models:/bankchurn@champion at ")


def test_an_unreachable_registry_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(package(NOWHERE, "--output", str(tmp_path / "model.tar.gz"))) == 1
    assert refusal(capsys).startswith(f"mlp: no MLflow tracking server answers at {NOWHERE}")


def test_an_output_that_cannot_be_a_file_is_a_usage_error_before_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(package(NOWHERE, "--output", str(tmp_path))) == 2
    directory = f"mlp: package-sagemaker: --output {tmp_path} is a directory; name the file to write\n"
    assert capsys.readouterr().err == directory
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    assert cli.main(package(NOWHERE, "--output", str(a_file / "model.tar.gz"))) == 2
    assert capsys.readouterr().err == (
        f"mlp: package-sagemaker: --output {a_file / 'model.tar.gz'}: {a_file} is a file, not a directory\n"
    )


def test_an_output_in_a_directory_that_does_not_exist_is_refused_not_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The directory tree was made, a typo in it too, and the package left where nothing looks."""
    output = tmp_path / "nonexist" / "x.tar.gz"
    assert cli.main(package(NOWHERE, "--output", str(output))) == 2
    assert capsys.readouterr().err == (
        f"mlp: package-sagemaker: --output {output}: no directory {output.parent} to write it in\n"
    )
    assert not output.parent.exists()


@pytest.mark.parametrize(("missing", "status"), [(True, 2), (False, 1)])
def test_a_model_load_error_of_any_command_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], missing: bool, status: int
) -> None:
    """No retry brings what the registry does not hold; any other failure may pass."""

    def fails(args: argparse.Namespace) -> int:
        raise ModelLoadError("resolving models:/bankchurn@champion at x: not found", missing=missing)

    monkeypatch.setattr(serving, "cmd_package_sagemaker", fails)
    assert cli.main(["package-sagemaker", "bankchurn"]) == status
    assert capsys.readouterr().err == "mlp: resolving models:/bankchurn@champion at x: not found\n"


def test_the_manifest_carries_no_credentials_of_the_registry() -> None:
    """A package is copied to buckets and endpoints: a password in the tracking URI stays behind."""
    import dataclasses

    artifact, _ = train_in_memory(registry.get_service("bankchurn"), rows=400)
    secret = dataclasses.replace(
        artifact,
        registry_uri="https://alice:S3cretPW@mlflow.example.com",
        uri="https://mlflow.example.com/get-artifact?token=S3cretPW",
    )
    manifest = packaging.manifest_of(secret)
    assert manifest["registry_uri"] == "https://***@mlflow.example.com"
    assert "S3cretPW" not in str(manifest)


def test_a_model_packaged_from_its_run_carries_the_runs_id_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``runs:/`` packages had ``run_id: ""`` and no figures, where the same URI served has both."""
    import json

    import mlflow

    uri = new_tracking_database(tmp_path / "mlflow.db")
    artifact, _ = train_in_memory(registry.get_service("bankchurn"), rows=400)
    model_dir = packaging.save_mlflow_model(
        artifact, tmp_path / "model", packaging.installed_pins(["scikit-learn", "lightgbm", "skops"])
    )
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("bankchurn", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    client.log_metric(run_id, "roc_auc", 0.8125)
    client.log_artifacts(run_id, str(model_dir), "model")
    output = tmp_path / "model.tar.gz"
    options = ["--model-uri", f"runs:/{run_id}/model", "--output", str(output)]
    assert cli.main(package(uri, *options)) == 0, capsys.readouterr().err
    with tarfile.open(output) as tar:
        member = tar.extractfile("servekit.json")
        assert member is not None
        manifest = json.load(member)
    assert manifest["run_id"] == run_id
    assert manifest["training_metrics"] == {"roc_auc": 0.8125}
