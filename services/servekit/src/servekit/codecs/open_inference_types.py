"""The Open Inference Protocol's wire types (KServe V2; Triton and MLServer speak it too): its
tensor datatypes, and its REST bodies as pydantic models (their names are the OpenAPI document's).

Specification: https://github.com/kserve/open-inference-protocol (REST).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from servekit.errors import ERROR_CODE_DESCRIPTION, ErrorCode

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
    """The protocol's error body, on the /v2 paths: the protocol fixes error as the message
    (Triton's and KServe's clients show it alone), so the machine-readable code is in code;
    servekit's own body (ErrorBody) has them in message and error."""

    error: str = Field(
        description=(
            "What went wrong, for a person (the protocol's field), e.g. 1 problem: inputs[Age].data[0]: ..."
        )
    )
    code: ErrorCode = Field(description=ERROR_CODE_DESCRIPTION)
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
