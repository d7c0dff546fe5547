"""Training against a real MLflow server: what is logged, registered, aliased and promoted."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pytest

from bankchurn.data import generate_raw
from processes import BIN, ROOT, Server, free_port
from servekit import cli, registry
from servekit.managed.packaging import model_requirements
from servekit.training import parity
from servekit.training.segments import as_run_metrics
from servekit.training.signature import nullable_fields
from servekit.training.trainer import TrainResult
from servekit.training.versions import HELD_OUT_ANSWERS

SERVICES = registry.available()

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", registry.available())
def test_a_trained_model_is_logged_registered_and_champion(
    name: str, mlflow_server: Server, registered: dict[str, TrainResult]
) -> None:
    result = registered[name]
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    assert client.get_model_version_by_alias(name, "challenger").version == result.version
    assert client.get_model_version_by_alias(name, "champion").version == result.version
    run = client.get_run(result.run_id)
    spec = registry.get_service(name)
    key = spec.recipe.primary_metric
    logged = run.data.metrics
    assert logged[f"{key}_ci_low"] < logged[key] < logged[f"{key}_ci_high"]
    assert len(run.data.params["data.sha256"]) == 64
    assert int(run.data.params["data.rows"]) == spec.recipe.synthetic_rows
    model = mlflow.models.get_model_info(f"models:/{name}/{result.version}")
    # The code that trained it: this checkout's commit (servekit.provenance), in the run's tags,
    # MLflow's own among them, and in the model's metadata, which GET /model and the card show.
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert run.data.tags["code.revision"] == run.data.tags["mlflow.source.git.commit"] == head
    assert run.data.tags["code.modified"] in ("true", "false")
    assert run.data.tags[f"code.{name}.version"] == run.data.tags["code.servekit.version"] == "0.1.0"
    assert model.metadata["code"]["revision"] == head
    optional = {column.name for column in model.signature.inputs.inputs if not column.required}
    requirements_txt = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{name}/{result.version}"))
    assert requirements_txt.read_text().split() == model_requirements(name)
    assert optional == {field for field, nullable in nullable_fields(spec.request).items() if nullable}
    assert model.saved_input_example_info is not None
    assert model.metadata["outcome_shares"]
    # The per-group figures are logged with the run and stored for GET /model alike.
    segments = as_run_metrics(model.metadata["segments"], key)
    assert {k: v for k, v in logged.items() if k.startswith("segment.")} == segments
    assert segments
    decisions = parity.as_run_metrics(model.metadata["parity"])
    assert {k: v for k, v in logged.items() if k.startswith("parity.")} == decisions
    assert decisions  # every service's: a share flagged, a share given each label, or an error
    # The logged model (MLflow 3) holds the run's figures too: the registry's model page shows them.
    version = client.get_model_version(name, result.version)
    linked = client.get_logged_model(version.source.removeprefix("models:/")).metrics or []
    assert {m.key: m.value for m in linked} == logged
    # The run holds the version's model card, as GET /model/card serves it.
    card = mlflow.artifacts.load_text(f"runs:/{result.run_id}/model_card.md")
    assert card.startswith(f"# Model card: {name} version {result.version}\n")
    assert ("recall of bearish (95 % CI)" in card) == (name == "nlpinsight")
    assert f"| **{key}** | {logged[key]:.4g} (95 % CI " in card
    # And its held-out rows' truth and outputs, which mlp evaluate resamples: they score the
    # logged figure.
    kept = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/{HELD_OUT_ANSWERS}")
    target, output = np.asarray(kept["target"]), np.asarray(kept["output"])
    # Over the held-out rows a request can be (ChicagoTaxi's synthetic trips include some without
    # a distance, which the API refuses), as the metadata counts them.
    rows = model.metadata["data"]
    assert rows["held_out_rows"] == round(spec.recipe.synthetic_rows * spec.recipe.test_size)
    assert len(target) == len(output) == rows["held_out_scored_rows"] > 0.9 * rows["held_out_rows"]
    assert spec.recipe.primary().score(target, output) == pytest.approx(logged[key], rel=1e-12)


def test_challenger_is_promoted_only_when_it_beats_the_champion(
    mlflow_server: Server, registered: dict[str, TrainResult], tmp_path: Path, mlp: Callable[..., str]
) -> None:
    name = "bankchurn"
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    first = registered[name].version

    # Same data, same seed: an equal score is not better, so the champion stays.
    same = mlp("train", name)
    again = client.get_model_version_by_alias(name, "challenger").version
    assert again != first
    assert client.get_model_version_by_alias(name, "champion").version == first
    assert f"kept champion v{first}" in same
    assert "difference +0.0000 (95% CI +0.0000 to +0.0000), within the noise of this split" in same

    # A weak model (400 rows) does not beat the champion on its own held-out split ...
    weak = mlp("train", name, "--data", str(weak_data(tmp_path)))
    assert f"kept champion v{first}" in weak
    # ... but once it is made champion by hand, the next full run beats it: of real data, as the
    # weak one's (one of the synthetic data is never compared with it, and never replaces it).
    weak_version = client.get_model_version_by_alias(name, "challenger").version
    mlp("promote", name, weak_version)
    assert client.get_model_version_by_alias(name, "champion").version == weak_version
    synthetic = mlp("train", name)
    assert f"kept champion v{weak_version}: this version was trained on synthetic data" in synthetic
    better = mlp("train", name, "--data", str(full_data(tmp_path)))
    assert "promoted to champion: roc_auc" in better
    assert "beyond the noise of this split" in better
    assert client.get_model_version_by_alias(name, "champion").version not in (first, weak_version)

    # Promoting by hand restores the original champion, and says what changed.
    promoted = mlp("promote", name, first)
    assert f"champion is now v{first}" in promoted
    assert "switch to it within BANKCHURN_MODEL_REFRESH_SECONDS (30 s unless set)" in promoted


def test_training_with_if_no_champion_does_nothing_when_one_exists(
    registered: dict[str, TrainResult], mlp: Callable[..., str]
) -> None:
    output = mlp("train", *SERVICES, "--if-no-champion")
    for name in SERVICES:
        assert f"{name}: champion v{registered[name].version} exists; not training" in output


def test_promoting_a_version_that_does_not_exist_is_a_clear_error(
    mlflow_server: Server, registered: dict[str, TrainResult], mlp: Callable[..., str]
) -> None:
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    champion = client.get_model_version_by_alias("bankchurn", "champion").version
    assert mlp("promote", "bankchurn", "999", status=2) == "mlp: bankchurn has no version '999'\n"
    assert client.get_model_version_by_alias("bankchurn", "champion").version == champion


def test_a_canary_of_a_version_that_does_not_exist_is_a_clear_error(
    mlflow_server: Server, registered: dict[str, TrainResult], mlp: Callable[..., str]
) -> None:
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    assert mlp("canary", "bankchurn", "999", status=2) == "mlp: bankchurn has no version '999'\n"
    aliases = client.get_registered_model("bankchurn").aliases
    assert "canary" not in aliases, "a refused canary must not leave an alias behind"


def test_a_version_whose_training_did_not_finish_or_that_is_archived_is_not_promoted(
    mlflow_server: Server, registered: dict[str, TrainResult], mlp: Callable[..., str]
) -> None:
    """An `mlp train` interrupted after registering leaves a version with no alias, no decision and
    a failed run: made champion by hand, a model never compared with the champion answered every
    request. (A server fills in the run of any version registered: one without is in
    services/servekit/tests/test_promote_unfinished.py)."""
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    champion = registered["bankchurn"].version
    original = client.get_model_version("bankchurn", champion)
    model_id = str(original.source).removeprefix("models:/")
    run = client.create_run(client.get_experiment_by_name("bankchurn").experiment_id).info.run_id
    interrupted = client.create_model_version("bankchurn", original.source, run_id=run, model_id=model_id)
    client.set_terminated(run, "FAILED")
    assert mlp("promote", "bankchurn", interrupted.version, status=2) == (
        f"mlp: bankchurn v{interrupted.version}'s training run {run} did not finish (FAILED): it was "
        "never compared with the champion; train again\n"
    )
    archived = client.create_model_version(
        "bankchurn", original.source, run_id=original.run_id, model_id=model_id
    )
    with pytest.warns(FutureWarning, match="stages will be removed"):  # stages are deprecated
        client.transition_model_version_stage("bankchurn", archived.version, "Archived")
    assert mlp("promote", "bankchurn", archived.version, status=2) == (
        f"mlp: bankchurn v{archived.version} is in MLflow's stage Archived: it was retired; name "
        "another version, or move it out of Archived in MLflow first\n"
    )
    assert client.get_model_version_by_alias("bankchurn", "champion").version == champion


def test_a_rollout_without_a_reachable_prometheus_moves_nothing(
    mlflow_server: Server, registered: dict[str, TrainResult], mlp: Callable[..., str]
) -> None:
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    prometheus = f"http://127.0.0.1:{free_port()}"
    err = mlp("rollout", "bankchurn", registered["bankchurn"].version, "--prometheus", prometheus, status=1)
    assert err.startswith(f"mlp: Prometheus at {prometheus}: ")
    assert "canary" not in client.get_registered_model("bankchurn").aliases


def test_a_data_file_off_the_schema_is_one_line_and_registers_nothing(
    mlflow_server: Server, registered: dict[str, TrainResult], tmp_path: Path, mlp: Callable[..., str]
) -> None:
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    versions = len(client.search_model_versions("name='bankchurn'"))
    path = tmp_path / "churn.csv"
    generate_raw(50, seed=1).drop(columns=["Geography"]).to_csv(path, index=False)
    err = mlp("train", "bankchurn", "--data", str(path), status=2)
    assert err == f"mlp: train bankchurn: {path}: missing column(s): Geography\n"
    assert len(client.search_model_versions("name='bankchurn'")) == versions


@pytest.mark.parametrize("name", registry.available())
def test_versions_lists_aliases_figures_and_data_newest_first(
    name: str, mlflow_server: Server, registered: dict[str, TrainResult], mlp: Callable[..., str]
) -> None:
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    key = registry.get_service(name).recipe.primary_metric
    header, columns, *rows = mlp("versions", name).splitlines()
    assert header == f"{name} at {mlflow_server.url} ({key} on each version's own held-out split)"
    assert columns.split() == [
        "version",
        "aliases",
        "registered",
        "(UTC)",
        key,
        "95%",
        "CI",
        "data",
        "decision",
        "live",
        "as",
        "shadow",
    ]
    by_version = {row.split()[0]: row for row in rows}
    every = sorted((int(mv.version) for mv in client.search_model_versions(f"name='{name}'")), reverse=True)
    assert [int(v) for v in by_version] == every[:20]
    champion = client.get_model_version_by_alias(name, "champion").version
    assert "champion" in by_version[champion].split()[1].split(",")
    first = registered[name]
    metrics = client.get_run(first.run_id).data.metrics
    row = by_version[first.version]
    interval = f"{metrics[f'{key}_ci_low']:.4f}-{metrics[f'{key}_ci_high']:.4f}"
    assert row.split()[4:6] == [f"{metrics[key]:.4f}", interval]
    assert "synthetic, " in row
    tags = client.get_model_version(name, first.version).tags
    assert tags["promotion.decision"].split(":")[0] in row  # "promoted to champion", or "by hand" later
    # The latest mlp evaluate --log (test_live_evaluation tags BankChurn's first version), else -.
    live = (
        f"{tags['live.figure']} on {tags['live.answers']}, {tags['live.verdict']}"
        if "live.figure" in tags
        else "-"
    )
    # Then its latest comparison as a shadow (test_live_evaluation shadows BankChurn's champion), else -.
    shadow = tags.get("shadow.comparison", "-")
    assert re.search(rf"  {re.escape(live)} +{re.escape(shadow)}$", row), row
    assert len(mlp("versions", name, "--limit", "1").splitlines()) == 3


def test_versions_of_a_model_never_trained_says_how_to_train_it(
    mlflow_server: Server, mlp: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = registry.get_service("bankchurn")
    monkeypatch.setattr(cli.registry, "get_service", lambda name: replace(spec, name="neverseen"))
    assert mlp("versions", "neverseen").strip() == (
        f"neverseen: no versions registered at {mlflow_server.url}; `mlp train neverseen` registers one"
    )


def test_unknown_service_is_a_clear_error() -> None:
    result = subprocess.run(
        [str(BIN / "mlp"), "train", "nope"], check=False, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 2
    assert "unknown service 'nope'" in result.stderr


def full_data(directory: Path) -> Path:
    """10,000 rows, as many as the synthetic data's, in a file."""
    path = directory / "full.csv"
    generate_raw(10_000, seed=11).to_csv(path, index=False)
    return path


def weak_data(directory: Path) -> Path:
    """400 synthetic rows: a model trained on them is clearly worse than one on 10,000."""
    path = directory / "small.csv"
    generate_raw(400, seed=9).to_csv(path, index=False)
    return path
