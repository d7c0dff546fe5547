"""The Open Inference Protocol's wire types (KServe V2; Triton and MLServer speak it too): its
tensor datatypes, and its REST bodies as pydantic models (their names are the OpenAPI document's).

Specification: https://github.com/kserve/open-inference-protocol (REST).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

BOOL = "BOOL"
BYTES = "BYTES"
#: Inclusive value range of each integer datatype.
INTEGER_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
FLOATS = ("FP16", "FP32", "FP64")
DATATYPES = (BOOL, *INTEGER_RANGES, *FLOATS, BYTES)
Datatype = Literal[
    "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(description="The request field this tensor holds, e.g. Age")
    shape: list[int] = Field(min_length=1, max_length=2, description="[N] or [N, 1]: one value per instance")
    datatype: Datatype
    data: list[Any] | None = Field(
        None, description="The values, row-major (nested lists are flattened); absent when sent as binary"
    )
    parameters: dict[str, Any] | None = Field(
        None, description="binary_data_size: the tensor's bytes in the binary part of the body"
    )


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(description="An output of the model: only the outputs named are sent")
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """An Open Inference Protocol inference request."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | None = Field(None, description="Echoed in the response; the request id when absent")
    parameters: dict[str, Any] | None = Field(
        None,
        description='{"explain": true} adds the explanation output, {"reasons": N} the reasons output '
        "(each answer's N principal reasons); other parameters are ignored",
    )
    inputs: list[RequestInput] = Field(min_length=1, description="One tensor per request field")
    outputs: list[RequestOutput] | None = Field(
        None, description="Only these outputs (all when absent or empty)"
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    outputs: list[ResponseOutput]


class InferenceError(BaseModel):
    """The protocol's error body; ``error`` is the message (servekit's own body has it in ``message``)."""

    error: str = Field(description="What went wrong, e.g. 1 problem: inputs[Age].data[0]: ...")
    code: str = Field(description="Machine-readable kind, e.g. invalid_request")
    fields: list[dict[str, str]] = Field(description="Each field and its problem")


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] = Field(default_factory=dict)


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


def documented_inference_request(
    inputs: Mapping[str, Sequence[str]], outputs: Sequence[str], max_instances: int | None = None
) -> type[InferenceRequest]:
    """:class:`InferenceRequest` as a model's OpenAPI document shows it: a tensor schema per input
    of the model (``RequestInput_<name>``, chosen by the tensor's ``name``) with the datatypes
    ``inputs`` lists for it, the one its metadata states first; each output's name one of
    ``outputs``; and each dimension of a shape at least 0 and at most ``max_instances``, if given
    (a larger batch is the 413 the setting promises, not validated here).

    For the document only: the codec refuses another name or datatype itself, naming the ones it
    takes, and a bad shape saying what the shape must be, which pydantic's words for an enum
    would not. A client generated from the document, or a fuzzer, then sends what the model
    takes: an ``Age`` of integers, a ``Geography`` of strings.
    """
    dimension: dict[str, Any] = {"type": "integer", "minimum": 0}
    values: dict[str, Any] = {}
    if max_instances is not None:
        dimension["maximum"] = values["maxItems"] = max_instances
    documented_shape = Field(
        min_length=1,
        max_length=2,
        description=RequestInput.model_fields["shape"].description,
        json_schema_extra={"items": dimension},
    )
    documented_data = Field(
        None, description=RequestInput.model_fields["data"].description, json_schema_extra=values
    )
    tensors = [
        create_model(
            f"RequestInput_{name}",
            __base__=RequestInput,
            __doc__=f"The tensor of {name}.",
            name=(one_of(name), Field(description=RequestInput.model_fields["name"].description)),
            datatype=(one_of(*datatypes), Field(description=datatypes_text(datatypes))),
            shape=(list[int], documented_shape),
            data=(list[Any] | None, documented_data),
        )
        for name, datatypes in inputs.items()
    ]
    # One schema per input, told apart by its name (OpenAPI's discriminator), so that each has
    # its own datatypes; a model of one input needs no choice.
    tensor: Any = tensors[0]
    if len(tensors) > 1:
        tensor = Annotated[Union[tuple(tensors)], Field(discriminator="name")]  # noqa: UP007
    output_name = Field(
        description=RequestOutput.model_fields["name"].description, json_schema_extra={"enum": list(outputs)}
    )
    output: Any = create_model(RequestOutput.__name__, __base__=RequestOutput, name=(str, output_name))
    fields = InferenceRequest.model_fields
    return create_model(
        InferenceRequest.__name__,
        __base__=InferenceRequest,
        __doc__=InferenceRequest.__doc__,
        inputs=(list[tensor], Field(min_length=1, description=fields["inputs"].description)),
        outputs=(list[output] | None, Field(None, description=fields["outputs"].description)),
    )


def datatypes_text(datatypes: Sequence[str]) -> str:
    """A tensor's datatypes, the stated first: ``FP64 (as the model's metadata states it; also INT64)``."""
    others = f"; also {', '.join(datatypes[1:])}" if len(datatypes) > 1 else ""
    return f"{datatypes[0]} (as the model's metadata states it{others})"


def one_of(*values: str) -> Any:
    """``Literal[values]``, for values known only at run time."""
    return Literal[values]
