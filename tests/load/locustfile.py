"""Locust load test of every service: one user class per ``servekit.services`` entry point.

Payloads are rows like those the served model was trained on (``tests/load/payloads.py``): its
``GET /model`` says whether that was the real data set (``../shared/datasets/<service>/*.csv``,
read through the service's own loader) or the service's synthetic generator; each service's
choice is printed at start. Each user
mixes single predictions, explained predictions, small batches and the same batches through the
Open Inference Protocol (``/v2/models/<service>/infer``); every task is tagged with the service
name and its kind, so ``--tags bankchurn`` or ``--tags explain`` pick a subset. Each simulated user
is one customer: it sends its own ``X-Routing-Key``, so during a canary rollout it keeps being
answered by one model, as a real customer would (``servekit.routing``).

    make loadtest LOAD_TIME=2m LOAD_USERS=12 LOAD_TAGS=bankchurn

Environment:
    LOADTEST_<SERVICE>_HOST  base URL of a service (default http://127.0.0.1:<local port + MLP_PORT_OFFSET>)
    LOADTEST_<SERVICE>_API_KEY  sent as ``Authorization: Bearer`` when the service asks for API keys
                             (``mlp api-key loadtest``: a key that may predict, not ``--read-only``)
    LOADTEST_DATA            ``auto`` (what the served model was trained on), ``real`` or ``synthetic``
    LOADTEST_ALLOW_SYNTHETIC ``1``: send synthetic rows to a model trained on a real file that is not
                             here, drift alerts and all (without it the run refuses to start)
    LOADTEST_P95_MS          p95 thresholds per task kind, e.g. ``predict=250,explain=400,infer=1500``
    LOADTEST_MAX_ERROR_RATIO defaults to 0.001 (0.1 %), of the whole run and of each endpoint
    LOADTEST_SLO             ``enforce`` (default) or ``report``: whether a service's /predict
                             latency over its SLO budget fails the run (``verdicts.slo_verdict``)

Before anything is sent, the run stops, naming what to do, when a service refuses its key (401
or 403 to ``GET /model`` or to one prediction) or would get synthetic rows for a model of real
data (``payloads.RefusalError``). A failed request's entry in ``locust_failures.csv`` is the status and
the service's message (``HTTP 422: ...``), not Locust's bare status code.

``--users`` must be at least the number of services under test: each service gets a user. At
the end the run exits non-zero when an endpoint got no request, the error ratio (overall or of
an endpoint) or a p95 threshold is exceeded, or a service's successful /predict requests over its
latency objective's threshold are more than the objective's budget, or none succeeded
(``tests/load/verdicts.py``).
"""

from __future__ import annotations

import os
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, between, events, tag, task
from locust.env import Environment
from locust.stats import bucket_response_time

# tests/load/payloads.py and verdicts.py (locust puts this directory on sys.path)
from payloads import RefusalError, check_access, key_variable, payloads, server_message
from verdicts import (
    Endpoint,
    SuccessTimes,
    endpoint_verdict,
    kind_of,
    slo_mode,
    slo_verdict,
    thresholds,
    unanswered,
)

from servekit import registry
from servekit.codecs.open_inference import OpenInferenceCodec

# The latency objectives are the monitoring mixin's (monitoring/mixin/common.py), not copies.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "monitoring"))
from mixin.common import objectives

BATCH = 16
#: Each task's Locust entry name, by the task's name (its kind).
ENTRIES = {
    "predict": "{name} /predict",
    "explain": "{name} /predict?explain",
    "batch": "{name} /predict/batch",
    "infer": "{name} /v2/models/{name}/infer",
}


def say(line: str) -> None:
    """To stderr, unconditionally: Locust's logging is not set up while this module is imported,
    and ``--only-summary`` hides its INFO lines."""
    print(f"loadtest: {line}", file=sys.stderr, flush=True)


def settings() -> tuple[dict[str, float], float, bool]:
    """p95 limits, error ratio and whether the SLO is enforced, from the environment; one clear
    line and exit status 1 on a typo, before anything is sent."""
    try:
        ratio_text = os.environ.get("LOADTEST_MAX_ERROR_RATIO", "0.001")
        try:
            ratio = float(ratio_text)
        except ValueError:
            raise ValueError(
                f"LOADTEST_MAX_ERROR_RATIO: {ratio_text!r} is not a ratio (e.g. 0.001)"
            ) from None
        return (
            thresholds(os.environ.get("LOADTEST_P95_MS", "")),
            ratio,
            slo_mode(os.environ.get("LOADTEST_SLO", "")) == "enforce",
        )
    except ValueError as exc:
        raise SystemExit(f"loadtest: {exc}") from None


def post(user: FastHttpUser, path: str, body: Any, name: str) -> None:
    """POST ``body``; an error answer is failed with the service's message, which Locust's own
    failure (``LocustBadStatusCode(code=422)``) drops. A connection error stays Locust's."""
    with user.client.post(path, json=body, name=name, headers=user.headers, catch_response=True) as response:
        if response.status_code >= 400:
            response.failure(server_message(response.status_code, response.text))


