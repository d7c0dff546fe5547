"""Tensors to records and back, for the toy service's request and response."""

from __future__ import annotations

import json
from typing import Any

import pytest
from toy import ToyPrediction, ToyRequest

from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.errors import ServekitError


@pytest.fixture(scope="module")
def codec() -> OpenInferenceCodec:
    return OpenInferenceCodec(ToyRequest, ToyPrediction)


def body(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def tensor(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def problems(codec: OpenInferenceCodec, raw: bytes, limit: int = 8) -> dict[str, str]:
    with pytest.raises(ServekitError) as caught:
        codec.decode(raw, limit)
    assert caught.value.status_code == 422, caught.value
    return {p.field: p.problem for p in caught.value.fields}


def test_metadata_states_each_field_as_a_tensor(codec: OpenInferenceCodec) -> None:
    metadata = codec.metadata("toy", "7")
    inputs = {t["name"]: t for t in metadata["inputs"]}
    assert metadata["versions"] == ["7"]
    assert inputs["x"]["datatype"] == "FP64"
    assert "INT64" in inputs["x"]["parameters"]["accepted_datatypes"]  # a float field takes integers
    assert inputs["color"] == {"name": "color", "datatype": "BYTES", "shape": [-1], "parameters": {}}
    assert inputs["note"]["parameters"] == {"optional": True}
    assert [t["name"] for t in metadata["outputs"]] == ["value", "explanation"]


def test_columns_become_records_in_order(codec: OpenInferenceCodec) -> None:
    decoded = codec.decode(
        body(tensor("x", "FP32", [1.5, 2]), tensor("color", "BYTES", [["red"], ["blue"]], [2, 1]), id="r-1"),
        8,
    )
    assert decoded.records == [
        {"x": 1.5, "color": "red", "note": None},
        {"x": 2, "color": "blue", "note": None},
    ]
    assert (decoded.id, decoded.explain, decoded.outputs) == ("r-1", False, None)


def test_explanation_is_asked_by_parameter_or_by_output(codec: OpenInferenceCodec) -> None:
    inputs = (tensor("x", "FP64", [1.0]), tensor("color", "BYTES", ["red"]))
    assert codec.decode(body(*inputs, parameters={"explain": True}), 8).explain
    assert codec.decode(body(*inputs, outputs=[{"name": "explanation"}]), 8).explain
    assert not codec.decode(body(*inputs, outputs=[{"name": "value"}]), 8).explain
    assert problems(codec, body(*inputs, parameters={"explain": "yes"})) == {
        "parameters.explain": "'yes' is not true or false"
    }


def test_request_model_problems_are_located_in_the_tensors(codec: OpenInferenceCodec) -> None:
    found = problems(
        codec, body(tensor("x", "FP64", [1.0, 11.0]), tensor("color", "BYTES", ["red", "green"]))
    )
    assert found["inputs[x].data[1]"] == "Input should be less than or equal to 10"
    assert found["inputs[color].data[1]"] == "Input should be 'red' or 'blue'"


def test_a_missing_input_is_named_once(codec: OpenInferenceCodec) -> None:
    assert problems(codec, body(tensor("x", "FP64", [1.0, 2.0, 3.0]))) == {
        "inputs[color]": "missing: the model needs this input"
    }


@pytest.mark.parametrize(
    ("tensors", "field", "problem"),
    [
        (
            [tensor("y", "FP64", [1.0])],
            "inputs[y]",
            "not an input of this model; the inputs are x, color, note",
        ),
        ([tensor("x", "BYTES", ["1"])], "inputs[x].datatype", "BYTES given; x takes INT8"),
        ([tensor("x", "FP64", [1.0], [1, 2])], "inputs[x].shape", "[1, 2] given; one value per instance"),
        ([tensor("x", "FP64", [1.0, 2.0], [3])], "inputs[x].data", "2 values for shape [3]"),
        ([tensor("x", "INT64", [1.5])], "inputs[x].data[0]", "1.5 is not an integer, which INT64 holds"),
        ([tensor("x", "UINT8", [300])], "inputs[x].data[0]", "300 is outside the range of UINT8 (0 to 255)"),
        ([tensor("x", "FP64", [True])], "inputs[x].data[0]", "True is not a number, which FP64 holds"),
        ([tensor("color", "BYTES", [1])], "inputs[color].data[0]", "1 is not a string, which BYTES holds"),
        (
            [tensor("x", "FP64", [1.0]), tensor("x", "FP64", [2.0])],
            "inputs[x]",
            "given more than once; send one tensor per input",
        ),
        (
            [tensor("x", "FP64", [1.0, 2.0]), tensor("color", "BYTES", ["red"])],
            "inputs[color].shape",
            "1 instances, but inputs[x] has 2",
        ),
        ([tensor("x", "FP64", [], [0]), tensor("color", "BYTES", [], [0])], "inputs", "no instances"),
    ],
)
def test_tensors_that_do_not_fit_are_named(
    codec: OpenInferenceCodec, tensors: list[dict[str, Any]], field: str, problem: str
) -> None:
    found = problems(codec, body(*tensors))
    assert field in found, found
    assert found[field].startswith(problem)


def test_non_finite_numbers_are_refused(codec: OpenInferenceCodec) -> None:
    raw = b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [NaN]}]}'
    found = problems(codec, raw)
    assert found == {"inputs[x].data[0]": "nan is not a finite number"}


