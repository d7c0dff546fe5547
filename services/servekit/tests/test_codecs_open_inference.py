"""Tensors to records and back, for the toy service's request and response."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from toy import TOY, ToyPrediction, ToyRequest

from servekit.codecs import open_inference
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
    assert [t["name"] for t in metadata["outputs"]] == ["value", "explanation", "reasons"]


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


def test_reasons_are_asked_by_a_count_which_the_reasons_output_needs(codec: OpenInferenceCodec) -> None:
    inputs = (tensor("x", "FP64", [1.0]), tensor("color", "BYTES", ["red"]))
    assert codec.decode(body(*inputs), 8).reasons == 0
    decoded = codec.decode(body(*inputs, parameters={"reasons": 2}, outputs=[{"name": "reasons"}]), 8)
    assert (decoded.reasons, decoded.explain, decoded.outputs) == (2, False, ("reasons",))
    for bad in (-1, 51, 1.5, "2", True):
        assert problems(codec, body(*inputs, parameters={"reasons": bad})) == {
            "parameters.reasons": f"{bad!r} is not an integer from 0 to 50"
        }
    # Unlike the explanation, asking for the output alone does not say how many.
    assert problems(codec, body(*inputs, outputs=[{"name": "reasons"}])) == {
        "parameters.reasons": "the reasons output is asked for: say how many, 1 to 50"
    }


def test_binary_output_flags_are_true_or_false(codec: OpenInferenceCodec) -> None:
    """A flag that is no boolean is named, rather than read as false and answered in JSON."""
    inputs = (tensor("x", "FP64", [1.0]), tensor("color", "BYTES", ["red"]))
    request = body(
        *inputs,
        parameters={"binary_data_output": 1},
        outputs=[{"name": "value", "parameters": {"binary_data": "true"}}],
    )
    assert problems(codec, request) == {
        "parameters.binary_data_output": "1 is not true or false",
        "outputs[value].parameters.binary_data": "'true' is not true or false",
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
        (
            [tensor("x", "FP32", [1.0, -1e39])],
            "inputs[x].data[1]",
            "-1e+39 is outside the range of FP32 (±3.40282e+38)",
        ),
        ([tensor("x", "FP16", [70000])], "inputs[x].data[0]", "70000 is outside the range of FP16 (±65504)"),
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
    assert found == {"inputs[x].data[0]": "nan is not a finite number; NaN means missing, and x is required"}


def test_envelope_problems_name_the_field(codec: OpenInferenceCodec) -> None:
    assert "inputs" in problems(codec, b'{"inputs": []}')
    assert "inputs[0].datatype" in problems(
        codec, body({"name": "x", "datatype": "FP128", "shape": [1], "data": [1]})
    )
    assert "body" in problems(codec, b'{"inputs": [')
    assert "unexpected" in problems(codec, body(tensor("x", "FP64", [1.0]), unexpected=1))


def test_unknown_output_is_named(codec: OpenInferenceCodec) -> None:
    found = problems(codec, body(tensor("x", "FP64", [1.0]), outputs=[{"name": "score"}]))
    assert found["outputs[score]"] == "no such output; the outputs are value, explanation, reasons"


def test_batch_over_the_limit_is_413(codec: OpenInferenceCodec) -> None:
    with pytest.raises(ServekitError) as caught:
        codec.decode(body(tensor("x", "FP64", [1.0] * 9), tensor("color", "BYTES", ["red"] * 9)), 8)
    assert caught.value.status_code == 413


def test_the_batch_size_is_checked_before_the_tensors_elements() -> None:
    with pytest.raises(ServekitError) as caught:
        OpenInferenceCodec.of_service(TOY).decode(
            body(tensor("x", "BYTES", ["eleven"] * 9), tensor("color", "FP64", [1.5] * 9)), 8
        )
    assert caught.value.status_code == 413
    assert [(p.field, p.problem) for p in caught.value.fields] == [
        ("inputs", "9 instances, over the limit of 8 (TOY_MAX_BATCH_SIZE)")
    ]


@pytest.mark.parametrize("shape", [[9], [9, 1]])
def test_nested_rows_count_as_the_values_they_hold(codec: OpenInferenceCodec, shape: list[int]) -> None:
    """``[[v] * 9]`` is one list but 9 instances once flattened: 9 over a limit of 8."""
    nested = body(
        {"name": "x", "datatype": "FP64", "shape": shape, "data": [[1.0] * 9]},
        {"name": "color", "datatype": "BYTES", "shape": shape, "data": [["red"] * 9]},
    )
    with pytest.raises(ServekitError) as caught:
        codec.decode(nested, 8)
    assert caught.value.status_code == 413
    assert caught.value.fields[0].problem.startswith("9 instances, over the limit of 8")


def test_the_decoded_rows_are_held_to_the_limit_too(
    codec: OpenInferenceCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backstop: however the tensors were counted before decoding, the rows the model would
    get are checked again."""
    monkeypatch.setattr(open_inference, "count_values", lambda data: 1)
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
    reasons = [{"field": "x", "value": 3.0, "contribution": 2.0}]
    with_reasons = [{"value": 3.0, "reasons": reasons}]
    [_, listed] = codec.encode({"name": "toy", "version": "7"}, "id-2", with_reasons, None)["outputs"]
    assert (listed["name"], listed["datatype"], listed["shape"]) == ("reasons", "BYTES", [1])
    assert json.loads(listed["data"][0]) == reasons


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


