"""Settings of a model service, read from the environment with a per-service prefix.

``BANKCHURN_MAX_BATCH_SIZE`` configures bankchurn only. ``MODEL_URI``,
``MLFLOW_TRACKING_URI`` and ``GOOGLE_CLOUD_PROJECT`` are also read without the
prefix because in a pod each container serves one model and those names are the
MLflow and Google conventions; the prefixed form wins so that one shell can run all
services side by side.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servekit.errors import problem_text

#: Which answered requests get an access log line (servekit.rest.access_log).
AccessLogMode = Literal["off", "errors", "all"]
#: Environment variables read without the service prefix (in addition to the prefixed form).
UNPREFIXED = ("MODEL_URI", "MLFLOW_TRACKING_URI", "GOOGLE_CLOUD_PROJECT")
#: A Google Cloud project id, optionally of a legacy domain-scoped project (``example.com:id``).
GOOGLE_CLOUD_PROJECT_ID = re.compile(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
#: ``scheme://host[:port]``, the shape of what a browser sends as ``Origin``; a path or a trailing
#: slash never matches. Case, port and IPv6 form are checked against the browser's form after.
ORIGIN = re.compile(r"(?P<scheme>[A-Za-z]+)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d+))?")
#: The ports a browser leaves out of ``Origin``.
DEFAULT_PORTS = {"http": 80, "https": 443}
#: gRPC's message size limit is a C int, and the body limit is also the gRPC message limit.
LARGEST_BODY_BYTES = 2**31 - 1
#: The least interval between two registry checks: each is a registry call, and a smaller
#: interval (0.000001, say) kept a core busy asking.
MIN_REFRESH_SECONDS = 1.0
#: The longest shutdown grace: the cluster autoscaler gives a pod it removes 10 minutes at most
#: (--max-graceful-termination-sec), and a rollout waits out each old pod's grace in turn.
MAX_SHUTDOWN_GRACE_SECONDS = 600
#: An idle connection kept longer than an hour holds a socket for a client long gone.
MAX_KEEP_ALIVE_SECONDS = 3600


class ServiceSettings(BaseSettings):
    """What an operator may tune; every field is an env var ``<SERVICE>_<FIELD>``."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service: str = Field(default="", exclude=True)
    model_uri: str = ""
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    root_path: str = Field(default="", description="Path prefix when served behind a non-rewriting ingress")
    max_batch_size: int = Field(default=256, ge=1, le=10_000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=LARGEST_BODY_BYTES)
    max_header_bytes: int = Field(
        default=65_536,
        ge=8192,
        le=1_048_576,
        description=(
            "Bytes a request's line and headers may take, counted from the end of the request before it "
            "on the connection, and a chunked body's trailers and chunk-size lines (counted from the "
            "read in which its last chunk began); more is answered 431 (414 when the URL alone takes "
            "over half), read no further, and the connection closed once the requests before it on "
            "the connection are answered (`mlp serve`). Exact, but for a head pipelined right after "
            "a chunked body: what of it arrives in the read with that body's end is not counted, so "
            "it may take up to twice this"
        ),
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "Seconds a prediction request's body may take to arrive in full after its headers; a "
            "slower one is answered 408 and its connection closed (an upload holds no admission place)"
        ),
    )
    max_concurrent_requests: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Prediction requests (HTTP and gRPC) answered at once at most; one more is refused at once "
            "with 503 and Retry-After, so an overloaded replica keeps its answers on time; 0: no limit; "
            "unset: the service's own default (servekit.spec.ServiceSpec.max_concurrent_requests)"
        ),
    )
    max_concurrent_instances: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Instances of the batches answered in worker threads (all but the smallest) predicted at "
            "once at most; a batch that would pass it is refused with 503 and Retry-After once its body "
            "is read, unless no other batch is in flight; 0: no limit; unset: the service's own default "
            "(servekit.spec.ServiceSpec.max_concurrent_instances)"
        ),
    )
    max_concurrent_requests_per_client: int | None = Field(
        default=None,
        ge=0,
        description=(
            "With API keys: prediction requests of one client answered at once at most on a replica; "
            "one more is refused with 429 and Retry-After, leaving the other places to other clients; "
            "0: no such limit; unset: three quarters of the request limit"
        ),
    )
    # Why 0.25 s: the longest work the loop does alone is an explained batch of 16 (~20-50 ms; a
    # single record ~1-2 ms, a quick NLPInsight text up to ~2 ms), so an ordinary burst of a few
    # such batches lags the loop well under 0.25 s and is not shed, while 0.25 s is a twelfth of
    # the liveness probe's timeoutSeconds of 3 (k8s/base/services/model-server.yaml). Measured on
    # a shared 2-core machine (README, *Overload*), BankChurn at 512 closed-loop clients: /healthz
    # at most 1.7 s with it against 2.8 s without; the answers' p99 1.2 s against 1.6 s.
    max_loop_lag_seconds: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description=(
            "Seconds late the event loop may run ready work (single records and small batches wait "
            "there, before any count sees them); a prediction request arriving while it is later is "
            "refused at once with 503 and Retry-After, before its body is read; 0: no such limit"
        ),
    )
    gzip_min_bytes: int = Field(
        default=1024, ge=0, description="Gzip responses this large for clients that accept it; 0: never"
    )
    load_retry_initial_seconds: float = Field(default=1.0, gt=0)
    load_retry_max_seconds: float = Field(default=30.0, gt=0)
    model_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description=(
            "How often to check whether the model URI's alias points at another version, and switch "
            "to it once it is loaded and warmed up; 0: serve the first model until restarted"
        ),
    )
    live_evaluation_refresh_seconds: float = Field(
        default=60.0,
        ge=0,
        description=(
            "How often to read the served version's latest live evaluation (`mlp evaluate --log`) "
            'from the registry, for <svc>_model_quality{split="live"} and GET /model; 0: never'
        ),
    )
    watch_inputs: bool = Field(
        default=True,
        description=(
            "Count every request's inputs in the bins fixed at training, for input drift (about 5% "
            "of throughput at saturation); false: no input_values_total or training_input_share series"
        ),
    )
    grpc_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description=(
            "Serve the Open Inference Protocol over gRPC on this port too, on the host HTTP binds; 0: no gRPC"
        ),
    )
    shutdown_grace_seconds: int = Field(
        default=20,
        ge=1,
        le=MAX_SHUTDOWN_GRACE_SECONDS,
        description=(
            "Seconds a stopping server gives the HTTP requests and gRPC calls in flight (one grace for "
            "both, from SIGTERM) before it cuts them, each cut a counted 503 shutting_down (gRPC "
            "UNAVAILABLE); with the pod's preStop sleep and a few seconds to exit it must fit in "
            "terminationGracePeriodSeconds, or the kubelet kills the pod first and those requests get "
            "a reset connection, uncounted and unlogged"
        ),
    )
    keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        le=MAX_KEEP_ALIVE_SECONDS,
        description=(
            "Seconds an idle client connection is kept open for its next request. Longer than the idle "
            "timeout of the load balancer in front, which reuses its connections to the pods: closed "
            "first by the pod, a request sent on one as it closes is a 502 the client sees (uvicorn's "
            "default, 5 s, is under nginx-ingress's 60 s and an ALB's 60 s; Google's front ends keep "
            "theirs 600 s, so the GKE overlay sets 620)"
        ),
    )
    shadow_model_uri: str = Field(
        default="",
        description=(
            "A second model (models:/<svc>@challenger) that scores a copy of the traffic off the request "
            "path, compared with the served model's predictions in the shadow_* metrics and never "
            "returned; empty: none"
        ),
    )
    shadow_sample_rate: float = Field(
        default=1.0, gt=0, le=1, description="Share of requests whose instances the shadow model scores"
    )
    shadow_max_pending: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Instances waiting for the shadow model at most; beyond it they are skipped and counted "
            '(shadow_skipped_total{reason="queue_full"}), so the shadow never holds up a request'
        ),
    )
    canary_model_uri: str = Field(
        default="",
        description=(
            "A candidate model (models:/<svc>@canary) that answers canary_traffic_percent of the "
            "prediction requests, compared with the served model in the variant_* metrics; empty: none"
        ),
    )
    canary_traffic_percent: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description=(
            "Percentage of prediction requests the canary answers (X-Routing-Key makes it sticky per "
            "key; X-Model-Variant forces a variant); 0: only requests that ask for it"
        ),
    )
    canary_stop_failure_ratio: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description=(
            "Stop sending the canary its share when more than this share of its last "
            "canary_stop_window requests failed (it still answers those that ask for it); 1: never"
        ),
    )
    canary_stop_window: int = Field(
        default=100,
        ge=20,
        description="The canary's latest requests its failure share is judged on (from 20 of them on)",
    )
    capture_percent: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description=(
            "Percentage of prediction requests whose instances and answers are written, one log line "
            "per instance, to the servekit.capture logger (for audit; they hold the request's values); "
            "0: none"
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line, for Cloud Logging and CloudWatch"
    )
    google_cloud_project: str = Field(
        default="",
        description="JSON log lines of traced requests name their Cloud Trace trace in this project",
    )
    access_log: AccessLogMode = Field(
        default="errors", description="Which answered requests get a log line: none, 4xx and 5xx, or all"
    )
    access_log_max_per_second: float = Field(
        default=50.0,
        gt=0,
        description="At most this many access log lines per second (a burst as large, and at least one)",
    )

    cors_allow_origins: str = Field(
        default="",
        description="Comma-separated origins browser apps may call the API from, or *; empty: none",
    )

    api_keys_file: str = Field(
        default="",
        description=(
            "File of the API keys clients must send (Authorization: Bearer, or X-API-Key), one "
            "'<client>:sha256:<digest>' line each (mlp api-key), read again when it changes; every "
            "endpoint but probes, /metrics and the docs then needs one; empty: no key needed"
        ),
    )

    @field_validator("log_level", "log_format", "access_log", "watch_inputs", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        return value.strip().upper() if info.field_name == "log_level" else value.strip().lower()

    @field_validator("root_path")
    @classmethod
    def _root_path(cls, value: str) -> str:
        # Compared with request paths as written: in any other form every prefixed path is a 404.
        words = "".join(value.split()).strip("/")
        fixed = f"/{words}" if words else ""
        if value != fixed:
            write = f"write {fixed}" if fixed else "leave it empty for none"
            raise ValueError(f"a path prefix starts with '/' and has no whitespace or trailing '/': {write}")
        return value

    @field_validator("model_refresh_seconds", "live_evaluation_refresh_seconds")
    @classmethod
    def _refresh_interval(cls, value: float) -> float:
        if 0 < value < MIN_REFRESH_SECONDS:
            raise ValueError(
                f"0 (never) or at least {MIN_REFRESH_SECONDS:g} second: each check is a registry call"
            )
        return value

    @field_validator("google_cloud_project")
    @classmethod
    def _project_id(cls, value: str) -> str:
        # A typo would otherwise surface only as log lines linked to no trace.
        if value and not GOOGLE_CLOUD_PROJECT_ID.fullmatch(value):
            raise ValueError(
                "not a Google Cloud project id (6 to 30 lower-case letters, digits or hyphens, "
                "starting with a letter)"
            )
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        return ",".join(parse_origins(value))

    def cors_origins(self) -> tuple[str, ...]:
        return parse_origins(self.cors_allow_origins)

    def resolved_model_uri(self) -> str:
        return self.model_uri or f"models:/{self.service}@champion"


def parse_origins(value: str) -> tuple[str, ...]:
    """Comma-separated origins, or ``*`` alone; a ValueError naming the first that cannot match."""
    origins = tuple(origin.strip() for origin in value.split(",") if origin.strip())
    if origins == ("*",):
        return origins
    for origin in origins:
        if origin == "*":
            raise ValueError("'*' allows every origin, so it cannot be listed with others")
        sent = browser_origin(origin)
        if sent != origin:
            raise ValueError(f"{origin!r} would never match what a browser sends: write {sent}")
    return origins


def browser_origin(origin: str) -> str:
    """``origin`` as a browser writes it in ``Origin`` (lower case, no default port, IPv6 compressed);
    a ValueError when a browser could not send it at all."""
    match = ORIGIN.fullmatch(origin)
    scheme = match["scheme"].lower() if match else ""
    if match is None or scheme not in DEFAULT_PORTS:
        raise ValueError(
            f"{origin!r} is not an origin: http(s)://host[:port], with no path or trailing slash "
            "(a browser's Origin header never has one, so it would never match)"
        )
    host = match["host"].lower()
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"{origin!r}: {match['host']} is not an IPv6 address") from None
    port = int(match["port"]) if match["port"] else DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise ValueError(f"{origin!r}: there is no port {port} (ports are 1 to 65535)")
    return f"{scheme}://{host}" if port == DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


