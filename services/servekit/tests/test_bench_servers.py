"""The benchmarks' servers: the settings they run with are the benchmark's alone; what they are
asked to measure is checked before anything starts."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from servekit import local, registry
from servekit.bench import servers


class Started:
    """A stand-in for the ``mlp serve`` process: what it was started with, and no process."""

    pid = 0
    returncode = 0
    seen: list[Mapping[str, str]] = []

    def __init__(self, command: list[str], **kwargs: Any) -> None:
        Started.seen.append(kwargs["env"])

    def poll(self) -> int:
        return 0


def test_a_served_champion_inherits_no_service_setting_of_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in {
        "BANKCHURN_CAPTURE_PERCENT": "100",
        "BANKCHURN_API_KEYS_FILE": "/etc/keys",
        "NLPINSIGHT_MAX_BATCH_SIZE": "2",
        "MODEL_URI": "models:/other@champion",
        "API_KEYS_FILE_NOT_A_SETTING": "kept",
    }.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setattr(subprocess, "Popen", Started)
    monkeypatch.setattr(local.Server, "wait_for", lambda self, *args, **kwargs: None)
    Started.seen = []
    mlflow = local.Server("mlflow", "http://127.0.0.1:9", Started([], env={}), tmp_path / "mlflow.log")
    spec = registry.get_service("bankchurn")
    settings = {"SHADOW_MODEL_URI": "runs:/abc/model"}
    with servers.serving(spec, mlflow, tmp_path, label="shadow", settings=settings) as server:
        env = Started.seen[-1]
        assert server.settings == {
            "BANKCHURN_LOG_LEVEL": "WARNING",
            "BANKCHURN_SHADOW_MODEL_URI": "runs:/abc/model",
        }
    prefixed = sorted(key for key in env if key.startswith(("BANKCHURN_", "NLPINSIGHT_", "CHICAGOTAXI_")))
    assert prefixed == ["BANKCHURN_LOG_LEVEL", "BANKCHURN_SHADOW_MODEL_URI"]
    assert "MODEL_URI" not in env
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9"
    assert env["PATH"] == local.os.environ["PATH"]
    assert env["API_KEYS_FILE_NOT_A_SETTING"] == "kept"
    assert {"BANKCHURN_CAPTURE_PERCENT", "MODEL_URI", "NLPINSIGHT_MAX_BATCH_SIZE"} <= set(
        servers.dropped_settings()
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench")
    p.add_argument("--services", nargs="*")
    return p


def test_unknown_services_are_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(local.PORTS_VARIABLE, "9900-9949")
    assert servers.checked_services(parser(), None) == registry.available()
    assert servers.checked_services(parser(), ["bankchurn", "bankchurn"]) == ["bankchurn"]
    with pytest.raises(SystemExit) as exited:
        servers.checked_services(parser(), ["bankchurn", "nosuch"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"--services nosuch: no such service (installed: {', '.join(registry.available())})" in err


@pytest.mark.parametrize(
    ("configured", "says"),
    [
        ("9400", "MLP_FREE_PORTS=9400: not LOW-HIGH, e.g. MLP_FREE_PORTS=9400-9449"),
        ("9499-9400", "MLP_FREE_PORTS=9499-9400: empty, its LOW is above its HIGH"),
        ("9400-99999", "MLP_FREE_PORTS=9400-99999: ports are 1 to 65535"),
    ],
)
def test_a_port_range_it_cannot_use_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], configured: str, says: str
) -> None:
    monkeypatch.setenv(local.PORTS_VARIABLE, configured)
    with pytest.raises(SystemExit) as exited:
        servers.checked_services(parser(), ["bankchurn"])
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
