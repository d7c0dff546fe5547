"""Triton's own client (``tritonclient.http``) calls the live services through the protocol.

The services are real ``mlp serve`` processes loading their champions from a real MLflow
server; the client is the one KServe and Triton users already have. It checks health and
metadata, sends numpy columns (as JSON, and as binary tensors, the client's default) and reads
numpy outputs back, and gets the numbers of ``/predict/batch`` for the same rows.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from load.payloads import payloads
from processes import Server
from servekit import registry

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


def numpy_input(spec: dict[str, Any], values: list[Any], *, binary: bool = False) -> triton.InferInput:
    datatype = spec["datatype"]
    if datatype == "BYTES" and not isinstance(values[0], str):
        datatype = "FP64"  # ChicagoTaxi's timestamps as Unix seconds, a numeric column
    array = np.array(
        [v.encode() for v in values] if datatype == "BYTES" else values, dtype=NUMPY_TYPES[datatype]
    )
    tensor = triton.InferInput(spec["name"], list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


@pytest.mark.parametrize("name", registry.available())
def test_triton_client_gets_the_numbers_of_the_batch_endpoint(
    name: str, live_services: dict[str, Server]
) -> None:
    server = live_services[name]
    client = client_of(server)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(name)
    metadata = client.get_model_metadata(name)
    rows = complete_rows(name)
    inputs = [numpy_input(spec, [r[spec["name"]] for r in rows]) for spec in metadata["inputs"]]
    outputs = [triton.InferRequestedOutput(o["name"], binary_data=False) for o in metadata["outputs"]]
    result = client.infer(name, inputs, outputs=outputs, request_id="triton-1", parameters={"explain": True})

    expected = httpx.post(
        f"{server.url}/predict/batch?explain=true", json={"instances": rows}, timeout=30
    ).json()["predictions"]
    response = result.get_response()
    assert response["id"] == "triton-1"
    assert response["model_version"] == expected[0]["model"]["version"]
    for spec in metadata["outputs"]:
        array = result.as_numpy(spec["name"])
        assert array is not None, f"no output {spec['name']}"
        if spec["name"] == "explanation":
            assert [json.loads(d) for d in array] == [p["explanation"] for p in expected]
        elif columns := spec["parameters"].get("columns"):
            assert array.shape == (len(rows), len(columns))
            assert array.tolist() == [[p[spec["name"]][c] for c in columns] for p in expected]
        else:  # BYTES sent as JSON come back as str
            assert array.tolist() == [p[spec["name"]] for p in expected]


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
def test_triton_client_defaults_binary_inputs_and_no_outputs_listed(
    name: str, live_services: dict[str, Server]
) -> None:
    """The client's defaults: binary tensors in, and every output asked for as binary."""
    server = live_services[name]
    client = client_of(server)
    metadata = client.get_model_metadata(name)
    rows = complete_rows(name)
    inputs = [numpy_input(spec, [r[spec["name"]] for r in rows], binary=True) for spec in metadata["inputs"]]
    result = client.infer(name, inputs)
    expected = httpx.post(f"{server.url}/predict/batch", json={"instances": rows}, timeout=30).json()
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] > 0
    for spec in metadata["outputs"]:
        if spec["name"] == "explanation":
            continue  # not asked for
        values = result.as_numpy(spec["name"]).tolist()
        wanted = [p[spec["name"]] for p in expected["predictions"]]
        if columns := spec["parameters"].get("columns"):
            values = result.as_numpy(spec["name"]).reshape(len(rows), len(columns)).tolist()
            wanted = [[p[spec["name"]][c] for c in columns] for p in expected["predictions"]]
        elif spec["datatype"] == "BYTES":
            values = [v.decode() for v in values]  # binary BYTES come back as bytes
        assert values == wanted, spec["name"]
