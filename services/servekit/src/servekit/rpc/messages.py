"""The protocol's messages and their REST form: a ``ModelInfer`` request as the body
``POST /v2/models/<svc>/infer`` would get, and the codec's answer as a ``ModelInferResponse``.

Raw tensor contents become the binary tensor extension's bytes, so the same codec decodes both
protocols: every check, limit, message and number is that of the REST endpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from servekit.codecs.binary_tensors import BINARY_DATA_SIZE, tensor_bytes
from servekit.codecs.open_inference_types import BYTES, FLOATS
from servekit.errors import invalid_field
from servekit.inference import encode_json
from servekit.rpc import open_inference_pb2 as pb

#: Where the elements of each datatype travel in ``InferTensorContents`` (FP16: raw only).
CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def parameters_of(parameters: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """The protocol's parameter map as the REST form's JSON object."""
    # Every member of the oneof as its JSON type (double_param a float, uint64_param an int), so
    # the codec answers a wrong type with REST's message ("1.0 is not true or false").
    values: dict[str, Any] = {}
    for name, parameter in parameters.items():
        which = parameter.WhichOneof("parameter_choice")
        values[name] = getattr(parameter, which) if which else None
    return values


def contents_of(tensor: pb.ModelInferRequest.InferInputTensor) -> list[Any]:
    """A tensor's elements from the contents field of its datatype (BYTES as text)."""
    where = f"inputs[{tensor.name}].contents"
    field = CONTENTS_FIELDS.get(tensor.datatype)
    if tensor.datatype == "FP16":
        raise invalid_field(where, "FP16 elements travel only as raw_input_contents")
    if field is None:
        return []  # not a datatype of the protocol: the codec names it with the ones it accepts
    others = [f.name for f, _ in tensor.contents.ListFields() if f.name != field]
    if others:
        raise invalid_field(where, f"{tensor.datatype} elements go in {field}; {', '.join(others)} given")
    values: list[Any] = list(getattr(tensor.contents, field))
    if tensor.datatype != BYTES:
        return values
    texts = []
    for index, value in enumerate(values):
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise invalid_field(f"{where}.bytes_contents[{index}]", "not UTF-8 text") from None
    return texts


def input_entry(
    tensor: pb.ModelInferRequest.InferInputTensor, index: int, raw: bytes | None
) -> tuple[dict[str, Any], bytes | None]:
    """A tensor's entry in the REST form's ``inputs``, and its binary part if it has one.

    ``raw``: its raw_input_contents entry (the ``index``-th), if the request sent them. Typed
    float contents with a NaN or an infinity go as raw contents do: JSON has no such number
    (encoded, it would be null, which gRPC cannot send), so the codec reads the values sent and
    answers as it answers raw ones ("nan is not a finite number; NaN means missing, and ... is
    required").
    """
    entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
    parameters = parameters_of(tensor.parameters)
    size = parameters.get(BINARY_DATA_SIZE)
    where = f"inputs[{tensor.name}].parameters.{BINARY_DATA_SIZE}"
    part = raw
    if raw is not None:
        if tensor.contents.ListFields():
            where = f"inputs[{tensor.name}].contents"
            raise invalid_field(where, "given with raw_input_contents; send each tensor one way")
        if size is not None and size != len(raw):
            # A client whose sizes disagree with its bytes has its tensors mixed up.
            problem = f"{size!r} given, but raw_input_contents[{index}] holds {len(raw)} bytes"
            raise invalid_field(where, problem)
    else:
        if size is not None:
            problem = "given without raw_input_contents; send the bytes there, or the values in contents"
            raise invalid_field(where, problem)
        data = contents_of(tensor)
        if tensor.datatype in FLOATS and not all(map(math.isfinite, data)):
            part = tensor_bytes(tensor.datatype, data)
        else:
            entry["data"] = data
    if part is not None:
        parameters[BINARY_DATA_SIZE] = len(part)
    if parameters:
        entry["parameters"] = parameters
    return entry, part


