"""The benchmarks' servers: a real ``mlp serve`` of a champion, and its second models loaded."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from servekit.local import Server, free_port, start_service
from servekit.spec import ServiceSpec


@contextlib.contextmanager
def serving(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    *,
    label: str = "",
    settings: Mapping[str, str] | None = None,
    grpc: bool = False,
) -> Iterator[Server]:
    """A real ``mlp serve`` of the champion, logging warnings only, ready; stopped on leaving.

    ``settings`` are the service's, without their prefix (``{"SHADOW_MODEL_URI": ...}``).
    """
    prefix = spec.name.upper()
    env = {
        "MLFLOW_TRACKING_URI": mlflow.url,
        f"{prefix}_LOG_LEVEL": "WARNING",
        **{f"{prefix}_{name}": value for name, value in (settings or {}).items()},
    }
    name = f"{spec.name}-{label}" if label else spec.name
    server = start_service(spec.name, work, env, label=name, grpc_port=free_port() if grpc else 0)
    try:
        server.wait_for("/readyz", seconds=180)
        yield server
    finally:
        server.stop()


def wait_for_variants(
    server: Server, roles: Sequence[str], seconds: float = 120, *, headers: Mapping[str, str] | None = None
) -> None:
    """Until the server's second models in ``roles`` (``shadow``, ``canary``) have loaded.

    ``headers`` go with each ``GET /model`` (an API key, where the server asks for one).
    """
    deadline = time.monotonic() + seconds

    def model() -> dict[str, Any]:
        response = httpx.get(f"{server.url}/model", timeout=5, headers=headers)
        response.raise_for_status()  # a 401 names itself, not a missing key of the answer
        described: dict[str, Any] = response.json()
        return described

    while not all(model()[role]["ready"] for role in roles):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {' and '.join(roles)} model never loaded:\n{server.logs()[-2000:]}")
        time.sleep(0.2)
