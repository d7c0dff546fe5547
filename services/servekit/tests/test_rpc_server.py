"""The Open Inference Protocol over gRPC: the REST endpoint's numbers, checks and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from toy import FAILING_X, TOY, FailingToy, ToyModel
from tritonclient.grpc import service_pb2 as triton

from servekit.auth.key_lines import digest, key_id, key_line, new_key
from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.errors import FieldProblem, ServekitError
from servekit.local import free_port
from servekit.metrics import MetricNames
from servekit.metrics.names import ENDPOINTS, GRPC_INFER, GRPC_METHODS, grpc_endpoint
from servekit.model import INLINE_BATCH_LIMIT, ModelArtifact
from servekit.rest import create_app
from servekit.rpc import generate, reflection
from servekit.rpc import open_inference_pb2 as pb
from servekit.rpc.message_size import OVERSIZE_READ_FACTOR
from servekit.rpc.messages import infer_message, parameters_of
from servekit.rpc.port import GrpcPortError, check_port
from servekit.rpc.server import SERVICE, OpenInferenceServicer
from servekit.rpc.status import MAX_DETAILS_BYTES, RETRY_PUSHBACK_KEY, client_gone, status_details, wire_bytes
from servekit.settings import load_settings
from servekit.testing import metric_sample, request_rows, wait_ready
from servekit.training.splitting import Split

NAMES = MetricNames("toy")


class Stub:
    """The protocol's RPCs by method path, as any generated client calls them."""

    def __init__(self, channel: grpc.Channel) -> None:
        def rpc(name: str, response: Any) -> Any:
            return channel.unary_unary(
                f"/{SERVICE}/{name}",
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=response.FromString,
            )

        self.server_live = rpc("ServerLive", pb.ServerLiveResponse)
        self.server_ready = rpc("ServerReady", pb.ServerReadyResponse)
        self.model_ready = rpc("ModelReady", pb.ModelReadyResponse)
        self.server_metadata = rpc("ServerMetadata", pb.ServerMetadataResponse)
        self.model_metadata = rpc("ModelMetadata", pb.ModelMetadataResponse)
        self.model_infer = rpc("ModelInfer", pb.ModelInferResponse)


@pytest.fixture
def served(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[tuple[TestClient, Stub]]:
    artifact, _ = toy_trained
    settings = load_settings("toy", max_batch_size=8, grpc_port=free_port())
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            yield client, Stub(channel)


def infer_request(rows: list[dict[str, Any]], **fields: Any) -> pb.ModelInferRequest:
    """Rows as typed contents: x as FP64, color as BYTES."""
    request = pb.ModelInferRequest(model_name="toy", **fields)
    x = request.inputs.add(name="x", datatype="FP64", shape=[len(rows)])
    x.contents.fp64_contents.extend(float(r["x"]) for r in rows)
    color = request.inputs.add(name="color", datatype="BYTES", shape=[len(rows)])
    color.contents.bytes_contents.extend(r["color"].encode() for r in rows)
    return request


def raw_request(rows: list[dict[str, Any]]) -> pb.ModelInferRequest:
    """The same rows as raw contents, as Triton's client sends them."""
    request = pb.ModelInferRequest(model_name="toy")
    request.inputs.add(name="x", datatype="FP64", shape=[len(rows)])
    request.inputs.add(name="color", datatype="BYTES", shape=[len(rows)])
    request.raw_input_contents.append(np.asarray([r["x"] for r in rows], dtype="<f8").tobytes())
    texts = [r["color"].encode() for r in rows]
    request.raw_input_contents.append(b"".join(struct.pack("<I", len(t)) + t for t in texts))
    return request


def rest_values(client: TestClient, rows: list[dict[str, Any]]) -> list[float]:
    response = client.post("/predict/batch", json={"instances": rows})
    return [p["value"] for p in response.json()["predictions"]]


def status_of(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request)
    return raised.value


def test_health_and_metadata(served: tuple[TestClient, Stub]) -> None:
    _, stub = served
    assert stub.server_live(pb.ServerLiveRequest()).live
    assert stub.server_ready(pb.ServerReadyRequest()).ready
    assert stub.model_ready(pb.ModelReadyRequest(name="toy")).ready
    server = stub.server_metadata(pb.ServerMetadataRequest())
    assert server.name == "toy"
    assert list(server.extensions) == ["binary_tensor_data"]
    metadata = stub.model_metadata(pb.ModelMetadataRequest(name="toy"))
    assert list(metadata.versions) == ["test"]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("x", "FP64", [-1]),
        ("color", "BYTES", [-1]),
        ("note", "BYTES", [-1]),
    ]
    assert [t.name for t in metadata.outputs] == ["value", "outside_training", "explanation", "reasons"]


def test_typed_and_raw_requests_give_the_rest_numbers(
    served: tuple[TestClient, Stub], toy_trained: tuple[ModelArtifact, Split]
) -> None:
    client, stub = served
    rows = request_rows(toy_trained[1], 5)
    expected = rest_values(client, rows)
    typed = stub.model_infer(infer_request(rows, id="r-1"))
    assert typed.id == "r-1"
    assert (typed.model_name, typed.model_version) == ("toy", "test")
    assert list(typed.outputs[0].contents.fp64_contents) == expected
    # Raw in, raw out: Triton's client reads numbers only from raw contents.
    raw = stub.model_infer(raw_request(rows))
    assert not raw.outputs[0].contents.fp64_contents
    assert np.frombuffer(raw.raw_output_contents[0], dtype="<f8").tolist() == expected


@pytest.mark.parametrize("raw", [True, False])
def test_infer_message_sends_a_rest_request_over_grpc(
    served: tuple[TestClient, Stub], toy_trained: tuple[ModelArtifact, Split], raw: bool
) -> None:
    """What the benchmark sends: a documented REST-form request as a raw or typed message."""
    client, stub = served
    rows = request_rows(toy_trained[1], 4)
    request = OpenInferenceCodec(TOY.request, TOY.response).request_for(rows)
    response = stub.model_infer(infer_message({"model_name": "toy", **request}, raw=raw))
    values = (
        np.frombuffer(response.raw_output_contents[0], dtype="<f8").tolist()
        if raw
        else list(response.outputs[0].contents.fp64_contents)
    )
    assert values == rest_values(client, rows)