def test_envelope_problems_name_the_field(codec: OpenInferenceCodec) -> None:
    assert "inputs" in problems(codec, b'{"inputs": []}')
    assert "inputs[0].datatype" in problems(
        codec, body({"name": "x", "datatype": "FP128", "shape": [1], "data": [1]})
    )
    assert "body" in problems(codec, b'{"inputs": [')
    assert "unexpected" in problems(codec, body(tensor("x", "FP64", [1.0]), unexpected=1))


def test_unknown_output_is_named(codec: OpenInferenceCodec) -> None:
    found = problems(codec, body(tensor("x", "FP64", [1.0]), outputs=[{"name": "score"}]))
    assert found["outputs[score]"] == "no such output; the outputs are value, explanation"


def test_batch_over_the_limit_is_413(codec: OpenInferenceCodec) -> None:
    with pytest.raises(ServekitError) as caught:
        codec.decode(body(tensor("x", "FP64", [1.0] * 9), tensor("color", "BYTES", ["red"] * 9)), 8)
    assert caught.value.status_code == 413


def test_predictions_become_tensors(codec: OpenInferenceCodec) -> None:
    explanation = {"scale": "units", "base_value": 1.0, "output_value": 3.0, "contributions": {"x": 2.0}}
    predictions = [{"value": 3.0, "explanation": explanation}, {"value": 4.5, "explanation": explanation}]
    response = codec.encode({"name": "toy", "version": "7"}, "id-1", predictions, None)
    assert (response["model_name"], response["model_version"], response["id"]) == ("toy", "7", "id-1")
    value, explained = response["outputs"]
    assert value == {"name": "value", "datatype": "FP64", "shape": [2], "data": [3.0, 4.5]}
    assert explained["datatype"] == "BYTES"
    assert [json.loads(d) for d in explained["data"]] == [explanation, explanation]
    only = codec.encode({"name": "toy", "version": "7"}, "id-1", predictions, ("explanation",))
    assert [o["name"] for o in only["outputs"]] == ["explanation"]


def test_request_for_records_round_trips(codec: OpenInferenceCodec) -> None:
    records = [{"x": 2.0, "color": "red"}, {"x": 3.5, "color": "blue"}]
    request = codec.request_for(records, id="r")
    assert request["id"] == "r"
    assert [(t["name"], t["datatype"]) for t in request["inputs"]] == [("x", "FP64"), ("color", "BYTES")]
    decoded = codec.decode(json.dumps(request).encode(), 8)
    assert decoded.records == [{**r, "note": None} for r in records]


def test_request_for_picks_a_datatype_the_values_fit() -> None:
    class Trip(ToyRequest):
        stops: int
        when: str | float

    codec = OpenInferenceCodec(Trip, ToyPrediction)
    rows = [{"x": 1.0, "color": "red", "stops": 2.0, "when": 1.7e9}]
    tensors = {t["name"]: t for t in codec.request_for(rows)["inputs"]}
    assert (tensors["stops"]["datatype"], tensors["stops"]["data"]) == ("INT64", [2])
    assert tensors["when"]["datatype"] == "FP64"  # stated BYTES; numbers go as FP64
    with pytest.raises(ValueError, match="stops"):
        codec.request_for([{**rows[0], "stops": 2.5}])