@cache
def settings_class(service: str) -> type[ServiceSettings]:
    """A ServiceSettings subclass bound to ``<SERVICE>_`` env vars."""
    prefix = f"{service.upper()}_"

    def either(name: str) -> AliasChoices:
        return AliasChoices(f"{prefix}{name}", name)

    class Settings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix=prefix, extra="ignore", frozen=True)

        model_uri: str = Field(default="", validation_alias=either("MODEL_URI"))
        mlflow_tracking_uri: str = Field(
            default="http://127.0.0.1:5000", validation_alias=either("MLFLOW_TRACKING_URI")
        )
        google_cloud_project: str = Field(default="", validation_alias=either("GOOGLE_CLOUD_PROJECT"))

    Settings.__name__ = f"{service.capitalize()}Settings"
    return Settings


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


def load_settings(service: str, **overrides: object) -> ServiceSettings:
    """Settings for ``service`` from the environment, with explicit overrides on top.

    A bad value is a :class:`SettingsError` naming each variable, its value and the
    problem in one line, so a pod in CrashLoopBackOff says which ConfigMap entry is wrong.
    """
    try:
        return settings_class(service)(service=service, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        prefix = f"{service.upper()}_"
        problems = [
            f"{variable_name(prefix, error['loc'])}={error['input']!r}: {problem_text(error['msg'])}"
            for error in exc.errors(include_url=False)
        ]
        raise SettingsError(f"{service} settings: {'; '.join(problems)}") from None


def variable_name(prefix: str, location: tuple[int | str, ...]) -> str:
    """The environment variable that held the bad value an error's location points at."""
    field = ".".join(map(str, location)).upper().removeprefix(prefix)
    # An aliased field's errors name its prefixed form even when the value came unprefixed.
    unprefixed = field in UNPREFIXED and f"{prefix}{field}" not in os.environ
    return field if unprefixed else f"{prefix}{field}"


#: What Kubernetes sets for a Service named as the service is, in every pod of its namespace
#: that does not set ``enableServiceLinks: false`` (``BANKCHURN_SERVICE_HOST``,
#: ``BANKCHURN_PORT_8000_TCP_ADDR``): not settings, and not misspelt ones.
SERVICE_LINK = re.compile(r"SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_\w+)?)?")


def unknown_variables(service: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Each variable with the service's prefix that no setting reads, named with the setting it
    most resembles: pydantic-settings ignores it, so ``BANKCHURN_CAPTURE_PERCENTT=5`` in a
    ConfigMap would capture nothing and say nothing.

    ``mlp serve`` logs them as warnings rather than refusing to start: a ConfigMap may name a
    setting a newer image reads, and a rollback to the older image must still start.
    """
    prefix = f"{service.upper()}_"
    known = environment_variables(service)
    settings = sorted(name.removeprefix(prefix) for name in known if name.startswith(prefix))
    unknown = []
    for name in sorted(environ):
        if not name.startswith(prefix) or name in known or SERVICE_LINK.fullmatch(name.removeprefix(prefix)):
            continue
        # Compared without the prefix every name shares, which would make any two look alike.
        close = difflib.get_close_matches(name.removeprefix(prefix), settings, n=1)
        hint = f"; did you mean {prefix}{close[0]}?" if close else ""
        unknown.append(f"{name} is not a setting and is ignored{hint}")
    return unknown


def environment_variables(service: str) -> frozenset[str]:
    """Every environment variable the service's settings read (manifests are checked against it)."""
    prefix = f"{service.upper()}_"
    names = {f"{prefix}{name.upper()}" for name in ServiceSettings.model_fields if name != "service"}
    return frozenset(names | set(UNPREFIXED))
