"""Locust load test of every service: one user class per ``servekit.services`` entry point.

Payloads are rows of the service's real data set (``../shared/datasets/<service>/*.csv``, read
through the service's own loader) when present, else of its synthetic generator. Each user
mixes single predictions, explained predictions, small batches and the same batches through the
Open Inference Protocol (``/v2/models/<service>/infer``); every task is tagged with the service
name and its kind, so ``--tags bankchurn`` or ``--tags explain`` pick a subset. Each simulated user
is one customer: it sends its own ``X-Routing-Key``, so during a canary rollout it keeps being
answered by one model, as a real customer would (``servekit.routing``).

    make loadtest LOAD_TIME=2m LOAD_USERS=12 LOAD_TAGS=bankchurn

Environment:
    LOADTEST_<SERVICE>_HOST  base URL of a service (default http://127.0.0.1:<local port + MLP_PORT_OFFSET>)
    LOADTEST_<SERVICE>_API_KEY  sent as ``Authorization: Bearer`` when the service asks for API keys
    LOADTEST_DATA            ``auto`` (real when present), ``real`` or ``synthetic``
    LOADTEST_P95_MS          p95 thresholds per task kind, e.g. ``predict=250,explain=400,infer=1500``
    LOADTEST_MAX_ERROR_RATIO defaults to 0.001 (0.1 %)

At the end the run exits non-zero when the error ratio or a p95 threshold is exceeded.
"""

from __future__ import annotations

import logging
import os
import random
import uuid
from typing import Any

import gevent
from locust import FastHttpUser, between, events, tag, task
from locust.env import Environment
from payloads import payloads  # tests/load/payloads.py (locust puts this directory on sys.path)

from servekit import registry
from servekit.codecs.open_inference import OpenInferenceCodec

LOG = logging.getLogger("loadtest")
BATCH = 16
KINDS = ("predict", "explain", "batch", "infer")
P95_MS = {"predict": 250.0, "explain": 400.0, "batch": 1500.0, "infer": 1500.0}
MAX_ERROR_RATIO = float(os.environ.get("LOADTEST_MAX_ERROR_RATIO", "0.001"))


def thresholds() -> dict[str, float]:
    limits = dict(P95_MS)
    for part in filter(None, os.environ.get("LOADTEST_P95_MS", "").split(",")):
        kind, _, value = part.partition("=")
        if kind.strip() not in limits:
            raise ValueError(f"LOADTEST_P95_MS: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        limits[kind.strip()] = float(value)
    return limits


def user_class(name: str) -> type[FastHttpUser]:
    spec = registry.get_service(name)
    rows, source = payloads(name, 300)
    LOG.info("%s: %d payloads from %s", name, len(rows), source)

    @tag(name, "predict")
    @task(6)
    def predict(self: FastHttpUser) -> None:
        self.client.post("/predict", json=random.choice(rows), name=f"{name} /predict", headers=self.headers)

    @tag(name, "explain")
    @task(3)
    def explain(self: FastHttpUser) -> None:
        self.client.post(
            "/predict?explain=true",
            json=random.choice(rows),
            name=f"{name} /predict?explain",
            headers=self.headers,
        )

    @tag(name, "batch")
    @task(1)
    def batch(self: FastHttpUser) -> None:
        body = {"instances": random.sample(rows, BATCH)}
        self.client.post("/predict/batch", json=body, name=f"{name} /predict/batch", headers=self.headers)

    codec = OpenInferenceCodec(spec.request, spec.response)

    @tag(name, "infer")
    @task(1)
    def infer(self: FastHttpUser) -> None:
        body = codec.request_for(random.sample(rows, BATCH))
        self.client.post(
            f"/v2/models/{name}/infer",
            json=body,
            name=f"{name} /v2/models/{name}/infer",
            headers=self.headers,
        )

    key = os.environ.get(f"LOADTEST_{name.upper()}_API_KEY", "")

    def on_start(self: FastHttpUser) -> None:
        self.headers = {"X-Routing-Key": f"loadtest-{uuid.uuid4().hex[:12]}"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    host = os.environ.get(f"LOADTEST_{name.upper()}_HOST", f"http://127.0.0.1:{registry.local_port(spec)}")
    attributes = {
        "__module__": __name__,
        "__doc__": f"{spec.title}: predict, predict with explanation, batch of {BATCH} and infer (V2).",
        "host": host,
        "wait_time": between(0.02, 0.1),
        "on_start": on_start,
        "predict": predict,
        "explain": explain,
        "batch": batch,
        "infer": infer,
    }
    return type(f"{name.capitalize()}User", (FastHttpUser,), attributes)


for _service in registry.available():
    _cls = user_class(_service)
    globals()[_cls.__name__] = _cls
del _cls, _service  # locust collects every User class of the module namespace


@events.init.add_listener
def refresh_clock(**_: Any) -> None:
    """Building the payloads can take longer than --run-time; gevent's loop caches its clock, so
    without a refresh the run-time timer would start in the past and stop the run at once."""
    gevent.get_hub().loop.update_now()


@events.test_start.add_listener
def drop_users_left_without_tasks(environment: Environment, **_: Any) -> None:
    """``--tags bankchurn`` leaves the other services' users without a task; spawned anyway, each
    would raise "No tasks defined" every second, take a share of ``--users`` and fail the run."""
    environment.user_classes[:] = [user for user in environment.user_classes if user.tasks]
    if not environment.user_classes:
        raise SystemExit(f"loadtest: no task matches the tags given (service names or {', '.join(KINDS)})")


def kind_of(entry_name: str) -> str:
    if entry_name.endswith("/predict/batch"):
        return "batch"
    if entry_name.endswith("/infer"):
        return "infer"
    return "explain" if entry_name.endswith("?explain") else "predict"


@events.quitting.add_listener
def check_thresholds(environment: Environment, **_: Any) -> None:
    """Fail the run (exit code 1) on too many errors or a slow endpoint."""
    stats = environment.stats
    problems = []
    if stats.total.num_requests == 0:
        problems.append("no request was made")
    elif stats.total.fail_ratio > MAX_ERROR_RATIO:
        problems.append(f"error ratio {stats.total.fail_ratio:.4%} > {MAX_ERROR_RATIO:.2%}")
    limits = thresholds()
    for entry in stats.entries.values():
        if entry.num_requests == 0:
            continue
        p95 = entry.get_response_time_percentile(0.95)
        limit = limits[kind_of(entry.name)]
        verdict = "ok" if p95 <= limit else "TOO SLOW"
        print(
            f"loadtest: {entry.name}: {entry.num_requests} requests, "
            f"p95 {p95:.0f} ms (limit {limit:.0f}) {verdict}"
        )
        if p95 > limit:
            problems.append(f"{entry.name}: p95 {p95:.0f} ms > {limit:.0f} ms")
    for problem in problems:
        print(f"loadtest: FAILED: {problem}")
    if problems:
        environment.process_exit_code = 1
    else:
        print(f"loadtest: passed ({stats.total.num_requests} requests, {stats.total.num_failures} failures)")
