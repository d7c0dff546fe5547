"""``mlp train`` with one or more services: names checked first, then trained in order."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from servekit import cli, mlflow_registry
from servekit.datasets import DatasetError
from servekit.local import free_port
from servekit.training import aliases, trainer


def train_result(**changes: Any) -> SimpleNamespace:
    """What ``trainer.train`` returns to the command, as the command reads it."""
    fields: dict[str, Any] = {
        "version": "1",
        "run_id": "r",
        "metrics": {"m": 0.5},
        "decision": "promoted",
        "canary": "",
        "artifacts": "",
        "held_out_note": "",
    }
    return SimpleNamespace(**{**fields, **changes})


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names passed to the trainer; services ``a``, ``b`` and ``c`` exist, nothing else."""
    calls: list[str] = []

    def get_service(name: str) -> Any:
        if name not in {"a", "b", "c"}:
            raise LookupError(f"unknown service {name!r}")
        return SimpleNamespace(name=name)

    def train(spec: Any, tracking_uri: str, data: Path | None, seed: int) -> Any:
        calls.append(spec.name)
        return train_result()

    monkeypatch.setattr(cli.registry, "get_service", get_service)
    monkeypatch.setattr(trainer, "train", train)
    return calls


@pytest.fixture
def server_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MLflow server check passes (the registry itself is tested in tests/integration)."""
    monkeypatch.setattr(mlflow_registry, "registry_client", lambda tracking_uri, create=False: None)


@pytest.mark.usefixtures("server_answers")
def test_several_services_are_trained_in_the_order_named(
    trained: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", "c", "a", "--tracking-uri", "http://127.0.0.1:1"]) == 0
    assert trained == ["c", "a"]
    out = capsys.readouterr().out
    assert out.index("c: registered v1") < out.index("a: registered v1")


@pytest.mark.usefixtures("server_answers")
def test_if_no_champion_says_which_service_it_trains_before_training_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make up`'s first run said nothing while it trained (about 30 s): its first line about a
    service came after that service was trained."""
    printed_before: dict[str, str] = {}

    def train(spec: Any, tracking_uri: str, data: Path | None, seed: int) -> Any:
        printed_before[spec.name] = capsys.readouterr().out
        return train_result()

    monkeypatch.setattr(cli.registry, "get_service", lambda name: SimpleNamespace(name=name))
    monkeypatch.setattr(aliases, "current_champion", lambda client, name: "3" if name == "b" else None)
    monkeypatch.setattr(trainer, "train", train)
    assert cli.main(["train", "b", "a", "--if-no-champion", "--tracking-uri", "http://127.0.0.1:1"]) == 0
    assert printed_before == {
        "a": "b: champion v3 exists; not training\n"
        "a: no champion in the registry; training on synthetic data...\n"
    }
    assert capsys.readouterr().out.startswith("a: registered v1 ")


def test_an_unknown_name_stops_before_anything_trains(
    trained: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", "a", "nope", "--tracking-uri", "http://127.0.0.1:1"]) == 2
    assert trained == []
    assert "unknown service 'nope'" in capsys.readouterr().err


def test_data_goes_with_a_single_service(trained: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "a", "b", "--data", "x.csv"]) == 2
    assert trained == []
    assert "mlp: train: --data is one service's file" in capsys.readouterr().err


def test_a_service_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train"])
    assert exit_.value.code == 2
    assert "service" in capsys.readouterr().err


