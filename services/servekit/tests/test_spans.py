from __future__ import annotations

import contextvars
import gzip
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from toy import FAILING_X, TOY, FailingToy

from servekit import logs, spans, tracing
from servekit.local import free_port
from servekit.metrics.names import GRPC_SERVICE
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rpc import open_inference_pb2 as pb
from servekit.settings import load_settings
from servekit.testing import StubHandler, http_stub, wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


@pytest.fixture(autouse=True)
def no_trace_left_behind() -> Iterator[None]:
    """A span named on the log lines of the tests after it (capture lines measured 75 bytes longer)."""
    yield
    assert tracing.current.get() is None
    assert spans.open_phases.get() is None


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"}, True),
    ],
)
def test_spans_are_on_only_where_a_collector_is_named(
    environ: dict[str, str], on: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert spans.enabled(environ) is on
    for name in [*spans.ENDPOINT_VARIABLES, "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    found = spans.from_environment("toy")
    assert (found is not None) is on
    if found is not None:
        found.shutdown()


def test_a_service_without_a_collector_imports_no_exporter() -> None:
    """0.2 s of imports and a thread that a service without a collector has no use for."""
    code = (
        "import sys\n"
        "from servekit import registry\n"
        "from servekit.rest import create_app\n"
        "from servekit.settings import load_settings\n"
        "spec = registry.get_service('bankchurn')\n"
        "create_app(spec, load_settings('bankchurn'), source=lambda: None)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.exporter')))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ
    )
    assert result.stdout.strip() == "[]"


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced_client(
    toy_trained: tuple[ModelArtifact, Split], exported: InMemorySpanExporter
) -> Iterator[tuple[TestClient, spans.RequestSpans]]:
    artifact, _ = toy_trained
    request_spans = spans.RequestSpans("toy", exported)
    app = create_app(
        TOY, load_settings("toy", access_log="all"), source=lambda: artifact, spans=request_spans
    )
    with TestClient(app) as client:
        wait_ready(client)
        yield client, request_spans


def finished(request_spans: spans.RequestSpans, exported: InMemorySpanExporter) -> list[ReadableSpan]:
    request_spans.provider.force_flush()
    return list(exported.get_finished_spans())


def test_a_prediction_is_a_span_of_the_callers_trace_with_a_child_per_phase_of_server_timing(
    traced_client: tuple[TestClient, spans.RequestSpans], exported: InMemorySpanExporter
) -> None:
    client, request_spans = traced_client
    exported.clear()  # the readiness probes' (none) and anything before
    response = client.post("/predict?explain=true", json=ROW, headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    found = finished(request_spans, exported)
    [server] = [s for s in found if s.kind is SpanKind.SERVER]
    assert server.name == "POST /predict"
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == CALLER_SPAN
    assert server.parent.is_remote
    assert server.status.status_code is StatusCode.UNSET
    assert dict(server.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/predict",
        "http.response.status_code": 200,
        "url.path": "/predict",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
    }
    assert server.resource.attributes["service.name"] == "toy"
    children = [s for s in found if s is not server]
    # The phases Server-Timing names, in order, each inside the request's span.
    timed = [part.split(";")[0] for part in response.headers["server-timing"].split(", ")][:-1]
    assert [c.name for c in children] == timed
    assert {"validate", "predict", "explain"} <= set(timed)
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == server.context.span_id
        assert child.context.trace_id == server.context.trace_id
        assert server.start_time <= child.start_time <= child.end_time <= server.end_time
    assert not [s for s in found if s.kind is SpanKind.SERVER and s is not server]


def test_probes_and_scrapes_have_no_spans_and_a_refusal_is_no_error(
    traced_client: tuple[TestClient, spans.RequestSpans], exported: InMemorySpanExporter
) -> None:
    client, request_spans = traced_client
    exported.clear()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200
    assert finished(request_spans, exported) == []
    refused = client.post("/predict", json={"x": "three", "color": "red"})
    assert refused.status_code == 422
    unknown = client.get("/no/such/path")
    assert unknown.status_code == 404
    found = finished(request_spans, exported)
    by_name = {s.name: s for s in found if s.kind is SpanKind.SERVER}
    assert set(by_name) == {"POST /predict", "GET"}  # an unserved path by its method alone
    assert by_name["POST /predict"].attributes["http.response.status_code"] == 422
    assert by_name["POST /predict"].attributes["error.type"] == "invalid_request"
    assert "http.route" not in (by_name["GET"].attributes or {})
    # OpenTelemetry's HTTP conventions: a 4xx is the client's, no error of the server's span.
    assert all(s.status.status_code is StatusCode.UNSET for s in by_name.values())
    # A new trace for each: no header named the caller's.
    assert all(s.parent is None for s in by_name.values())


@pytest.mark.usefixtures("restore_root_logger")
def test_a_failure_is_an_error_span_and_its_log_lines_name_the_span(
    toy_trained: tuple[ModelArtifact, Split], exported: InMemorySpanExporter
) -> None:
    stream = io.StringIO()
    logs.configure_logging("INFO", "json", "toy", stream)
    artifact, _ = toy_trained
    request_spans = spans.RequestSpans("toy", exported)
    app = create_app(
        replace(TOY, model=FailingToy), load_settings("toy"), source=lambda: artifact, spans=request_spans
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        exported.clear()
        failed = client.post("/predict", json={**ROW, "x": FAILING_X}, headers={"X-Request-ID": "mine"})
    assert failed.status_code == 500
    found = finished(request_spans, exported)
    [server] = [s for s in found if s.kind is SpanKind.SERVER]
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes["http.response.status_code"] == 500
    assert server.attributes["error.type"] == server.status.description
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == "mine"]
    assert mine, lines
    for line in mine:
        assert line["trace_id"] == f"{server.context.trace_id:032x}"
        assert line["span_id"] == f"{server.context.span_id:016x}"


@pytest.mark.parametrize(
    ("header", "caller"),
    [
        ("traceparent", (TRACEPARENT, CALLER_TRACE, CALLER_SPAN)),
        ("x-cloud-trace-context", (f"{CALLER_TRACE}/{int(CALLER_SPAN, 16)};o=1", CALLER_TRACE, CALLER_SPAN)),
        (
            "x-amzn-trace-id",
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                "5759e988bd862e3fe1be46a994272793",
                "53995c3f42cd8ad8",
            ),
        ),
    ],
)
def test_each_tracing_header_the_logs_read_makes_the_span_a_child_of_the_callers(
    traced_client: tuple[TestClient, spans.RequestSpans],
    exported: InMemorySpanExporter,
    header: str,
    caller: tuple[str, str, str],
) -> None:
    """``caller``: the header's value, and the trace and span it names, as W3C writes them."""
    value, trace_id, span_id = caller
    client, request_spans = traced_client
    exported.clear()
    assert client.post("/predict", json=ROW, headers={header: value}).status_code == 200
    [server] = [s for s in finished(request_spans, exported) if s.kind is SpanKind.SERVER]
    assert f"{server.context.trace_id:032x}" == trace_id
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == span_id


def test_a_caller_that_did_not_sample_its_trace_gets_no_span(
    traced_client: tuple[TestClient, spans.RequestSpans], exported: InMemorySpanExporter
) -> None:
    """The SDK's default sampler follows the caller: its unsampled trace is not the service's to keep."""
    client, request_spans = traced_client
    exported.clear()
    unsampled = TRACEPARENT.removesuffix("-01") + "-00"
    assert client.post("/predict", json=ROW, headers={"traceparent": unsampled}).status_code == 200
    assert finished(request_spans, exported) == []


@pytest.mark.parametrize(
    ("header", "value", "logged_trace"),
    [
        # An ALB's header: the root, no parent (X-Ray's form is what its console searches for).
        (
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "1-5759e988-bd862e3fe1be46a994272793",
        ),
        (
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            "1-5759e988-bd862e3fe1be46a994272793",
        ),
        ("x-cloud-trace-context", CALLER_TRACE, CALLER_TRACE),
        ("x-cloud-trace-context", f"{CALLER_TRACE};o=1", CALLER_TRACE),
    ],
)
def test_a_header_naming_a_trace_and_no_span_makes_the_span_the_root_of_that_trace(
    toy_trained: tuple[ModelArtifact, Split],
    exported: InMemorySpanExporter,
    header: str,
    value: str,
    logged_trace: str,
) -> None:
    """It started a trace of the service's own: behind an ALB no span was in the trace its
    console showed, though the log lines named that trace."""
    stream = io.StringIO()
    logs.configure_logging("INFO", "json", "toy", stream)
    artifact, _ = toy_trained
    request_spans = spans.RequestSpans("toy", exported)
    settings = load_settings("toy", access_log="all")
    app = create_app(TOY, settings, source=lambda: artifact, spans=request_spans)
    with TestClient(app) as client:
        wait_ready(client)
        exported.clear()
        answered = client.post("/predict", json=ROW, headers={header: value, "X-Request-ID": "mine"})
        assert answered.status_code == 200
        other = client.post("/predict", json=ROW)
        assert other.status_code == 200
    servers = [s for s in finished(request_spans, exported) if s.kind is SpanKind.SERVER]
    [server, own] = sorted(servers, key=lambda s: s.start_time or 0)
    assert f"{server.context.trace_id:032x}" == logged_trace.removeprefix("1-").replace("-", "")
    assert server.parent is None
    # Ids are still the SDK's random ones once the request is started: the next request's trace.
    assert own.context.trace_id != server.context.trace_id
    mine = [
        line for line in map(json.loads, stream.getvalue().splitlines()) if line.get("request_id") == "mine"
    ]
    assert mine
    for line in mine:
        assert (line["trace_id"], line["span_id"]) == (logged_trace, f"{server.context.span_id:016x}")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"),
        ("x-cloud-trace-context", f"{CALLER_TRACE};o=0"),
    ],
)
def test_a_caller_naming_a_trace_it_did_not_sample_and_no_span_gets_no_span(
    traced_client: tuple[TestClient, spans.RequestSpans],
    exported: InMemorySpanExporter,
    header: str,
    value: str,
) -> None:
    client, request_spans = traced_client
    exported.clear()
    assert client.post("/predict", json=ROW, headers={header: value}).status_code == 200
    assert finished(request_spans, exported) == []


