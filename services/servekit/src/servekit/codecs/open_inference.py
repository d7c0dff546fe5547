"""The Open Inference Protocol's REST body (KServe V2; Triton and MLServer speak it too).

A request carries one input tensor per request field, named after the field, of shape
``[N]`` or ``[N, 1]`` (one value per instance). The instances decoded from the tensors go
through the service's own request model, so a value ``POST /predict`` refuses is refused
here with the same problem, located as ``inputs[Age].data[3]``. The response carries one
output tensor per prediction field; a field holding one number per label (NLPInsight's
``probabilities``) becomes a ``[N, K]`` tensor whose ``parameters.columns`` name the labels.
An explanation is asked for with the request parameter ``explain`` (or by asking for the
``explanation`` output) and comes back as a ``BYTES`` tensor of JSON documents, each the
``explanation`` object of ``POST /predict?explain=true``. The request parameter ``reasons`` (an
integer, as ``?reasons=``) adds the ``reasons`` output: each document the answer's principal
reasons, as ``POST /predict?reasons=N`` lists them. The ``outside_training`` output is
such a tensor too, each document the answer's list of inputs outside the training range (for a
model that keeps ranges). Tensors may come in the binary tensor
extension (Triton's clients send them so by default); the response is always JSON, which
those clients read as well.

A missing value of an optional input is ``null`` in a JSON tensor. Binary tensors and gRPC have
no null, and a data frame holds a gap as NaN, so there NaN in a floating-point tensor of an
optional input is missing too (anywhere else NaN is refused), an optional integer input takes a
floating-point tensor whose other elements are whole numbers (a data frame's integer column with
gaps), and an empty element of an optional text input's BYTES tensor is missing.

Specification: https://github.com/kserve/open-inference-protocol (REST).
"""

from __future__ import annotations

import math
import struct
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from servekit.errors import FieldProblem, invalid_fields, location, problem_text
from servekit.inference import batch_adapter, check_batch_size, encode_json, validate_json
from servekit.model import OUTSIDE_TRAINING, Record
from servekit.reasons import MAX_REASONS, REASONS_FIELD, reasons_problem

