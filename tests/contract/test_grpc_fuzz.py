"""Property-based fuzzing of the gRPC Open Inference path, in process: a ``ModelInferRequest``
goes through the servicer's own steps (``rest_form``, the codec, the model, the answer as a
message) and is answered, or refused with a 4xx naming the problem, never anything else.

schemathesis reaches the REST form of the protocol through its document; the gRPC message has
typed contents, raw little-endian bytes and a parameter ``oneof`` that JSON has not, read by
code of its own. The messages are each service's example as a client sends it (raw or typed,
explained or not), with a datatype, shape, content or parameter changed now and then.
"""

from __future__ import annotations

import functools
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import (
    FUZZ,
    assert_both_kinds_drawn,
    assert_refusal_names_the_problem,
    example,
    sometimes,
    trained,
)
from servekit import registry
from servekit.codecs.open_inference import Decoded, OpenInferenceCodec
from servekit.codecs.open_inference_types import DATATYPES
from servekit.errors import ServekitError
from servekit.inference import model_ref, run_model
from servekit.model import ServedModel
from servekit.rpc import open_inference_pb2 as pb
from servekit.rpc.messages import infer_message, response_message, rest_form

MAX_BATCH = 16
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
CONTENTS = {
    "bool_contents": st.lists(st.booleans(), max_size=3),
    "int_contents": st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), max_size=3),
    "int64_contents": st.lists(INT64, max_size=3),
    "uint64_contents": st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=3),
    "fp32_contents": st.lists(st.floats(width=32), max_size=3),
    "fp64_contents": st.lists(st.floats(), max_size=3),
    "bytes_contents": st.lists(st.binary(max_size=8), max_size=3),
}


@functools.cache
def served(name: str) -> ServedModel:
    return registry.get_service(name).model(trained(name))


@functools.cache
def codec(name: str) -> OpenInferenceCodec:
    return OpenInferenceCodec.of_service(registry.get_service(name))


def parameter(draw: st.DrawFn, key: str) -> pb.InferParameter:
    """``explain`` and ``reasons`` as a client means them, mostly; else any member of the oneof."""
    valid = {"explain": st.booleans().map(lambda b: {"bool_param": b}), "reasons": st.integers(0, 4)}
    if key in valid and sometimes(draw, 8):
        value = draw(valid[key])
        return pb.InferParameter(**(value if isinstance(value, dict) else {"int64_param": value}))
    values = {
        "bool_param": st.booleans(),
        "int64_param": INT64,
        "string_param": st.text(max_size=6),
        "double_param": st.floats(),
        "uint64_param": st.integers(min_value=0, max_value=2**64 - 1),
    }
    member = draw(st.sampled_from(sorted(values)))
    return pb.InferParameter(**{member: draw(values[member])})


@st.composite
def messages(draw: st.DrawFn, name: str) -> pb.ModelInferRequest:
    rows = [example(name) for _ in range(draw(st.integers(1, 3)))]
    message = infer_message(codec(name).request_for(rows), raw=draw(st.booleans()))
    for key in draw(st.lists(st.sampled_from(["explain", "reasons", "other"]), max_size=2, unique=True)):
        message.parameters[key].CopyFrom(parameter(draw, key))
    if sometimes(draw, 1):
        for output in draw(st.lists(st.sampled_from([*codec(name).output_names, "", "nope"]), max_size=3)):
            message.outputs.add(name=output)
    if not sometimes(draw, 3):
        return message
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(message.inputs) - 1))
        tensor = message.inputs[i]
        change = draw(st.sampled_from(["datatype", "shape", "contents", "raw", "drop", "name"]))
        if change == "datatype":
            tensor.datatype = draw(st.sampled_from([*DATATYPES, "", "FP8"]) | st.text(max_size=5))
        elif change == "shape":
            del tensor.shape[:]
            tensor.shape.extend(draw(st.lists(INT64, max_size=3)))
        elif change == "contents":
            field = draw(st.sampled_from(sorted(CONTENTS)))
            getattr(tensor.contents, field).extend(draw(CONTENTS[field]))
        elif change == "raw" and message.raw_input_contents:
            message.raw_input_contents[i] = draw(st.binary(max_size=40))
        elif change == "drop" and len(message.inputs) > 1:
            del message.inputs[i]
            if message.raw_input_contents and sometimes(draw, 8):
                del message.raw_input_contents[i]
        elif change == "name":
            tensor.name = draw(st.sampled_from(list(codec(name).inputs)) | st.text(max_size=6))
    return message


def decoded_or_refusal(name: str, message: pb.ModelInferRequest) -> Decoded | ServekitError:
    try:
        body, json_length = rest_form(message)
        return codec(name).decode(body, MAX_BATCH, json_length, no_null=True)
    except ServekitError as refusal:
        return refusal


@pytest.mark.parametrize("name", registry.available())
def test_a_grpc_infer_request_is_answered_or_refused_with_a_4xx_whatever_it_holds(name: str) -> None:
    model = served(name)
    seen: Counter[int] = Counter()

    @FUZZ
    @given(message=messages(name))
    def handled(message: pb.ModelInferRequest) -> None:
        # The servicer's steps (OpenInferenceServicer._infer), without the server around them.
        decoded = decoded_or_refusal(name, message)
        if isinstance(decoded, ServekitError):
            assert decoded.body()["fields"], decoded.body()
            assert_refusal_names_the_problem(decoded.status_code, decoded.body(), seen)
            return
        predictions = run_model(model, decoded.records, decoded.explain, reasons=decoded.reasons)
        result = codec(name).encode(model_ref(model), "fuzz", predictions, decoded.outputs)
        answer = response_message(result, raw=bool(message.raw_input_contents))
        assert answer.outputs
        assert all(output.shape[0] == len(decoded.records) for output in answer.outputs)
        seen[200] += 1

    handled()
    assert_both_kinds_drawn(seen)