def test_a_missing_data_file_stops_before_anything_trains(
    trained: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "churn.csv"
    assert cli.main(["train", "a", "--data", str(missing)]) == 2
    assert trained == []
    assert capsys.readouterr().err == f"mlp: train: --data {missing}: no such file\n"
    assert cli.main(["train", "a", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"mlp: train: --data {tmp_path}: a directory, not a CSV file\n"


def test_no_tracking_server_stops_before_anything_trains(
    trained: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["train", "a", "--tracking-uri", nobody]) == 1  # worth retrying later
    assert trained == []
    err = capsys.readouterr().err
    assert err.startswith(f"mlp: no MLflow tracking server answers at {nobody} (")
    assert err.endswith("`make up` starts one, or pass --tracking-uri or set MLFLOW_TRACKING_URI\n")
    assert len(err.splitlines()) == 1


@pytest.mark.usefixtures("server_answers")
def test_synthetic_data_that_cannot_be_trained_on_is_named_as_such(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def train(spec: Any, tracking_uri: str, data: Path | None, seed: int) -> Any:
        raise DatasetError("10,000 rows cannot be split into training and held-out rows: ...")

    monkeypatch.setattr(cli.registry, "get_service", lambda name: SimpleNamespace(name=name))
    monkeypatch.setattr(trainer, "train", train)
    assert cli.main(["train", "a", "--tracking-uri", "http://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err == (
        "mlp: train a: the synthetic data: 10,000 rows cannot be split into training and held-out rows: ...\n"
    )


def test_a_sqlite_stores_artifacts_go_beside_it_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow's default for a new experiment is ./mlruns of the directory the first run started in:
    a registry's models scattered over checkouts, and a checkout littered with them."""
    import mlflow
    from toy import TOY

    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    store.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    uri = f"sqlite:///{store / 'mlflow.db'}"
    try:
        assert cli.main(["train", "toy", "--tracking-uri", uri]) == 0
        first = capsys.readouterr().out
        assert cli.main(["train", "toy", "--seed", "3", "--tracking-uri", uri]) == 0
        second = capsys.readouterr().out
    finally:
        mlflow.set_tracking_uri(None)
    assert list(elsewhere.iterdir()) == []  # no ./mlruns, nothing else
    assert any((store / "artifacts").rglob("MLmodel"))
    assert f"toy: new experiment; its runs' artifacts go to {store / 'artifacts'}\n" in first
    assert "new experiment" not in second  # said once, when it was created


@pytest.mark.usefixtures("server_answers")
def test_what_is_wrong_with_the_held_out_rows_is_printed_after_the_figures(
    trained: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def train(spec: Any, tracking_uri: str, data: Path | None, seed: int) -> Any:
        return train_result(held_out_note="765 of the 2,080 held-out rows are copies of training rows")

    monkeypatch.setattr(trainer, "train", train)
    assert cli.main(["train", "a", "--tracking-uri", "http://127.0.0.1:1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "a: 765 of the 2,080 held-out rows are copies of training rows"
    assert lines[0].startswith("a: registered v1")


def refused_by_mlflow(url: str) -> Exception:
    """The error MLflow's REST client raises for a request nobody answers: requests' ConnectionError
    (urllib3's refused connection in it) in the context of an MlflowException, made by MLflow itself."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        http_request(get_default_host_creds(url), "/api/2.0/mlflow/runs/get", "GET", max_retries=0)
    except Exception as exc:
        return exc
    raise AssertionError(f"something answers at {url}")


@pytest.mark.usefixtures("server_answers")
def test_a_tracking_server_that_stops_answering_during_training_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed ~100 lines of chained tracebacks (MLflow's, requests', urllib3's), exit 1."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from toy import TOY

    port = free_port()
    refused = refused_by_mlflow(f"http://127.0.0.1:{port}")
    assert type(refused) is MlflowException

    def set_experiment(*args: Any, **kwargs: Any) -> Any:  # the trainer's first request
        raise refused

    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(mlflow, "set_experiment", set_experiment)
    try:
        status = cli.main(["train", "toy", "--tracking-uri", f"http://mlp:s3cret@127.0.0.1:{port}"])
    finally:
        mlflow.set_tracking_uri(None)
    assert status == 1
    assert capsys.readouterr().err.splitlines() == [
        f"mlp: the MLflow tracking server at http://***@127.0.0.1:{port} stopped answering (connection "
        "refused): the training's run may be left RUNNING in MLflow, which cannot mark it failed while "
        "the server is down; train again once it answers"
    ]


@pytest.mark.usefixtures("server_answers")
def test_another_mlflow_error_during_training_is_not_called_a_lost_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.exceptions import MlflowException

    def train(spec: Any, tracking_uri: str, data: Path | None, seed: int) -> Any:
        raise MlflowException("RESOURCE_ALREADY_EXISTS: something else")

    monkeypatch.setattr(cli.registry, "get_service", lambda name: SimpleNamespace(name=name))
    monkeypatch.setattr(trainer, "train", train)
    with pytest.raises(MlflowException, match="something else"):
        cli.main(["train", "a", "--tracking-uri", "http://127.0.0.1:1"])


def test_a_parquet_data_file_is_refused_as_such_before_anything_trains(
    trained: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its first byte not UTF-8 was named, with "save it as UTF-8": a file that was not text at all."""
    import pandas as pd

    path = tmp_path / "churn.parquet"
    pd.DataFrame({"Age": [30, 41], "Geography": ["France", "Spain"]}).to_parquet(path)
    assert cli.main(["train", "a", "--data", str(path)]) == 2
    assert trained == []
    assert capsys.readouterr().err == (
        f"mlp: train: --data {path}: a Parquet file; mlp train reads CSV only (optionally "
        "gzip-compressed, .csv.gz): save the rows as CSV (Parquet is for `mlp score`)\n"
    )
