"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``), beside the REST app.

With ``<SVC>_GRPC_PORT`` set, the app's lifespan starts a ``grpc.aio`` server on the same event
loop, serving the same model runtime through the same predictor (metrics, shadow). A
``ModelInfer`` request is turned into the body ``POST /v2/models/<svc>/infer`` would get, raw
tensor contents as the binary tensor extension's bytes, and decoded by the same codec: every
check, limit, message and number is that of the REST endpoint. Errors are gRPC status codes
(INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, ...) whose details are the REST error's message,
naming each bad tensor element as ``inputs[Age].data[3]``, and every answer's trailing metadata
carries the call's ``x-request-id``, as every HTTP response carries its X-Request-ID.

A request message over ``<SVC>_MAX_BODY_BYTES`` is refused by servekit as REST refuses such a
body (413, RESOURCE_EXHAUSTED): counted, logged, naming the setting. gRPC core reads a message
whole before servekit sees it (and before the API key is checked), so it is told to take no more
than ``OVERSIZE_READ_FACTOR`` times the limit, nor more than ``OVERSIZE_READ_SLACK_BYTES`` past
it: past that, gRPC core itself refuses the message (RESOURCE_EXHAUSTED "Received message larger
than max"), uncounted, so a client without a key cannot make a replica buffer much more than the
limit per call (4 MiB at the default 1 MiB limit; 272 MiB, not 1 GiB, at 256 MiB).
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from servekit import logs
from servekit.auth import OPEN_ENDPOINTS, ApiKeys, credential_headers
from servekit.codecs.open_inference import BINARY_DATA_SIZE, BYTES, FLOATS, OpenInferenceCodec, tensor_bytes
from servekit.errors import FieldProblem, ServekitError, invalid_field
from servekit.inference import encode_json, model_ref
from servekit.metrics.names import GRPC_METHOD, GRPC_SERVICE, grpc_endpoint
from servekit.protocol import EXTENSIONS, SERVER_VERSION, ProtocolModel
from servekit.rest.access_log import AccessLog, remember_error, unexpected
from servekit.rest.body import CLIENT_CLOSED
from servekit.rest.errors import NOT_READY_RETRY_AFTER_SECONDS
from servekit.rest.open_inference import adopt_client_id
from servekit.rest.request_id import HEADER as REQUEST_ID_HEADER
from servekit.rest.request_id import bind_request
from servekit.rest.telemetry import SHUTDOWN_STATUS, Timings, shutdown_cut
from servekit.routing import Route
from servekit.rpc import open_inference_pb2 as pb
from servekit.rpc.health import HEALTH_SERVICE, add_health
from servekit.rpc.reflection import add_reflection
from servekit.spans import RequestSpans, failure

if TYPE_CHECKING:
    from servekit.metrics import ServiceMetrics
    from servekit.rest.app import Predictor
    from servekit.runtime import ModelRuntime
    from servekit.settings import ServiceSettings
    from servekit.spec import ServiceSpec

logger = logging.getLogger("servekit.rpc")

#: The protocol's service name: the method paths clients call (``/inference.GRPCInferenceService/...``).
SERVICE = GRPC_SERVICE
#: The gRPC status of each HTTP status a ServekitError carries.
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
#: The protocol's probes, which get no span (a kubelet or a client polls them; REST's alike).
UNTRACED = frozenset(grpc_endpoint(method) for method in ("ServerLive", "ServerReady", "ModelReady"))


def grpc_code(status: int) -> grpc.StatusCode:
    """The gRPC status code of a call answered as REST answers ``status``."""
    return grpc.StatusCode.OK if status < 400 else STATUS_CODES.get(status, grpc.StatusCode.INTERNAL)


def rpc_attributes(endpoint: str, status: int, error: ServekitError | None) -> dict[str, Any]:
    """A call's span attributes, by OpenTelemetry's RPC semantic conventions; ``error.type`` is
    the error code of a call answered with one, as the access log names it."""
    code = grpc_code(status)
    if status == CLIENT_CLOSED:
        late = error is not None and error.error == "deadline_exceeded"
        code = grpc.StatusCode.DEADLINE_EXCEEDED if late else grpc.StatusCode.CANCELLED
    attributes: dict[str, Any] = {
        "rpc.system": "grpc",
        "rpc.service": GRPC_SERVICE,
        "rpc.method": endpoint.rsplit("/", 1)[1],
        "rpc.grpc.status_code": code.value[0],
    }
    if error is not None:
        attributes["error.type"] = error.error
    return attributes


#: Trailing metadata a gRPC retry policy reads as the milliseconds to wait (gRFC A6).
RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"
#: How many bytes the status details may take on the wire (grpc-message, percent-encoded: a
#: non-ASCII character takes up to 12): gRPC carries them in a trailer, and a client refuses
#: metadata past its limit (8 KiB by default) as RESOURCE_EXHAUSTED "Stream removed", so an
#: unbounded message quoting a client's long string would hide the error it reports.
MAX_DETAILS_BYTES = 4000
#: How many times ``<SVC>_MAX_BODY_BYTES`` gRPC core reads of a message before servekit sees it:
#: beyond the limit servekit refuses the message itself (counted and logged, as REST's 413);
#: beyond this many times it, gRPC core does, so a replica never buffers more per call.
OVERSIZE_READ_FACTOR = 4
#: And how many bytes past the limit at most: the read comes before the key check, and four
#: times a large limit (256 MiB) would have a replica buffer 1 GiB per unauthenticated call.
OVERSIZE_READ_SLACK_BYTES = 16 * 2**20
#: The largest message length gRPC's options take (a C int).
GRPC_LARGEST_MESSAGE = 2**31 - 1
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

Request = TypeVar("Request")


@dataclass(frozen=True)
class Oversized:
    """What a method reads in place of a request message over the body limit: its size alone."""

    size: int

    def ByteSize(self) -> int:  # noqa: N802 -- as a message's, for the access log
        return self.size


def message_reader(message: Any, limit: int) -> Callable[[bytes], Any]:
    """A method's request deserializer: the message, or :class:`Oversized` past ``limit`` bytes
    (not an exception: gRPC answers a deserializer's as INTERNAL, uncounted)."""

    def read(data: bytes) -> Any:
        if len(data) > limit:
            return Oversized(len(data))
        return message.FromString(data)

    return read


def read_limit(max_body_bytes: int) -> int:
    """The most of a message gRPC core reads (``grpc.max_receive_message_length``) for a body limit:
    past the limit, servekit's refusal (counted, logged); past this, gRPC core's (neither)."""
    slack = min(max_body_bytes * (OVERSIZE_READ_FACTOR - 1), OVERSIZE_READ_SLACK_BYTES)
    return min(max_body_bytes + slack, GRPC_LARGEST_MESSAGE)


def too_large(service: str, size: int, limit: int) -> ServekitError:
    """The 413 of a request message over the body limit, as REST's, naming the setting."""
    setting = f"{service.upper()}_MAX_BODY_BYTES"
    return ServekitError(
        413,
        "payload_too_large",
        f"request message is {size} bytes, over the limit of {limit} bytes ({setting}); "
        "send fewer instances per call",
        (FieldProblem("message", f"larger than the limit of {limit} bytes ({setting})"),),
    )


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


#: How long the shutdown's cut waits, at most, for the answers handed to gRPC before it to be sent.
ANSWER_SEND_SECONDS = 1.0
#: How long past the shutdown grace gRPC's own timer would cut the calls still in flight, were
#: the servicer's cut, at the grace's end, not to come first (it does: this is a backstop).
CUT_BACKSTOP_SECONDS = 5.0


class OpenInferenceServicer:
    """The protocol's RPCs over one service's model runtime and predictor."""

    def __init__(
        self,
        spec: ServiceSpec,
        runtime: ModelRuntime,
        predictor: Predictor,
        settings: ServiceSettings,
        metrics: ServiceMetrics,
        *,
        access_log: AccessLog | None = None,
        api_keys: ApiKeys | None = None,
        spans: RequestSpans | None = None,
    ) -> None:
        self.name = spec.name
        self.api_keys = api_keys
        self.access_log = access_log
        self.spans = spans
        self.runtime = runtime
        self.predictor = predictor
        self.settings = settings
        self.metrics = metrics
        self.codec = OpenInferenceCodec.of_service(spec)
        self.model = ProtocolModel(spec.name, runtime, canary=predictor.canary)
        #: Whether the stopping server has cut the calls still in flight, its grace spent.
        self.cut = False
        #: The answers handed to gRPC and not yet sent, each done once its call has finished.
        self.sending: set[asyncio.Future[None]] = set()

    async def stop(self, server: grpc.aio.Server, grace: float | None = None) -> None:
        """Stop ``server`` as uvicorn stops HTTP: no new calls, and the calls in flight get the
        one shutdown grace (``settings.shutdown_grace_seconds``, uvicorn's in ``mlp serve``) before
        they are cut, each cut one counted and logged as the server's failure.

        The cut is this servicer's, not gRPC's: given the grace, gRPC cuts the calls when its own
        timer fires, which a busy loop runs late, so a handler whose answer is ready past the
        grace's end cannot tell whether it was sent (a 200) or dropped, its client answered
        UNAVAILABLE (the cut's 503). Here :attr:`cut` is set first: an answer ready after it is
        refused by its handler (503, UNAVAILABLE); one handed to gRPC before it is written before
        gRPC is told to cut the rest."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        # No new calls from now, and a grace gRPC does not reach: the cut below comes first.
        draining = asyncio.ensure_future(server.stop(grace=grace + CUT_BACKSTOP_SECONDS))
        try:
            if await server.wait_for_termination(timeout=grace):  # True: calls still in flight
                self.cut = True
                if self.sending:
                    # Counted 200, handed to gRPC, maybe not yet written: cut at once, gRPC would
                    # drop them with the connection (2 in 30 answered the loop step before).
                    await asyncio.wait(self.sending, timeout=ANSWER_SEND_SECONDS)
                await server.stop(None)  # no grace: gRPC cuts every call still in flight
        finally:
            await draining

    def sending_until_done(self, context: Any) -> None:
        """The call's answer, counted 200, is being handed to gRPC: a cut waits for it to be sent."""
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sending.add(sent)
        sent.add_done_callback(self.sending.discard)

        def finished(_: Any) -> None:  # the call: its answer and status written to the transport
            if not sent.done():
                sent.set_result(None)

        context.add_done_callback(finished)

    def cut_by_shutdown(self, context: Any) -> bool:
        """Whether a call was cut by the server's own shutdown, not given up by its client."""
        return self.cut and not past_deadline(context)

    async def server_live(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.runtime.model is not None)

    async def model_ready(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        self.model.check_name(request.name)
        if self.runtime.model is None:
            return pb.ModelReadyResponse(ready=False)
        self.model.served(request.name, request.version)
        return pb.ModelReadyResponse(ready=True)

    async def server_metadata(
        self, request: pb.ServerMetadataRequest, context: Any
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=self.name, version=SERVER_VERSION, extensions=EXTENSIONS)

    async def model_metadata(
        self, request: pb.ModelMetadataRequest, context: Any
    ) -> pb.ModelMetadataResponse:
        model = self.model.served(request.name, request.version)
        metadata = self.codec.metadata(self.name, model.artifact.version)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[
                tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in metadata["inputs"]
            ],
            outputs=[
                tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in metadata["outputs"]
            ],
        )

    async def model_infer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        # The predictor's admission: one limit for HTTP and gRPC alike.
        with self.predictor.admission.admitted(logs.client.get()):
            return await self._infer(request, context)

    async def _infer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        start = time.perf_counter()
        self.model.served(request.model_name, request.model_version)  # before decoding
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        if request.id and REQUEST_ID_HEADER not in metadata:
            # The client's own id names the call in the logs and the capture: it correlates by it.
            adopt_client_id(request.id)
        asked = Route.from_headers(metadata.get, where="metadata.")  # before decoding, as REST reads it
        timings = Timings()
        with timings.phase("validate"):
            body, json_length = rest_form(request)
            decoded = self.codec.decode(body, self.settings.max_batch_size, json_length, no_null=True)
        records, explain, reasons = decoded.records, decoded.explain, decoded.reasons
        # Checked again right before the predictor picks its model, with no await between: the
        # alias may have moved, and a refused request must not be captured, counted or shadowed.
        self.model.served(request.model_name, request.model_version)
        route = self.model.route(request.model_version, asked)
        model, predictions = await self.predictor(records, explain, timings, route, reasons)
        self.model.answered_by(model, request.model_version)
        request_id = decoded.id if decoded.id is not None else logs.request_id.get()
        result = self.codec.encode(model_ref(model), request_id, predictions, decoded.outputs)
        total_ms = (time.perf_counter() - start) * 1e3
        add_trailing_metadata(context, ("server-timing", timings.header(total_ms).decode()))
        return response_message(result, raw=bool(request.raw_input_contents))

    def methods(self) -> dict[str, tuple[Callable[..., Awaitable[Any]], Any]]:
        """Each RPC by its method name: the handler and the request message it reads."""
        return {
            "ServerLive": (self.server_live, pb.ServerLiveRequest),
            "ServerReady": (self.server_ready, pb.ServerReadyRequest),
            "ModelReady": (self.model_ready, pb.ModelReadyRequest),
            "ServerMetadata": (self.server_metadata, pb.ServerMetadataRequest),
            "ModelMetadata": (self.model_metadata, pb.ModelMetadataRequest),
            "ModelInfer": (self.model_infer, pb.ModelInferRequest),
        }

    def handler(self) -> grpc.GenericRpcHandler:
        """The protocol's method paths, each counted in ``<svc>_requests_total`` like an HTTP endpoint."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    self._observed(grpc_endpoint(name), call),
                    request_deserializer=message_reader(message, self.settings.max_body_bytes),
                    response_serializer=lambda response: response.SerializeToString(),
                )
                for name, (call, message) in self.methods().items()
            },
        )

    def _observed(
        self, endpoint: str, call: Callable[[Request, Any], Awaitable[Any]]
    ) -> Callable[[Request, Any], Awaitable[Any]]:
        async def observed(request: Request, context: Any) -> Any:
            metadata = {
                key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)
            }
            bind_request(metadata)
            start = time.perf_counter()
            # Named as OpenTelemetry's RPC conventions name a call: service/method.
            span = (
                self.spans.begin(endpoint.removeprefix("/"), time.time_ns())
                if self.spans is not None and endpoint not in UNTRACED
                else None
            )

            def count(status: int, error: ServekitError | None = None) -> None:
                # Before the answer leaves: a client that reads the metrics next must see this call.
                elapsed = time.perf_counter() - start
                self.metrics.count_request(endpoint, GRPC_METHOD, status, elapsed)
                if self.access_log is not None:
                    scope = access_scope(endpoint, request, context, metadata, error)
                    self.access_log.record(scope, endpoint, status, elapsed, response_bytes=0)
                if span is not None:
                    failed = failure(status, error.error if error else None)
                    span.end(time.time_ns(), rpc_attributes(endpoint, status, error), error=failed)

            try:
                if self.api_keys is not None and endpoint not in OPEN_ENDPOINTS:
                    # Every copy, not the dict's last: a key sent twice is refused, not guessed at.
                    sent = credential_headers(context.invocation_metadata() or (), where="metadata.")
                    self.api_keys.bind(sent, endpoint, GRPC_METHOD, where="metadata.")
                if isinstance(request, Oversized):  # after the key check, as REST reads a body
                    raise too_large(self.name, request.size, self.settings.max_body_bytes)
                response = await call(request, context)
                if self.cut_by_shutdown(context):
                    # Ready once the grace was spent and the cut begun: its client is answered
                    # UNAVAILABLE, by gRPC's cut or by this refusal, whichever comes first.
                    raise shutdown_cut("call")
            except ServekitError as exc:
                count(exc.status_code, exc)
                code = grpc_code(exc.status_code)
                trailing = [(REQUEST_ID_HEADER, logs.request_id.get())]
                retry_after = exc.retry_after_seconds
                if retry_after is None and exc.status_code == 503:
                    retry_after = NOT_READY_RETRY_AFTER_SECONDS  # as REST's Retry-After
                if retry_after is not None:
                    # gRPC's Retry-After: a client's retry policy waits this long before trying again.
                    trailing.append((RETRY_PUSHBACK_KEY, str(retry_after * 1000)))
                await context.abort(code, status_details(exc), trailing_metadata=tuple(trailing))
            except asyncio.CancelledError:
                if self.cut_by_shutdown(context):
                    # Cut by this server's stop, its grace spent: the client was failed, as a REST
                    # request the server gave up on, so it counts against availability.
                    count(SHUTDOWN_STATUS, shutdown_cut("call"))
                else:
                    # The client cancelled, or its deadline passed: nobody reads an answer, but the
                    # call was made, held a place and took this long, so it is counted and logged.
                    count(CLIENT_CLOSED, client_gone(context))
                raise
            except Exception as exc:
                logger.exception("request %s %s failed", logs.request_id.get(), endpoint)
                count(500, unexpected(exc))
                await context.abort(
                    grpc.StatusCode.INTERNAL,
                    f"internal error; the service's log has it under request id {logs.request_id.get()}",
                    trailing_metadata=((REQUEST_ID_HEADER, logs.request_id.get()),),
                )
            if gave_up(context):
                # Answered after the client gave up (gRPC drops the answer): not a 200 it got.
                count(CLIENT_CLOSED, client_gone(context))
            else:
                count(200)
                self.sending_until_done(context)
            # Trailing, not initial: known only now (a request's own id may name the call), and
            # where an error's is, so a client reads it from one place whatever the outcome.
            add_trailing_metadata(context, (REQUEST_ID_HEADER, logs.request_id.get()))
            return response

        return observed


def add_trailing_metadata(context: Any, *pairs: tuple[str, str]) -> None:
    """``pairs`` added to the call's trailing metadata (setting it replaces what was set)."""
    context.set_trailing_metadata((*(context.trailing_metadata() or ()), *pairs))


def wire_bytes(text: str) -> int:
    """How many bytes ``text`` takes as grpc-message: UTF-8, percent-encoding all but printable
    ASCII other than ``%``."""
    return sum(1 if 0x20 <= byte <= 0x7E and byte != 0x25 else 3 for byte in text.encode("utf-8"))


def clipped(text: str, limit: int = MAX_DETAILS_BYTES) -> str:
    """``text`` cut to take at most ``limit`` bytes as grpc-message, saying how much was left out."""
    if wire_bytes(text) <= limit:
        return text
    size, end = 0, 0
    budget = limit - 48  # the note below
    for end, char in enumerate(text):  # noqa: B007 -- the cut is where the budget runs out
        size += wire_bytes(char)
        if size > budget:
            break
    return f"{text[:end]}... ({len(text) - end} more characters)"


def status_details(error: ServekitError) -> str:
    """The status details of an error: its message, with every field problem when it has more than
    the message names (as the REST body's ``fields``), within what a trailer can carry."""
    if len(error.fields) <= 3:
        return clipped(error.message)
    count = len(error.fields)
    listed: list[str] = []
    size = wire_bytes(f"{count} problems: ")
    for problem in error.fields:
        text = str(problem)
        room = MAX_DETAILS_BYTES - 32 - size  # room for "and N more"
        if wire_bytes(text) > room:
            if not listed:  # one at least is named, if cut short
                listed.append(clipped(text, room))
            listed.append(f"and {count - len(listed)} more")
            break
        listed.append(text)
        size += wire_bytes(text) + 2
    return clipped(f"{count} problems: " + "; ".join(listed))


def past_deadline(context: Any) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def gave_up(context: Any) -> bool:
    """Whether the call's client cancelled it or its deadline passed."""
    return bool(context.cancelled()) or past_deadline(context)


# The server's deadline is the client's timeout counted from when the call arrived, so it falls
# after the client's own by the call's transit time. When a client's deadline fires it cancels
# the call, and the server sees that cancel while its own clock still has a few milliseconds left.
DEADLINE_TRANSIT_SLACK_SECONDS = 0.25


def client_gone(context: Any) -> ServekitError:
    """What the access log says of a call its client gave up on: a cancel that arrives within
    the transit slack of the deadline is the client's deadline firing, not a cancel by hand."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= DEADLINE_TRANSIT_SLACK_SECONDS:
        return ServekitError(
            CLIENT_CLOSED, "deadline_exceeded", "the call's deadline passed before the answer"
        )
    return ServekitError(CLIENT_CLOSED, "cancelled", "the client cancelled the call before the answer")


def access_scope(
    endpoint: str, request: Any, context: Any, metadata: Mapping[str, str], error: ServekitError | None
) -> dict[str, Any]:
    """What the access log reads of an HTTP request's scope, for a gRPC call (servekit.rest.access_log)."""
    headers = [(b"content-length", str(request.ByteSize()).encode())]
    if "user-agent" in metadata:
        headers.append((b"user-agent", metadata["user-agent"].encode("latin-1", "replace")))
    peer = context.peer() or ""  # "ipv4:10.1.2.3:51234", "ipv6:[::1]:51234"
    host = peer.split(":", 1)[-1].rsplit(":", 1)[0].strip("[]") if ":" in peer else ""
    scope: dict[str, Any] = {
        "type": "grpc",
        "method": GRPC_METHOD,
        "path": endpoint,
        "http_version": "2",
        "headers": headers,
        "client": (host, 0) if host else None,
    }
    if error is not None:
        remember_error(scope, error)
    return scope


class GrpcPortError(OSError):
    """The gRPC port cannot be bound; its message names the setting and the address."""

    def __init__(self, service: str, host: str, port: int, reason: str) -> None:
        super().__init__(f"{service.upper()}_GRPC_PORT={port}: cannot serve gRPC on {host}:{port}: {reason}")


def check_port(service: str, host: str, port: int) -> None:
    """GrpcPortError unless ``host:port`` can be bound now, as gRPC will bind it.

    Run before the app starts: gRPC binds in the app's lifespan, whose failure uvicorn reports
    as a traceback after gRPC's own log line.
    """
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            with socket.socket(family, kind, proto) as probe:
                # gRPC's listening sockets reuse addresses: one in TIME_WAIT does not stop it.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
    except OSError as exc:
        raise GrpcPortError(service, host, port, exc.strerror or str(exc)) from None


async def start_server(servicer: OpenInferenceServicer, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """A started ``grpc.aio`` server for ``servicer`` on ``host:port``, and the port it bound."""
    largest = read_limit(servicer.settings.max_body_bytes)
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", largest), ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((servicer.handler(),))
    # Outside the servicer's handler, so outside its key check: probes and grpcurl need no key,
    # as /readyz and the protocol's ServerReady need none.
    add_health(server, servicer.runtime)
    add_reflection(server, (SERVICE, HEALTH_SERVICE))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # gRPC's says "Failed to bind", and logs the cause on its own
        raise GrpcPortError(servicer.name, host, port, "address in use or not available") from None
    await server.start()
    logger.info("Open Inference Protocol over gRPC on %s:%d", host, bound)
    return server, bound
