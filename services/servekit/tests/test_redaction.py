"""No password or token of a URI reaches /readyz, /model or a log line."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit import cli, mlflow_registry
from servekit.loading import ModelLoadError, one_line, resolve
from servekit.model import ModelArtifact
from servekit.redaction import redact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.training.splitting import Split
from servekit.training.versions import render

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
        # The punctuation of the sentence a URI ends is kept: ``?token=*** MlflowException`` lost it.
        (
            "resolving models:/m at http://h:5000/?token=t0k: MlflowException: boom",
            "resolving models:/m at http://h:5000/?token=***: MlflowException: boom",
        ),
        ("(see http://h/?a=1&token=t0k), then", "(see http://h/?a=1&token=***), then"),
        ("http://h/?token=t0k:part.two rest", "http://h/?token=*** rest"),
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


#: Parameters whose name says they hold a secret, by any of its words (split at ``_ - .`` and
#: camelCase) or by its last word ``key``, in any case, percent-encoded or numbered.
SECRET_NAMES = [
    "token", "TOKEN", "access_token", "id_token", "refresh_token", "auth_token", "oauth_token",
    "accessToken", "sig", "signature", "oauth_signature", "key", "api_key", "apikey", "apiKey",
    "x-api-key", "API_KEY", "subscription-key", "aws_secret_access_key", "private_key",
    "password", "db_password", "passwd", "pwd", "secret", "client_secret", "clientSecret",
    "credential", "credentials", "auth", "authorization", "Authorization", "X-Amz-Signature",
    "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Signature", "X-Goog-Credential",
    # The last word alone let these through: a key that is not one of a few harmless kinds, a
    # secret word before another word, a number or version after it, an encoded name.
    "hmac_key", "encryption_key", "sessionKey", "session_key", "sharedKey", "signed_key", "XApiKey",
    "tokenValue", "token_value", "secret_value", "password_hash", "token2", "api_key2", "key2",
    "access_token_v2", "sig2", "api%5Fkey", "api%5fkey", "access%5Ftoken", "%74oken",
]  # fmt: skip
#: Names that only hold one of those words inside another, or a word beside it: left as they are.
PLAIN_NAMES = [
    "id", "monkey", "sigma", "author", "authority", "keyboard", "sort_key", "sortKey", "primary_key",
    "tokens", "max_tokens", "token_type", "expires_in", "state", "signed", "key_id", "secretary",
    "passes", "credit", "page_token", "pageToken", "next_page_token", "name", "version",
    # A presigned URL's other parameters, and an Azure SAS's: only its ``sig`` is the secret.
    "X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Goog-Date",
    "sv", "se", "st", "sp", "sr", "spr",
    # Cursors and words about a secret, not one; keys that find a row or an entry.
    "next_token", "continuation_token", "NextToken", "page_token2", "token_type_hint",
    "oauth_signature_method", "SignatureVersion", "auth_type", "partition_key", "page_key",
    "cache_key", "idempotency_key", "foreign_key", "page%5Ftoken", "version2", "v2", "turkey",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_parameter_named_as_a_secret_is_masked(name: str) -> None:
    assert redact(f"https://h/p?a=1&{name}=S3cret&b=2") == f"https://h/p?a=1&{name}=***&b=2"
    assert redact(f"https://h/p?{name}=S3cret") == f"https://h/p?{name}=***"


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_a_parameter_named_otherwise_is_left_as_it_is(name: str) -> None:
    """The keywords were matched anywhere in the name: ``?id=3&monkey=banana`` lost its banana."""
    text = f"https://h/p?a=1&{name}=banana&b=2"
    assert redact(text) == text


def test_the_token_of_an_oauth_implicit_grant_in_a_fragment_is_masked() -> None:
    assert redact("https://app.example/cb#access_token=eyJhbGc.x&token_type=bearer&expires_in=3600") == (
        "https://app.example/cb#access_token=***&token_type=bearer&expires_in=3600"
    )
    assert redact("https://h/cb?state=s#id_token=eyJ&state=s") == "https://h/cb?state=s#id_token=***&state=s"


def test_a_uri_inside_a_parameter_has_its_secrets_masked_too() -> None:
    assert redact("https://h/login?next=https://h/cb?token=t0k&lang=en") == (
        "https://h/login?next=https://h/cb?token=***&lang=en"
    )


def test_an_azure_connection_string_shows_no_account_key() -> None:
    text = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0==;EndpointSuffix=core"
    assert redact(text) == (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core"
    )


def test_mlp_versions_shows_the_registry_without_its_password(
    mlflow_client: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(mlflow_registry, "registry_client", lambda uri, **kwargs: mlflow_client)
    assert cli.main(["versions", "toy", "--tracking-uri", f"{CREDENTIALED}/?token=t0k"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("toy at http://***@127.0.0.1:1/?token=*** (")
    assert PASSWORD not in out
    assert "t0k" not in out
    # And the line said of a registry holding none.
    assert render(TOY, [], CREDENTIALED) == (
        "toy: no versions registered at http://***@127.0.0.1:1; `mlp train toy` registers one"
    )


def test_the_warnings_of_mlp_show_the_registry_without_its_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """urllib3 logs with the URL's path and query: the CLI's log handler masks it. Its retry
    warnings are not shown: the first is said once in mlp's words (a sign of life), masked too."""

    def get_service(name: str) -> Any:
        logging.getLogger("urllib3.connectionpool").warning(
            "Connection pool is full, discarding connection: %s", "127.0.0.1/?token=t0k3n"
        )
        return TOY

    monkeypatch.setattr(cli.registry, "get_service", get_service)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    # pytest's own handlers on the root logger would make the CLI's logging.basicConfig a no-op.
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    assert cli.main(["versions", "toy", "--tracking-uri", "http://127.0.0.1:1/?token=t0k3n"]) == 1
    err = capsys.readouterr().err
    assert "WARNING urllib3.connectionpool Connection pool is full" in err
    assert "discarding connection: 127.0.0.1/?token=***\n" in err
    assert "Retrying" not in err
    assert (
        "mlp: no answer yet from the MLflow tracking server at http://127.0.0.1:1/?token=*** "
        "(connection refused); retrying\n"
    ) in err
    assert "mlp: no MLflow tracking server answers at http://127.0.0.1:1/?token=*** (" in err
    assert "t0k3n" not in err
    assert len(err.splitlines()) == 3


