"""``mlp serve | package-sagemaker | services``: a service run over HTTP, packaged for SageMaker, or
listed."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servekit import registry
from servekit.cli.common import (
    DEFAULT_TRACKING_URI,
    UsageError,
    port_number,
    resolve_tracking_uri,
)

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from servekit.cli.common import Commands

#: The service ``mlp serve`` runs when none is named (set by the container image).
SERVICE_ENV = "MLP_SERVICE"


def service_name(args: argparse.Namespace, environ: Mapping[str, str | None] = os.environ) -> str:
    """The service ``mlp serve`` runs: its argument, else ``$MLP_SERVICE`` (set by the image)."""
    service = args.service or (environ.get(SERVICE_ENV) or "").strip()
    if not service:
        raise UsageError(
            f"serve: name a service or set {SERVICE_ENV} (installed: {', '.join(registry.available())})"
        )
    return str(service)


def cmd_serve(args: argparse.Namespace) -> int:
    from uvicorn.config import STARTUP_FAILURE

    from servekit.logs import configure_logging
    from servekit.rest import create_app
    from servekit.rest.head_limit import HeadLimitedHttpToolsProtocol
    from servekit.settings import SettingsError, load_settings, unknown_variables

    spec = registry.get_service(service_name(args))
    settings = load_settings(spec.name)
    port = args.port if args.port is not None else registry.local_port(spec)
    if settings.grpc_port == port:
        raise SettingsError(
            f"{spec.name} settings: {spec.name.upper()}_GRPC_PORT='{port}': HTTP listens on port {port}; "
            "give gRPC another one"
        )
    handler = configure_logging(
        settings.log_level,
        settings.log_format,
        spec.name,
        google_cloud_project=settings.google_cloud_project,
    )
    for unknown in unknown_variables(spec.name):
        logging.getLogger("servekit.settings").warning(unknown)
    if settings.grpc_port:
        from servekit.rpc.port import GrpcPortError, check_port

        try:
            check_port(spec.name, args.host, settings.grpc_port)
        except GrpcPortError as exc:
            # One line and uvicorn's exit status, as when the HTTP port is taken.
            logging.getLogger("servekit.rpc").error(exc)
            return STARTUP_FAILURE
    app = create_app(spec, settings, grpc_host=args.host)
    handler.meter = app.state.metrics.count_log_line
    # Not uvicorn's access log: servekit's own (servekit.rest.access_log) names the error and
    # its fields, leaves out probes and caps its rate. httptools, with a bound on each request's
    # headers that uvicorn's lacks (servekit.rest.head_limit).
    server = draining_server(
        app,
        host=args.host,
        port=port,
        access_log=False,
        log_config=None,  # uvicorn's lines go through configure_logging's handler
        log_level=settings.log_level.lower(),
        loop="uvloop",
        http=type(
            "HeadLimited", (HeadLimitedHttpToolsProtocol,), {"max_head_bytes": settings.max_header_bytes}
        ),
        # The gRPC server's grace too (OpenInferenceServicer.stop), begun at the same time.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    # As uvicorn.run: Ctrl-C, raised again once the server has stopped, ends it quietly.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE


def draining_server(app: FastAPI, **options: Any) -> uvicorn.Server:
    """uvicorn's server for ``app`` (``options``: ``uvicorn.Config``'s), whose shutdown begins the
    app's (``app.state.begin_shutdown``: gRPC's stop) as it begins HTTP's.

    uvicorn runs the app's lifespan shutdown only once HTTP has drained: gRPC, stopped there, would
    take new calls all that while and then wait a grace of its own, two graces in a row, past
    Kubernetes' terminationGracePeriodSeconds. Begun together, both protocols refuse new work at
    once and the process is gone within one grace.
    """
    import uvicorn

    from servekit.rest.telemetry import server_stopped, shutdown_begins

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.state.begin_shutdown()
            # The requests uvicorn cancels once its grace is spent are then counted as cut (503).
            shutdown_begins(app.state, self.config.timeout_graceful_shutdown)
            try:
                await super().shutdown(sockets)
            finally:
                server_stopped(app.state)

    return DrainingServer(uvicorn.Config(app, **options))


def cmd_package_sagemaker(args: argparse.Namespace) -> int:
    from servekit.managed.packaging import package_from_registry
    from servekit.mlflow_registry import registry_client
    from servekit.scoring.files import writable_problem

    spec = registry.get_service(args.service)
    # Checked first: the tarball is written last, after a download and a model load it would waste.
    if args.output.is_dir():
        raise UsageError(f"package-sagemaker: --output {args.output} is a directory; name the file to write")
    above = next((parent for parent in args.output.parents if parent.exists()), None)
    if above is not None and not above.is_dir():
        raise UsageError(f"package-sagemaker: --output {args.output}: {above} is a file, not a directory")
    # As `mlp score --output` refuses it: a mistyped directory was made, tree and all, and the
    # tarball left where nothing looks for it.
    problem = writable_problem(args.output)
    if problem:
        raise UsageError(f"package-sagemaker: --output {args.output}: {problem}")
    model_uri = args.model_uri or f"models:/{spec.name}@champion"
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    registry_client(tracking_uri)  # an unreachable registry is one line, not a retrying traceback
    output, notes = package_from_registry(spec.name, model_uri, tracking_uri, args.output)
    for note in notes:
        print(f"{spec.name}: {note}")
    print(f"{spec.name}: {model_uri} packaged as {output}")
    return 0


def cmd_services(_: argparse.Namespace) -> int:
    for name in registry.available():
        spec = registry.get_service(name)
        print(f"{name}\t{registry.local_port(spec)}\t{spec.title}")
    return 0


def add_commands(commands: Commands) -> None:
    """Adds ``mlp serve``, ``mlp package-sagemaker``, ``mlp services``."""
    serve = commands.add_parser("serve", help="serve a model over HTTP (settings from the environment)")
    serve.add_argument("service", nargs="?", help=f"default: ${SERVICE_ENV}")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port_number, help="1-65535; default: the service's local port")
    serve.set_defaults(func=cmd_serve)

    package = commands.add_parser(
        "package-sagemaker",
        help="model.tar.gz for SageMaker: model, handlers, requirements pinned as trained",
    )
    package.add_argument("service")
    package.add_argument("--model-uri", help="default: models:/<service>@champion")
    package.add_argument("--tracking-uri", help=f"default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI}")
    package.add_argument("--output", type=Path, default=Path("model.tar.gz"))
    package.set_defaults(func=cmd_package_sagemaker)

    services = commands.add_parser(
        "services", help="list installed services and their local ports (plus $MLP_PORT_OFFSET)"
    )
    services.set_defaults(func=cmd_services)
