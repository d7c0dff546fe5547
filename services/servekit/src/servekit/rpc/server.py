"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``), beside the REST app.

With ``<SVC>_GRPC_PORT`` set, the app's lifespan starts a ``grpc.aio`` server on the same event
loop, serving the same model runtime through the same predictor (metrics, shadow). A
``ModelInfer`` request is turned into the body ``POST /v2/models/<svc>/infer`` would get, raw
tensor contents as the binary tensor extension's bytes, and decoded by the same codec: every
check, limit, message and number is that of the REST endpoint (:mod:`servekit.rpc.messages`).
Errors are gRPC status codes (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, ...) whose details are
the REST error's message, naming each bad tensor element as ``inputs[Age].data[3]``, and every
answer's trailing metadata carries the call's ``x-request-id``, as every HTTP response carries
its X-Request-ID (:mod:`servekit.rpc.status`).

A request message over ``<SVC>_MAX_BODY_BYTES`` is refused by servekit as REST refuses such a
body (413, RESOURCE_EXHAUSTED), and gRPC core reads little more of one before that
(:mod:`servekit.rpc.message_size`). Each call is counted, logged and traced as an HTTP request is
(:mod:`servekit.rpc.observability`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from servekit import logs
from servekit.auth.api_keys import ApiKeys
from servekit.auth.credentials import credential_headers
from servekit.auth.scopes import OPEN_ENDPOINTS
from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.errors import ServekitError
from servekit.inference import model_ref
from servekit.metrics.names import GRPC_METHOD, GRPC_SERVICE, grpc_endpoint
from servekit.protocol import EXTENSIONS, SERVER_VERSION, ProtocolModel
from servekit.rest.access_log import AccessLog, unexpected
from servekit.rest.body import CLIENT_CLOSED
from servekit.rest.errors import NOT_READY_RETRY_AFTER_SECONDS
from servekit.rest.open_inference import adopt_client_id
from servekit.rest.request_id import HEADER as REQUEST_ID_HEADER
from servekit.rest.request_id import bind_request
from servekit.rest.telemetry import SHUTDOWN_STATUS, Timings, shutdown_cut
from servekit.routing import Route
from servekit.rpc import open_inference_pb2 as pb
from servekit.rpc.health import HEALTH_SERVICE, add_health
from servekit.rpc.message_size import Oversized, message_reader, read_limit, too_large
from servekit.rpc.messages import response_message, rest_form
from servekit.rpc.observability import UNTRACED, access_scope, rpc_attributes
from servekit.rpc.port import GrpcPortError
from servekit.rpc.reflection import add_reflection
from servekit.rpc.status import (
    RETRY_PUSHBACK_KEY,
    add_trailing_metadata,
    client_gone,
    gave_up,
    grpc_code,
    past_deadline,
    status_details,
)
from servekit.spans import RequestSpans, failure

if TYPE_CHECKING:
    from servekit.metrics import ServiceMetrics
    from servekit.rest.predictor import Predictor
    from servekit.runtime import ModelRuntime
    from servekit.settings import ServiceSettings
    from servekit.spec import ServiceSpec

logger = logging.getLogger("servekit.rpc")

#: The protocol's service name: the method paths clients call (``/inference.GRPCInferenceService/...``).
SERVICE = GRPC_SERVICE

Request = TypeVar("Request")

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
