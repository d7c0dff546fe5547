"""No password or token of a URI reaches /readyz, /model or a log line."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit.loading import ModelLoadError, one_line, resolve
from servekit.model import ModelArtifact
from servekit.redaction import redact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.training.trainer import Split

PASSWORD = "S3cretPW"
#: Nothing listens on port 1: every call fails at once, and MLflow quotes the URI in its message.
CREDENTIALED = f"http://alice:{PASSWORD}@127.0.0.1:1"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://alice:S3cretPW@mlflow:5000", "http://***@mlflow:5000"),
        ("https://ghp_token123@mlflow.example/api", "https://***@mlflow.example/api"),
        # A raw "@" in the password: the host starts after the last one, as urllib splits it.
        ("http://bob:p@ss@host:5000/x", "http://***@host:5000/x"),
        (
            "API request to http://a:b@h:1/api/2.0/x failed: (Caused by http://a:b@h:1)",
            "API request to http://***@h:1/api/2.0/x failed: (Caused by http://***@h:1)",
        ),
        (
            "https://s3.example/b/m.pkl?X-Amz-Credential=AKIA1&X-Amz-Signature=abc&x=1",
            "https://s3.example/b/m.pkl?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
        ),
        ("http://h/get?token=t0k&name=bankchurn", "http://h/get?token=***&name=bankchurn"),
        (
            "https://acct.blob.core.windows.net/c/m?sv=2024&sig=abc%2F",
            "https://acct.blob.core.windows.net/c/m?sv=2024&sig=***",
        ),
        # Nothing secret: left as it is.
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("models:/bankchurn@champion", "models:/bankchurn@champion"),
        ("sqlite:///tmp/mlflow.db", "sqlite:///tmp/mlflow.db"),
        ("http://h/x?name=a@b", "http://h/x?name=a@b"),
        ("write to alice@example.com", "write to alice@example.com"),
    ],
)
def test_credentials_of_a_uri_are_masked_and_nothing_else(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_a_load_failure_names_the_registry_without_its_password() -> None:
    with pytest.raises(ModelLoadError) as failed:
        resolve("models:/toy@champion", CREDENTIALED)
    message = str(failed.value)
    # MLflow's own message, wrapped in it, quotes the URI too.
    assert message.startswith("resolving models:/toy@champion at http://***@127.0.0.1:1: MlflowException")
    assert PASSWORD not in message
    assert "alice" not in message
    assert PASSWORD in str(failed.value.__cause__)  # the cause is untouched, for a debugger
    assert PASSWORD not in one_line(failed.value.__cause__)  # and masked wherever it is shown


def test_a_failing_registry_is_shown_everywhere_without_its_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TOY_MODEL_URI", "models:/toy@champion")
    monkeypatch.setenv("TOY_MLFLOW_TRACKING_URI", CREDENTIALED)
    settings = load_settings("toy", load_retry_initial_seconds=0.01, load_retry_max_seconds=0.02)
    caplog.set_level(logging.INFO)
    with TestClient(create_app(TOY, settings)) as client:
        deadline = time.monotonic() + 30
        while not (ready := client.get("/readyz").json()).get("error"):
            assert time.monotonic() < deadline, "no load failure reported"
            time.sleep(0.02)
    assert "http://***@127.0.0.1:1" in ready["error"]
    assert PASSWORD not in ready["error"]
    failures = [record.getMessage() for record in caplog.records if "load failed" in record.getMessage()]
    assert failures
    assert not [line for line in failures if PASSWORD in line]


def test_the_model_description_shows_no_credentials(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    secret = replace(
        artifact,
        registry_uri=CREDENTIALED,
        uri="https://h/m?X-Amz-Signature=abc",
    )
    described = TOY.model(secret).describe()
    assert described["registry_uri"] == "http://***@127.0.0.1:1"
    assert described["uri"] == "https://h/m?X-Amz-Signature=***"
