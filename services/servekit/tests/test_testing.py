"""servekit.testing: new_tracking_database (what MLflow would have created, without the
migrations) and StubHandler (a test's stand-in server answers whole responses, quietly)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import mlflow
import pytest
from toy import TOY

from servekit import http_client
from servekit.model import ModelArtifact
from servekit.testing import StubHandler, http_stub, new_tracking_database, serving_in_memory
from servekit.training.splitting import Split


def described(uri: str) -> dict[str, object]:
    """What a test can see of a tracking database: its experiments, models and schema version."""
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    experiments = [(e.experiment_id, e.name, e.artifact_location) for e in client.search_experiments()]
    with closing(sqlite3.connect(uri.removeprefix("sqlite:///"))) as database:
        # the schema version MLflow checks a database against (alembic's head)
        (schema,) = database.execute("SELECT version_num FROM alembic_version").fetchone()
    return {"experiments": experiments, "models": client.search_registered_models(), "schema": schema}


def test_a_new_database_is_the_one_mlflow_creates(tmp_path: Path) -> None:
    created = f"sqlite:///{tmp_path / 'created.db'}"
    copied = new_tracking_database(tmp_path / "copied.db")
    assert copied == f"sqlite:///{tmp_path / 'copied.db'}"
    assert described(copied) == described(created)
    assert described(copied)["models"] == []


def test_each_database_is_its_own(tmp_path: Path) -> None:
    first = new_tracking_database(tmp_path / "first.db")
    second = new_tracking_database(tmp_path / "second.db")
    client = mlflow.MlflowClient(first, registry_uri=first)
    client.create_experiment("toy", artifact_location=str(tmp_path / "artifacts"))
    client.create_registered_model("toy")
    assert [m.name for m in mlflow.MlflowClient(first, registry_uri=first).search_registered_models()] == [
        "toy"
    ]
    assert described(second)["models"] == []
    assert [e[1] for e in described(second)["experiments"]] == ["Default"]


def test_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    kept = tmp_path / "mlflow.db"
    kept.write_bytes(b"runs of a week")
    with pytest.raises(FileExistsError, match="would replace it"):
        new_tracking_database(kept)
    assert kept.read_bytes() == b"runs of a week"


class Answering(StubHandler):
    def do_GET(self) -> None:
        self.answer(200, {"path": self.path})

    def do_POST(self) -> None:
        self.answer(201, self.body().upper(), "text/plain")


def test_a_stub_answers_json_or_bytes_with_their_length_and_logs_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with http_stub(Answering) as url:
        got = http_client.get(f"{url}/model")
        posted = http_client.post(url, content=b"ok")
    assert (got.status_code, got.headers["content-type"], got.json()) == (
        200,
        "application/json",
        {"path": "/model"},
    )
    assert got.headers["content-length"] == str(len(got.content))
    assert (posted.status_code, posted.headers["content-type"], posted.content) == (201, "text/plain", b"OK")
    assert capsys.readouterr().err == ""  # http.server logs each request to stderr


def test_a_service_served_in_memory_is_ready_with_its_artifact_and_settings(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    """What each service's ``client`` fixture needs: no request waits on the model, and the
    settings given are the app's."""
    artifact, _ = toy_trained
    with serving_in_memory(TOY, artifact, max_batch_size=5) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/model").json()["version"] == artifact.version
        assert client.app.state.settings.max_batch_size == 5  # type: ignore[attr-defined]
