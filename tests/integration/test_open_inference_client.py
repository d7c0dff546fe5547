"""Triton's own clients (``tritonclient.http`` and ``.grpc``) call the live services through the protocol.

The services are real ``mlp serve`` processes loading their champions from a real MLflow
server; the client is the one KServe and Triton users already have. It checks health and
metadata, sends numpy columns (as JSON, and as binary tensors, the client's default) and reads
numpy outputs back, and gets the numbers of ``/predict/batch`` for the same rows; over gRPC
too, where the client always sends raw tensor contents and reads raw outputs.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from load.payloads import payloads
from processes import Server
from servekit import http_client, registry

pytestmark = pytest.mark.integration

NUMPY_TYPES = {"INT64": np.int64, "FP64": np.float64, "BOOL": np.bool_, "BYTES": np.object_}


def client_of(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=30)


def complete_rows(name: str) -> list[dict[str, Any]]:
    """Rows with every field present: a numpy column of numbers has no room for a None."""
    fields = registry.get_service(name).request.model_fields
    rows = [r for r in payloads(name, 200, seed=5)[0] if all(r.get(f) is not None for f in fields)]
    assert len(rows) >= 8, f"too few complete rows of {name}"
    return rows[:8]


def numpy_input(spec: dict[str, Any], values: list[Any], *, binary: bool = False, grpc: bool = False) -> Any:
    """A numpy column as the HTTP client's InferInput (JSON or binary), or the gRPC client's."""
    datatype = spec["datatype"]
    if datatype == "BYTES" and not isinstance(values[0], str):
        datatype = "FP64"  # ChicagoTaxi's timestamps as Unix seconds, a numeric column
    array = np.array(
        [v.encode() for v in values] if datatype == "BYTES" else values, dtype=NUMPY_TYPES[datatype]
    )
    if grpc:
        grpc_tensor = triton_grpc.InferInput(spec["name"], list(array.shape), datatype)
        grpc_tensor.set_data_from_numpy(array)
        return grpc_tensor
    tensor = triton.InferInput(spec["name"], list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def assert_outputs_are_the_batch_predictions(
    result: Any, metadata: dict[str, Any], expected: list[dict[str, Any]]
) -> None:
    """Every output the response holds, read back as numpy, equals ``/predict/batch``'s field."""
    grpc = isinstance(result, triton_grpc.InferResult)
    response = result.get_response(as_json=True) if grpc else result.get_response()
    returned = {o["name"] for o in response["outputs"]}
    assert returned, "no outputs"
    for spec in metadata["outputs"]:
        if spec["name"] not in returned:
            continue
        values = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy(spec["name"]).tolist()]
        if spec["name"] in ("explanation", "outside_training", "reasons"):  # a JSON document per instance
            assert [json.loads(d) for d in values] == [p[spec["name"]] for p in expected]
        elif columns := spec["parameters"].get("columns"):
            assert values == [[p[spec["name"]][c] for c in columns] for p in expected], spec["name"]
        else:
            assert values == [p[spec["name"]] for p in expected], spec["name"]


@pytest.mark.parametrize("name", registry.available())
def test_triton_client_gets_the_numbers_of_the_batch_endpoint(
    name: str, live_services: dict[str, Server]
) -> None:
    """JSON tensors both ways, explanations asked for by a request parameter."""
    server = live_services[name]
    client = client_of(server)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(name)
    metadata = client.get_model_metadata(name)
    rows = complete_rows(name)
    inputs = [numpy_input(spec, [r[spec["name"]] for r in rows]) for spec in metadata["inputs"]]
    outputs = [triton.InferRequestedOutput(o["name"], binary_data=False) for o in metadata["outputs"]]
    asked = {"explain": True, "reasons": 2}
    result = client.infer(name, inputs, outputs=outputs, request_id="triton-1", parameters=asked)

    expected = batch_predictions(server, rows, explain=True, reasons=2)
    response = result.get_response()
    assert response["id"] == "triton-1"
    assert response["model_version"] == expected[0]["model"]["version"]
    assert {o["name"] for o in response["outputs"]} == {o["name"] for o in metadata["outputs"]}
    assert_outputs_are_the_batch_predictions(result, metadata, expected)


