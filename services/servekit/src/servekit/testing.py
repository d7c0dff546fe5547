"""Helpers for testing a service: a model trained in memory, in seconds, with no MLflow.

Fixtures build tiny models at test time rather than committing pickles.
"""

from __future__ import annotations

import atexit
import functools
import http.server
import json
import math
import os
import shutil
import socketserver
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servekit.model import Explanation, ModelArtifact, ServedModel
from servekit.spec import ServiceSpec
from servekit.training.splitting import Split, split, to_records
from servekit.training.trainer import fit

if TYPE_CHECKING:
    import pandas as pd
    from fastapi.testclient import TestClient
    from starlette.requests import Request

    from servekit.managed.common import LoadedModel
    from servekit.managed.vertex import ServekitHandler
    from servekit.runtime import ModelRuntime


def train_in_memory(spec: ServiceSpec, rows: int = 2000, seed: int = 0) -> tuple[ModelArtifact, Split]:
    """A model of ``spec`` fitted on ``rows`` synthetic rows, and the split it was fitted on."""
    return fit_in_memory(spec, spec.recipe.generate(rows, seed), seed)


def fit_in_memory(
    spec: ServiceSpec, frame: pd.DataFrame, seed: int, version: str = "test"
) -> tuple[ModelArtifact, Split]:
    """The model ``mlp train`` fits on ``frame`` (a real file's rows, as its loader reads them)
    with ``seed``, without a registry, and the split it was fitted on."""
    data = split(spec, frame, seed)
    pipeline, metadata = fit(spec, data, seed)
    metrics = spec.recipe.evaluate(pipeline, data.x_test, data.y_test, metadata)
    artifact = ModelArtifact(
        name=spec.name,
        pipeline=pipeline,
        metadata=metadata,
        version=version,
        run_id="in-memory",
        uri="memory://",
        training_metrics=metrics,
    )
    return artifact, data


def assert_explanations_add_up(
    model: ServedModel, rows: Sequence[Mapping[str, Any]], answer_on_scale: Callable[[dict[str, Any]], float]
) -> list[Explanation]:
    """``model``'s explanations of ``rows``, each checked exact: ``base_value`` plus the
    contributions is ``output_value`` (within 1e-6 relative, summed with ``math.fsum``), the output
    is the answer on the explanation's scale (``answer_on_scale``: a probability's logit, a fare),
    and the contributions are the request's fields."""
    predictions, explanations = model.predict(rows), model.explain(rows)
    for row, prediction, explanation in zip(rows, predictions, explanations, strict=True):
        assert explanation.scale == model.explanation_scale
        total = explanation.base_value + math.fsum(explanation.contributions.values())
        assert math.isclose(total, explanation.output_value, rel_tol=1e-6), (total, explanation)
        answer = answer_on_scale(prediction)
        assert math.isclose(explanation.output_value, answer, rel_tol=1e-6, abs_tol=1e-9), (
            answer,
            explanation,
        )
        assert set(explanation.contributions) == set(row)
    return explanations


def request_rows(data: Split, n: int = 50) -> list[dict[str, Any]]:
    """Held-out rows as JSON request bodies."""
    return to_records(data.x_test.head(n))


