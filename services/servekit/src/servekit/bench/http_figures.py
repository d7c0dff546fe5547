"""The HTTP and gRPC loads the benchmark sends one served model, and each load's row of the report.

They are apart from the entry point because the overload, scaling and second-model
measurements send the same batches under the same labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servekit.bench import load
from servekit.bench.bare_server import start_bare
from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.local import Server
from servekit.metrics.names import GRPC_INFER
from servekit.rpc.messages import infer_message
from servekit.spec import ServiceSpec

ENDPOINTS = {"predict": "/predict", "predict+explain": "/predict?explain=true"}
BATCH_SIZE = 64


GRPC_LABEL = f"infer (gRPC) {BATCH_SIZE} c=2"


def measure_grpc(server: Server, name: str, bodies: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The V2 load's request bodies as gRPC messages with raw contents, two calls in flight."""
    messages = [infer_message({"model_name": name, **body}).SerializeToString() for body in bodies]
    outcome = load.run_grpc(
        "127.0.0.1", server.grpc_port, GRPC_INFER, messages, concurrency=2, seconds=seconds
    )
    return figures(outcome, BATCH_SIZE)


def figures(outcome: load.LoadResult, per_request: int) -> dict[str, Any]:
    """A load's row of the report; predictions per second too when a request holds several."""
    row = outcome.as_dict()
    if per_request > 1:
        row["predictions_per_second"] = round(outcome.requests_per_second * per_request, 1)
    return row


#: A load: path, request bodies, concurrency, and instances per request.
Load = tuple[str, list[Any], int, int]
BATCH_LABEL = f"batch of {BATCH_SIZE} c=2"
V2_LABEL = f"infer (V2) {BATCH_SIZE} c=2"


def http_loads(
    spec: ServiceSpec, records: list[dict[str, Any]], concurrency: Sequence[int]
) -> dict[str, Load]:
    loads: dict[str, Load] = {
        f"{label} c={c}": (path, records[:128], c, 1)
        for label, path in ENDPOINTS.items()
        for c in concurrency
    }
    # The same batches as /predict/batch bodies and as Open Inference Protocol tensors.
    chunks = load.batches(records[:256], BATCH_SIZE)
    codec = OpenInferenceCodec.of_service(spec)
    loads[BATCH_LABEL] = ("/predict/batch", [{"instances": c} for c in chunks], 2, BATCH_SIZE)
    loads[V2_LABEL] = (
        f"/v2/models/{spec.name}/infer",
        [codec.request_for(c) for c in chunks],
        2,
        BATCH_SIZE,
    )
    return loads


def measure_http(server: Server, loads: dict[str, Load], seconds: float) -> dict[str, Any]:
    http: dict[str, Any] = {}
    for label, (path, bodies, concurrency, per_request) in loads.items():
        requests = load.post_requests("127.0.0.1", server.port, path, bodies)
        outcome = load.run("127.0.0.1", server.port, requests, concurrency=concurrency, seconds=seconds)
        http[label] = figures(outcome, per_request)
    return http


#: The reference's rows: the bare app (:mod:`servekit.bench.bare_server`) at each concurrency.
REFERENCE_LABEL = "bare uvicorn"


def measure_reference(
    work: Path, bodies: list[Any], concurrency: Sequence[int], seconds: float
) -> dict[str, Any]:
    """The bare uvicorn app, with the same client, bodies, warm-up and seconds as the service's
    single predictions, at each of ``concurrency``: the host's own speed in this run."""
    server = start_bare(work)
    try:
        requests = load.post_requests("127.0.0.1", server.port, "/predict", bodies)
        return {
            f"{REFERENCE_LABEL} c={c}": figures(
                load.run("127.0.0.1", server.port, requests, concurrency=c, seconds=seconds), 1
            )
            for c in concurrency
        }
    finally:
        server.stop()


def against_reference(http: dict[str, Any], reference: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each single-request row of ``http`` against the reference's row at its concurrency: its p50
    over the reference's (how many times slower) and its requests/s over the reference's."""
    ratios: dict[str, dict[str, float]] = {}
    for label, row in http.items():
        name, _, concurrency = label.rpartition(" c=")
        bare = reference.get(f"{REFERENCE_LABEL} c={concurrency}")
        if name not in ENDPOINTS or bare is None or not bare["p50_ms"] or not bare["requests_per_second"]:
            continue
        ratios[label] = {
            "p50_ratio": round(row["p50_ms"] / bare["p50_ms"], 2),
            "requests_per_second_ratio": round(row["requests_per_second"] / bare["requests_per_second"], 3),
        }
    return ratios
