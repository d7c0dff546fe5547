"""Settings from ``<SERVICE>_`` variables; a bad value is one line naming the variable."""

from __future__ import annotations

import pytest
from toy import TOY

from servekit import cli
from servekit.settings import SettingsError, load_settings, unknown_variables


def test_prefixed_variables_configure_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_MAX_BATCH_SIZE", "32")
    monkeypatch.setenv("TOY_LOG_LEVEL", "warning")
    monkeypatch.setenv("TOY_LOG_FORMAT", " JSON ")
    settings = load_settings("toy")
    assert settings.max_batch_size == 32
    assert settings.log_level == "WARNING"
    assert settings.log_format == "json"
    assert load_settings("other").max_batch_size == 256  # another service's prefix


def test_the_shutdown_grace_is_a_setting_of_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seconds a stopping server gives the requests in flight, which a pod given less time to
    stop than the base's 40 s (Spot: 25 s) must shorten (k8s/components/spot-model-pods)."""
    monkeypatch.delenv("TOY_SHUTDOWN_GRACE_SECONDS", raising=False)
    assert load_settings("toy").shutdown_grace_seconds == 20
    monkeypatch.setenv("TOY_SHUTDOWN_GRACE_SECONDS", "12")
    assert load_settings("toy").shutdown_grace_seconds == 12
    assert load_settings("other").shutdown_grace_seconds == 20  # another service's prefix
    assert not unknown_variables("toy", {"TOY_SHUTDOWN_GRACE_SECONDS": "12"})


def test_the_prefixed_model_uri_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_URI", "models:/toy/1")
    assert load_settings("toy").resolved_model_uri() == "models:/toy/1"
    monkeypatch.setenv("TOY_MODEL_URI", "models:/toy@canary")
    assert load_settings("toy").resolved_model_uri() == "models:/toy@canary"
    monkeypatch.delenv("TOY_MODEL_URI")
    monkeypatch.delenv("MODEL_URI")
    assert load_settings("toy").resolved_model_uri() == "models:/toy@champion"


