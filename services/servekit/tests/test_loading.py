"""Which model URIs a service follows, the one-line failure text of a load, and retries."""

from __future__ import annotations

import socketserver
import threading
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from servekit import loading
from servekit.loading import (
    ModelLoadError,
    RegistryRef,
    follows_an_alias,
    load_artifact,
    one_line,
    read_model_dir,
    registry_version,
    resolve,
    unchecked_client,
)
from servekit.testing import new_tracking_database


@pytest.mark.parametrize(
    ("uri", "follows"),
    [
        ("models:/bankchurn@champion", True),
        ("models:/bankchurn@canary-2", True),
        ("models:/bankchurn/3", False),  # a pinned version never moves
        ("runs:/0123abcd/model", False),
        ("s3://bucket/bankchurn/model", False),
    ],
)
def test_only_an_alias_is_followed(uri: str, follows: bool) -> None:
    assert follows_an_alias(uri) is follows


def test_the_version_of_a_uri_outside_the_registry_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="runs:/0123abcd/model is not a models:/ URI"):
        registry_version("runs:/0123abcd/model", "http://127.0.0.1:1")


def test_a_failure_is_one_line_of_bounded_length() -> None:
    text = one_line(RuntimeError("first line\n  second line " + "x" * 1000))
    assert text.startswith("RuntimeError: first line second line xxx")
    assert "\n" not in text
    assert len(text) <= len("RuntimeError: ") + 500


def test_the_cause_at_the_end_of_a_long_failure_is_kept() -> None:
    # urllib3 puts the reason last: "Max retries exceeded with url: ... (Caused by ...)".
    text = one_line(ConnectionError("HTTPConnectionPool: " + "x" * 1000 + " (Caused by RemoteDisconnected)"))
    assert text.startswith("ConnectionError: HTTPConnectionPool: xxx")
    assert text.endswith("(Caused by RemoteDisconnected)")
    assert " ... " in text
    assert len(text) <= len("ConnectionError: ") + 500


class _ClosesKeptAliveConnections(socketserver.BaseRequestHandler):
    """Answers the first request on a connection, then closes it as the next one arrives.

    That is what a client sees when it reuses a pooled connection just as the server's
    keep-alive timeout closes it (uvicorn's is 5 s, the MLflow server's default).
    """

    body = b'{"model_version": {"name": "toy", "version": "1", "run_id": "0123abcd"}}'

    def handle(self) -> None:
        served = 0
        while request := self.request.recv(65536):
            if served:
                return  # closed with no response, after the request was sent
            assert request.startswith(b"GET /api/2.0/mlflow/model-versions/get?")
            head = f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n\r\n"
            self.request.sendall(b"HTTP/1.1 200 OK\r\n" + head.encode() + self.body)
            served += 1


def test_a_kept_alive_connection_the_registry_closed_is_retried_on_a_new_one() -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ClosesKeptAliveConnections) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        tracking_uri = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            for _ in range(3):  # each call after the first goes out on the connection closed under it
                ref = resolve("models:/toy/1", tracking_uri)
                assert ref == RegistryRef("toy", "1", "0123abcd", "models:/toy/1")
        finally:
            server.shutdown()


def test_a_name_version_or_alias_the_registry_does_not_hold_is_told_apart_from_a_failure(
    tmp_path: Path,
) -> None:
    """A batch job fails for good on the first (no retry mends it) and may retry the second."""
    tracking_uri = new_tracking_database(tmp_path / "registry.db")
    unchecked_client(tracking_uri).create_registered_model("toy")
    for uri in ("models:/toy/3", "models:/toy@nope", "models:/other@champion"):
        with pytest.raises(ModelLoadError, match=f"^resolving {uri} at ") as missing:
            resolve(uri, tracking_uri)
        assert missing.value.missing, uri
    with pytest.raises(ModelLoadError) as unreachable:
        resolve("models:/toy/1", "http://127.0.0.1:1")
    assert not unreachable.value.missing


