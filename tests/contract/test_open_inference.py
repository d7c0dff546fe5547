"""Every service answers the Open Inference Protocol as it answers ``/predict/batch``.

The same held-out rows, sent as one tensor per field in the datatype the model's metadata
states, give the same numbers and the same explanations; the documented example works.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from servekit import registry
from servekit.codecs.open_inference_types import DATATYPES
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import request_rows, train_in_memory, valid_requests, wait_ready

SERVICES = registry.available()


@functools.cache
def trained(name: str) -> tuple[Any, list[dict[str, Any]]]:
    spec = registry.get_service(name)
    artifact, data = train_in_memory(spec, rows=1500)
    return artifact, valid_requests(spec, request_rows(data, 40))[:24]


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> Iterator[tuple[str, TestClient, list[dict[str, Any]]]]:
    name = request.param
    artifact, rows = trained(name)
    app = create_app(registry.get_service(name), load_settings(name), source=lambda: artifact)
    with TestClient(app) as client:
        wait_ready(client)
        yield name, client, rows


def tensor(spec: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows' values of one input as a client holding them in typed columns would send them.

    The held-out rows come from a data frame, so an integer column with gaps holds floats
    (33.0) and ChicagoTaxi's timestamps are Unix seconds, a numeric column.
    """
    values = [r.get(spec["name"]) for r in rows]
    present = [v for v in values if v is not None]
    datatype = spec["datatype"]
    if datatype == "INT64":
        values = [None if v is None else int(v) for v in values]
    elif datatype == "BYTES" and present and not isinstance(present[0], str):
        datatype = "FP64"
        assert datatype in spec["parameters"]["accepted_datatypes"]
    return {"name": spec["name"], "datatype": datatype, "shape": [len(rows)], "data": values}


def as_tensors(metadata: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [tensor(spec, rows) for spec in metadata["inputs"]]


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in body["outputs"]}


def test_metadata_names_the_request_and_response_fields(service: tuple[str, TestClient, Any]) -> None:
    name, client, _ = service
    spec = registry.get_service(name)
    metadata = client.get(f"/v2/models/{name}").json()
    assert [t["name"] for t in metadata["inputs"]] == list(spec.request.model_fields)
    # The answers' JSON documents: the inputs outside the training range (a tree model's), the
    # explanation, the principal reasons.
    documents = ["outside_training"] if spec.model.keeps_training_ranges else []
    assert [t["name"] for t in metadata["outputs"]] == [
        *spec.response.model_fields,
        *documents,
        "explanation",
        "reasons",
    ]


def test_tensors_give_the_numbers_and_explanations_of_the_batch_endpoint(
    service: tuple[str, TestClient, list[dict[str, Any]]],
) -> None:
    name, client, rows = service
    metadata = client.get(f"/v2/models/{name}").json()
    request = {"inputs": as_tensors(metadata, rows), "parameters": {"explain": True, "reasons": 3}}
    response = client.post(f"/v2/models/{name}/infer", json=request)
    assert response.status_code == 200, response.text
    outputs = by_name(response.json())
    expected = client.post("/predict/batch?explain=true&reasons=3", json={"instances": rows}).json()[
        "predictions"
    ]
    for tensor in metadata["outputs"]:
        output = outputs[tensor["name"]]
        assert output["datatype"] == tensor["datatype"]
        if tensor["name"] in ("explanation", "outside_training", "reasons"):
            assert [orjson.loads(d) for d in output["data"]] == [p[tensor["name"]] for p in expected]
        elif columns := tensor["parameters"].get("columns"):
            assert output["shape"] == [len(rows), len(columns)]
            assert output["data"] == [p[tensor["name"]][c] for p in expected for c in columns]
        else:
            assert output["data"] == [p[tensor["name"]] for p in expected]