def binary_request(*tensors: tuple[dict[str, Any], bytes]) -> tuple[bytes, int]:
    """A body of the binary tensor extension and its JSON part's length."""
    header = json.dumps({"inputs": [{**t, "parameters": {"binary_data_size": len(b)}} for t, b in tensors]})
    return header.encode() + b"".join(b for _, b in tensors), len(header)


def texts(*values: str) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def test_binary_tensors_are_read_in_input_order(codec: OpenInferenceCodec) -> None:
    body, length = binary_request(
        ({"name": "x", "datatype": "FP64", "shape": [2]}, struct.pack("<2d", 1.5, 2.0)),
        ({"name": "color", "datatype": "BYTES", "shape": [2]}, texts("red", "blue")),
    )
    decoded = codec.decode(body, 8, length)
    assert decoded.records == [
        {"x": 1.5, "color": "red", "note": None},
        {"x": 2.0, "color": "blue", "note": None},
    ]


def test_binary_and_json_tensors_mix(codec: OpenInferenceCodec) -> None:
    header = json.dumps(
        {
            "inputs": [
                {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
                {"name": "x", "datatype": "INT16", "shape": [1], "parameters": {"binary_data_size": 2}},
            ]
        }
    ).encode()
    decoded = codec.decode(header + struct.pack("<h", 7), 8, len(header))
    assert decoded.records == [{"x": 7, "color": "red", "note": None}]


@pytest.mark.parametrize(
    ("tensors", "trailing", "field", "problem"),
    [
        (
            [({"name": "x", "datatype": "FP32", "shape": [2]}, b"\x00" * 6)],
            b"",
            "inputs[x].data",
            "6 bytes are not a whole number of FP32 values (4 bytes each)",
        ),
        (
            [({"name": "color", "datatype": "BYTES", "shape": [1]}, struct.pack("<I", 2) + b"\xff\xfe")],
            b"",
            "inputs[color].data",
            "element 0 is not UTF-8 text",
        ),
        (
            [({"name": "color", "datatype": "BYTES", "shape": [1]}, struct.pack("<I", 9) + b"red")],
            b"",
            "inputs[color].data",
            "element 0: 9 bytes announced, 3 left",
        ),
        (
            [({"name": "x", "datatype": "FP64", "shape": [1]}, struct.pack("<d", float("inf")))],
            b"",
            "inputs[x].data[0]",
            "inf is not a finite number",
        ),
        (
            [({"name": "x", "datatype": "FP64", "shape": [1]}, struct.pack("<d", 1.0))],
            b"\x00\x00",
            "body",
            "2 bytes follow the last tensor's binary_data_size",
        ),
    ],
)
def test_binary_tensors_that_do_not_fit_are_named(
    codec: OpenInferenceCodec,
    tensors: list[tuple[dict[str, Any], bytes]],
    trailing: bytes,
    field: str,
    problem: str,
) -> None:
    body, length = binary_request(*tensors)
    with pytest.raises(ServekitError) as caught:
        codec.decode(body + trailing, 8, length)
    found = {p.field: p.problem for p in caught.value.fields}
    assert found.get(field) == problem, found


def test_binary_sizes_need_the_header_and_the_header_must_fit(codec: OpenInferenceCodec) -> None:
    body, length = binary_request(({"name": "x", "datatype": "FP64", "shape": [1]}, struct.pack("<d", 1.0)))
    problem = "given, but the request has no inference-header-content-length header"
    assert problems(codec, body[:length]) == {"inputs[x].parameters.binary_data_size": problem}
    with pytest.raises(ServekitError) as caught:
        codec.decode(body, 8, len(body) + 1)
    assert caught.value.fields[0].field == "headers.inference-header-content-length"


def test_a_tensor_without_values_is_named(codec: OpenInferenceCodec) -> None:
    found = problems(codec, body({"name": "x", "datatype": "FP64", "shape": [1]}))
    assert found["inputs[x].data"].startswith("missing: give the values")


def test_outputs_asked_as_binary(codec: OpenInferenceCodec) -> None:
    inputs = (tensor("x", "FP64", [1.0]), tensor("color", "BYTES", ["red"]))
    everything = codec.decode(body(*inputs, parameters={"binary_data_output": True, "explain": True}), 8)
    assert everything.binary_outputs == {"value", "explanation", "reasons"}
    one = codec.decode(
        body(
            *inputs, outputs=[{"name": "value", "parameters": {"binary_data": True}}, {"name": "explanation"}]
        ),
        8,
    )
    assert one.binary_outputs == {"value"}
    assert codec.decode(body(*inputs), 8).binary_outputs == frozenset()


def test_binary_outputs_hold_the_json_values(codec: OpenInferenceCodec) -> None:
    explanation = {"scale": "units", "base_value": 1.0, "output_value": 3.0, "contributions": {"x": 2.0}}
    predictions = [{"value": 3.0, "explanation": explanation}, {"value": 4.5, "explanation": explanation}]
    response = codec.encode({"name": "toy", "version": "7"}, "id-1", predictions, None)
    payload, length = codec.to_binary(response, frozenset({"value", "explanation"}))
    header = json.loads(payload[:length])
    value, explained = header["outputs"]
    assert "data" not in value
    assert value["parameters"] == {"binary_data_size": 16}
    binary = payload[length:]
    assert struct.unpack("<2d", binary[:16]) == (3.0, 4.5)
    (size,) = struct.unpack_from("<I", binary, 16)
    assert json.loads(binary[20 : 20 + size]) == explanation
    assert len(binary) == 16 + explained["parameters"]["binary_data_size"]


class Trip(BaseModel):
    """Optional inputs of each kind, as ChicagoTaxi's: coordinates, community areas, company."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    miles: float = Field(gt=0)
    latitude: float | None = Field(default=None, ge=41, le=43)
    area: int | None = Field(default=None, ge=1, le=77)
    company: str | None = None


@pytest.fixture(scope="module")
def trips() -> OpenInferenceCodec:
    return OpenInferenceCodec(Trip, ToyPrediction)


def test_nan_in_an_optional_input_is_missing_as_null_is(trips: OpenInferenceCodec) -> None:
    """A data frame holds a gap as NaN, and binary and gRPC tensors have no null."""
    nan = float("nan")
    body_, length = binary_request(
        ({"name": "miles", "datatype": "FP64", "shape": [3]}, struct.pack("<3d", 1.5, 2.0, 3.0)),
        ({"name": "latitude", "datatype": "FP64", "shape": [3]}, struct.pack("<3d", 41.9, nan, 42.0)),
        ({"name": "area", "datatype": "FP64", "shape": [3]}, struct.pack("<3d", 8.0, nan, 32.0)),
        ({"name": "company", "datatype": "BYTES", "shape": [3]}, texts("Flash Cab", "", "")),
    )
    records = trips.decode(body_, 8, length).records
    assert [r["latitude"] for r in records] == [41.9, None, 42.0]
    assert [r["area"] for r in records] == [8, None, 32]
    assert [type(r["area"]) for r in records] == [int, type(None), int]
    assert [r["company"] for r in records] == ["Flash Cab", None, None]  # binary: empty is missing
    as_json = trips.decode(
        body(tensor("miles", "FP64", [1.5, 2.0]), tensor("company", "BYTES", ["", None])), 8
    ).records
    assert [r["company"] for r in as_json] == ["", None]  # JSON has null: empty text is text there
    over_grpc = body(tensor("miles", "FP64", [1.5]), tensor("company", "BYTES", [""]))
    assert trips.decode(over_grpc, 8, no_null=True).records[0]["company"] is None


def test_nan_in_a_required_input_or_a_fraction_for_an_integer_is_named(trips: OpenInferenceCodec) -> None:
    nan = float("nan")
    body_, length = binary_request(
        ({"name": "miles", "datatype": "FP64", "shape": [2]}, struct.pack("<2d", 1.5, nan)),
        ({"name": "area", "datatype": "FP32", "shape": [2]}, struct.pack("<2f", nan, 8.5)),
    )
    with pytest.raises(ServekitError) as caught:
        trips.decode(body_, 8, length)
    assert {p.field: p.problem for p in caught.value.fields} == {
        "inputs[miles].data[1]": "nan is not a finite number; NaN means missing, and miles is required",
        "inputs[area].data[1]": "8.5 is not a whole number, which this integer input takes",
    }
    metadata = {t["name"]: t for t in trips.metadata("trips", "1")["inputs"]}
    assert metadata["area"]["parameters"]["accepted_datatypes"][-3:] == ["FP16", "FP32", "FP64"]
    assert metadata["area"]["datatype"] == "INT64"


def test_no_outputs_listed_is_every_output(codec: OpenInferenceCodec) -> None:
    inputs = (tensor("x", "FP64", [1.0]), tensor("color", "BYTES", ["red"]))
    decoded = codec.decode(body(*inputs, outputs=[], parameters={"binary_data_output": True}), 8)
    assert decoded.outputs is None
    assert decoded.binary_outputs == {"value", "reasons", "explanation"}