def wait_until(condition: Callable[[], object], seconds: float = 60, every: float = 0.2) -> None:
    """Poll ``condition`` every ``every`` seconds until it holds; a TimeoutError if it has not after
    ``seconds``. A deadline, not a count of polls: on a loaded machine each poll comes late."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {seconds:g} s")
        time.sleep(every)


def wait_ready(client: TestClient, seconds: float = 30.0) -> None:
    """Block until the app behind ``client`` has loaded and warmed up its model."""
    deadline = time.monotonic() + seconds
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(client.get("/readyz").json())
        time.sleep(0.02)


@contextmanager
def serving_in_memory(spec: ServiceSpec, artifact: ModelArtifact, **settings: object) -> Iterator[TestClient]:
    """A client of ``spec``'s app serving ``artifact`` (no MLflow), once its model is ready, with
    ``settings`` over the environment's: each service's ``client`` fixture wrote this itself, one
    with a readiness loop of its own."""
    from fastapi.testclient import TestClient

    from servekit.rest import create_app
    from servekit.settings import load_settings

    app = create_app(spec, load_settings(spec.name, **settings), source=lambda: artifact)
    with TestClient(app) as client:
        wait_ready(client)
        yield client


def wait_loaded(client: TestClient, runtime: ModelRuntime, attempts: int = 1500) -> None:
    """Block until ``runtime`` (a shadow's, a canary's) has loaded, once the app is ready."""
    wait_ready(client)
    for _ in range(attempts):
        if runtime.model is not None:
            return
        client.get("/healthz")  # lets the loader task run
    raise TimeoutError(runtime.last_error)


def metric_sample(client: TestClient, name: str, /, **labels: str) -> float:
    """One sample of the app's metrics registry; 0 when the series is not exported (yet)."""
    value = client.app.state.metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return 0.0 if value is None else float(value)


def valid_requests(spec: ServiceSpec, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records the service's request schema accepts as JSON: what a client may send.

    Training rows can lie outside the API's domain (ChicagoTaxi learns from trips whose
    distance was not recorded, while the API requires one), so load and benchmark
    payloads are filtered through the same validation the service applies.
    """
    return spec.accepted_requests(records)[0]


class StubHandler(http.server.BaseHTTPRequestHandler):
    """A base for the handlers a test serves with :func:`http_stub`: it reads a request's body and
    writes a whole answer, and logs nothing (a test's output is its own)."""

    def body(self) -> bytes:
        """The request's body, as long as its ``Content-Length`` says (none: empty)."""
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def answer(self, status: int, body: bytes | Any, content_type: str = "application/json") -> None:
        """``body`` as is, or as JSON when it is not bytes, with its length."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def http_stub(handler: Callable[..., socketserver.BaseRequestHandler]) -> Iterator[str]:
    """``handler`` (a handler class, or a partial of one) answering on 127.0.0.1 in a thread, for
    as long as the block runs: its URL.

    What a test stands in for a server with (a Prometheus, an MLflow answering 403, a service's
    ``GET /model``): real HTTP on a real socket, as the code under test speaks it.
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def vertex_handler(model: LoadedModel) -> ServekitHandler:
    """The Vertex AI handler over a model loaded in memory (not from a packaged directory)."""
    from servekit.managed.vertex import ServekitHandler, ServekitPredictor

    handler = ServekitHandler.__new__(ServekitHandler)
    handler.predictor = ServekitPredictor()
    handler.predictor._model = model
    return handler


def cpr_request(body: bytes, content_type: str = "application/json") -> Request:
    """A Starlette request, as the CPR model server hands its handler one (read as REST reads it)."""
    from starlette.requests import Request

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [
        (b"content-type", content_type.encode("latin-1", "replace")),
        (b"content-length", str(len(body)).encode()),
    ]
    return Request({"type": "http", "method": "POST", "path": "/predict", "headers": headers}, receive)


def new_tracking_database(path: Path) -> str:
    """``sqlite:///<path>``: a new, empty MLflow tracking and registry database at ``path``.

    MLflow creates one by running every schema migration since its first release, one commit
    each: 1 CPU-second and up to 6 s of fsyncs. This copies a database migrated once a process
    instead (0.04 s). The copy is what MLflow would have created from the same working directory,
    the one its ``Default`` experiment's artifact location is resolved against.
    """
    if path.exists():
        raise FileExistsError(f"{path}: a new tracking database would replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    template = _migrated_database(os.getcwd())
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as copy:
        source.backup(copy)  # a consistent copy, whatever MLflow left open on the template
    return f"sqlite:///{path}"


@functools.cache
def _migrated_database(working_directory: str) -> Path:
    """One a working directory: MLflow resolves the ``Default`` experiment's ``./mlruns`` against it."""
    import mlflow

    directory = tempfile.mkdtemp(prefix="mlflow-template-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "mlflow.db"
    uri = f"sqlite:///{path}"
    mlflow.MlflowClient(uri, registry_uri=uri).search_experiments()  # creates and migrates it
    return path
