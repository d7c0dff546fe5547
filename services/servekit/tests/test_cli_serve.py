"""``mlp serve`` without a service name: ``$MLP_SERVICE`` (the container image sets it), else exit 2."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import httpx
import pytest
from toy import TOY, ToyModel

from servekit import cli, http_client
from servekit.cli import serving
from servekit.local import free_port
from servekit.metrics.names import ACCESS_LOGGER
from servekit.model import INLINE_BATCH_LIMIT, ModelArtifact
from servekit.rest import create_app
from servekit.rpc import open_inference_pb2 as pb
from servekit.rpc import server as rpc_server
from servekit.settings import load_settings
from servekit.testing import wait_until
from servekit.training.splitting import Split


class Unserved:
    """What ``draining_server`` gives these tests: the options it was asked for, never run."""

    started = True

    def __init__(self, options: dict[str, Any] | None = None, **asked: Any) -> None:
        if options is not None:
            options.update(asked)

    def run(self) -> None:
        pass


def test_service_positional_is_optional() -> None:
    args = cli.parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "8080"])
    assert args.service is None
    assert args.host == "0.0.0.0"
    assert args.port == 8080
    assert cli.parser().parse_args(["serve", "toy"]).service == "toy"


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_serve_refuses_a_port_outside_1_to_65535_before_it_starts(
    port: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--port 99999 listened on 34463 while uvicorn logged 99999; --port -1 was uvicorn's
    "Servname not supported" and exit 3; --port 0 was the service's own port without a word."""
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(serving, "draining_server", lambda app, **options: pytest.fail("served"))
    with pytest.raises(SystemExit) as usage:
        cli.main(["serve", "toy", "--port", port])
    assert usage.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"mlp serve: error: argument --port: {port!r} is not a port from 1 to 65535 (leave --port "
        "out for the service's own port)"
    )


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
    from toy import TOY

    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(cli.registry, "local_port", lambda spec: 18999)
    monkeypatch.setattr(serving, "draining_server", lambda app, **options: Unserved())  # built, not served
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
    from toy import TOY

    from servekit.rest.head_limit import HeadLimitedHttpToolsProtocol

    served: dict[str, Any] = {}
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(serving, "draining_server", lambda app, **options: Unserved(served, **options))
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

    from toy import TOY

    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(serving, "draining_server", lambda app, **options: pytest.fail("served"))
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


class RecordingGrpcServer:
    """What ``OpenInferenceServicer.stop`` gives the gRPC server it stops."""

    def __init__(self) -> None:
        self.graces: list[float | None] = []

    async def stop(self, grace: float | None) -> None:
        pass  # no calls in flight: stopped at once

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        self.graces.append(timeout)  # the servicer's own grace, at whose end it cuts the calls left
        return False


def test_serve_gives_http_and_grpc_the_configured_shutdown_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """One figure for both protocols, the setting's: a long call is not cut on one while answered
    on the other, and a pod given less time to stop (Spot: 25 s) can shorten it for both."""
    from toy import TOY

    served: dict[str, Any] = {}
    apps: list[Any] = []

    def unserved(app: Any, **options: Any) -> Unserved:
        apps.append(app)
        return Unserved(served, **options)

    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(serving, "draining_server", unserved)
    monkeypatch.setenv("TOY_SHUTDOWN_GRACE_SECONDS", "12")
    assert cli.main(["serve", "toy", "--port", "18999"]) == 0
    assert served["timeout_graceful_shutdown"] == 12
    [app] = apps
    state = app.state
    servicer = rpc_server.OpenInferenceServicer(
        TOY, state.runtime, state.predictor, state.settings, state.metrics
    )
    grpc_server = RecordingGrpcServer()

    asyncio.run(servicer.stop(grpc_server))  # type: ignore[arg-type]
    assert grpc_server.graces == [12]  # its calls are cut after the same grace as uvicorn's


def test_serve_gives_the_default_shutdown_grace_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from toy import TOY

    served: dict[str, Any] = {}
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(serving, "draining_server", lambda app, **options: Unserved(served, **options))
    monkeypatch.delenv("TOY_SHUTDOWN_GRACE_SECONDS", raising=False)
    assert cli.main(["serve", "toy", "--port", "18999"]) == 0
    assert served["timeout_graceful_shutdown"] == 20  # k8s/base/services/model-server.yaml's figure