if TYPE_CHECKING:
    from servekit.spec import ServiceSpec

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
#: The largest finite magnitude of the narrower float datatypes: a JSON number past it was not
#: one of the client's FP16/FP32 values (numpy would have made it inf), so the tensor is wrong.
FLOAT_LIMITS = {"FP16": 65504.0, "FP32": 3.4028234663852886e38}
DATATYPES = (BOOL, *INTEGER_RANGES, *FLOATS, BYTES)
Datatype = Literal[
    "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip

#: The binary tensor extension's header: the length of the JSON part of the body.
BINARY_HEADER = "inference-header-content-length"
#: The tensor parameter giving a binary tensor's length in bytes.
BINARY_DATA_SIZE = "binary_data_size"
#: The output holding each instance's explanation as a JSON document.
EXPLANATION_OUTPUT = "explanation"
#: The output holding each instance's inputs outside the training range, as a JSON document.
OUTSIDE_TRAINING_OUTPUT = OUTSIDE_TRAINING
#: The output holding each instance's principal reasons, as a JSON document.
REASONS_OUTPUT = REASONS_FIELD
#: Outputs of one JSON document per instance, in this order after the prediction's own.
DOCUMENT_OUTPUTS = (OUTSIDE_TRAINING_OUTPUT, EXPLANATION_OUTPUT, REASONS_OUTPUT)
#: Request parameter asking for every output as a binary tensor.
BINARY_OUTPUT_PARAMETER = "binary_data_output"
#: Request parameter that asks for explanations.
EXPLAIN_PARAMETER = "explain"
#: Request parameter that asks for each answer's N principal reasons.
REASONS_PARAMETER = "reasons"

#: What a request tensor may be for a field of each Python type. A float field takes integers
#: too (a whole-dollar balance sent as INT64), as ``POST /predict`` takes ``0`` for a float.
_ACCEPTED = {
    bool: (BOOL,),
    int: tuple(INTEGER_RANGES),
    float: (*FLOATS, *INTEGER_RANGES),
    str: (BYTES,),
}
#: The datatype metadata states for a field (the first that fits, in this order).
_STATED = ((str, BYTES), (float, "FP64"), (int, "INT64"), (bool, BOOL))


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


_ENVELOPE = TypeAdapter(InferenceRequest)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor of the model, as metadata states it."""

    name: str
    datatype: str
    #: Datatypes a request may send for this input (outputs: the stated one).
    accepts: tuple[str, ...]
    #: Names of the second dimension's entries; empty for one value per instance.
    columns: tuple[str, ...] = ()
    optional: bool = False

    def metadata(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {}
        if self.columns:
            parameters["columns"] = list(self.columns)
        if len(self.accepts) > 1:
            parameters["accepted_datatypes"] = list(self.accepts)
        if self.optional:
            parameters["optional"] = True
        shape = [-1, len(self.columns)] if self.columns else [-1]
        return {"name": self.name, "datatype": self.datatype, "shape": shape, "parameters": parameters}


def _python_types(annotation: Any) -> tuple[set[type], bool]:
    """The scalar types a field annotation allows, and whether it allows None."""
    origin = get_origin(annotation)
    args = get_args(annotation) if origin in (Union, types.UnionType) else (annotation,)
    found: set[type] = set()
    optional = False
    for arg in args:
        if arg is type(None):
            optional = True
        elif get_origin(arg) is Literal:
            found |= {type(value) for value in get_args(arg)}
        elif arg in _ACCEPTED:
            found.add(arg)
        else:
            raise TypeError(f"no tensor datatype for {arg!r}")
    return found, optional


def _tensor_spec(name: str, annotation: Any) -> TensorSpec:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # A field of one number per label: a [N, K] tensor (all number fields, by construction).
        columns = tuple(annotation.model_fields)
        return TensorSpec(name, "FP64", ("FP64",), columns=columns)
    allowed, optional = _python_types(annotation)
    stated = next(datatype for python_type, datatype in _STATED if python_type in allowed)
    accepts = tuple(d for d in DATATYPES if any(d in _ACCEPTED[t] for t in allowed))
    if optional and stated in INTEGER_RANGES:
        # A data frame's integer column with gaps is floats: NaN for the gaps, whole numbers else.
        accepts = (*accepts, *(d for d in FLOATS if d not in accepts))
    return TensorSpec(name, stated, accepts, optional=optional)


def _flatten(data: list[Any]) -> Iterator[Any]:
    for value in data:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _count_values(data: list[Any]) -> int:
    """How many values ``_flatten(data)`` yields, without building them (nor recursing)."""
    count, pending = 0, [data]
    while pending:
        for value in pending.pop():
            if isinstance(value, list):
                pending.append(value)
            else:
                count += 1
    return count


def _element_problem(datatype: str, value: Any) -> str | None:
    """Why ``value`` cannot be an element of a ``datatype`` tensor (None: it can)."""
    if value is None:
        return None  # a missing value of an optional field; the request model judges the rest
    if datatype == BYTES:
        return None if isinstance(value, str) else f"{value!r} is not a string, which BYTES holds"
    if datatype == BOOL:
        return None if isinstance(value, bool) else f"{value!r} is not true or false, which BOOL holds"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{value!r} is not a number, which {datatype} holds"
    if datatype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[datatype]
        if not isinstance(value, int):
            return f"{value!r} is not an integer, which {datatype} holds"
        if not low <= value <= high:
            return f"{value} is outside the range of {datatype} ({low} to {high})"
    elif not math.isfinite(value):
        return f"{value!r} is not a finite number"
    elif datatype in FLOAT_LIMITS and abs(value) > FLOAT_LIMITS[datatype]:
        return f"{value!r} is outside the range of {datatype} (±{FLOAT_LIMITS[datatype]:g})"
    return None


#: The exact element types of each datatype (``type(v) in ...``: a bool is no number here).
_EXACT_TYPES = {
    BYTES: frozenset({str}),
    BOOL: frozenset({bool}),
    **dict.fromkeys(INTEGER_RANGES, frozenset({int})),
    **dict.fromkeys(FLOATS, frozenset({float, int})),
}


def _first_bad_element(datatype: str, values: list[Any]) -> tuple[int, str] | None:
    """The first element a ``datatype`` tensor cannot hold, and why; None when all fit.

    One pass over the types and one aggregate decide the common case (a 64-row batch of ten
    inputs in about 40 µs, against 150 µs element by element); the element-by-element walk
    only runs to name what is wrong.
    """
    exact = _EXACT_TYPES[datatype]
    if all(type(v) in exact for v in values):
        if datatype in INTEGER_RANGES:
            low, high = INTEGER_RANGES[datatype]
            fits = not values or (low <= min(values) and max(values) <= high)
        elif datatype in FLOATS:
            # Finite elements have a finite sum unless it overflows; the walk below tells which.
            fits = math.isfinite(sum(values))
            if fits and datatype in FLOAT_LIMITS and values:
                fits = max(map(abs, values)) <= FLOAT_LIMITS[datatype]
        else:
            fits = True
        if fits:
            return None
    for row, value in enumerate(values):
        problem = _element_problem(datatype, value)
        if problem is not None:
            return row, problem
    return None


def _gaps_as_missing(datatype: str, values: list[Any], nulless: bool) -> list[Any]:
    """An optional input's values with each gap as None: NaN in a float tensor (a data frame's
    gap) and, where null cannot be sent, empty text."""
    if datatype in FLOATS:
        if any(isinstance(v, float) and math.isnan(v) for v in values):
            return [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    elif datatype == BYTES and nulless and "" in values:
        return [None if v == "" else v for v in values]
    return values


def _first_fraction(values: list[Any]) -> tuple[int, str] | None:
    """The first element of a float tensor sent for an integer input that is no whole number."""
    for row, value in enumerate(values):
        if value is not None and not float(value).is_integer():
            return row, f"{value!r} is not a whole number, which this integer input takes"
    return None


def _flag(parameters: dict[str, Any] | None, name: str, where: str, problems: list[FieldProblem]) -> bool:
    """A true/false parameter (false when absent); anything else is a problem, not a silent false."""
    value = (parameters or {}).get(name, False)
    if isinstance(value, bool):
        return value
    problems.append(FieldProblem(f"{where}.{name}", f"{value!r} is not true or false"))
    return False


def _count(parameters: dict[str, Any] | None, name: str, where: str, problems: list[FieldProblem]) -> int:
    """A count parameter from 0 to MAX_REASONS (0 when absent); anything else is a problem."""
    value = (parameters or {}).get(name, 0)
    problem = reasons_problem(value)
    if problem is None:
        return int(value)
    problems.append(FieldProblem(f"{where}.{name}", problem))
    return 0


def _as_integers(values: list[Any]) -> list[Any] | None:
    """The values with whole floats as ints; None if one is a fraction."""
    if any(isinstance(v, float) and not v.is_integer() for v in values):
        return None
    return [int(v) if isinstance(v, float) else v for v in values]


#: Little-endian numpy dtypes of the binary tensor extension's fixed-size datatypes.
_BINARY_DTYPES = {
    BOOL: "?",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
_LENGTH = struct.Struct("<I")


def _attach_binary(
    inputs: list[RequestInput], binary: bytes, extension: bool, problems: list[FieldProblem]
) -> set[str]:
    """Give each input sent as binary its values, read from ``binary`` in input order; their names."""
    offset = 0
    names: set[str] = set()
    for tensor in inputs:
        size = (tensor.parameters or {}).get(BINARY_DATA_SIZE)
        if size is None:
            continue
        where = f"inputs[{tensor.name}].parameters.{BINARY_DATA_SIZE}"
        if not extension:
            problems.append(FieldProblem(where, f"given, but the request has no {BINARY_HEADER} header"))
            return names
        if type(size) is not int or size < 0:
            problems.append(FieldProblem(where, f"{size!r} is not a number of bytes"))
            return names
        if tensor.data is not None:
            problems.append(FieldProblem(where, "given with data; send the values one way"))
            return names
        chunk = binary[offset : offset + size]
        if len(chunk) < size:
            problems.append(
                FieldProblem(where, f"{size} bytes, but the binary part has {len(binary) - offset} left")
            )
            return names
        offset += size
        values = _from_binary(tensor.datatype, chunk)
        if isinstance(values, str):
            problems.append(FieldProblem(f"inputs[{tensor.name}].data", values))
            return names
        tensor.data = values
        names.add(tensor.name)
    if offset != len(binary):
        problem = f"{len(binary) - offset} bytes follow the last tensor's {BINARY_DATA_SIZE}"
        problems.append(FieldProblem("body", problem))
    return names


def tensor_bytes(datatype: str, data: list[Any]) -> bytes:
    """A tensor's elements in the binary layout (little-endian; BYTES elements length-prefixed)."""
    if datatype == BYTES:
        encoded = [str(value).encode("utf-8") for value in data]
        return b"".join(_LENGTH.pack(len(item)) + item for item in encoded)
    return np.asarray(data, dtype=_BINARY_DTYPES[datatype]).tobytes()