def test_the_documented_example_is_accepted(service: tuple[str, TestClient, Any]) -> None:
    name, client, _ = service
    operation = client.get("/openapi.json").json()["paths"]["/v2/models/{model_name}/infer"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    assert example["inputs"], "the example has no inputs"
    response = client.post(f"/v2/models/{name}/infer", json=example)
    assert response.status_code == 200, response.text
    assert by_name(response.json())  # one output per prediction field at least


def test_the_document_names_the_inputs_and_outputs_the_model_takes(
    service: tuple[str, TestClient, Any],
) -> None:
    """A generated client (or a fuzzer) sends what the document allows: it lists as the tensor and
    output names exactly the ones the model takes, and every one of them is answered."""
    name, client, _ = service
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    metadata = client.get(f"/v2/models/{name}").json()
    inputs = [
        tensor_schema(schemas, ref)["properties"]["name"]["const"] for ref in documented_tensors(schemas)
    ]
    outputs = schemas["RequestOutput"]["properties"]["name"]["enum"]
    assert inputs == [t["name"] for t in metadata["inputs"]]
    assert outputs == [t["name"] for t in metadata["outputs"]]
    for ref in documented_tensors(schemas):
        assert tensor_schema(schemas, ref)["properties"]["shape"]["items"]["minimum"] == 0
    operation = client.get("/openapi.json").json()["paths"]["/v2/models/{model_name}/infer"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    for output in outputs:
        asked = {**example, "outputs": [{"name": output}], "parameters": {"explain": True, "reasons": 2}}
        response = client.post(f"/v2/models/{name}/infer", json=asked)
        assert response.status_code == 200, response.text
        assert list(by_name(response.json())) == [output]
    unknown = client.post(
        f"/v2/models/{name}/infer", json={**example, "outputs": [{"name": "no-such-output"}]}
    )
    assert unknown.status_code == 422
    assert [f["field"] for f in unknown.json()["fields"]] == ["outputs[no-such-output]"]


def documented_tensors(schemas: dict[str, Any]) -> list[str]:
    """The references of the tensor schemas the request's ``inputs`` may hold, in order."""
    items = schemas["InferenceRequest"]["properties"]["inputs"]["items"]
    return [items["$ref"]] if "$ref" in items else [choice["$ref"] for choice in items["oneOf"]]


def tensor_schema(schemas: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = schemas[ref.removeprefix("#/components/schemas/")]
    return schema


def test_the_document_gives_each_input_the_datatypes_it_takes_and_no_other(
    service: tuple[str, TestClient, Any],
) -> None:
    """Each input's tensor schema lists the datatypes the model's metadata states and accepts for
    it, the stated one first; a request in each of those is taken, one in any other refused."""
    name, client, _ = service
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    operation = document["paths"]["/v2/models/{model_name}/infer"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    metadata = {t["name"]: t for t in client.get(f"/v2/models/{name}").json()["inputs"]}
    documented = {}
    for ref in documented_tensors(schemas):
        properties = tensor_schema(schemas, ref)["properties"]
        datatype = properties["datatype"]
        documented[properties["name"]["const"]] = (
            [datatype["const"]] if "const" in datatype else datatype["enum"]
        )
    assert list(documented) == list(metadata)
    for input_name, datatypes in documented.items():
        stated = metadata[input_name]
        assert datatypes == [stated["datatype"]] + [
            d for d in stated["parameters"].get("accepted_datatypes", []) if d != stated["datatype"]
        ]
        for datatype in DATATYPES:
            tensors = [
                {**t, "datatype": datatype} if t["name"] == input_name else t for t in example["inputs"]
            ]
            response = client.post(f"/v2/models/{name}/infer", json={**example, "inputs": tensors})
            refused = [f["field"] for f in response.json().get("fields", [])]
            # Taken: its datatype is not what is refused (its values may not fit every one, 300 in INT8).
            assert (f"inputs[{input_name}].datatype" in refused) is (datatype not in datatypes), (
                input_name,
                datatype,
                response.text,
            )


def test_a_value_predict_refuses_is_refused_with_its_tensor_named(
    service: tuple[str, TestClient, list[dict[str, Any]]],
) -> None:
    name, client, rows = service
    metadata = client.get(f"/v2/models/{name}").json()
    tensors = as_tensors(metadata, rows[:3])
    first = tensors[0]
    first["data"][2] = None  # the first field of every service is required
    response = client.post(f"/v2/models/{name}/infer", json={"inputs": tensors})
    assert response.status_code == 422, response.text
    fields = [f["field"] for f in response.json()["fields"]]
    assert fields == [f"inputs[{first['name']}].data[2]"]