def test_a_missing_registry_file_is_named_without_the_secret_of_its_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    for command, uri, said in [
        (["versions", "toy"], f"sqlite:///{tmp_path}/typo.db", "mlp: no registry at sqlite:///"),
        (["versions", "toy"], f"sqlite:///{tmp_path}", f"mlp: sqlite:///{tmp_path}?"),
        (["train", "toy"], f"sqlite:///{tmp_path}/typo/mlflow.db", f"mlp: sqlite:///{tmp_path}/typo/"),
    ]:
        assert cli.main([*command, "--tracking-uri", f"{uri}?password={PASSWORD}"]) == 2, uri
        err = capsys.readouterr().err
        assert err.startswith(said), err
        assert f"{uri}?password=***" in err
        assert PASSWORD not in err
    assert list(tmp_path.iterdir()) == []
    mlflow.set_tracking_uri(None)


def test_a_tracking_uri_mlflow_cannot_use_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    assert cli.main(["versions", "toy", "--tracking-uri", f"foo://alice:{PASSWORD}@bar"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlp: MLflow cannot use the tracking URI 'foo://***@bar' (")
    assert PASSWORD not in err


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
    # /readyz answers anyone: it names the kind of failure, not the registry; the log names it, masked.
    assert "127.0.0.1" not in ready["error"]
    assert PASSWORD not in ready["error"]
    failures = [record.getMessage() for record in caplog.records if "load failed" in record.getMessage()]
    assert failures
    assert "http://***@127.0.0.1:1" in failures[0]
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
