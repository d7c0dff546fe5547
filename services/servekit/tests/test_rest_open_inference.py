"""The Open Inference Protocol endpoints (``/v2``) against the toy service."""

from __future__ import annotations

import logging
import re
import struct
import time
from collections.abc import Iterator
from importlib.metadata import version as package_version
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit import logs
from servekit.codecs.binary_tensors import BINARY_DATA_SIZE
from servekit.codecs.open_inference import BINARY_OUTPUT_PARAMETER, EXPLAIN_PARAMETER, REASONS_PARAMETER
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split

INFER = "/v2/models/toy/infer"
ROWS = [{"x": float(x), "color": "red" if x % 2 else "blue"} for x in range(6)]


def infer_body(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [len(rows)], "data": [r["x"] for r in rows]},
            {"name": "color", "datatype": "BYTES", "shape": [len(rows)], "data": [r["color"] for r in rows]},
        ],
        **extra,
    }


def outputs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in body["outputs"]}


def test_infer_gives_the_predictions_of_the_batch_endpoint(toy_client: TestClient) -> None:
    batch = toy_client.post("/predict/batch", json={"instances": ROWS}).json()
    response = toy_client.post(INFER, json=infer_body(ROWS, id="client-7"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("toy", "test", "client-7")
    value = outputs(body)["value"]
    assert (value["datatype"], value["shape"]) == ("FP64", [len(ROWS)])
    assert value["data"] == [p["value"] for p in batch["predictions"]]
    assert "explanation" not in outputs(body)


def test_explanations_are_the_ones_of_predict(toy_client: TestClient) -> None:
    response = toy_client.post(INFER, json=infer_body(ROWS[:2], parameters={"explain": True}))
    assert response.status_code == 200, response.text
    documents = outputs(response.json())["explanation"]["data"]
    for row, document in zip(ROWS[:2], documents, strict=True):
        single = toy_client.post("/predict?explain=true", json=row).json()["explanation"]
        assert orjson.loads(document) == single
    assert "explain;dur=" in response.headers["server-timing"]


def test_reasons_are_the_ones_of_predict(toy_client: TestClient) -> None:
    response = toy_client.post(INFER, json=infer_body(ROWS[:2], parameters={"reasons": 1}))
    assert response.status_code == 200, response.text
    documents = outputs(response.json())["reasons"]["data"]
    for row, document in zip(ROWS[:2], documents, strict=True):
        single = toy_client.post("/predict?reasons=1", json=row).json()["reasons"]
        assert orjson.loads(document) == single
    assert "explanation" not in outputs(response.json())


def test_outputs_limit_the_response(toy_client: TestClient) -> None:
    body = toy_client.post(INFER, json=infer_body(ROWS[:1], outputs=[{"name": "explanation"}])).json()
    assert list(outputs(body)) == ["explanation"]


def test_the_request_id_is_the_response_id_when_the_client_gives_none(toy_client: TestClient) -> None:
    response = toy_client.post(INFER, json=infer_body(ROWS[:1]), headers={"X-Request-ID": "trace-42"})
    assert response.json()["id"] == "trace-42"


class AccessLines(logging.Handler):
    """Each access log line, and the request id it was written under."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((logs.request_id.get(), record.getMessage()))


@pytest.fixture
def access_lines() -> Iterator[list[tuple[str, str]]]:
    lines = AccessLines()
    logger = logging.getLogger("servekit.access")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    yield lines.lines
    logger.setLevel(level)
    logger.removeHandler(lines)


def tensors_without(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = infer_body(rows)["inputs"]
    return [tensor for tensor in inputs if tensor["name"] != name]


#: Requests refused once their body is read, each whatever its id: the id still names them.
REFUSED_BODIES = {
    "an input out of range": (422, infer_body([{"x": 500.0, "color": "red"}], id="trace-42")),
    "a tensor missing": (422, {"id": "trace-42", "inputs": tensors_without("color", ROWS[:1])}),
    "a bad envelope": (422, {"id": "trace-42", "inputs": "none"}),
    "a batch over the limit": (413, infer_body([{"x": 1.0, "color": "red"}] * 9, id="trace-42")),
}


@pytest.mark.parametrize("case", REFUSED_BODIES)
def test_a_refused_request_is_answered_and_logged_under_the_body_s_id(
    toy_client: TestClient, access_lines: list[tuple[str, str]], case: str
) -> None:
    # A KServe or Triton client finds the refusal's log line by the id it knows, as an answer's.
    status, body = REFUSED_BODIES[case]
    response = toy_client.post(INFER, json=body)
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == "trace-42"
    ((logged_id, line),) = [(i, m) for i, m in access_lines if m.startswith(f"POST {INFER} ")]
    assert f" {status} in " in line
    assert logged_id == "trace-42"


def test_a_refused_request_s_header_id_wins_over_its_body_s(
    toy_client: TestClient, access_lines: list[tuple[str, str]]
) -> None:
    body = infer_body([{"x": 500.0, "color": "red"}], id="trace-42")
    response = toy_client.post(INFER, json=body, headers={"X-Request-ID": "header-7"})
    assert response.status_code == 422
    assert response.headers["x-request-id"] == "header-7"
    assert [i for i, m in access_lines if m.startswith(f"POST {INFER} ")] == ["header-7"]


@pytest.mark.parametrize(
    "body",
    [
        orjson.dumps(infer_body([{"x": 500.0, "color": "red"}], id="not a token")),
        orjson.dumps(infer_body([{"x": 500.0, "color": "red"}], id="x" * 129)),
        orjson.dumps(infer_body([{"x": 500.0, "color": "red"}], id=42)),
        b'{"id": "trace-42", "inputs": [',  # not JSON
        b'[{"id": "trace-42"}]',  # no object
    ],
)
def test_a_refused_request_without_a_plausible_id_gets_a_new_one(
    toy_client: TestClient, access_lines: list[tuple[str, str]], body: bytes
) -> None:
    response = toy_client.post(INFER, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert [i for i, m in access_lines if m.startswith(f"POST {INFER} ")] == [
        response.headers["x-request-id"]
    ]


def test_a_refused_binary_request_is_named_by_the_id_of_its_json_part(toy_client: TestClient) -> None:
    # The tensor's bytes do not add up (3 bytes of an FP64): refused, but its JSON part has an id.
    header = {
        "id": "bin-9",
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 3}},
            {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
        ],
    }
    json_part = orjson.dumps(header)
    response = toy_client.post(
        INFER,
        content=json_part + b"abc",
        headers={"Inference-Header-Content-Length": str(len(json_part))},
    )
    assert response.status_code == 422, response.text
    assert response.headers["x-request-id"] == "bin-9"


def test_health_and_metadata(toy_client: TestClient) -> None:
    assert toy_client.get("/v2/health/live").json() == {"live": True}
    assert toy_client.get("/v2/health/ready").json() == {"ready": True}
    assert toy_client.get("/v2/models/toy/ready").json() == {"name": "toy", "ready": True}
    assert toy_client.get("/v2").json() == {
        "name": "toy",
        "version": package_version("servekit"),
        "extensions": ["binary_tensor_data"],
    }
    metadata = toy_client.get("/v2/models/toy").json()
    assert [t["name"] for t in metadata["inputs"]] == ["x", "color", "note"]
    assert metadata["versions"] == ["test"]
    assert toy_client.get("/v2/models/toy/versions/test").json() == metadata


def test_a_pinned_version_is_served_only_while_it_is_the_served_one(toy_client: TestClient) -> None:
    pinned = toy_client.post("/v2/models/toy/versions/test/infer", json=infer_body(ROWS[:1]))
    assert pinned.status_code == 200, pinned.text
    other = toy_client.post("/v2/models/toy/versions/3/infer", json=infer_body(ROWS[:1]))
    assert other.status_code == 404
    assert other.json()["error"].startswith("version 3 of toy is not served here; version test is")
    assert toy_client.get("/v2/models/toy/versions/3/ready").status_code == 404


def test_another_model_is_404_in_the_protocol_error_shape(toy_client: TestClient) -> None:
    response = toy_client.post("/v2/models/churn/infer", json=infer_body(ROWS[:1]))
    assert response.status_code == 404
    assert response.json() == {
        "error": "no model 'churn' here; this service serves 'toy'",
        "code": "model_not_found",
        "fields": [
            {"field": "path.model_name", "problem": "no model 'churn' here; this service serves 'toy'"}
        ],
    }


def test_bad_input_is_a_422_whose_error_is_the_message(toy_client: TestClient) -> None:
    rows = [{"x": 11.0, "color": "red"}]
    response = toy_client.post(INFER, json=infer_body(rows))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert body["error"] == "1 problem: inputs[x].data[0]: Input should be less than or equal to 10"
    # servekit's own endpoints keep their shape: the code in "error", the text in "message"
    assert toy_client.post("/predict", json=rows[0]).json()["error"] == "invalid_request"


def test_limits_apply_as_on_predict(toy_client: TestClient) -> None:
    rows = [{"x": 1.0, "color": "red"}] * 9  # the toy client's batch limit is 8
    assert toy_client.post(INFER, json=infer_body(rows)).status_code == 413
    large = infer_body(ROWS[:1], id="x" * 5000)  # the body limit is 4,096 bytes
    response = toy_client.post(INFER, json=large)
    assert response.status_code == 413
    assert response.json()["error"] == "request body exceeds 4096 bytes"


def test_the_document_states_the_batch_limit_the_service_holds_to(toy_client: TestClient) -> None:
    """A generated client can check a batch before sending it: the limit is the one that 413s."""
    schemas = toy_client.get("/openapi.json").json()["components"]["schemas"]
    limit = schemas["ToyRequestBatch"]["properties"]["instances"]["maxItems"]
    assert limit == 8  # the toy client's <SVC>_MAX_BATCH_SIZE
    for name in ("x", "color"):
        properties = schemas[f"RequestInput_{name}"]["properties"]
        # On the array itself, not beside the anyOf with null (where generators made a class of it).
        (values,) = [branch for branch in properties["data"]["anyOf"] if branch.get("type") == "array"]
        assert properties["shape"]["items"]["maximum"] == values["maxItems"] == limit
        assert "maxItems" not in properties["data"]
    rows = [{"x": 1.0, "color": "red"}] * limit
    for batch, status in ((rows, 200), ([*rows, rows[0]], 413)):
        assert toy_client.post(INFER, json=infer_body(batch)).status_code == status
        assert toy_client.post("/predict/batch", json={"instances": batch}).status_code == status


def test_the_documented_parameters_are_the_ones_read_and_any_other_is_ignored(toy_client: TestClient) -> None:
    """Each parameter the document names is read: a value of another type is refused naming it."""
    schemas = toy_client.get("/openapi.json").json()["components"]["schemas"]
    documented = schemas["RequestParameters"]["properties"]
    assert schemas["RequestParameters"]["additionalProperties"] is True
    assert list(schemas["InputParameters"]["properties"]) == [BINARY_DATA_SIZE]
    assert list(schemas["OutputParameters"]["properties"]) == ["binary_data"]
    assert set(documented) == {EXPLAIN_PARAMETER, REASONS_PARAMETER, BINARY_OUTPUT_PARAMETER}
    for name, schema in documented.items():
        wrong = "yes" if schema["type"] in ("boolean", "integer") else 1
        response = toy_client.post(INFER, json=infer_body(ROWS[:1], parameters={name: wrong}))
        assert response.status_code == 422, (name, response.text)
        assert [f["field"] for f in response.json()["fields"]] == [f"parameters.{name}"]
        if "maximum" in schema:
            over = infer_body(ROWS[:1], parameters={name: schema["maximum"] + 1})
            assert toy_client.post(INFER, json=over).status_code == 422
    answered = toy_client.post(INFER, json=infer_body(ROWS[:1], parameters={"priority": 3}))
    assert answered.status_code == 200, answered.text


def test_requests_are_counted_under_bounded_endpoint_labels(toy_client: TestClient) -> None:
    toy_client.post(INFER, json=infer_body(ROWS[:1]))
    toy_client.post("/v2/models/toy/versions/test/infer", json=infer_body(ROWS[:1]))
    toy_client.get("/v2/models/toy/ready")
    text = toy_client.get("/metrics").text
    infer = 'toy_requests_total{endpoint="/v2/models/{model}/infer",method="POST",status="200"} 2.0'
    assert infer in text
    assert 'toy_prediction_latency_seconds_count{endpoint="/v2/models/{model}/infer"} 2.0' in text
    assert 'endpoint="/v2/models/{model}/ready",method="GET",status="200"' in text
    assert "versions/test" not in text


def test_openapi_documents_the_protocol_with_a_working_example(toy_client: TestClient) -> None:
    document = toy_client.get("/openapi.json").json()
    operation = document["paths"]["/v2/models/{model_name}/infer"]["post"]
    media = operation["requestBody"]["content"]["application/json"]
    assert media["schema"]["$ref"].endswith("/InferenceRequest")
    assert "InferenceRequest" in document["components"]["schemas"]
    # The plain paths take no version parameter, not even as a query parameter.
    # The model from the path; the variant and a routing key may be chosen (servekit.routing), and
    # the request named in the logs (servekit.rest.request_id).
    assert [p["name"] for p in operation["parameters"]] == [
        "model_name",
        "X-Model-Variant",
        "X-Routing-Key",
        "X-Request-ID",
        "traceparent",
    ]


def test_not_ready_before_the_model_loads(toy_trained: tuple[ModelArtifact, Split]) -> None:
    def broken() -> ModelArtifact:
        raise FileNotFoundError("artifact corrupt")

    settings = load_settings("toy", load_retry_initial_seconds=0.01, load_retry_max_seconds=0.02)
    with TestClient(create_app(TOY, settings, source=broken)) as client:
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["error"] is None and time.monotonic() < deadline:
            time.sleep(0.01)  # until the first attempt failed, so the reason is known
        assert client.get("/v2/health/ready").status_code == 503
        ready = client.get("/v2/models/toy/ready")
        assert ready.status_code == 503
        assert {**ready.json(), "error": None} == {"name": "toy", "ready": False, "error": None}
        assert ready.json()["error"].startswith("loading the model failed ")
        assert "artifact corrupt" not in ready.text
        assert client.get("/v2/models/other/ready").status_code == 404
        response = client.post(INFER, json=infer_body(ROWS[:1]))
        assert response.status_code == 503
        assert response.json()["error"].startswith("model not ready")


def test_binary_tensors_give_the_numbers_of_json_ones(toy_client: TestClient) -> None:
    rows = ROWS[:3]
    header = {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [3], "parameters": {"binary_data_size": 12}},
            {
                "name": "color",
                "datatype": "BYTES",
                "shape": [3],
                "parameters": {"binary_data_size": 3 * 4 + 4 + 3 + 4},
            },
        ]
    }
    raw = orjson.dumps(header)
    xs = struct.pack("<3f", *(r["x"] for r in rows))
    colors = b"".join(struct.pack("<I", len(c)) + c.encode() for c in (r["color"] for r in rows))
    response = toy_client.post(
        INFER, content=raw + xs + colors, headers={"Inference-Header-Content-Length": str(len(raw))}
    )
    assert response.status_code == 200, response.text
    expected = toy_client.post(INFER, json=infer_body(rows)).json()
    assert response.json()["outputs"] == expected["outputs"]


def test_binary_outputs_when_asked(toy_client: TestClient) -> None:
    response = toy_client.post(INFER, json=infer_body(ROWS[:2], parameters={"binary_data_output": True}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:length])
    value, outside = header["outputs"]
    assert value["parameters"]["binary_data_size"] == 16
    as_json = toy_client.post(INFER, json=infer_body(ROWS[:2])).json()["outputs"]
    assert list(struct.unpack("<2d", response.content[length : length + 16])) == as_json[0]["data"]
    # Each document as a 4-byte length and its bytes.
    assert outside["name"] == "outside_training"
    documents = [d.encode() for d in as_json[1]["data"]]
    assert response.content[length + 16 :] == b"".join(struct.pack("<I", len(d)) + d for d in documents)


def test_a_binary_header_that_is_no_length_is_a_422(toy_client: TestClient) -> None:
    response = toy_client.post(
        INFER, json=infer_body(ROWS[:1]), headers={"Inference-Header-Content-Length": "x"}
    )
    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"field": "headers.inference-header-content-length", "problem": "'x' is not a number of bytes"}
    ]


def test_served_under_the_ingress_prefix_like_predict(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    settings = load_settings("toy", root_path="/toy")
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        assert client.post(f"/toy{INFER}", json=infer_body(ROWS[:1])).status_code == 200
        bad = client.post(f"/toy{INFER}", json={"inputs": []})
        assert bad.json()["code"] == "invalid_request"  # the protocol's error body under the prefix too
        counted = 'toy_requests_total{endpoint="/v2/models/{model}/infer",method="POST",status="200"} 1.0'
        assert counted in client.get("/toy/metrics").text


def test_nested_rows_over_the_limit_are_a_413(toy_trained: tuple[ModelArtifact, Split]) -> None:
    """One nested list of 1,000 rows is 1,000 instances (was answered with 1,000 predictions)."""
    artifact, _ = toy_trained
    nested = {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [1000, 1], "data": [[1.5] * 1000]},
            {"name": "color", "datatype": "BYTES", "shape": [1000], "data": [["red"] * 1000]},
        ]
    }
    with TestClient(create_app(TOY, load_settings("toy"), source=lambda: artifact)) as client:
        wait_ready(client)
        response = client.post(INFER, json=nested)
    assert response.status_code == 413, response.text
    assert response.json()["error"].startswith("1000 instances; the limit is 256 (TOY_MAX_BATCH_SIZE)")


def test_a_batch_over_the_limit_is_a_413_naming_the_setting_however_bad_its_tensors(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    """Read from the shapes before the elements: a wrong datatype is not named ahead of the size."""
    artifact, _ = toy_trained
    bad = {
        "inputs": [
            {"name": "x", "datatype": "BYTES", "shape": [257], "data": ["eleven"] * 257},
            {"name": "color", "datatype": "FP64", "shape": [257], "data": [1.5] * 257},
        ]
    }
    with TestClient(create_app(TOY, load_settings("toy"), source=lambda: artifact)) as client:
        wait_ready(client)
        response = client.post(INFER, json=bad)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == (
        "257 instances; the limit is 256 (TOY_MAX_BATCH_SIZE); send at most 256 per request"
    )


def test_a_bad_routing_header_is_refused_before_the_body_is_read_as_on_predict(
    toy_client: TestClient,
) -> None:
    """The header is the request's first problem, whatever its body: a body over the batch limit,
    or no JSON at all, is not read to refuse it."""
    over = [{"x": 1.0, "color": "red"}] * 9  # the toy client's batch limit is 8
    for body in (orjson.dumps(infer_body(over)), b"not json"):
        for path in (INFER, "/predict/batch"):
            response = toy_client.post(path, content=body, headers={"X-Model-Variant": "blue"})
            assert response.status_code == 422, (path, response.text)
            assert [f["field"] for f in response.json()["fields"]] == ["header.x-model-variant"]