@pytest.mark.parametrize("name", registry.available())
def test_triton_client_defaults_binary_both_ways(name: str, live_services: dict[str, Server]) -> None:
    """The client's defaults: binary tensors in, and every output asked for as binary."""
    server = live_services[name]
    client = client_of(server)
    metadata = client.get_model_metadata(name)
    rows = complete_rows(name)
    inputs = [numpy_input(spec, [r[spec["name"]] for r in rows], binary=True) for spec in metadata["inputs"]]
    result = client.infer(name, inputs)
    assert all(o["parameters"]["binary_data_size"] > 0 for o in result.get_response()["outputs"])
    assert_outputs_are_the_batch_predictions(result, metadata, batch_predictions(server, rows))


def batch_predictions(
    server: Server, rows: list[dict[str, Any]], *, explain: bool = False, reasons: int = 0
) -> list[dict[str, Any]]:
    params = {"explain": str(explain).lower(), "reasons": reasons}
    response = http_client.post(
        f"{server.url}/predict/batch", params=params, json={"instances": rows}, timeout=30
    )
    predictions: list[dict[str, Any]] = response.json()["predictions"]
    return predictions


def test_triton_client_shows_which_tensor_is_wrong(live_services: dict[str, Server]) -> None:
    client = client_of(live_services["bankchurn"])
    rows = complete_rows("bankchurn")
    metadata = client.get_model_metadata("bankchurn")
    inputs = []
    for spec in metadata["inputs"]:
        values = [r[spec["name"]] for r in rows]
        if spec["name"] == "Age":
            values[3] = 130
        inputs.append(numpy_input(spec, values))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("bankchurn", inputs)
    assert "inputs[Age].data[3]: Input should be less than or equal to 100" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        client.infer("bankchurn", inputs, model_version="999")
    assert "version 999 of bankchurn is not served here" in caught.value.message()


@pytest.mark.parametrize("name", registry.available())
def test_triton_grpc_client_gets_the_numbers_of_the_batch_endpoint(
    name: str, live_services: dict[str, Server]
) -> None:
    """The same over gRPC: raw tensor contents in, raw outputs back, explanations by parameter."""
    server = live_services[name]
    metadata = client_of(server).get_model_metadata(name)  # the REST form names NLPInsight's columns
    rows = complete_rows(name)
    with triton_grpc.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}") as client:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(name)
        described = client.get_model_metadata(name, as_json=True)
        assert [(t["name"], t["datatype"]) for t in described["inputs"]] == [
            (t["name"], t["datatype"]) for t in metadata["inputs"]
        ]
        inputs = [
            numpy_input(spec, [r[spec["name"]] for r in rows], grpc=True) for spec in metadata["inputs"]
        ]
        result = client.infer(name, inputs, request_id="grpc-1", parameters={"explain": True, "reasons": 2})
    expected = batch_predictions(server, rows, explain=True, reasons=2)
    response = result.get_response(as_json=True)
    assert response["id"] == "grpc-1"
    assert response["model_version"] == expected[0]["model"]["version"]
    assert {o["name"] for o in response["outputs"]} == {o["name"] for o in metadata["outputs"]}
    assert_outputs_are_the_batch_predictions(result, metadata, expected)


def test_triton_grpc_client_shows_which_tensor_is_wrong(live_services: dict[str, Server]) -> None:
    server = live_services["bankchurn"]
    metadata = client_of(server).get_model_metadata("bankchurn")
    rows = complete_rows("bankchurn")
    inputs = []
    for spec in metadata["inputs"]:
        values = [r[spec["name"]] for r in rows]
        if spec["name"] == "Age":
            values[3] = 130
        inputs.append(numpy_input(spec, values, grpc=True))
    with triton_grpc.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}") as client:
        with pytest.raises(InferenceServerException) as caught:
            client.infer("bankchurn", inputs)
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "inputs[Age].data[3]: Input should be less than or equal to 100" in caught.value.message()
        with pytest.raises(InferenceServerException) as caught:
            client.infer("bankchurn", inputs, model_version="999")
        assert caught.value.status() == "StatusCode.NOT_FOUND"
        assert "version 999 of bankchurn is not served here" in caught.value.message()
