"""The Open Inference request as a model's OpenAPI document shows it.

The codec validates requests against :class:`~servekit.codecs.open_inference_types.InferenceRequest`
and words its own refusals; the document says more than that model can: each input's own
datatypes, the batch limit, the parameters servekit reads. A client generated from it, or a
fuzzer, then sends what the model takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from servekit.codecs.open_inference_types import InferenceRequest, RequestInput, RequestOutput
from servekit.reasons import MAX_REASONS


class RequestParameters(BaseModel):
    """The request's parameters servekit reads; any other is ignored, as the protocol has it."""

    model_config = ConfigDict(extra="allow")

    explain: bool = Field(False, description="Add the explanation output")
    reasons: int = Field(
        0,
        ge=0,
        le=MAX_REASONS,
        description="Add the reasons output, each answer's N principal reasons; needed to ask for it",
    )
    binary_data_output: bool = Field(False, description="Every output as a binary tensor")


class InputParameters(BaseModel):
    """A tensor's parameters servekit reads (the binary tensor extension)."""

    model_config = ConfigDict(extra="allow")

    binary_data_size: int | None = Field(
        None, ge=0, description="The tensor's bytes in the binary part of the body, given instead of data"
    )


class OutputParameters(BaseModel):
    """An output's parameters servekit reads (the binary tensor extension)."""

    model_config = ConfigDict(extra="allow")

    binary_data: bool = Field(False, description="This output as a binary tensor")


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
    # The limit on the array itself, not beside the anyOf with null: a limit there made generators
    # (datamodel-codegen) write a class per input for data, numbered Data1, Data2, ... alike.
    values: Any = list[Any]
    if max_instances is not None:
        dimension["maximum"] = max_instances
        values = Annotated[list[Any], Field(max_length=max_instances)]
    documented_shape = Field(
        min_length=1,
        max_length=2,
        description=RequestInput.model_fields["shape"].description,
        json_schema_extra={"items": dimension},
    )
    documented_data = Field(None, description=RequestInput.model_fields["data"].description)
    tensors = [
        create_model(
            f"RequestInput_{name}",
            __base__=RequestInput,
            __doc__=f"The tensor of {name}.",
            name=(one_of(name), Field(description=RequestInput.model_fields["name"].description)),
            datatype=(one_of(*datatypes), Field(description=datatypes_text(datatypes))),
            shape=(list[int], documented_shape),
            data=(values | None, documented_data),
            parameters=(
                InputParameters | None,
                Field(None, description="binary_data_size, if sent as binary"),
            ),
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
    output: Any = create_model(
        RequestOutput.__name__,
        __base__=RequestOutput,
        name=(str, output_name),
        parameters=(OutputParameters | None, Field(None, description="binary_data: this output as binary")),
    )
    fields = InferenceRequest.model_fields
    return create_model(
        InferenceRequest.__name__,
        __base__=InferenceRequest,
        __doc__=InferenceRequest.__doc__,
        inputs=(list[tensor], Field(min_length=1, description=fields["inputs"].description)),
        outputs=(list[output] | None, Field(None, description=fields["outputs"].description)),
        parameters=(RequestParameters | None, Field(None, description=fields["parameters"].description)),
    )


def datatypes_text(datatypes: Sequence[str]) -> str:
    """A tensor's datatypes, the stated first: ``FP64 (as the model's metadata states it; also INT64)``."""
    others = f"; also {', '.join(datatypes[1:])}" if len(datatypes) > 1 else ""
    return f"{datatypes[0]} (as the model's metadata states it{others})"


def one_of(*values: str) -> Any:
    """``Literal[values]``, for values known only at run time."""
    return Literal[values]