def _from_binary(datatype: str, chunk: bytes) -> list[Any] | str:
    """The values of a binary tensor, or what is wrong with its bytes."""
    if datatype != BYTES:
        dtype = np.dtype(_BINARY_DTYPES[datatype])
        if len(chunk) % dtype.itemsize:
            size = dtype.itemsize
            return f"{len(chunk)} bytes are not a whole number of {datatype} values ({size} bytes each)"
        values: list[Any] = np.frombuffer(chunk, dtype=dtype).tolist()
        return values
    # BYTES: each element is its length (4 bytes, little-endian) and then its bytes.
    texts: list[Any] = []
    offset = 0
    while offset < len(chunk):
        if offset + _LENGTH.size > len(chunk):
            return f"element {len(texts)}: its 4-byte length is cut off"
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += _LENGTH.size
        if offset + length > len(chunk):
            return f"element {len(texts)}: {length} bytes announced, {len(chunk) - offset} left"
        try:
            texts.append(chunk[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            return f"element {len(texts)} is not UTF-8 text"
        offset += length
    return texts


@dataclass(frozen=True)
class Decoded:
    """What an inference request asks for, its instances validated."""

    id: str | None
    records: list[dict[str, Any]]
    explain: bool
    #: Output names asked for; None for all.
    outputs: tuple[str, ...] | None
    #: Output names to send as binary tensors (the binary tensor extension); empty for JSON.
    binary_outputs: frozenset[str] = frozenset()
    #: How many principal reasons each answer lists (0: none, and no reasons output).
    reasons: int = 0


class OpenInferenceCodec:
    """Tensors to records and predictions to tensors, for one service's request and response."""

    def __init__(
        self,
        request: type[BaseModel],
        response: type[BaseModel],
        *,
        outside_training: bool = False,
        service: str | None = None,
    ) -> None:
        """``outside_training``: the model's answers list inputs outside its training range.
        ``service``: whose ``<SVC>_MAX_BATCH_SIZE`` a batch over the limit is told of."""
        self.service = service
        self.inputs = {name: _tensor_spec(name, f.annotation) for name, f in request.model_fields.items()}
        self.outputs = [_tensor_spec(name, f.annotation) for name, f in response.model_fields.items()]
        documents = [n for n in DOCUMENT_OUTPUTS if outside_training or n != OUTSIDE_TRAINING_OUTPUT]
        self.documents = [TensorSpec(name, BYTES, (BYTES,), optional=True) for name in documents]
        self.output_names = (*(o.name for o in self.outputs), *documents)
        self._instances = batch_adapter(request)

    @classmethod
    def of_service(cls, spec: ServiceSpec) -> OpenInferenceCodec:
        """The codec of ``spec``'s requests and answers."""
        return cls(
            spec.request, spec.response, outside_training=spec.model.keeps_training_ranges, service=spec.name
        )

    def documented_request(self) -> type[InferenceRequest]:
        """:class:`InferenceRequest` as this model's OpenAPI document shows it: each tensor's and
        output's name one of the model's, and each dimension of a shape at least 0.

        For the document only: the codec refuses another name itself, naming the ones it has, and
        a bad shape saying what the shape must be, which pydantic's words for an enum would not.
        A client generated from the document, or a fuzzer, then sends what the model takes.
        """

        def named(base: type[BaseModel], names: Sequence[str], **fields: Any) -> type[BaseModel]:
            described = base.model_fields["name"].description
            name = Field(description=described, json_schema_extra={"enum": list(names)})
            return create_model(base.__name__, __base__=base, name=(str, name), **fields)

        shape = RequestInput.model_fields["shape"]
        tensor = named(
            RequestInput,
            list(self.inputs),
            shape=(
                list[int],
                Field(
                    min_length=1,
                    max_length=2,
                    description=shape.description,
                    json_schema_extra={"items": {"type": "integer", "minimum": 0}},
                ),
            ),
        )
        output = named(RequestOutput, self.output_names)
        fields = InferenceRequest.model_fields
        return create_model(
            InferenceRequest.__name__,
            __base__=InferenceRequest,
            __doc__=InferenceRequest.__doc__,
            inputs=(list[tensor], Field(min_length=1, description=fields["inputs"].description)),  # type: ignore[valid-type]
            outputs=(list[output] | None, Field(None, description=fields["outputs"].description)),  # type: ignore[valid-type,arg-type]
        )

    def metadata(self, name: str, version: str) -> dict[str, Any]:
        return {
            "name": name,
            "versions": [version],
            "platform": "servekit",
            "inputs": [spec.metadata() for spec in self.inputs.values()],
            "outputs": [spec.metadata() for spec in (*self.outputs, *self.documents)],
        }

    def request_for(self, records: Sequence[Record], **extra: Any) -> dict[str, Any]:
        """An inference request for ``records``, as a client holding typed columns sends it.

        Each input takes the stated datatype when its values fit it, else the first accepted
        one they fit (ChicagoTaxi's timestamps as Unix seconds: FP64); whole numbers held as
        floats (a data frame's integer column with gaps) go as integers. For examples, load
        tests and clients; ``ValueError`` for a value no accepted datatype holds.
        """
        inputs = []
        for name, spec in self.inputs.items():
            if not any(name in r for r in records):
                continue
            values = [r.get(name) for r in records]
            preferred = (spec.datatype, *(d for d in ("FP64", "INT64") if d in spec.accepts), *spec.accepts)
            for datatype in preferred:
                data = _as_integers(values) if datatype in INTEGER_RANGES else values
                if data is not None and all(_element_problem(datatype, v) is None for v in data):
                    break
            else:
                raise ValueError(f"no datatype {name} accepts holds its values")
            inputs.append({"name": name, "datatype": datatype, "shape": [len(records)], "data": data})
        return {**extra, "inputs": inputs}

    def decode(
        self, body: bytes, max_batch_size: int, json_length: int | None = None, *, no_null: bool = False
    ) -> Decoded:
        """The request's instances, validated; a 422 naming every bad tensor, 413 over the limit.

        ``json_length`` is the binary tensor extension's ``Inference-Header-Content-Length``: the
        body's first ``json_length`` bytes are the JSON request, the rest the tensors that give
        ``parameters.binary_data_size`` instead of ``data``, in the order of the inputs.
        ``no_null``: the request came where no tensor can hold null (gRPC), so an empty element of
        an optional text input is missing, as in a binary tensor.
        """
        binary = b""
        if json_length is not None:
            if not 0 < json_length <= len(body):
                problem = f"{json_length} is not within the body's {len(body)} bytes"
                raise invalid_fields([FieldProblem(f"headers.{BINARY_HEADER}", problem)])
            body, binary = body[:json_length], body[json_length:]
        request = validate_json(_ENVELOPE, body)
        # The size first: a batch over the limit is the 413 the setting promises whatever its
        # tensors hold, not a 422 naming their problems. A tensor over it both by its shape and by
        # its values (binary ones: their shape), so a shape at odds with the data is named as such.
        # Its values as _values reads them: nested rows flattened ([[v] * 1000] is 1,000, not 1).
        sent = max(
            (
                t.shape[0] if t.data is None else min(t.shape[0], _count_values(t.data))
                for t in request.inputs
            ),
            default=0,
        )
        check_batch_size(sent, max_batch_size, self.service, where="inputs")
        problems: list[FieldProblem] = []
        binaries = _attach_binary(request.inputs, binary, json_length is not None, problems)
        if problems:  # the tensors' bytes do not add up: the rest cannot be read
            raise invalid_fields(problems)
        explain = _flag(request.parameters, EXPLAIN_PARAMETER, "parameters", problems)
        reasons = _count(request.parameters, REASONS_PARAMETER, "parameters", problems)
        _flag(request.parameters, BINARY_OUTPUT_PARAMETER, "parameters", problems)
        outputs = self._wanted_outputs(request.outputs, problems)
        if outputs is not None and REASONS_OUTPUT in outputs and not reasons:
            # Unlike the explanation, the output has no one size to default to.
            problem = f"the reasons output is asked for: say how many, 1 to {MAX_REASONS}"
            problems.append(FieldProblem(f"parameters.{REASONS_PARAMETER}", problem))
        nulless = {t.name for t in request.inputs} if no_null else binaries
        columns, rows = self._columns(request.inputs, nulless, problems)
        if not problems and rows == 0:
            problems.append(FieldProblem("inputs", "no instances: every tensor has shape [0]"))
        if problems:
            raise invalid_fields(problems)
        # What the model would be given, however the tensors were counted above: the limit holds.
        check_batch_size(rows, max_batch_size, self.service, where="inputs")
        names = tuple(columns)
        records = self._validated(
            [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        )
        explain = explain or (outputs is not None and EXPLANATION_OUTPUT in outputs)
        return Decoded(request.id, records, explain, outputs, self._binary_outputs(request), reasons)

    def _binary_outputs(self, request: InferenceRequest) -> frozenset[str]:
        """Outputs asked for as binary: ``parameters.binary_data`` of an output, else the request's
        ``binary_data_output`` (which Triton's client sets when it lists no outputs)."""
        default = (request.parameters or {}).get(BINARY_OUTPUT_PARAMETER) is True
        if not request.outputs:
            return frozenset(self.output_names) if default else frozenset()
        return frozenset(
            wanted.name
            for wanted in request.outputs
            if (wanted.parameters or {}).get("binary_data", default) is True
        )

    def to_binary(self, response: dict[str, Any], names: frozenset[str]) -> tuple[bytes, int]:
        """The response with the ``names`` outputs as binary tensors, and its JSON part's length."""
        chunks = []
        for output in response["outputs"]:
            if output["name"] not in names:
                continue
            raw = tensor_bytes(output["datatype"], output.pop("data"))
            output["parameters"] = {**output.get("parameters", {}), BINARY_DATA_SIZE: len(raw)}
            chunks.append(raw)
        header = encode_json(response)
        return header + b"".join(chunks), len(header)

    def encode(
        self,
        model: dict[str, str],
        request_id: str,
        predictions: Sequence[dict[str, Any]],
        outputs: tuple[str, ...] | None,
    ) -> dict[str, Any]:
        """The inference response of ``predictions`` (with ``explanation``, ``reasons`` and
        ``outside_training`` when they carry them)."""
        tensors = []
        rows = len(predictions)
        for spec in self.outputs:
            if outputs is not None and spec.name not in outputs:
                continue
            if spec.columns:
                data = [p[spec.name][column] for p in predictions for column in spec.columns]
                tensor = {"name": spec.name, "datatype": spec.datatype, "shape": [rows, len(spec.columns)]}
                tensors.append({**tensor, "data": data, "parameters": {"columns": list(spec.columns)}})
            else:
                data = [p[spec.name] for p in predictions]
                tensors.append({"name": spec.name, "datatype": spec.datatype, "shape": [rows], "data": data})
        for name in (spec.name for spec in self.documents):
            if predictions and name in predictions[0] and (outputs is None or name in outputs):
                documents = [encode_json(p[name]).decode() for p in predictions]
                tensors.append({"name": name, "datatype": BYTES, "shape": [rows], "data": documents})
        return {
            "model_name": model["name"],
            "model_version": model["version"],
            "id": request_id,
            "parameters": {},
            "outputs": tensors,
        }

    def _wanted_outputs(
        self, outputs: list[RequestOutput] | None, problems: list[FieldProblem]
    ) -> tuple[str, ...] | None:
        if not outputs:  # none asked for: every output, as the protocol says
            return None
        for wanted in outputs:
            _flag(wanted.parameters, "binary_data", f"outputs[{wanted.name}].parameters", problems)
            if wanted.name not in self.output_names:
                known = ", ".join(self.output_names)
                problems.append(
                    FieldProblem(f"outputs[{wanted.name}]", f"no such output; the outputs are {known}")
                )
        return tuple(wanted.name for wanted in outputs)

    def _columns(
        self, inputs: list[RequestInput], nulless: set[str], problems: list[FieldProblem]
    ) -> tuple[dict[str, list[Any]], int]:
        """Each input's values, one per instance, and the number of instances (``nulless``: the
        inputs sent where null cannot be, whose empty text is missing)."""
        columns: dict[str, list[Any]] = {}
        rows: int | None = None
        first = ""
        for tensor in inputs:
            where = f"inputs[{tensor.name}]"
            spec = self.inputs.get(tensor.name)
            if spec is None:
                known = ", ".join(self.inputs)
                problems.append(FieldProblem(where, f"not an input of this model; the inputs are {known}"))
                continue
            if tensor.name in columns:
                problems.append(FieldProblem(where, "given more than once; send one tensor per input"))
                continue
            values = self._values(tensor, spec, where, problems, nulless=tensor.name in nulless)
            if values is None:
                continue
            if rows is None:
                rows, first = len(values), tensor.name
            elif len(values) != rows:
                problems.append(
                    FieldProblem(f"{where}.shape", f"{len(values)} instances, but inputs[{first}] has {rows}")
                )
                continue
            columns[tensor.name] = values
        return columns, rows or 0

    def _values(
        self,
        tensor: RequestInput,
        spec: TensorSpec,
        where: str,
        problems: list[FieldProblem],
        *,
        nulless: bool = False,
    ) -> list[Any] | None:
        """The tensor's values, one per instance; None (and a problem) when they do not fit."""
        shape = tensor.shape
        if any(size < 0 for size in shape) or (len(shape) == 2 and shape[1] != 1):
            problems.append(
                FieldProblem(f"{where}.shape", f"{shape} given; one value per instance: [N] or [N, 1]")
            )
            return None
        if tensor.datatype not in spec.accepts:
            allowed = ", ".join(spec.accepts)
            problems.append(
                FieldProblem(f"{where}.datatype", f"{tensor.datatype} given; {spec.name} takes {allowed}")
            )
            return None
        values = tensor.data
        if values is None:
            problem = f"missing: give the values, or parameters.{BINARY_DATA_SIZE} and the binary part"
            problems.append(FieldProblem(f"{where}.data", problem))
            return None
        if any(type(v) is list for v in values):  # nested rows: [[1.0], [2.0]] for shape [N, 1]
            values = list(_flatten(values))
        if len(values) != shape[0]:
            problems.append(FieldProblem(f"{where}.data", f"{len(values)} values for shape {shape}"))
            return None
        if spec.optional:
            values = _gaps_as_missing(tensor.datatype, values, nulless)
        bad = _first_bad_element(tensor.datatype, values)
        if bad is None and spec.datatype in INTEGER_RANGES and tensor.datatype in FLOATS:
            bad = _first_fraction(values)
        if bad is not None:
            row, problem = bad
            if problem.startswith("nan ") and not spec.optional:
                problem += f"; NaN means missing, and {spec.name} is required"
            problems.append(FieldProblem(f"{where}.data[{row}]", problem))  # one per tensor
            return None
        if spec.datatype in INTEGER_RANGES and tensor.datatype in FLOATS:
            values = [v if v is None else int(v) for v in values]
        return values

    def _validated(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The instances through the request model, its problems located in the tensors."""
        try:
            batch = self._instances.validate_python({"instances": records})
        except ValidationError as exc:
            raise invalid_fields(self._located(exc.errors(include_url=False))) from exc
        return [instance.model_dump() for instance in batch.instances]

    def _located(self, errors: Sequence[Any]) -> list[FieldProblem]:
        problems: dict[str, FieldProblem] = {}
        for err in errors:
            loc = list(err.get("loc", ()))[1:]  # drop "instances"
            if len(loc) >= 2 and isinstance(loc[0], int) and isinstance(loc[1], str):
                row, name, rest = loc[0], loc[1], loc[2:]
                if err.get("type") == "missing":
                    where, problem = f"inputs[{name}]", "missing: the model needs this input"
                else:
                    where = f"inputs[{name}].data[{row}]" + (f".{location(rest)}" if rest else "")
                    problem = problem_text(str(err.get("msg", "invalid value")))
            else:
                where, problem = (
                    f"instance[{loc[0]}]" if loc else "inputs",
                    problem_text(str(err.get("msg", ""))),
                )
            problems.setdefault(where, FieldProblem(where, problem))  # a missing input once, not per row
        return list(problems.values())