def user_class(name: str) -> type[FastHttpUser]:
    """The service's user class; its ``refused`` says why the run must not start against it, if so
    (``stop_on_refusals``: only a service left under test by ``--tags`` stops the run)."""
    spec = registry.get_service(name)
    key = os.environ.get(key_variable(name), "")
    host = os.environ.get(f"LOADTEST_{name.upper()}_HOST", f"http://127.0.0.1:{registry.local_port(spec)}")
    rows: list[dict[str, Any]] = []
    refused = ""
    try:
        rows, source, reason = payloads(name, 300, host=host, api_key=key)
        # GET /model opens to a read-only key, and no model is asked when LOADTEST_DATA is set:
        # one prediction tells whether the run's would be refused, before it sends them all.
        check_access(name, host, key, rows[0])
        say(f"{name}: {len(rows)} payloads from {source} ({reason})")
    except RefusalError as exc:
        refused = str(exc)

    @tag(name, "predict")
    @task(6)
    def predict(self: FastHttpUser) -> None:
        post(self, "/predict", random.choice(rows), f"{name} /predict")

    @tag(name, "explain")
    @task(3)
    def explain(self: FastHttpUser) -> None:
        post(self, "/predict?explain=true", random.choice(rows), f"{name} /predict?explain")

    @tag(name, "batch")
    @task(1)
    def batch(self: FastHttpUser) -> None:
        post(self, "/predict/batch", {"instances": random.sample(rows, BATCH)}, f"{name} /predict/batch")

    codec = OpenInferenceCodec(spec.request, spec.response)

    @tag(name, "infer")
    @task(1)
    def infer(self: FastHttpUser) -> None:
        body = codec.request_for(random.sample(rows, BATCH))
        post(self, f"/v2/models/{name}/infer", body, f"{name} /v2/models/{name}/infer")

    def on_start(self: FastHttpUser) -> None:
        self.headers = {"X-Routing-Key": f"loadtest-{uuid.uuid4().hex[:12]}"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

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
        "service": name,
        "refused": refused,
    }
    return type(f"{name.capitalize()}User", (FastHttpUser,), attributes)


SETTINGS = settings()  # at import: a typo stops the run before the payloads are built
#: The successful requests' response times, for the latency SLO (``verdicts.SuccessTimes``).
SUCCESS_TIMES = SuccessTimes(bucket_response_time)

for _service in registry.available():
    _cls = user_class(_service)
    globals()[_cls.__name__] = _cls
del _cls, _service  # locust collects every User class of the module namespace


@events.request.add_listener
def time_successes(name: str, response_time: float | None, exception: BaseException | None, **_: Any) -> None:
    SUCCESS_TIMES.record(name, response_time, exception)


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
        raise SystemExit(f"loadtest: no task matches the tags given (service names or {', '.join(ENTRIES)})")
    # Locust shares the users out by weight, one at a time: with fewer users than services, a
    # service gets none, is never called, and the run would pass without it.
    options = environment.parsed_options
    users = getattr(options, "num_users", None) if options is not None else None
    services = [user.service for user in environment.user_classes]
    if users is not None and users < len(services):
        raise SystemExit(
            f"loadtest: {users} users for {len(services)} services ({', '.join(services)}): each needs a "
            f"user of its own; give --users (LOAD_USERS) {len(services)} or more, or pick services "
            "with --tags (LOAD_TAGS)"
        )


@events.test_start.add_listener
def stop_on_refusals(environment: Environment, **_: Any) -> None:
    """Stop before the first request when a service under test refuses its key or would get rows
    unlike its model's training data (``user_class``): every service's reason at once, all there is
    to fix. Checked here, after ``--tags``: a service left out may refuse (no key given for it)."""
    refusals = [user.refused for user in environment.user_classes if user.refused]
    for refusal in refusals:
        say(refusal)
    if refusals:
        raise SystemExit(1)  # said above, one line each: Locust logs its argument


def expected_entries(environment: Environment) -> list[str]:
    """The Locust entry of every task left to run (after --tags) of every service under test."""
    # A task of weight 6 is in ``tasks`` six times.
    entries = (
        ENTRIES[task.__name__].format(name=user.service)
        for user in environment.user_classes
        for task in user.tasks
        if task.__name__ in ENTRIES
    )
    return list(dict.fromkeys(entries))


@events.quitting.add_listener
def check_thresholds(environment: Environment, **_: Any) -> None:
    """Fail the run (exit code 1) on an endpoint left out, too many errors, a slow endpoint or a
    latency SLO's budget overrun (``verdicts``)."""
    limits, max_error_ratio, enforce_slo = SETTINGS
    stats = environment.stats
    problems = []
    if stats.total.num_requests == 0:
        problems.append("no request was made")
    elif stats.total.fail_ratio > max_error_ratio:
        problems.append(f"error ratio {stats.total.fail_ratio:.4%} > {max_error_ratio:.2%}")
    endpoints = [
        Endpoint(
            entry.name,
            entry.num_requests,
            entry.num_failures,
            entry.get_response_time_percentile(0.95) or 0.0,
            SUCCESS_TIMES.of(entry.name),
        )
        for entry in stats.entries.values()
        if entry.num_requests
    ]
    for endpoint in sorted(endpoints, key=lambda e: e.name):
        line, found = endpoint_verdict(endpoint, limits[kind_of(endpoint.name)], max_error_ratio)
        print(f"loadtest: {line}")
        problems += found
    problems += unanswered(expected_entries(environment), endpoints)
    for service in sorted({endpoint.service for endpoint in endpoints}):
        slo = objectives(service)
        verdict = slo_verdict(
            service, endpoints, slo.latency_endpoint, slo.latency_threshold, slo.latency, enforce=enforce_slo
        )
        if verdict is not None:
            line, problem = verdict
            print(f"loadtest: latency SLO: {line}")
            problems += [problem] if problem else []
    for problem in problems:
        print(f"loadtest: FAILED: {problem}")
    if problems:
        environment.process_exit_code = 1
    else:
        print(f"loadtest: passed ({stats.total.num_requests} requests, {stats.total.num_failures} failures)")
