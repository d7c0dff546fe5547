"""``mlp serve`` without a service name: ``$MLP_SERVICE`` (the container image sets it), else exit 2."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from servekit import cli
from servekit.cli import serving


def test_service_positional_is_optional() -> None:
    args = cli.parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "8080"])
    assert args.service is None
    assert args.host == "0.0.0.0"
    assert args.port == 8080
    assert cli.parser().parse_args(["serve", "toy"]).service == "toy"


def test_no_service_and_no_env_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(serving.SERVICE_ENV, raising=False)
    assert cli.main(["serve", "--port", "8080"]) == 2
    err = capsys.readouterr().err
    assert "MLP_SERVICE" in err
    assert err.startswith("mlp: serve:")


def test_env_names_the_service_and_the_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[str] = []

    def fake_get_service(name: str) -> Any:
        served.append(name)
        raise LookupError(f"unknown service {name!r}")

    monkeypatch.setattr(cli.registry, "get_service", fake_get_service)
    monkeypatch.setenv(serving.SERVICE_ENV, "fromenv")
    assert cli.main(["serve"]) == 2
    assert cli.main(["serve", "fromarg"]) == 2
    assert served == ["fromenv", "fromarg"]


def test_package_sagemaker_is_a_command() -> None:
    args = cli.parser().parse_args(["package-sagemaker", "bankchurn", "--output", "out.tar.gz"])
    assert isinstance(args, argparse.Namespace)
    assert args.func is serving.cmd_package_sagemaker
    assert str(args.output) == "out.tar.gz"
    assert args.model_uri is None


@pytest.mark.usefixtures("restore_root_logger")
def test_serve_warns_of_each_variable_of_its_prefix_no_setting_reads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn
    from toy import TOY

    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(cli.registry, "local_port", lambda spec: 18999)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)  # built, not served
    monkeypatch.setenv("TOY_CAPTURE_PERCENTT", "5")
    monkeypatch.setenv("TOY_SERVICE_HOST", "10.0.0.7")  # Kubernetes' service link: no warning
    assert cli.main(["serve", "toy"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "servekit.settings" in line]
    assert len(warned) == 1, warned
    assert warned[0].endswith(
        "TOY_CAPTURE_PERCENTT is not a setting and is ignored; did you mean TOY_CAPTURE_PERCENT?"
    )
    assert "WARNING" in warned[0]


@pytest.mark.usefixtures("restore_root_logger")
def test_serve_bounds_the_headers_of_each_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from toy import TOY

    from servekit.rest.head_limit import HeadLimitedHttpToolsProtocol

    served: dict[str, Any] = {}
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    monkeypatch.setenv("TOY_MAX_HEADER_BYTES", "16384")
    assert cli.main(["serve", "toy", "--port", "18999"]) == 0
    # uvicorn's own httptools protocol holds headers without a bound (tests/test_rest_head_limit.py).
    assert issubclass(served["http"], HeadLimitedHttpToolsProtocol)
    assert served["http"].max_head_bytes == 16384


@pytest.mark.usefixtures("restore_root_logger")
def test_serve_with_a_taken_grpc_port_exits_3_in_one_line_as_with_a_taken_http_port(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    import uvicorn
    from toy import TOY

    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: pytest.fail("served"))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("TOY_GRPC_PORT", str(port))
        assert cli.main(["serve", "toy", "--host", "127.0.0.1", "--port", "18999"]) == 3
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "GRPC" in line]
    assert "ERROR servekit.rpc" in line
    assert line.endswith(
        f"TOY_GRPC_PORT={port}: cannot serve gRPC on 127.0.0.1:{port}: Address already in use"
    )


def test_serve_refuses_a_grpc_port_that_is_the_http_port_as_a_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from toy import TOY

    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setenv("TOY_GRPC_PORT", "18999")
    assert cli.main(["serve", "toy", "--port", "18999"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "mlp: toy settings: TOY_GRPC_PORT='18999': HTTP listens on port 18999; give gRPC another one"
    ]


def test_serve_gives_http_the_shutdown_grace_the_grpc_server_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    """One figure for both protocols: a long call is not cut on one while answered on the other."""
    import uvicorn
    from toy import TOY

    from servekit import rpc

    served: dict[str, Any] = {}
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    assert cli.main(["serve", "toy", "--port", "18999"]) == 0
    assert served["timeout_graceful_shutdown"] == rpc.SHUTDOWN_GRACE_SECONDS
