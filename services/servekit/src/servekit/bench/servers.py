"""The benchmarks' servers: a real ``mlp serve`` of a champion, and its second models loaded."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from servekit import http_client, registry
from servekit.local import PortRangeError, Server, free_port, port_range, start_mlflow, start_service
from servekit.settings import UNPREFIXED
from servekit.spec import ServiceSpec
from servekit.termination import terminated_as_exit
from servekit.training.trainer import TrainResult, train


def machine() -> dict[str, Any]:
    """What the figures were measured on, for the report beside them."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


@contextlib.contextmanager
def champions(
    names: Sequence[str], prefix: str, data: Mapping[str, Path] | None = None
) -> Iterator[tuple[Server, Path, dict[str, TrainResult]]]:
    """A temporary MLflow server (127.0.0.1) whose registry has each service's champion, trained on
    ``data[name]`` or its synthetic data, a work directory for the servers' logs, and the trainings'
    results; all gone on leaving, on Ctrl-C, SIGTERM and SIGHUP too (the servers run in sessions of
    their own: nothing but this would stop them)."""
    with terminated_as_exit(), tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        mlflow = start_mlflow(work / "mlflow", work)
        try:
            trained = {
                name: train(registry.get_service(name), mlflow.url, (data or {}).get(name), seed=42)
                for name in names
            }
            yield mlflow, work, trained
        finally:
            mlflow.stop()


def checked_services(parser: argparse.ArgumentParser, names: Sequence[str] | None) -> list[str]:
    """``--services`` (default: every installed service) once each is known and the ports can be
    picked, before anything starts; else the parser's error (exit 2) naming what is wrong."""
    installed = registry.available()
    unknown = [name for name in names or () if name not in installed]
    if unknown:
        parser.error(f"--services {' '.join(unknown)}: no such service (installed: {', '.join(installed)})")
    try:
        port_range()
    except PortRangeError as error:
        parser.error(str(error))
    return list(dict.fromkeys(names or installed))


def service_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) without any service's settings: every installed
    service's ``<SVC>_*`` and the unprefixed ones (``MODEL_URI``...).

    A benchmark measures the servers as it configures them: a ``BANKCHURN_CAPTURE_PERCENT`` or an
    ``API_KEYS_FILE`` exported in the shell that runs it would change every figure (or answer each
    request 401) and appear nowhere in the report. PATH, HOME, TMPDIR and the rest stay.
    """
    environ = os.environ if environ is None else environ
    prefixes = tuple(f"{name.upper()}_" for name in registry.available())
    return {
        key: value for key, value in environ.items() if not key.startswith(prefixes) and key not in UNPREFIXED
    }


def dropped_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """The names (never the values: a key file's path, a token) :func:`service_environment` drops."""
    environ = os.environ if environ is None else environ
    kept = service_environment(environ)
    return sorted(key for key in environ if key not in kept)


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

    ``settings`` are the service's, without their prefix (``{"SHADOW_MODEL_URI": ...}``); they and
    the ones set here are its only settings (:func:`service_environment`), in ``server.settings``.
    """
    prefix = spec.name.upper()
    env = {
        "MLFLOW_TRACKING_URI": mlflow.url,
        f"{prefix}_LOG_LEVEL": "WARNING",
        **{f"{prefix}_{name}": value for name, value in (settings or {}).items()},
    }
    name = f"{spec.name}-{label}" if label else spec.name
    server = start_service(
        spec.name, work, env, label=name, grpc_port=free_port() if grpc else 0, base=service_environment()
    )
    server.settings = {key: value for key, value in env.items() if key != "MLFLOW_TRACKING_URI"}
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
        response = http_client.get(f"{server.url}/model", timeout=5, headers=headers)
        response.raise_for_status()  # a 401 names itself, not a missing key of the answer
        described: dict[str, Any] = response.json()
        return described

    while not all(model()[role]["ready"] for role in roles):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {' and '.join(roles)} model never loaded:\n{server.logs()[-2000:]}")
        time.sleep(0.2)
