"""Servekit's records and predictions as the Open Inference Protocol's REST body (KServe V2;
Triton and MLServer speak it too; the types are :mod:`servekit.codecs.open_inference_types`).

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
model that keeps ranges). Tensors may come in the binary tensor extension
(:mod:`servekit.codecs.binary_tensors`); a missing value of an optional input is null, or a gap
where a tensor has no null (:mod:`servekit.codecs.tensors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from servekit.codecs.binary_tensors import BINARY_DATA_SIZE, BINARY_HEADER, attach_binary, tensor_bytes
from servekit.codecs.open_inference_document import documented_inference_request
from servekit.codecs.open_inference_types import (
    BYTES,
    INTEGER_RANGES,
    InferenceRequest,
    RequestInput,
    RequestOutput,
)
from servekit.codecs.tensors import (
    TensorSpec,
    as_integers,
    count_values,
    element_problem,
    tensor_spec,
    tensor_values,
)
from servekit.errors import FieldProblem, invalid_fields, location, problem_text
from servekit.inference import batch_adapter, check_batch_size, encode_json, validate_json
from servekit.model import OUTSIDE_TRAINING, Record
from servekit.reasons import MAX_REASONS, REASONS_FIELD, reasons_problem

if TYPE_CHECKING:
    from servekit.spec import ServiceSpec

#: The codec, and names the gRPC server (servekit.rpc) reads from here that live in the modules above.
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

_ENVELOPE = TypeAdapter(InferenceRequest)


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
        self.inputs = {name: tensor_spec(name, f.annotation) for name, f in request.model_fields.items()}
        self.outputs = [tensor_spec(name, f.annotation) for name, f in response.model_fields.items()]
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

    def documented_request(self, max_instances: int | None = None) -> type[InferenceRequest]:
        """:class:`InferenceRequest` as this model's OpenAPI document shows it: a tensor schema per
        input, with the datatypes it accepts, and each output's name one of the model's
        (:func:`documented_inference_request`)."""
        accepted = {
            name: (spec.datatype, *(d for d in spec.accepts if d != spec.datatype))
            for name, spec in self.inputs.items()
        }
        return documented_inference_request(accepted, self.output_names, max_instances)

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
                data = as_integers(values) if datatype in INTEGER_RANGES else values
                if data is not None and all(element_problem(datatype, v) is None for v in data):
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
        # Its values as tensor_values reads them: nested rows flattened ([[v] * 1000] is 1,000, not 1).
        sent = max(
            (t.shape[0] if t.data is None else min(t.shape[0], count_values(t.data)) for t in request.inputs),
            default=0,
        )
        check_batch_size(sent, max_batch_size, self.service, where="inputs")
        problems: list[FieldProblem] = []
        binaries = attach_binary(request.inputs, binary, json_length is not None, problems)
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
            values = tensor_values(tensor, spec, where, problems, nulless=tensor.name in nulless)
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