def test_a_version_over_what_a_registry_holds_is_not_asked_for() -> None:
    """MLflow's store fails on it (SQLite: "Python int too large"; a server: a 500, retried), which
    was a failure worth retrying: no registry is asked here (none answers at port 1)."""
    with pytest.raises(ModelLoadError) as missing:
        resolve("models:/toy/99999999999999999999", "http://127.0.0.1:1")
    assert missing.value.missing
    assert "toy has no version 99999999999999999999 (a registry numbers its versions up to " in str(
        missing.value
    )


def no_download(**kwargs: Any) -> str:
    raise AssertionError(f"downloaded {kwargs}")


def test_a_local_path_that_holds_no_model_is_refused_before_anything_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--model-uri /tmp`` copied all of /tmp, to fail on a socket in it, and a missing path was
    a failure worth retrying (exit 1)."""
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", no_download)
    (tmp_path / "rows.csv").write_text("x\n")
    tracking_uri = "http://127.0.0.1:1"  # never asked
    for uri, problem in [
        (str(tmp_path), "a directory without an MLmodel file, not an MLflow model's"),
        (f"file://{tmp_path}", "a directory without an MLmodel file, not an MLflow model's"),
        (str(tmp_path / "rows.csv"), "a file, not an MLflow model's directory"),
        (str(tmp_path / "nothing"), "no such file or directory"),
    ]:
        with pytest.raises(ModelLoadError) as refused:
            load_artifact("toy", uri, tracking_uri)
        assert str(refused.value) == (
            f"reading {uri}: {problem}; name the directory an MLflow model was saved in"
        )
        assert refused.value.missing, uri


def test_a_download_that_may_pass_is_told_apart_from_one_that_never_will(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the store says is not there, or a URI MLflow cannot read, no retry mends (mlp score:
    exit 2); a connection or a server failing may pass (exit 1). Of a URI following an alias, a
    version that does not download stays a failure: the serving runtime reads ``missing`` there
    as the alias naming no version, and a canary that never loads must still page."""
    not_there = MlflowException("Run with id=abc not found", error_code=RESOURCE_DOES_NOT_EXIST)
    improper = MlflowException("Not a proper models:/ URI: models:/toy@. Models URIs must be ...")
    failing = MlflowException("API request to http://h/api failed: too many 503 error responses")
    cut = ConnectionError("Connection aborted: RemoteDisconnected")
    answers: list[BaseException] = []

    def download(**kwargs: Any) -> str:
        raise answers[-1]

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", download)
    monkeypatch.setattr(
        loading, "resolve", lambda uri, tracking_uri: RegistryRef("toy", "3", "", "models:/toy/3")
    )
    for exc, missing in [(not_there, True), (improper, True), (failing, False), (cut, False)]:
        answers.append(exc)
        with pytest.raises(ModelLoadError) as failed:
            load_artifact("toy", "runs:/abc/model", "http://127.0.0.1:1")
        assert failed.value.missing is missing, exc
        with pytest.raises(ModelLoadError) as followed:
            load_artifact("toy", "models:/toy@canary", "http://127.0.0.1:1")
        assert followed.value.missing is False, exc


def test_a_service_settles_every_pipeline_read_from_a_model_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The serving layer, mlp score, replay, the trainer's champion and managed endpoints all read
    # model files here: the service's recipe settles each pipeline (NLPInsight: its normalisation).
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from servekit import registry

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    skops.io.dump(Pipeline([("clf", LogisticRegression())]), model_dir / "model.skops")
    (model_dir / "MLmodel").write_text("flavors: {}\nmetadata: {}\n", encoding="utf-8")
    settled: list[tuple[str, object]] = []

    class Recipe:
        def loaded(self, pipeline: object) -> None:
            settled.append(("settled", pipeline))

    class Spec:
        recipe = Recipe()

    def get_service(name: str) -> object:
        if name != "settling":
            raise LookupError(name)
        return Spec()

    monkeypatch.setattr(registry, "get_service", get_service)
    pipeline, _ = read_model_dir("settling", model_dir)
    assert settled == [("settled", pipeline)]
    # A name no service has (no entry point, no <name>.service module) loads as it is.
    other, _ = read_model_dir("nosuchservice", model_dir)
    assert isinstance(other, Pipeline)
    assert len(settled) == 1
