"""Where the integration tests find the project and its servers (started by servekit.local)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from servekit import http_client
from servekit.auth.key_lines import key_line, new_key
from servekit.local import Server, free_port, start, start_mlflow, start_service
from servekit.testing import wait_until

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
#: Where ``make prometheus`` puts Prometheus, promtool, Alertmanager and amtool.
PROMETHEUS_TOOLS = ROOT / ".tools" / "prometheus" / "bin"

__all__ = [
    "BIN",
    "ROOT",
    "KeyedService",
    "Server",
    "free_port",
    "grpc_infer",
    "infer_example",
    "installed",
    "predict_its_example",
    "run_prometheus",
    "serving",
    "start_keyed_service",
    "start_mlflow",
    "start_service",
    "wait_until",
]


def installed(name: str) -> str:
    """A tool ``make prometheus`` installs (``make test`` runs it): the release the cluster runs."""
    path = PROMETHEUS_TOOLS / name
    if not path.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} not found: run `make prometheus` (make test installs it)")
    return str(path)


@dataclass
class KeyedService:
    """A service that asks for API keys, and the keys its clients hold, by client."""

    server: Server
    keys_file: Path
    keys: dict[str, str]


def start_keyed_service(
    name: str,
    logs_dir: Path,
    keys_file: Path,
    environment: dict[str, str],
    clients: dict[str, datetime | None],
    *,
    label: str,
) -> KeyedService:
    """``mlp serve NAME`` asking for API keys: a new key for each client, expiring as ``clients`` says.

    Not waited for, so several can start at once: ``server.wait_for("/readyz")``.
    """
    keys = {client: new_key() for client in clients}
    keys_file.write_text("".join(key_line(c, k, clients[c]) + "\n" for c, k in keys.items()))
    environment = {**environment, f"{name.upper()}_API_KEYS_FILE": str(keys_file)}
    return KeyedService(start_service(name, logs_dir, environment, label=label), keys_file, keys)


def as_foreground_job(args: list[str], **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **popen)`` started as a terminal's foreground job is: with SIGINT
    at its default, so that a Ctrl-C test means what it says wherever the tests run.

    A shell starts background jobs with SIGINT ignored (a CI job started with ``&``, say), an
    ignored signal stays ignored across exec, and bash cannot trap one ignored on entry: the
    script would be deaf to the test's Ctrl-C. A handled signal resets to the default at exec,
    so SIGINT is handled here while the child starts.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **popen)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def serving(keyed: KeyedService) -> Iterator[KeyedService]:
    """A keyed service once it is ready; stopped on the way out, ready or not."""
    try:
        keyed.server.wait_for("/readyz")  # the kubelet's path: never under a prefix
        yield keyed
    finally:
        keyed.server.stop()


def predict_its_example(
    base_url: str, *, explain: bool, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[dict[str, Any], httpx.Response]:
    """What a user tries first: ``GET /model``, then its first request example to ``POST /predict``.

    Returns the model description and the (200) prediction response. ``headers`` go with both
    requests (an API key, say).
    """
    model: dict[str, Any] = http_client.get(f"{base_url}/model", timeout=timeout, headers=headers).json()
    example = model["feature_schema"]["examples"][0]
    params = {"explain": "true"} if explain else None
    response = http_client.post(
        f"{base_url}/predict", params=params, json=example, timeout=timeout, headers=headers
    )
    assert response.status_code == 200, response.text
    return model, response


def infer_example(base_url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """The Open Inference Protocol request a service documents for ``/v2/models/<svc>/infer``."""
    document = http_client.get(f"{base_url}/openapi.json", timeout=timeout).json()
    operation = document["paths"]["/v2/models/{model_name}/infer"]["post"]
    example: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["example"]
    return example


def grpc_infer(
    server: Server,
    name: str,
    request: dict[str, Any],
    *,
    timeout: float = 30.0,
    metadata: tuple[tuple[str, str], ...] | None = None,
) -> Any:
    """A V2 request in its REST form, sent over gRPC as the message a client builds from it.

    Returns the ``ModelInferResponse``; a refusal raises ``grpc.RpcError``.
    """
    import grpc

    from servekit.metrics.names import GRPC_INFER
    from servekit.rpc import open_inference_pb2 as pb
    from servekit.rpc.messages import infer_message

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary(
            GRPC_INFER,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        return call(infer_message({"model_name": name, **request}), timeout=timeout, metadata=metadata)


def metric_value(server: Server, sample_name: str, **labels: str) -> float:
    """One sample of the service's ``/metrics``; 0 when the series is not exported (yet)."""
    families = text_string_to_metric_families(http_client.get(f"{server.url}/metrics").text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == sample_name and labels.items() <= sample.labels.items()
    )


def run_prometheus(
    directory: Path,
    config_for: Callable[[str], dict[str, Any]],
    resend_delay: str = "1m",
    *,
    name: str = "prometheus",
) -> Server:
    """A real Prometheus on 127.0.0.1 running ``config_for(its own host:port)``, written to
    ``<directory>/<name>.yml``, with its data beside it. ``name`` is its pod's name (``POD_NAME``)
    and its log's."""
    port = free_port()
    (directory / f"{name}.yml").write_text(yaml.safe_dump(config_for(f"127.0.0.1:{port}")))
    return start(
        name,
        [
            installed("prometheus"),
            f"--config.file={directory / f'{name}.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # As in the cluster, the alerts' links to their query name where it is reached.
            f"--web.external-url=http://127.0.0.1:{port}",
            f"--storage.tsdb.path={directory / f'{name}-data'}",
            "--log.level=warn",
            f"--rules.alert.resend-delay={resend_delay}",
            "--web.enable-lifecycle",
        ],
        port,
        directory,
        {"POD_NAME": name},
    )