def test_explanations_by_parameter_and_server_timing(
    served: tuple[TestClient, Stub], toy_trained: tuple[ModelArtifact, Split]
) -> None:
    client, stub = served
    rows = request_rows(toy_trained[1], 2)
    request = infer_request(rows)
    request.parameters["explain"].bool_param = True
    response, call = stub.model_infer.with_call(request)
    explanation = next(o for o in response.outputs if o.name == "explanation")
    documents = [json.loads(b) for b in explanation.contents.bytes_contents]
    rest = client.post("/predict/batch", params={"explain": "true"}, json={"instances": rows}).json()
    assert documents == [p["explanation"] for p in rest["predictions"]]
    timing = dict(call.trailing_metadata())["server-timing"]
    assert "validate;dur=" in timing
    assert "explain;dur=" in timing


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            lambda r: r.inputs[0].contents.fp64_contents.__setitem__(1, 11.0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "inputs[x].data[1]: Input should be less than or equal to 10",
        ),
        (
            lambda r: setattr(r, "model_name", "churn"),
            grpc.StatusCode.NOT_FOUND,
            "no model 'churn' here; this service serves 'toy'",
        ),
        (
            lambda r: setattr(r, "model_version", "7"),
            grpc.StatusCode.NOT_FOUND,
            "version 7 of toy is not served here; version test is",
        ),
        (
            lambda r: r.inputs[0].contents.int64_contents.extend([1, 2]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "inputs[x].contents: FP64 elements go in fp64_contents; int64_contents given",
        ),
        (
            lambda r: r.inputs[1].contents.bytes_contents.__setitem__(0, b"\xff"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "inputs[color].contents.bytes_contents[0]: not UTF-8 text",
        ),
        (
            lambda r: r.raw_input_contents.append(b"\x00" * 8),
            grpc.StatusCode.INVALID_ARGUMENT,
            "raw_input_contents: 1 entries for 2 inputs",
        ),
        (
            lambda r: r.inputs[0].shape.__setitem__(0, 9),
            grpc.StatusCode.INVALID_ARGUMENT,
            "inputs[x].data: 2 values for shape [9]",
        ),
    ],
)
def test_bad_requests_get_a_status_naming_the_problem(
    served: tuple[TestClient, Stub], change: Any, code: grpc.StatusCode, message: str
) -> None:
    _, stub = served
    request = infer_request([{"x": 1.0, "color": "red"}, {"x": 2.0, "color": "blue"}])
    change(request)
    error = status_of(stub.model_infer, request)
    assert error.code() == code
    assert message in error.details()


def test_a_batch_over_the_limit_is_resource_exhausted(served: tuple[TestClient, Stub]) -> None:
    _, stub = served
    error = status_of(stub.model_infer, infer_request([{"x": 1.0, "color": "red"}] * 9))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "9 instances; the limit is 8" in error.details()