def test_the_google_cloud_project_is_read_unprefixed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert load_settings("toy").google_cloud_project == ""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-gcp-project")
    assert load_settings("toy").google_cloud_project == "my-gcp-project"
    monkeypatch.setenv("TOY_GOOGLE_CLOUD_PROJECT", "example.com:other-project")
    assert load_settings("toy").google_cloud_project == "example.com:other-project"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("TOY_MAX_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("TOY_MAX_BODY_BYTES", "lots", "valid integer"),
        ("TOY_LOAD_RETRY_MAX_SECONDS", "-1", "greater than 0"),
        ("TOY_MODEL_REFRESH_SECONDS", "-5", "greater than or equal to 0"),
        ("TOY_SHADOW_SAMPLE_RATE", "0", "greater than 0"),
        ("TOY_SHADOW_SAMPLE_RATE", "1.5", "less than or equal to 1"),
        ("TOY_CAPTURE_PERCENT", "150", "less than or equal to 100"),
        ("TOY_CAPTURE_PERCENT", "-1", "greater than or equal to 0"),
        ("TOY_MAX_CONCURRENT_REQUESTS", "-1", "greater than or equal to 0"),
        ("TOY_MAX_CONCURRENT_REQUESTS", "many", "valid integer"),
        ("TOY_LOG_LEVEL", "verbose", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("TOY_LOG_FORMAT", "xml", "'text' or 'json'"),
        ("TOY_GOOGLE_CLOUD_PROJECT", "My Project", "not a Google Cloud project id"),
        # Read unprefixed, so named unprefixed: the message points at the variable that was set.
        ("GOOGLE_CLOUD_PROJECT", "proj", "not a Google Cloud project id"),
        ("TOY_CORS_ALLOW_ORIGINS", "https://app.example.com/", "no path or trailing slash"),
        ("TOY_CORS_ALLOW_ORIGINS", "app.example.com", "is not an origin"),
        ("TOY_CORS_ALLOW_ORIGINS", "https://a.example.com,*", "cannot be listed with others"),
        # Forms a browser never sends in Origin, so they would never match.
        ("TOY_CORS_ALLOW_ORIGINS", "https://Risk.Example.com", "write https://risk.example.com"),
        ("TOY_CORS_ALLOW_ORIGINS", "https://b.example.com:443", "write https://b.example.com"),
        ("TOY_CORS_ALLOW_ORIGINS", "http://b.example.com:080", "write http://b.example.com"),
        ("TOY_CORS_ALLOW_ORIGINS", "http://[0:0::1]:3000", "write http://[::1]:3000"),
        ("TOY_CORS_ALLOW_ORIGINS", "https://a.example.com:99999", "there is no port 99999"),
        ("TOY_MAX_BODY_BYTES", "3000000000", "less than or equal to 2147483647"),
        ("TOY_MAX_BODY_BYTES", "99999999999999999999", "less than or equal to 2147483647"),
        ("TOY_ROOT_PATH", "toy", "write /toy"),
        ("TOY_ROOT_PATH", "/toy/", "write /toy"),
        ("TOY_ROOT_PATH", " /toy", "write /toy"),
        ("TOY_ROOT_PATH", "/", "leave it empty for none"),
        ("TOY_MODEL_REFRESH_SECONDS", "0.000001", "0 (never) or at least 1 second"),
        ("TOY_LIVE_EVALUATION_REFRESH_SECONDS", "0.5", "0 (never) or at least 1 second"),
        ("TOY_BODY_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("TOY_BODY_TIMEOUT_SECONDS", "7200", "less than or equal to 3600"),
        ("TOY_SHUTDOWN_GRACE_SECONDS", "0", "greater than or equal to 1"),
        ("TOY_SHUTDOWN_GRACE_SECONDS", "601", "less than or equal to 600"),
        ("TOY_SHUTDOWN_GRACE_SECONDS", "12.5", "valid integer"),  # Kubernetes' seconds are whole
        ("TOY_SHUTDOWN_GRACE_SECONDS", "12s", "valid integer"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_problem(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings("toy")
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"toy settings: {variable}=")
    assert value.upper() in message.upper()
    assert problem in message


def test_every_bad_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_MAX_BATCH_SIZE", "0")
    monkeypatch.setenv("TOY_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match=r"TOY_MAX_BATCH_SIZE='0'.*; TOY_LOG_FORMAT='xml'"):
        load_settings("toy")


def test_mlp_serve_with_a_bad_setting_exits_2_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setenv("TOY_LOG_LEVEL", "loud")
    assert cli.main(["serve", "toy"]) == 2
    err = capsys.readouterr().err
    levels = "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"
    assert err.splitlines() == [f"mlp: toy settings: TOY_LOG_LEVEL='LOUD': Input should be {levels}"]


def test_values_a_browser_or_an_operator_writes_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_CORS_ALLOW_ORIGINS", "http://[::1]:3000")
    monkeypatch.setenv("TOY_WATCH_INPUTS", " False ")  # stripped, as numbers and choices are
    monkeypatch.setenv("TOY_ROOT_PATH", "/toy")
    monkeypatch.setenv("TOY_MODEL_REFRESH_SECONDS", "0")
    monkeypatch.setenv("TOY_LIVE_EVALUATION_REFRESH_SECONDS", "1")
    settings = load_settings("toy")
    assert settings.cors_origins() == ("http://[::1]:3000",)
    assert settings.watch_inputs is False
    assert settings.root_path == "/toy"
    assert (settings.model_refresh_seconds, settings.live_evaluation_refresh_seconds) == (0, 1)


def test_cors_origins_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings("toy").cors_origins() == ()
    monkeypatch.setenv("TOY_CORS_ALLOW_ORIGINS", " https://risk.example.com , http://localhost:3000,")
    settings = load_settings("toy")
    assert settings.cors_origins() == ("https://risk.example.com", "http://localhost:3000")
    assert settings.cors_allow_origins == "https://risk.example.com,http://localhost:3000"


def test_a_variable_of_the_prefix_no_setting_reads_is_named_with_the_setting_it_resembles() -> None:
    environ = {
        "TOY_CAPTURE_PERCENTT": "5",
        "TOY_MODELURI": "models:/toy@champion",
        "TOY_COLOUR": "red",
        "TOY_MAX_BATCH_SIZE": "3",  # a setting
        "MODEL_URI": "models:/toy/1",  # read without the prefix
        "OTHER_CAPTURE_PERCENTT": "5",  # another service's
        # What Kubernetes sets for a Service named toy (service links)
        "TOY_SERVICE_HOST": "10.0.0.7",
        "TOY_SERVICE_PORT": "80",
        "TOY_SERVICE_PORT_HTTP": "80",
        "TOY_PORT": "tcp://10.0.0.7:80",
        "TOY_PORT_80_TCP_ADDR": "10.0.0.7",
    }
    assert unknown_variables("toy", environ) == [
        "TOY_CAPTURE_PERCENTT is not a setting and is ignored; did you mean TOY_CAPTURE_PERCENT?",
        "TOY_COLOUR is not a setting and is ignored",
        "TOY_MODELURI is not a setting and is ignored; did you mean TOY_MODEL_URI?",
    ]
    assert unknown_variables("toy", {"TOY_MAX_BATCH_SIZE": "3"}) == []