def rest_form(request: pb.ModelInferRequest) -> tuple[bytes, int | None]:
    """The body ``POST /v2/models/<svc>/infer`` would get, and its JSON part's length if binary."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        problem = f"{len(raw)} entries for {len(request.inputs)} inputs; give one per input, in input order"
        raise invalid_field("raw_input_contents", problem)
    inputs = []
    binary: list[bytes] = []
    for index, tensor in enumerate(request.inputs):
        entry, part = input_entry(tensor, index, raw[index] if raw else None)
        inputs.append(entry)
        if part is not None:
            binary.append(part)
    header: dict[str, Any] = {"inputs": inputs}
    if request.id:
        header["id"] = request.id
    if request.parameters:
        header["parameters"] = parameters_of(request.parameters)
    if request.outputs:
        header["outputs"] = [
            {"name": o.name, **({"parameters": parameters_of(o.parameters)} if o.parameters else {})}
            for o in request.outputs
        ]
    body = encode_json(header)
    if not binary:
        return body, None
    return body + b"".join(binary), len(body)


def infer_message(request: Mapping[str, Any], *, raw: bool = True) -> pb.ModelInferRequest:
    """An inference request in its REST form as the gRPC message a client sends (benchmarks, tests).

    Raw contents by default, as Triton's client sends them. gRPC has no null, so a missing value
    goes as the protocol's servers read one (:mod:`servekit.codecs.open_inference`): NaN in a
    numeric tensor (an integer one goes as FP64, as a data frame's column with gaps), an empty
    element in a BYTES one. Only a BOOL tensor with gaps, which has neither, is left out.
    """
    message = pb.ModelInferRequest(
        model_name=request.get("model_name", ""), model_version=request.get("model_version", "")
    )
    if request.get("id"):
        message.id = request["id"]
    for tensor in request["inputs"]:
        datatype, data = with_gaps(tensor["datatype"], tensor["data"])
        if datatype is None:
            continue
        entry = message.inputs.add(name=tensor["name"], datatype=datatype, shape=tensor["shape"])
        if raw:
            message.raw_input_contents.append(tensor_bytes(datatype, data))
        else:
            fill_contents(entry.contents, datatype, data)
    return message


def with_gaps(datatype: str, data: list[Any]) -> tuple[str | None, list[Any]]:
    """A tensor's datatype and elements with each missing value as gRPC can carry it (None: it cannot)."""
    if all(value is not None for value in data):
        return datatype, data
    if datatype == BYTES:
        return datatype, ["" if value is None else value for value in data]
    if datatype == "BOOL":
        return None, data
    return (datatype if datatype in FLOATS else "FP64"), [math.nan if v is None else v for v in data]


def fill_contents(contents: pb.InferTensorContents, datatype: str, data: list[Any]) -> None:
    """A tensor's elements into the contents field of its datatype (text as UTF-8 bytes)."""
    if datatype == BYTES:
        contents.bytes_contents.extend(str(v).encode("utf-8") for v in data)
    else:
        getattr(contents, CONTENTS_FIELDS[datatype]).extend(data)


def response_message(result: dict[str, Any], raw: bool) -> pb.ModelInferResponse:
    """The codec's response as the protocol's message: raw contents when the request was raw.

    Triton's client reads numbers only from raw contents, and it always sends raw inputs; KServe's
    reads either. Replying in the request's form serves both.
    """
    message = pb.ModelInferResponse(
        model_name=result["model_name"], model_version=result["model_version"], id=result["id"]
    )
    for output in result["outputs"]:
        tensor = message.outputs.add(name=output["name"], datatype=output["datatype"], shape=output["shape"])
        for name, value in output.get("parameters", {}).items():
            # The protocol's parameters are scalars: NLPInsight's column names go comma-separated.
            tensor.parameters[name].string_param = ",".join(value) if isinstance(value, list) else str(value)
        if raw:
            message.raw_output_contents.append(tensor_bytes(output["datatype"], output["data"]))
        else:
            fill_contents(tensor.contents, output["datatype"], output["data"])
    return message