#: What the collector was sent: the path, the content type and the decoded request.
Received = tuple[str, str | None, ExportTraceServiceRequest]


class Collector(StubHandler):
    """An OpenTelemetry collector's OTLP/HTTP receiver: keeps each export request it is sent."""

    def __init__(self, received: list[Received], *args: Any) -> None:
        self.received = received
        super().__init__(*args)

    def do_POST(self) -> None:
        body = self.body()
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append((self.path, self.headers.get("Content-Type"), request))
        self.answer(200, b"", "application/x-protobuf")


def test_spans_reach_the_collector_the_environment_names_over_otlp_http(
    toy_trained: tuple[ModelArtifact, Split], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's own exporter, over real HTTP to a stand-in of a collector's receiver (no collector
    installs here), which decodes what it is sent as OTLP's protobuf messages. Sent when the
    service stops, at the latest: its lifespan flushes the queue."""
    artifact, _ = toy_trained
    received: list[Received] = []
    with http_stub(partial(Collector, received)) as url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=toy-7d9f,deployment.environment=test")
        app = create_app(TOY, load_settings("toy"), source=lambda: artifact)
        with TestClient(app) as client:
            wait_ready(client)
            assert client.post("/predict", json=ROW, headers={"traceparent": TRACEPARENT}).status_code == 200
    assert received, "nothing was exported"
    path, content_type, _ = received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    sent = [
        (resource_spans.resource, span)
        for _, _, request in received
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    [(resource, server)] = [(r, s) for r, s in sent if s.name == "POST /predict"]
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "toy"
    assert attributes["k8s.pod.name"] == "toy-7d9f"
    assert server.trace_id.hex() == CALLER_TRACE
    assert server.parent_span_id.hex() == CALLER_SPAN
    assert {s.name for _, s in sent} >= {"POST /predict", "validate", "predict"}


def test_a_grpc_call_is_a_span_of_the_callers_trace_named_as_the_rpc_conventions_say(
    toy_trained: tuple[ModelArtifact, Split], exported: InMemorySpanExporter
) -> None:
    artifact, _ = toy_trained
    request_spans = spans.RequestSpans("toy", exported)
    settings = load_settings("toy", grpc_port=free_port())
    with TestClient(create_app(TOY, settings, source=lambda: artifact, spans=request_spans)) as client:
        wait_ready(client)
        exported.clear()
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]

            def call(method: str, request: Any, reply: Any, **metadata: str) -> Any:
                rpc = channel.unary_unary(
                    f"/{GRPC_SERVICE}/{method}",
                    request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=reply.FromString,
                )
                return rpc(request, metadata=tuple(metadata.items()))

            assert call("ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse).ready
            request = pb.ModelInferRequest(model_name="toy")
            request.inputs.add(name="x", datatype="FP64", shape=[1]).contents.fp64_contents.append(3.0)
            request.inputs.add(name="color", datatype="BYTES", shape=[1]).contents.bytes_contents.append(
                b"red"
            )
            request.parameters["explain"].bool_param = True
            call("ModelInfer", request, pb.ModelInferResponse, traceparent=TRACEPARENT)
            request.model_name = "churn"
            with pytest.raises(grpc.RpcError) as refused:
                call("ModelInfer", request, pb.ModelInferResponse)
            assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    found = finished(request_spans, exported)
    servers = [s for s in found if s.kind is SpanKind.SERVER]
    # The probe has none; the answered call and the refused one have one each.
    assert [s.name for s in servers] == [f"{GRPC_SERVICE}/ModelInfer"] * 2
    answered, refused_span = servers
    assert f"{answered.context.trace_id:032x}" == CALLER_TRACE
    assert answered.parent is not None
    assert f"{answered.parent.span_id:016x}" == CALLER_SPAN
    assert dict(answered.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": GRPC_SERVICE,
        "rpc.method": "ModelInfer",
        "rpc.grpc.status_code": 0,
    }
    children = [
        s.name for s in found if s.parent is not None and s.parent.span_id == answered.context.span_id
    ]
    assert {"validate", "predict", "explain"} <= set(children)
    assert refused_span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert refused_span.attributes["error.type"] == "model_not_found"
    assert refused_span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("environ", "seconds"),
    [
        ({}, spans.EXPORT_TIMEOUT_SECONDS),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "3"}, 3.0),
        ({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0.5"}, 0.5),
    ],
)
def test_a_send_ends_within_a_stopping_pods_exit_slack_unless_told_otherwise(
    environ: dict[str, str], seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's 10 s per send: a pod stopping while its collector hung was killed flushing. The
    collector here takes the connection and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as hung:
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        for name, value in {"OTEL_EXPORTER_OTLP_ENDPOINT": url, **environ}.items():
            monkeypatch.setenv(name, value)
        request_spans = spans.from_environment("toy")
        assert request_spans is not None
        # In a context of its own, as a request's: begin() names the span on the log lines after it.
        opened = contextvars.copy_context().run(request_spans.begin, "POST /predict", time.time_ns())
        assert opened is not None  # a trace the service starts is sampled by default
        opened.end(time.time_ns(), {})
        started = time.monotonic()
        request_spans.shutdown()  # the last send, given up at its timeout
        took = time.monotonic() - started
    assert seconds - 0.2 < took < seconds + 1.5
