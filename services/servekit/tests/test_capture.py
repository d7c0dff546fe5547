"""Prediction capture: a sampled share of the requests' inputs and answers, a log line per instance."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from toy import TOY, ToyModel

import servekit.rest.open_inference as rest_open_inference
import servekit.rpc.server as rpc_server
from servekit import logs
from servekit.capture import MESSAGE, PredictionCapture
from servekit.local import free_port
from servekit.metrics import MetricNames
from servekit.metrics.names import ACCESS_LOGGER, CAPTURE_LOGGER, METERED_LOGGERS, OTHER_LOGGERS
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rpc import open_inference_pb2 as pb
from servekit.rpc.messages import infer_message
from servekit.rpc.server import SERVICE
from servekit.settings import load_settings
from servekit.testing import metric_sample, request_rows, train_in_memory, wait_loaded, wait_ready
from servekit.training.splitting import Split

NAMES = MetricNames("toy")


@pytest.fixture
def json_log(restore_root_logger: None) -> io.StringIO:
    stream = io.StringIO()
    logs.configure_logging("INFO", "json", "toy", stream)
    return stream


def captured(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "servekit.capture"]


def app_client(artifact: ModelArtifact, canary: ModelArtifact | None = None, **settings: Any) -> TestClient:
    app = create_app(
        TOY,
        load_settings("toy", **settings),
        source=lambda: artifact,
        canary_source=(lambda: canary) if canary else None,
    )
    return TestClient(app)


def test_each_instance_of_a_captured_request_is_a_line_with_its_inputs_answer_and_version(
    toy_trained: tuple[ModelArtifact, Split], json_log: io.StringIO
) -> None:
    artifact, data = toy_trained
    rows = request_rows(data, 3)
    with app_client(artifact, capture_percent=100, log_format="json") as client:
        wait_ready(client)
        before = datetime.now(UTC).replace(microsecond=0)
        response = client.post(
            "/predict/batch",
            params={"explain": "true"},
            json={"instances": rows},
            headers={"X-Request-ID": "audit-7"},
        )
        assert response.status_code == 200
        assert metric_sample(client, NAMES.captured_instances_total) == 3
        assert metric_sample(client, NAMES.capture_failures_total) == 0
        assert client.get("/model").json()["capture"] == {
            "percent": 100.0,
            "logger": "servekit.capture",
            "format": "json",
        }

    lines = captured(json_log)
    assert len(lines) == 3
    answers = response.json()["predictions"]
    # When: one time for the request, in the capture itself (log stores rewrite the line's own).
    assert {line["capture"]["answered_at"] for line in lines} == {lines[0]["capture"]["answered_at"]}
    answered_at = datetime.fromisoformat(lines[0]["capture"]["answered_at"])
    assert lines[0]["capture"]["answered_at"].endswith("Z")
    assert before <= answered_at <= datetime.now(UTC)
    for index, (line, row, answer) in enumerate(zip(lines, rows, answers, strict=True)):
        assert line["message"] == MESSAGE
        assert line["severity"] == "INFO"
        assert line["request_id"] == "audit-7"
        capture = line["capture"]
        assert capture["model"] == {"name": "toy", "version": "test", "run_id": "in-memory"}
        assert capture["variant"] == "stable"
        assert capture["routed"] == "alone"  # no canary beside it
        assert (capture["instance"], capture["instances"]) == (index, 3)
        # The instance as validated (the optional field filled in), the answer as returned.
        assert capture["input"] == {"note": None, **row}
        assert capture["prediction"] == {k: v for k, v in answer.items() if k != "model"}
        explanation = capture["prediction"]["explanation"]
        assert explanation["base_value"] + sum(explanation["contributions"].values()) == pytest.approx(
            capture["prediction"]["value"], rel=1e-6
        )


def test_an_open_inference_request_is_captured_as_its_instances(
    toy_trained: tuple[ModelArtifact, Split], json_log: io.StringIO
) -> None:
    artifact, _ = toy_trained
    infer = {
        "id": "v2-audit",
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [2], "data": [1.5, 7.0]},
            {"name": "color", "datatype": "BYTES", "shape": [2], "data": ["red", "blue"]},
            {"name": "note", "datatype": "BYTES", "shape": [2], "data": ["", "b"]},
        ],
    }
    with app_client(artifact, capture_percent=100, log_format="json") as client:
        wait_ready(client)
        response = client.post("/v2/models/toy/infer", json=infer)
        assert response.status_code == 200
    values = next(o["data"] for o in response.json()["outputs"] if o["name"] == "value")
    lines = captured(json_log)
    assert [line["capture"]["input"] for line in lines] == [
        {"x": 1.5, "color": "red", "note": ""},
        {"x": 7.0, "color": "blue", "note": "b"},
    ]
    assert [line["capture"]["prediction"]["value"] for line in lines] == pytest.approx(values, rel=1e-12)


def test_nothing_is_captured_by_default(
    toy_trained: tuple[ModelArtifact, Split], json_log: io.StringIO
) -> None:
    artifact, data = toy_trained
    with app_client(artifact, log_format="json") as client:
        wait_ready(client)
        assert client.post("/predict", json=request_rows(data, 1)[0]).status_code == 200
        assert metric_sample(client, NAMES.captured_instances_total) == 0
        assert client.get("/model").json()["capture"] is None
    assert captured(json_log) == []


def test_the_service_counts_the_bytes_its_capture_and_access_lines_write(
    toy_trained: tuple[ModelArtifact, Split], restore_root_logger: None
) -> None:
    artifact, data = toy_trained
    stream = io.StringIO()
    handler = logs.configure_logging("INFO", "json", "toy", stream)
    with app_client(artifact, capture_percent=100, log_format="json", access_log="all") as client:
        handler.meter = client.app.state.metrics.count_log_line  # type: ignore[attr-defined]
        before = {
            logger: metric_sample(client, NAMES.log_bytes_total, logger=logger) for logger in METERED_LOGGERS
        }
        start = len(stream.getvalue())
        wait_ready(client)
        assert (
            client.post(
                "/predict/batch", params={"explain": "true"}, json={"instances": request_rows(data, 4)}
            ).status_code
            == 200
        )
        assert client.post("/predict", json={"x": "not a number"}).status_code == 422
        logging.getLogger("servekit.runtime").warning("a line of neither")
        counted = {
            logger: metric_sample(client, NAMES.log_bytes_total, logger=logger) - before[logger]
            for logger in METERED_LOGGERS
        }

    written: dict[str, int] = dict.fromkeys(METERED_LOGGERS, 0)
    for line in stream.getvalue()[start:].splitlines():
        logger = json.loads(line)["logger"]
        written[logger if logger in written else OTHER_LOGGERS] += len(line.encode()) + 1
    assert counted == written
    assert written[CAPTURE_LOGGER] > 4 * 200  # four explained instances, a line each
    assert written[ACCESS_LOGGER] > 0
    assert written[OTHER_LOGGERS] > 0


def test_capture_lines_are_written_whatever_the_log_level(
    toy_trained: tuple[ModelArtifact, Split], restore_root_logger: None
) -> None:
    artifact, data = toy_trained
    stream = io.StringIO()
    logs.configure_logging("ERROR", "text", "toy", stream)
    row = request_rows(data, 1)[0]
    with app_client(artifact, capture_percent=100, log_level="ERROR") as client:
        wait_ready(client)
        answer = client.post("/predict", json=row, headers={"X-Request-ID": "audit-8"}).json()
    logging.getLogger("servekit.runtime").info("an INFO line the level leaves out")
    lines = stream.getvalue().splitlines()
    assert not any("the level leaves out" in line for line in lines)
    [line] = [line for line in lines if "servekit.capture" in line]
    # Text format: the tagged line holds the record as JSON after the message.
    assert " [audit-8] " in line
    record = json.loads(line.split(f"{MESSAGE}: ", 1)[1])
    assert record["input"] == {"note": None, **row}
    assert record["prediction"]["value"] == answer["value"]


def test_a_canary_answer_is_captured_under_the_canary_version(
    toy_trained: tuple[ModelArtifact, Split], json_log: io.StringIO
) -> None:
    artifact, data = toy_trained
    candidate, _ = train_in_memory(TOY, rows=300, seed=7)
    candidate = dataclasses.replace(candidate, version="2", run_id="run-2")
    row = request_rows(data, 1)[0]
    with app_client(
        artifact, candidate, capture_percent=100, canary_traffic_percent=0, log_format="json"
    ) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        answer = client.post("/predict", json=row, headers={"X-Model-Variant": "canary"}).json()
    [line] = captured(json_log)
    assert line["capture"]["variant"] == "canary"
    assert line["capture"]["routed"] == "asked"
    assert line["capture"]["model"]["version"] == "2"
    assert line["capture"]["prediction"]["value"] == answer["value"]
    assert answer["value"] == ToyModel(candidate).predict([row])[0]["value"]


def test_the_share_is_drawn_per_request_so_a_batch_is_captured_whole_or_not_at_all(
    toy_trained: tuple[ModelArtifact, Split], json_log: io.StringIO
) -> None:
    artifact, data = toy_trained
    model = ToyModel(artifact)
    rows = request_rows(data, 4)
    draws = iter([0.10, 0.30, 0.2499, 0.25])  # at 25 %: the first and the third are captured
    counted: list[int] = []
    capture = PredictionCapture(25, log_format="json", on_captured=counted.append, draw=lambda: next(draws))
    written = [capture(model, "stable", "alone", rows, model.predict(rows)) for _ in range(4)]
    assert written == [4, 0, 4, 0]
    assert counted == [4, 4]
    assert len(captured(json_log)) == 8


def test_a_failing_capture_is_logged_once_and_writes_nothing(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    model = ToyModel(toy_trained[0])
    # The second instance cannot be written as JSON: the first must not be written alone either.
    rows = [{"x": 1.0, "color": "red", "note": None}, {"x": 1.0, "color": "red", "note": object()}]
    answers = [{"value": 1.0}, {"value": 1.0}]
    counted: list[int] = []
    failed: list[int] = []
    capture = PredictionCapture(100, log_format="json", on_captured=counted.append, on_failed=failed.append)
    with caplog.at_level(logging.INFO, logger="servekit.capture"):
        assert capture(model, "stable", "alone", rows, answers) == 0
        assert capture(model, "stable", "alone", rows, answers) == 0
    assert [r.getMessage() for r in caplog.records if r.getMessage() == MESSAGE] == []
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "prediction capture failed" in failures[0].getMessage()
    assert counted == []
    assert failed == [2, 2]  # every instance left out is counted, though logged once


class FullDisk(io.StringIO):
    """A log stream that refuses every write while ``full``, as a full disk or a closed pipe does."""

    full = True

    def write(self, text: str) -> int:
        if self.full:
            raise OSError(28, "No space left on device")
        return super().write(text)


def test_lines_the_log_stream_refuses_are_counted_as_failed_captures_and_billed_as_no_bytes(
    toy_trained: tuple[ModelArtifact, Split], restore_root_logger: None
) -> None:
    """logging swallowed the write's error (Handler.handleError): on a full disk every capture
    line was lost while capture_failures_total stayed 0, and their bytes were counted as written."""
    model = ToyModel(toy_trained[0])
    rows = [{"x": 1.0, "color": "red", "note": None}, {"x": 2.0, "color": "blue", "note": None}]
    answers = [{"value": 1.0}, {"value": 2.0}]
    stream = FullDisk()
    handler = logs.configure_logging("INFO", "json", "toy", stream)
    metered: list[tuple[str, int]] = []
    handler.meter = lambda logger, size: metered.append((logger, size))
    counted: list[int] = []
    failed: list[int] = []
    capture = PredictionCapture(100, log_format="json", on_captured=counted.append, on_failed=failed.append)
    assert capture(model, "stable", "alone", rows, answers) == 0
    assert (counted, failed, metered) == ([], [2], [])
    stream.full = False  # the disk freed: captured and billed again
    assert capture(model, "stable", "alone", rows, answers) == 2
    assert (counted, failed) == ([2], [2])
    assert [logger for logger, _ in metered] == [CAPTURE_LOGGER, CAPTURE_LOGGER]
    assert sum(size for _, size in metered) == len(stream.getvalue().encode())


def test_a_shadows_answers_to_a_captured_request_are_captured_under_its_id_as_the_shadows(
    toy_trained: tuple[ModelArtifact, Split], json_log: io.StringIO
) -> None:
    """The shadow's worker writes them once it has scored them: the same request id, instance and
    input as the served answers, the shadow's version and its own answers."""
    artifact, data = toy_trained
    challenger, _ = train_in_memory(TOY, rows=300, seed=7)
    challenger = dataclasses.replace(challenger, version="2", run_id="run-2")
    rows = request_rows(data, 3)
    app = create_app(
        TOY,
        load_settings("toy", capture_percent=100, log_format="json"),
        source=lambda: artifact,
        shadow_source=lambda: challenger,
    )
    with TestClient(app) as client:
        wait_loaded(client, client.app.state.shadow.runtime)  # type: ignore[attr-defined]
        headers = {"X-Request-ID": "audit-8"}
        response = client.post("/predict/batch", json={"instances": rows}, headers=headers)
        assert response.status_code == 200
        assert client.app.state.shadow.drain()  # type: ignore[attr-defined]
        assert metric_sample(client, NAMES.captured_instances_total) == 6
    lines = captured(json_log)
    served = [line for line in lines if line["capture"]["variant"] == "stable"]
    shadow = [line for line in lines if line["capture"]["variant"] == "shadow"]
    assert (len(served), len(shadow)) == (3, 3)
    theirs = ToyModel(challenger).predict(rows)
    assert [a["value"] for a in theirs] != [a["value"] for a in response.json()["predictions"]]
    for index, (line, answer) in enumerate(zip(shadow, theirs, strict=True)):
        assert line["request_id"] == "audit-8"
        capture = line["capture"]
        assert capture["model"] == {"name": "toy", "version": "2", "run_id": "run-2"}
        assert (capture["instance"], capture["instances"], capture["routed"]) == (index, 3, "alone")
        assert capture["input"] == served[index]["capture"]["input"]
        assert capture["prediction"]["value"] == pytest.approx(answer["value"], rel=1e-12)