class HeldToy(ToyModel):
    """Holds a batch run off the loop until released: a request in flight when the server stops."""

    release = threading.Event()

    def predict(self, records: Any) -> list[dict[str, Any]]:
        if len(records) > INLINE_BATCH_LIMIT:
            self.release.wait(timeout=30)
        return super().predict(records)


ROW = {"x": 1.0, "color": "red"}
HELD = [ROW] * (INLINE_BATCH_LIMIT + 1)


def infer_request(rows: list[dict[str, Any]]) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="toy")
    request.inputs.add(name="x", datatype="FP64", shape=[len(rows)]).contents.fp64_contents.extend(
        r["x"] for r in rows
    )
    request.inputs.add(name="color", datatype="BYTES", shape=[len(rows)]).contents.bytes_contents.extend(
        r["color"].encode() for r in rows
    )
    return request


def model_infer(port: int, rows: list[dict[str, Any]], timeout: float = 30) -> str:
    """The status of a ``ModelInfer`` call on a channel of its own, as a new client makes it."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            f"/{rpc_server.SERVICE}/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        try:
            call(infer_request(rows), timeout=timeout)
        except grpc.RpcError as exc:
            return str(exc.code().name)
        return "OK"


@contextmanager
def serving_both(
    artifact: ModelArtifact, grace: int
) -> Iterator[tuple[Any, Any, int, int, dict[str, Any], threading.Event]]:
    """The toy service as ``mlp serve`` runs it, HTTP and gRPC, in a thread; and a request held in
    each protocol (``answers`` gets each one's outcome; ``ended`` is set when both have one)."""
    http_port, grpc_port = free_port(), free_port()
    settings = load_settings("toy", grpc_port=grpc_port, max_batch_size=64, shutdown_grace_seconds=grace)
    app = create_app(dataclasses.replace(TOY, model=HeldToy), settings, source=lambda: artifact)
    server = serving.draining_server(
        app,
        host="127.0.0.1",
        port=http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,  # as mlp serve
    )
    HeldToy.release.clear()
    runner = threading.Thread(target=server.run)  # not the main thread: uvicorn installs no handlers
    runner.start()
    answers: dict[str, Any] = {}
    ended = threading.Event()

    def answered(protocol: str, outcome: Any) -> None:
        answers[protocol] = outcome
        if len(answers) == 2:
            ended.set()

    def http_call() -> None:
        try:
            response = http_client.post(
                f"http://127.0.0.1:{http_port}/predict/batch", json={"instances": HELD}, timeout=60
            )
            answered("http", response.status_code)
        except httpx.HTTPError as exc:
            answered("http", type(exc).__name__)

    callers = [
        threading.Thread(target=http_call),
        threading.Thread(target=lambda: answered("grpc", model_infer(grpc_port, HELD, timeout=60))),
    ]
    try:
        wait_until(lambda: server.started and app.state.runtime.model is not None, every=0.02)
        for caller in callers:
            caller.start()
        wait_until(lambda: app.state.admission.in_flight == 2, every=0.02)  # both batches held
        yield server, app, http_port, grpc_port, answers, ended
    finally:
        HeldToy.release.set()
        server.should_exit = True
        runner.join(timeout=30)
        for caller in callers:
            caller.join(timeout=30)
    assert not runner.is_alive()


def test_sigterm_stops_grpc_taking_calls_as_http_begins_to_drain_not_after(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    """Both protocols refuse new work at once and drain together within the one grace: gRPC
    stopped after HTTP had drained would take calls all that while, then wait a grace of its
    own, two in a row, past Kubernetes' terminationGracePeriodSeconds."""
    artifact, _ = toy_trained
    with serving_both(artifact, grace=30) as (server, app, _, grpc_port, answers, ended):
        assert model_infer(grpc_port, [ROW]) == "OK"  # a new call, answered while serving
        server.handle_exit(signal.SIGTERM, None)  # what uvicorn's SIGTERM handler does
        # The server notices its signal within a tick (0.1 s), later on a loaded machine; until
        # then a new call is answered.
        outcomes: list[str] = []

        def not_answered() -> bool:
            outcomes.append(model_infer(grpc_port, [ROW]))
            return outcomes[-1] != "OK"

        wait_until(not_answered, every=0.02)
        # A call that reached gRPC's core as the stop began is cancelled there, before any handler
        # (seen in 2 of 25 runs); every call after it is refused, as a client may retry it.
        assert outcomes[-1] in ("UNAVAILABLE", "CANCELLED")
        assert model_infer(grpc_port, [ROW]) == "UNAVAILABLE"
        assert answers == {}  # refused while the HTTP request was held: its drain had not ended
        HeldToy.release.set()  # both answered within the grace
        assert ended.wait(timeout=30)
        assert answers == {"http": 200, "grpc": "OK"}
    labels = {"endpoint": rpc_server.grpc_endpoint("ModelInfer"), "method": "GRPC", "status": "503"}
    assert not app.state.metrics.registry.get_sample_value("toy_requests_total", labels)  # none cut


def test_a_grace_spent_cuts_both_protocols_in_flight_the_grpc_call_counted_as_a_server_failure(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    with serving_both(artifact, grace=1) as (server, app, _, _, answers, ended):
        server.handle_exit(signal.SIGTERM, None)
        assert ended.wait(timeout=30)  # both cut, their model calls still held
        assert answers["grpc"] == "UNAVAILABLE"
        assert answers["http"] != 200
    labels = {"endpoint": rpc_server.grpc_endpoint("ModelInfer"), "method": "GRPC", "status": "503"}
    assert app.state.metrics.registry.get_sample_value("toy_requests_total", labels) == 1


def test_a_request_the_grace_cuts_is_a_503_shutting_down_as_the_grpc_call_without_a_traceback(
    toy_trained: tuple[ModelArtifact, Split],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """uvicorn cancels it once the grace is spent: it was "Exception in ASGI application" with a
    traceback and a 500, counted against the service as a bug, where the gRPC call was a 503."""
    artifact, _ = toy_trained
    caplog.set_level(logging.INFO)
    with serving_both(artifact, grace=1) as (server, app, _, _, answers, ended):
        server.handle_exit(signal.SIGTERM, None)
        assert ended.wait(timeout=30)
    assert answers == {"http": 503, "grpc": "UNAVAILABLE"}
    total = app.state.metrics.registry.get_sample_value
    for endpoint, method in (("/predict/batch", "POST"), (rpc_server.grpc_endpoint("ModelInfer"), "GRPC")):
        assert total("toy_requests_total", {"endpoint": endpoint, "method": method, "status": "503"}) == 1
        assert not total("toy_requests_total", {"endpoint": endpoint, "method": method, "status": "500"})
    (cut,) = [
        r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER and " /predict/" in r.getMessage()
    ]
    assert cut.startswith("POST /predict/batch 503 in ")
    assert cut.endswith(
        " ms: shutting_down: the server shut down before the answer, its shutdown grace spent; "
        "retry the request"
    )
    assert "Exception in ASGI application" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]  # no traceback anywhere


@pytest.mark.parametrize(("sent", "kept"), [(None, 75), ("620", 620)])
def test_serve_keeps_an_idle_connection_longer_than_a_load_balancer_reuses_it(
    monkeypatch: pytest.MonkeyPatch, sent: str | None, kept: int
) -> None:
    """uvicorn's 5 s closed a connection the load balancer in front (60 s: nginx-ingress, an ALB;
    600 s: Google's) would still send a request on: a 502 its client sees."""
    from toy import TOY

    served: dict[str, Any] = {}
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(serving, "draining_server", lambda app, **options: Unserved(served, **options))
    if sent is None:
        monkeypatch.delenv("TOY_KEEP_ALIVE_SECONDS", raising=False)
    else:
        monkeypatch.setenv("TOY_KEEP_ALIVE_SECONDS", sent)
    assert cli.main(["serve", "toy", "--port", "18999"]) == 0
    assert served["timeout_keep_alive"] == kept