def test_a_batch_over_the_limit_is_resource_exhausted_however_bad_its_instances(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    request = pb.ModelInferRequest(model_name="toy")
    x = request.inputs.add(name="x", datatype="BYTES", shape=[257])  # x is a number
    x.contents.bytes_contents.extend([b"eleven"] * 257)
    color = request.inputs.add(name="color", datatype="FP64", shape=[257])  # color is text
    color.contents.fp64_contents.extend([1.5] * 257)
    settings = load_settings("toy", grpc_port=free_port())
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            error = status_of(Stub(channel).model_infer, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (
        error.details()
        == "257 instances; the limit is 256 (TOY_MAX_BATCH_SIZE); send at most 256 per request"
    )


def test_a_message_over_the_body_limit_is_refused_before_it_is_read(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    settings = load_settings("toy", max_body_bytes=4096, grpc_port=free_port())
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            request = infer_request([{"x": 1.0, "color": "red" * 100}] * 20)
            assert request.ByteSize() > 4096
            error = status_of(Stub(channel).model_infer, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "4096" in error.details()


def test_a_refused_call_gets_an_access_line_naming_the_field_not_the_value(
    served: tuple[TestClient, Stub], caplog: pytest.LogCaptureFixture
) -> None:
    """As HTTP 4xx do (ACCESS_LOG=errors): an on-call engineer holding the request id finds why."""
    _, stub = served
    request = infer_request([{"x": 1.0, "color": "red"}, {"x": 13.5, "color": "red"}])
    with caplog.at_level(logging.INFO, logger="servekit.access"):
        stub.model_infer(infer_request([{"x": 1.0, "color": "red"}]))  # a success: no line
        error = status_of(lambda r: stub.model_infer(r, metadata=(("x-request-id", "grpc-bad-1"),)), request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [line] = [r for r in caplog.records if r.name == "servekit.access"]
    message = line.getMessage()
    assert message.startswith("GRPC /inference.GRPCInferenceService/ModelInfer 422 in ")
    assert "inputs[x].data[1]: Input should be less than or equal to 10" in message
    assert "13.5" not in message  # field and problem, never the value
    fields = line.__dict__["json_fields"]
    assert fields["error"]["fields"] == [
        {"field": "inputs[x].data[1]", "problem": "Input should be less than or equal to 10"}
    ]
    assert fields["httpRequest"]["protocol"] == "HTTP/2"
    assert fields["httpRequest"]["remoteIp"] == "127.0.0.1"
    assert int(fields["httpRequest"]["requestSize"]) == request.ByteSize()


def test_calls_are_counted_like_http_requests(served: tuple[TestClient, Stub]) -> None:
    client, stub = served
    stub.model_infer(infer_request([{"x": 1.0, "color": "red"}]))
    status_of(stub.model_infer, infer_request([{"x": 11.0, "color": "red"}]))
    registry = client.app.state.metrics.registry  # type: ignore[attr-defined]

    def count(status: str) -> float | None:
        labels = {"endpoint": GRPC_INFER, "method": "GRPC", "status": status}
        value: float | None = registry.get_sample_value("toy_requests_total", labels)
        return value

    assert count("200") == 1
    assert count("422") == 1
    latency = registry.get_sample_value("toy_prediction_latency_seconds_count", {"endpoint": GRPC_INFER})
    assert latency == 1  # the refusal is not a latency event (servekit.metrics.collectors.latency_event)


def test_every_method_served_has_its_endpoint_label(served: tuple[TestClient, Stub]) -> None:
    """A method missing from the names would be counted as ``other`` on every dashboard."""
    client, _ = served
    servicer = OpenInferenceServicer(
        TOY,
        client.app.state.runtime,  # type: ignore[attr-defined]
        client.app.state.predictor,  # type: ignore[attr-defined]
        client.app.state.settings,  # type: ignore[attr-defined]
        client.app.state.metrics,  # type: ignore[attr-defined]
    )
    assert tuple(servicer.methods()) == GRPC_METHODS
    assert {grpc_endpoint(m) for m in GRPC_METHODS} <= set(ENDPOINTS)


def test_a_model_failure_is_internal_and_names_the_request_id(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    artifact, _ = toy_trained
    settings = load_settings("toy", grpc_port=free_port())
    app = create_app(dataclasses.replace(TOY, model=FailingToy), settings, source=lambda: artifact)
    with TestClient(app) as client:
        wait_ready(client)
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            request = infer_request([{"x": FAILING_X, "color": "red"}])
            call = Stub(channel).model_infer
            error = status_of(lambda r: call(r, metadata=(("x-request-id", "grpc-trace-7"),)), request)
        registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
        labels = {"endpoint": GRPC_INFER, "method": "GRPC", "status": "500"}
        assert registry.get_sample_value("toy_requests_total", labels) == 1
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "request id grpc-trace-7" in error.details()
    assert "lookup table is empty" not in error.details()  # the cause stays in the log
    assert "request grpc-trace-7 /inference.GRPCInferenceService/ModelInfer failed" in caplog.text
    assert "RuntimeError: lookup table is empty" in caplog.text


@contextlib.contextmanager
def never_loading_client() -> Iterator[TestClient]:
    """The app with gRPC on, whose model never loads (the registry is unreachable)."""

    def unreachable() -> ModelArtifact:
        raise ConnectionError("registry unreachable")

    settings = load_settings("toy", grpc_port=free_port(), load_retry_initial_seconds=60)
    with TestClient(create_app(TOY, settings, source=unreachable)) as client:
        yield client


def test_before_the_model_loads_infer_is_unavailable_with_the_reason(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    with never_loading_client() as client:
        port = client.app.state.grpc_port  # type: ignore[attr-defined]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = Stub(channel)
            assert not stub.server_ready(pb.ServerReadyRequest()).ready
            error = status_of(stub.model_infer, infer_request([{"x": 1.0, "color": "red"}]))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "model not ready" in error.details()


def test_a_full_replica_is_unavailable_with_a_pushback(served: tuple[TestClient, Stub]) -> None:
    client, stub = served
    admission = client.app.state.admission  # type: ignore[attr-defined]
    for _ in range(admission.limit):  # every place taken, by HTTP or gRPC requests alike
        admission.enter()
    error = status_of(stub.model_infer, infer_request([{"x": 1.0, "color": "red"}]))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "TOY_MAX_CONCURRENT_REQUESTS" in error.details()
    assert dict(error.trailing_metadata())[RETRY_PUSHBACK_KEY] == "1000"  # type: ignore[attr-defined]
    assert stub.server_ready(pb.ServerReadyRequest()).ready
    registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
    assert registry.get_sample_value("toy_prediction_requests_shed_total", {"limit": "requests"}) == 1
    admission.leave()
    assert stub.model_infer(infer_request([{"x": 1.0, "color": "red"}])).outputs


def test_a_batch_past_the_instance_limit_is_unavailable_with_a_pushback(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    settings = load_settings("toy", max_batch_size=64, max_concurrent_instances=40, grpc_port=free_port())
    batch = [{"x": float(i % 10), "color": "red"} for i in range(INLINE_BATCH_LIMIT + 1)]
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        admission = client.app.state.admission  # type: ignore[attr-defined]
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            stub = Stub(channel)
            with admission.instances_admitted(30):  # as by a batch already running
                error = status_of(stub.model_infer, infer_request(batch))
                # On the loop, so not counted: a small batch is answered beside the large ones.
                assert stub.model_infer(infer_request(batch[:INLINE_BATCH_LIMIT])).outputs
            assert stub.model_infer(infer_request(batch)).outputs
        registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
        shed = registry.get_sample_value("toy_prediction_requests_shed_total", {"limit": "instances"})
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "17 more would pass its limit of 40 (TOY_MAX_CONCURRENT_INSTANCES)" in error.details()
    assert dict(error.trailing_metadata())[RETRY_PUSHBACK_KEY] == "1000"  # type: ignore[attr-defined]
    assert shed == 1


def test_the_generated_messages_match_the_proto() -> None:
    assert generate.stale() == [], "run: .venv/bin/python -m servekit.rpc.generate"


@contextmanager
def keyed_stub(artifact: ModelArtifact, tmp_path: Path) -> Iterator[tuple[TestClient, Stub, str]]:
    """A served toy whose keys file holds one key, of client batch-job; its gRPC stub and the key."""
    key = new_key()
    (tmp_path / "keys").write_text(key_line("batch-job", key) + "\n")
    settings = load_settings("toy", grpc_port=free_port(), api_keys_file=str(tmp_path / "keys"))
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            yield client, Stub(channel), key


def test_with_api_keys_an_infer_call_needs_one_in_its_metadata_and_probes_do_not(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    with keyed_stub(toy_trained[0], tmp_path) as (client, stub, key):
        assert stub.server_ready(pb.ServerReadyRequest()).ready
        assert stub.model_ready(pb.ModelReadyRequest(name="toy")).ready
        request = infer_request([{"x": 3.0, "color": "red"}])
        with pytest.raises(grpc.RpcError) as refused:
            stub.model_infer(request)
        with pytest.raises(grpc.RpcError) as wrong:
            stub.model_infer(request, metadata=(("x-api-key", key + "x"),))
        answered = stub.model_infer(request, metadata=(("authorization", f"Bearer {key}"),))
        admission = client.app.state.admission  # type: ignore[attr-defined]
        for _ in range(admission.client_limit):
            admission.enter("batch-job")  # its share of the places taken
        with pytest.raises(grpc.RpcError) as over_its_share:
            stub.model_infer(request, metadata=(("x-api-key", key),))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "metadata.authorization: missing" in refused.value.details()
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "metadata.x-api-key: not a key of this service" in wrong.value.details()
    assert answered.outputs
    assert over_its_share.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "client batch-job has 12 prediction requests in flight" in over_its_share.value.details()
    unauthenticated = {"endpoint": GRPC_INFER, "method": "GRPC", "status": "401"}
    assert metric_sample(client, NAMES.requests_total, **unauthenticated) == 2
    batch_job = {"client": "batch-job", "key_id": key_id(digest(key)), "endpoint": GRPC_INFER}
    assert metric_sample(client, NAMES.client_requests_total, **batch_job, status="200") == 1
    assert metric_sample(client, NAMES.client_requests_total, **batch_job, status="429") == 1


def test_a_taken_port_is_named_with_its_setting_before_and_at_the_bind(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        named = f"TOY_GRPC_PORT={port}: cannot serve gRPC on 127.0.0.1:{port}: "
        with pytest.raises(GrpcPortError, match=named):
            check_port("toy", "127.0.0.1", port)
        # Taken between the check and the bind: the lifespan fails naming it too.
        app = create_app(TOY, load_settings("toy", grpc_port=port), source=lambda: artifact)
        with pytest.raises(GrpcPortError, match=named), TestClient(app):
            pass
    check_port("toy", "127.0.0.1", port)  # free again


def test_metadata_sent_twice_or_a_key_without_bearer_is_refused_and_no_key_repeated(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    with keyed_stub(toy_trained[0], tmp_path) as (_, stub, key):
        request = infer_request([{"x": 3.0, "color": "red"}])
        twice = (("x-api-key", "mlp_other"), ("x-api-key", key))
        with pytest.raises(grpc.RpcError) as repeated:
            stub.model_infer(request, metadata=twice)
        with pytest.raises(grpc.RpcError) as bare:
            stub.model_infer(request, metadata=(("authorization", key),))
        basic = (("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", key))
        assert stub.model_infer(request, metadata=basic).outputs
    assert repeated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "metadata.x-api-key: sent 2 times: send it once" in repeated.value.details()
    assert bare.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "metadata.authorization: the scheme is missing" in bare.value.details()
    runs = {key[start : start + 6] for start in range(len(key) - 5)}
    assert not [run for run in runs if run in bare.value.details()]


class BlockingToy(ToyModel):
    """Holds a batch run off the loop until released: a call still running when its client gives up.
    A batch answered on the loop is held too, past the call's deadline: an answer nobody gets."""

    release = threading.Event()

    def predict(self, records: Any) -> list[dict[str, Any]]:
        if len(records) > INLINE_BATCH_LIMIT:
            self.release.wait(timeout=30)
        elif records[0]["x"] == LATE_X:
            time.sleep(1.0)  # the test's deadline is 0.5 s
        return super().predict(records)


LATE_X = 7.25


def counted_at_least(client: TestClient, labels: dict[str, str], calls: int) -> None:
    """Wait (bounded) until ``calls`` calls are counted under ``labels``."""
    for _ in range(200):
        if metric_sample(client, NAMES.requests_total, **labels) >= calls:
            return
        time.sleep(0.05)


class _CallLeft:
    """A call's context as the server holds it once its client has gone, with this much time left."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


@pytest.mark.parametrize(
    ("remaining", "code"),
    [
        (None, "cancelled"),  # no deadline: only a cancel by hand ends it early
        (30.0, "cancelled"),
        (1.0, "cancelled"),
        # The client's own deadline fired and cancelled the call; the server's clock, which
        # started when the call arrived, still has the transit time left (seen in CI: 3 ms).
        (0.003, "deadline_exceeded"),
        (0.0, "deadline_exceeded"),
        (-0.2, "deadline_exceeded"),
    ],
)
def test_a_cancel_at_the_deadline_is_logged_as_the_deadline_passing(
    remaining: float | None, code: str
) -> None:
    assert client_gone(_CallLeft(remaining)).error == code


def test_a_call_past_its_deadline_is_counted_and_logged_as_client_closed(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    artifact, _ = toy_trained
    settings = load_settings("toy", max_batch_size=64, grpc_port=free_port())
    app = create_app(dataclasses.replace(TOY, model=BlockingToy), settings, source=lambda: artifact)
    batch = [{"x": 1.0, "color": "red"}] * (INLINE_BATCH_LIMIT + 1)
    BlockingToy.release.clear()
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="servekit.access"):
        wait_ready(client)
        labels = {"endpoint": GRPC_INFER, "method": "GRPC", "status": "499"}
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            call = Stub(channel).model_infer
            error = status_of(
                lambda r: call(r, timeout=0.5, metadata=(("x-request-id", "late-1"),)), infer_request(batch)
            )
            # The server learns of the deadline on its own schedule: wait for the count, bounded.
            counted_at_least(client, labels, 1)
            BlockingToy.release.set()
        counted = metric_sample(client, NAMES.requests_total, **labels)
        latency = metric_sample(client, "toy_prediction_latency_seconds_count", endpoint=GRPC_INFER)
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            call = Stub(channel).model_infer
            late = status_of(lambda r: call(r, timeout=0.5), infer_request([{"x": LATE_X, "color": "red"}]))
        counted_at_least(client, labels, 2)
        late_counted = metric_sample(client, NAMES.requests_total, **labels)
        answered = metric_sample(client, NAMES.requests_total, **{**labels, "status": "200"})
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert counted == 1
    assert latency == 1
    [line, *_] = [r for r in caplog.records if r.name == "servekit.access"]
    assert line.getMessage().startswith("GRPC /inference.GRPCInferenceService/ModelInfer 499 in ")
    assert line.__dict__["json_fields"]["error"]["code"] == "deadline_exceeded"
    # Answered on the loop after the deadline: the answer is dropped, so not a 200.
    assert late.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert (late_counted, answered) == (2, 0)


def test_before_the_model_loads_unavailable_carries_the_rest_retry_after_as_a_pushback(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    with never_loading_client() as client:
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            error = status_of(Stub(channel).model_infer, infer_request([{"x": 1.0, "color": "red"}]))
        retry_after = client.post("/v2/models/toy/infer", json={"inputs": []}).headers["Retry-After"]
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert dict(error.trailing_metadata())[RETRY_PUSHBACK_KEY] == str(int(retry_after) * 1000)  # type: ignore[attr-defined]


def test_every_problem_is_in_the_details_as_in_the_rest_body(served: tuple[TestClient, Stub]) -> None:
    client, stub = served
    rows = [{"x": 11.0 + i, "color": "red"} for i in range(5)]
    error = status_of(stub.model_infer, infer_request(rows))
    body = client.post(
        "/v2/models/toy/infer",
        json={
            "inputs": [
                {"name": "x", "datatype": "FP64", "shape": [5], "data": [r["x"] for r in rows]},
                {"name": "color", "datatype": "BYTES", "shape": [5], "data": ["red"] * 5},
            ]
        },
    ).json()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("5 problems: ")
    for problem in body["fields"]:
        assert f"{problem['field']}: {problem['problem']}" in error.details()


def test_binary_data_size_must_agree_with_the_raw_contents_and_needs_them(
    served: tuple[TestClient, Stub],
) -> None:
    _, stub = served
    rows = [{"x": 1.0, "color": "red"}, {"x": 2.0, "color": "blue"}]
    raw = raw_request(rows)
    raw.inputs[0].parameters["binary_data_size"].int64_param = 8  # the raw entry holds 16
    wrong_size = status_of(stub.model_infer, raw)
    typed = infer_request(rows)
    typed.inputs[0].parameters["binary_data_size"].int64_param = 16
    without_raw = status_of(stub.model_infer, typed)
    assert wrong_size.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inputs[x].parameters.binary_data_size: 8 given, but raw_input_contents[0] holds 16 bytes" in (
        wrong_size.details()
    )
    assert without_raw.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "given without raw_input_contents" in without_raw.details()
    assert "inference-header-content-length" not in without_raw.details()
    right = raw_request(rows)
    right.inputs[0].parameters["binary_data_size"].int64_param = 16
    assert stub.model_infer(right).raw_output_contents


def test_no_outputs_listed_is_every_output_over_grpc_and_rest(served: tuple[TestClient, Stub]) -> None:
    client, stub = served
    rows = [{"x": 1.0, "color": "red"}]
    over_grpc = stub.model_infer(
        infer_request(rows, parameters={"explain": pb.InferParameter(bool_param=True)})
    )
    tensors = [
        {"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]},
        {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
    ]
    body = {"inputs": tensors, "outputs": [], "parameters": {"explain": True}}
    over_rest = client.post("/v2/models/toy/infer", json=body).json()
    assert [o.name for o in over_grpc.outputs] == [o["name"] for o in over_rest["outputs"]]
    assert "value" in [o["name"] for o in over_rest["outputs"]]


def test_infer_message_sends_a_gap_as_nan_or_empty_text() -> None:
    """gRPC has no null: a client with gaps sends them as the server reads them, not the column left out."""
    request = {
        "model_name": "toy",
        "inputs": [
            {"name": "area", "datatype": "INT64", "shape": [2], "data": [8, None]},
            {"name": "lat", "datatype": "FP32", "shape": [2], "data": [None, 41.5]},
            {"name": "company", "datatype": "BYTES", "shape": [2], "data": ["Flash Cab", None]},
        ],
    }
    for raw in (True, False):
        message = infer_message(request, raw=raw)
        assert [(t.name, t.datatype) for t in message.inputs] == [
            ("area", "FP64"),
            ("lat", "FP32"),
            ("company", "BYTES"),
        ]
    area = np.frombuffer(infer_message(request).raw_input_contents[0], dtype="<f8")
    assert area[0] == 8
    assert np.isnan(area[1])
    typed = infer_message(request, raw=False)
    assert list(typed.inputs[2].contents.bytes_contents) == [b"Flash Cab", b""]


def test_an_optional_input_with_gaps_over_grpc_gets_the_answers_of_json_nulls(
    served: tuple[TestClient, Stub],
) -> None:
    client, stub = served
    rows: list[dict[str, Any]] = [
        {"x": 1.0, "color": "red", "note": "a"},
        {"x": 2.0, "color": "blue", "note": None},
    ]
    request = OpenInferenceCodec(TOY.request, TOY.response).request_for(rows)
    answer = stub.model_infer(infer_message({"model_name": "toy", **request}))
    assert [t.name for t in infer_message(request).inputs] == ["x", "color", "note"]
    assert np.frombuffer(answer.raw_output_contents[0], dtype="<f8").tolist() == rest_values(client, rows)


def test_the_health_service_follows_readiness_and_with_reflection_needs_no_key(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    """Kubernetes' gRPC probe and grpcurl use the standard services, without the API key."""

    artifact, _ = toy_trained
    loaded = threading.Event()

    def slow_source() -> ModelArtifact:
        loaded.wait(timeout=30)
        return artifact

    key = new_key()
    (tmp_path / "keys").write_text(key_line("batch-job", key) + "\n")
    settings = load_settings("toy", grpc_port=free_port(), api_keys_file=str(tmp_path / "keys"))
    serving = health_pb2.HealthCheckResponse.SERVING
    with TestClient(create_app(TOY, settings, source=slow_source)) as client:
        channel = grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}")  # type: ignore[attr-defined]
        health = health_pb2_grpc.HealthStub(channel)

        def status(service: str) -> int:
            return int(health.Check(health_pb2.HealthCheckRequest(service=service)).status)

        before = [status(""), status(SERVICE)]
        unknown = status_of(health.Check, health_pb2.HealthCheckRequest(service="other.Service"))
        loaded.set()
        wait_ready(client)
        after = [status(""), status(SERVICE)]
        watched = next(iter(health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)))
        described = ProtoReflectionDescriptorDatabase(channel).get_services()
        channel.close()
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    assert before == [not_serving, not_serving]
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert after == [serving, serving]
    assert watched.status == serving
    assert SERVICE in described


def test_reflection_describes_kserves_service_that_a_client_built_from_it_calls(
    served: tuple[TestClient, Stub],
) -> None:
    """What grpcurl does: list, describe, and call ModelInfer with messages built from the description."""

    client, _ = served
    with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName(SERVICE).FindMethodByName("ModelInfer")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = request_class.FromString(infer_request([{"x": 1.0, "color": "red"}]).SerializeToString())
        infer = channel.unary_unary(
            f"/{SERVICE}/ModelInfer",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        answer = infer(request)
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services
    assert method.input_type.full_name == "inference.ModelInferRequest"
    assert method.containing_service.file.name == "grpc_predict_v2.proto"
    assert list(answer.outputs[0].contents.fp64_contents) == rest_values(client, [{"x": 1.0, "color": "red"}])

    def wire(descriptor: Any) -> dict[str, tuple[int, int]]:
        return {f.name: (f.number, f.type) for f in descriptor.fields}

    for name in ("ModelInferRequest", "ModelInferResponse", "ModelMetadataResponse", "InferTensorContents"):
        ours = wire(pool.FindMessageTypeByName(f"inference.{name}"))
        assert ours.items() <= wire(triton.DESCRIPTOR.message_types_by_name[name]).items(), name


def test_the_description_is_written_for_grpcurl_protoset(tmp_path: Path) -> None:
    assert reflection.main([str(tmp_path / "predict.protoset")]) == 0
    files = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "predict.protoset").read_bytes())
    [protocol] = [f for f in files.file if f.name == "grpc_predict_v2.proto"]
    assert protocol.package == "inference"
    assert [m.name for m in protocol.service[0].method] == list(GRPC_METHODS)


def test_a_call_cut_by_the_servers_shutdown_is_a_server_failure_after_the_http_grace(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    """A call still running when the grace is spent failed on the server's side (503, as REST would
    answer it), so it counts against availability: it is not the client's cancellation (499)."""
    artifact, _ = toy_trained
    # The one grace, shortened: the gRPC server's stop takes it from the settings, as uvicorn does.
    settings = load_settings("toy", max_batch_size=64, grpc_port=free_port(), shutdown_grace_seconds=1)
    app = create_app(dataclasses.replace(TOY, model=BlockingToy), settings, source=lambda: artifact)
    batch = [{"x": 1.0, "color": "red"}] * (INLINE_BATCH_LIMIT + 1)
    BlockingToy.release.clear()
    errors: list[grpc.RpcError] = []

    def held_call(port: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                Stub(channel).model_infer(infer_request(batch), metadata=(("x-request-id", "cut-1"),))
            except grpc.RpcError as exc:
                errors.append(exc)
            finally:
                BlockingToy.release.set()  # the worker thread the cut call left behind

    with caplog.at_level(logging.INFO, logger="servekit.access"):
        with TestClient(app) as client:
            wait_ready(client)
            caller = threading.Thread(target=held_call, args=(client.app.state.grpc_port,))  # type: ignore[attr-defined]
            caller.start()
            for _ in range(200):  # bounded: until the batch is in the model
                if metric_sample(client, "toy_prediction_requests_in_flight") >= 1:
                    break
                time.sleep(0.02)
        caller.join(timeout=30)
    registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
    labels = {"endpoint": GRPC_INFER, "method": "GRPC"}
    assert registry.get_sample_value("toy_requests_total", {**labels, "status": "503"}) == 1
    assert registry.get_sample_value("toy_requests_total", {**labels, "status": "499"}) is None
    [error] = errors
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    [line] = [r for r in caplog.records if r.name == "servekit.access"]
    assert line.getMessage().startswith("GRPC /inference.GRPCInferenceService/ModelInfer 503 in ")
    assert line.__dict__["json_fields"]["error"]["code"] == "shutting_down"


class Cutting:
    """A ``grpc.aio`` server whose stop, told to cut (no grace), then lets ``after_cut`` go: a held
    handler answers once gRPC has cut its call, and before the handler has heard of it."""

    def __init__(self, server: grpc.aio.Server, after_cut: asyncio.Event) -> None:
        self.server = server
        self.after_cut = after_cut

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return await self.server.wait_for_termination(timeout)

    async def stop(self, grace: float | None) -> None:
        stopping = asyncio.ensure_future(self.server.stop(grace))
        if grace is None:
            await asyncio.sleep(0)  # gRPC's stop has cut every call
            self.after_cut.set()
        await stopping


class AnsweredFirst(Cutting):
    """One whose grace is spent (still calls in flight) when the held handler has answered, the
    loop step before the cut: its answer handed to gRPC, not yet written."""

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        self.after_cut.set()
        await asyncio.sleep(0)  # the handler answers
        return True


def cut_call(
    toy_trained: tuple[ModelArtifact, Split],
    hold: Callable[[asyncio.Event], Awaitable[None]],
    stop: Callable[[OpenInferenceServicer, grpc.aio.Server, asyncio.Event], Awaitable[None]],
) -> tuple[Any, dict[str, float]]:
    """What the client of one call in flight when a real ``grpc.aio`` server stops got (the answer
    or a status code), and what the servicer counted it as. The handler, once the call is in,
    ``hold``s until its event is set, then answers; ``stop`` stops the server, the event in hand."""
    artifact, _ = toy_trained
    state = create_app(TOY, load_settings("toy"), source=lambda: artifact).state
    servicer = OpenInferenceServicer(TOY, state.runtime, state.predictor, state.settings, state.metrics)
    got: list[Any] = []

    async def main() -> None:
        entered, release = asyncio.Event(), asyncio.Event()

        async def answer(request: bytes, context: Any) -> bytes:
            entered.set()
            await hold(release)
            return b"answer"

        method = grpc.unary_unary_rpc_method_handler(
            servicer._observed(GRPC_INFER, answer),
            request_deserializer=lambda data: data,
            response_serializer=lambda data: data,
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Held", {"Call": method}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()

        def call() -> None:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                try:
                    got.append(channel.unary_unary("/t.Held/Call")(b"x", timeout=30))
                except grpc.RpcError as exc:
                    got.append(exc.code())

        caller = threading.Thread(target=call)
        caller.start()
        await entered.wait()
        await stop(servicer, server, release)
        await asyncio.to_thread(caller.join)

    asyncio.run(main())
    registry = state.metrics.registry

    def counted(code: str) -> float:
        labels = {"endpoint": GRPC_INFER, "method": "GRPC", "status": code}
        return registry.get_sample_value("toy_requests_total", labels) or 0.0

    [client_got] = got
    return client_got, {code: counted(code) for code in ("200", "499", "503") if counted(code)}


def test_an_answer_ready_past_the_grace_before_the_cut_is_sent_and_a_200(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    """The loop held (a GC pause, a big batch's encoding) across the grace's end: the handler
    answers before the cut could run, and its client gets the answer (it was counted 503 when the
    loop's clock, past the grace, decided, not whether the cut had come)."""
    grace = 0.2

    async def hold(release: asyncio.Event) -> None:
        await release.wait()
        time.sleep(2 * grace)  # holds the loop past the grace's end, as a busy one does

    async def stop(servicer: OpenInferenceServicer, server: grpc.aio.Server, release: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(servicer.stop(server, grace=grace))
        await asyncio.sleep(0)  # the stop has begun: the grace runs
        release.set()
        await stopping

    assert cut_call(toy_trained, hold, stop) == (b"answer", {"200": 1})


def test_an_answer_ready_after_the_cut_is_the_cuts_503_and_not_sent(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    """gRPC has cut the call (its client answered UNAVAILABLE) and the handler, not yet told,
    answers: the answer is not a 200 its client got (the flake of the test above under load)."""

    async def stop(servicer: OpenInferenceServicer, server: grpc.aio.Server, release: asyncio.Event) -> None:
        await servicer.stop(Cutting(server, release), grace=0.05)  # type: ignore[arg-type]

    assert cut_call(toy_trained, asyncio.Event.wait, stop) == (grpc.StatusCode.UNAVAILABLE, {"503": 1})


def test_an_answer_handed_over_the_loop_step_before_the_cut_is_sent_and_a_200(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    """Counted 200 and handed to gRPC, not yet written, when the grace is spent: the cut waits for
    it (cut at once, gRPC dropped 2 such answers in 30 with the connection)."""

    async def stop(servicer: OpenInferenceServicer, server: grpc.aio.Server, release: asyncio.Event) -> None:
        await servicer.stop(AnsweredFirst(server, release), grace=30)  # type: ignore[arg-type]

    assert cut_call(toy_trained, asyncio.Event.wait, stop) == (b"answer", {"200": 1})


def test_a_message_over_the_body_limit_is_counted_logged_and_names_the_setting(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    """As REST's 413, up to OVERSIZE_READ_FACTOR times the limit; past that gRPC core refuses it."""
    artifact, _ = toy_trained
    settings = load_settings("toy", max_body_bytes=4096, grpc_port=free_port())
    over = infer_request([{"x": 1.0, "color": "red" * 100}] * 20)
    far_over = infer_request([{"x": 1.0, "color": "red" * 100}] * 20 * OVERSIZE_READ_FACTOR)
    assert 4096 < over.ByteSize() <= 4096 * OVERSIZE_READ_FACTOR < far_over.ByteSize()
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        with (
            grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel,  # type: ignore[attr-defined]
            caplog.at_level(logging.INFO, logger="servekit.access"),
        ):
            error = status_of(
                lambda r: Stub(channel).model_infer(r, metadata=(("x-request-id", "big-1"),)), over
            )
            beyond = status_of(Stub(channel).model_infer, far_over)
        rest = client.post(
            "/v2/models/toy/infer", content=b"x" * 5000, headers={"content-type": "application/json"}
        )
        counted = metric_sample(
            client, NAMES.requests_total, endpoint=GRPC_INFER, method="GRPC", status="413"
        )
    assert rest.status_code == 413
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    expected = (
        f"request message is {over.ByteSize()} bytes, over the limit of 4096 bytes (TOY_MAX_BODY_BYTES)"
    )
    assert expected in error.details()
    assert dict(error.trailing_metadata())["x-request-id"] == "big-1"  # type: ignore[attr-defined]
    assert counted == 1  # the same status label as REST's refusal
    [line] = [r for r in caplog.records if r.name == "servekit.access" and r.getMessage().startswith("GRPC")]
    assert line.getMessage().startswith("GRPC /inference.GRPCInferenceService/ModelInfer 413 in ")
    assert int(line.__dict__["json_fields"]["httpRequest"]["requestSize"]) == over.ByteSize()
    # Past the documented bound, gRPC core's own refusal: the replica never buffered it.
    assert beyond.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in beyond.details()


def test_a_large_body_limit_has_grpc_core_read_at_most_16_mib_past_it(
    toy_trained: tuple[ModelArtifact, Split], monkeypatch: pytest.MonkeyPatch
) -> None:
    """gRPC core reads a message before the key is checked: four times a 256 MiB limit was 1 GiB
    a replica buffered for any caller, key or not."""
    options: list[dict[str, Any]] = []
    real_server = grpc.aio.server

    def recording(*args: Any, **kwargs: Any) -> Any:
        options.append(dict(kwargs["options"]))
        return real_server(*args, **kwargs)

    monkeypatch.setattr(grpc.aio, "server", recording)
    artifact, _ = toy_trained
    for limit in (1_048_576, 256 * 2**20):
        settings = load_settings("toy", max_body_bytes=limit, grpc_port=free_port())
        with TestClient(create_app(TOY, settings, source=lambda: artifact)):
            pass
    read = [option["grpc.max_receive_message_length"] for option in options]
    assert read == [4 * 2**20, 272 * 2**20]  # gRPC's own default, and 16 MiB of slack


def test_every_answer_carries_the_request_id_in_its_trailing_metadata(
    served: tuple[TestClient, Stub],
) -> None:
    """As every HTTP response carries X-Request-ID: the id to quote, whatever the outcome."""
    _, stub = served
    sent = (("x-request-id", "trail-1"),)
    _, call = stub.model_infer.with_call(infer_request([{"x": 1.0, "color": "red"}]), metadata=sent)
    trailing = dict(call.trailing_metadata())
    assert trailing["x-request-id"] == "trail-1"
    assert "server-timing" in trailing  # added to, not replaced
    _, call = stub.model_infer.with_call(infer_request([{"x": 1.0, "color": "red"}], id="client-7"))
    assert dict(call.trailing_metadata())["x-request-id"] == "client-7"  # the request's own id
    _, call = stub.server_live.with_call(pb.ServerLiveRequest())
    assert len(dict(call.trailing_metadata())["x-request-id"]) == 32  # a new one
    error = status_of(
        lambda r: stub.model_infer(r, metadata=sent), infer_request([{"x": 11.0, "color": "red"}])
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata())["x-request-id"] == "trail-1"  # type: ignore[attr-defined]
    error = status_of(stub.model_infer, pb.ModelInferRequest(model_name="other"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert len(dict(error.trailing_metadata())["x-request-id"]) == 32  # type: ignore[attr-defined]


def test_double_and_uint64_parameters_are_read_as_kserve_and_triton_send_them(
    served: tuple[TestClient, Stub],
) -> None:
    client, stub = served
    rows = [{"x": 1.0, "color": "red"}]
    reasons = stub.model_infer(infer_request(rows, parameters={"reasons": pb.InferParameter(uint64_param=2)}))
    assert "reasons" in [o.name for o in reasons.outputs]
    error = status_of(
        stub.model_infer, infer_request(rows, parameters={"explain": pb.InferParameter(double_param=1.0)})
    )
    tensors = [
        {"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]},
        {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
    ]
    rest = client.post(
        "/v2/models/toy/infer", json={"inputs": tensors, "parameters": {"explain": 1.0}}
    ).json()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1.0 is not true or false" in rest["error"]
    assert error.details() == rest["error"]
    # Wire-compatible with KServe's and Triton's definitions: their clients' bytes read the same.
    sent = triton.InferParameter(double_param=2.5).SerializeToString()
    assert pb.InferParameter.FromString(sent).double_param == 2.5
    sent = triton.InferParameter(uint64_param=2**63).SerializeToString()
    assert parameters_of({"n": pb.InferParameter.FromString(sent)}) == {"n": 2**63}


def test_the_details_of_one_problem_quoting_a_long_string_fit_a_trailer(
    served: tuple[TestClient, Stub],
) -> None:
    """Unbounded, the client would refuse the trailer (RESOURCE_EXHAUSTED "Stream removed") and
    never see the INVALID_ARGUMENT; non-ASCII text takes up to 12 bytes a character there."""
    _, stub = served
    rows = [{"x": 1.0, "color": "red"}]
    for text in ("x" * 20_000, "é" * 4_000, "\U0001f600" * 3000):
        request = infer_request(rows, parameters={"explain": pb.InferParameter(string_param=text)})
        error = status_of(stub.model_infer, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details().startswith(f"1 problem: parameters.explain: '{text[:100]}")
        assert wire_bytes(error.details()) <= MAX_DETAILS_BYTES
        assert error.details().endswith(" more characters)")
    assert status_details(ServekitError(400, "bad", "short")) == "short"


def test_details_of_many_problems_name_the_first_even_if_it_alone_is_too_long() -> None:
    """Dropped for not fitting, it left "5 problems: and 5 more", naming none."""
    for long in ("y" * 10_000, "é" * 3_000):
        numbers = [FieldProblem(f"inputs[x].data[{i}]", "Input should be a number") for i in range(1, 5)]
        problems = (FieldProblem("inputs[color].data[0]", f"not a color: {long}"), *numbers)
        details = status_details(ServekitError(422, "invalid", "5 problems", problems))
        assert details.startswith("5 problems: inputs[color].data[0]: not a color: " + long[:100])
        assert " more characters); and 4 more" in details
        assert details.endswith("; and 4 more")
        assert wire_bytes(details) <= MAX_DETAILS_BYTES


def test_a_typed_nan_in_a_required_input_gets_the_raw_contents_message(
    served: tuple[TestClient, Stub],
) -> None:
    """JSON, the REST form, has no NaN: a typed NaN must not become a null and another message."""
    _, stub = served
    typed = infer_request([{"x": 1.0, "color": "red"}, {"x": math.nan, "color": "red"}])
    raw = raw_request([{"x": 1.0, "color": "red"}, {"x": math.nan, "color": "red"}])
    typed_error, raw_error = status_of(stub.model_infer, typed), status_of(stub.model_infer, raw)
    assert typed_error.code() == raw_error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inputs[x].data[1]: nan is not a finite number; NaN means missing, and x is required" in (
        typed_error.details()
    )
    assert typed_error.details() == raw_error.details()
    inf = infer_request([{"x": math.inf, "color": "red"}])
    assert "inputs[x].data[0]: inf is not a finite number" in status_of(stub.model_infer, inf).details()