def test_an_open_inference_id_is_the_captures_request_id_when_no_header_names_one(
    toy_trained: tuple[ModelArtifact, Split], json_log: io.StringIO
) -> None:
    """KServe's and Triton's clients correlate by the body's id: their capture line carries it."""

    artifact, _ = toy_trained
    tensors = [
        {"name": "x", "datatype": "FP64", "shape": [1], "data": [1.5]},
        {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
    ]
    with app_client(artifact, capture_percent=100, log_format="json", grpc_port=free_port()) as client:
        wait_ready(client)
        answer = client.post("/v2/models/toy/infer", json={"id": "txn-777", "inputs": tensors})
        assert answer.json()["id"] == answer.headers["X-Request-ID"] == "txn-777"
        headed = {"id": "txn-778", "inputs": tensors}
        client.post("/v2/models/toy/infer", json=headed, headers={"X-Request-ID": "gateway-1"})
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            infer = channel.unary_unary(
                f"/{SERVICE}/ModelInfer",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=pb.ModelInferResponse.FromString,
            )
            message = infer_message({"model_name": "toy", "id": "txn-779", "inputs": tensors})
            assert infer(message).id == "txn-779"
    assert [line["request_id"] for line in captured(json_log)] == ["txn-777", "gateway-1", "txn-779"]


def test_a_pinned_version_refused_after_the_alias_moved_is_not_captured_nor_counted(
    toy_trained: tuple[ModelArtifact, Split], json_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alias moves while the body is read (REST) or decoded (gRPC): the request is refused 404,
    and no capture line nor outcome says the moved-to version answered it."""

    artifact, _ = toy_trained
    moved = ToyModel(dataclasses.replace(artifact, version="4"))
    tensors = [
        {"name": "x", "datatype": "FP64", "shape": [1], "data": [1.5]},
        {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
    ]
    with app_client(artifact, capture_percent=100, log_format="json", grpc_port=free_port()) as client:
        wait_ready(client)
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        served = runtime.model
        read_body, rest_form = rest_open_inference.read_body, rpc_server.rest_form

        async def read_then_move(*args: Any) -> bytes:
            body: bytes = await read_body(*args)
            runtime.model = moved
            return body

        def decode_then_move(*args: Any) -> Any:
            runtime.model = moved
            return rest_form(*args)

        monkeypatch.setattr(rest_open_inference, "read_body", read_then_move)
        # Where the servicer reads it (servekit.rpc.server imports it from servekit.rpc.messages).
        monkeypatch.setattr(rpc_server, "rest_form", decode_then_move)
        response = client.post(f"/v2/models/toy/versions/{artifact.version}/infer", json={"inputs": tensors})
        runtime.model = served
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            infer = channel.unary_unary(
                f"/{SERVICE}/ModelInfer",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=pb.ModelInferResponse.FromString,
            )
            message = infer_message(
                {"model_name": "toy", "model_version": artifact.version, "inputs": tensors}
            )
            with pytest.raises(grpc.RpcError) as refused:
                infer(message)
        outcomes = metric_sample(client, NAMES.predictions_total, outcome="low")
    assert response.status_code == 404
    assert response.json()["code"] == "model_version_not_served"
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert captured(json_log) == []
    assert outcomes == 0
