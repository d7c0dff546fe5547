"""The load test's verdicts, as functions of Locust's figures: tested without a run (test_verdicts.py).

Three checks, each printed per line with ``loadtest:`` in front:

* every endpoint of every service under test got requests, and few enough of them failed;
* its p95 is under the threshold of its kind (``LOADTEST_P95_MS``);
* the share of a service's ``/predict`` requests (explained ones too: the service times them under
  the same endpoint) slower than its latency objective's threshold is within the objective's
  budget: 99 % under 50 ms leaves 1 % (``monitoring/mixin/common.py``, the figures
  LatencyBudgetBurn* alert on). Of its successful requests only: a refusal (401, 429, 503) is
  fast, and counting it would pass a run in which every request failed. Locust's histogram holds
  every request, so the locustfile records the successful ones' times itself (``SuccessTimes``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

KINDS = ("predict", "explain", "batch", "infer")
P95_MS = {"predict": 250.0, "explain": 400.0, "batch": 1500.0, "infer": 1500.0}
#: Fewer /predict requests than this say nothing about a 1 % budget: one slow answer is 2 % of 50.
SLO_MIN_REQUESTS = 100
SLO_MODES = ("enforce", "report")


def thresholds(text: str) -> dict[str, float]:
    """p95 limits per kind, ``P95_MS`` with ``text``'s (``predict=250,explain=400``) on top."""
    limits = dict(P95_MS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, equals, value = (s.strip() for s in part.partition("="))
        if kind not in limits:
            raise ValueError(
                f"LOADTEST_P95_MS: unknown kind {kind!r} in {part!r} (known: {', '.join(KINDS)})"
            )
        try:
            milliseconds = float(value)
        except ValueError:
            milliseconds = math.nan
        if not (equals and milliseconds > 0):  # NaN is not > 0
            raise ValueError(f"LOADTEST_P95_MS: {part!r} is not kind=milliseconds (e.g. {kind}=250)")
        limits[kind] = milliseconds
    return limits


def slo_mode(text: str) -> str:
    mode = text.strip() or SLO_MODES[0]
    if mode not in SLO_MODES:
        raise ValueError(f"LOADTEST_SLO: {text!r} is not one of {', '.join(SLO_MODES)}")
    return mode


def kind_of(entry_name: str) -> str:
    if entry_name.endswith("/predict/batch"):
        return "batch"
    if entry_name.endswith("/infer"):
        return "infer"
    return "explain" if entry_name.endswith("?explain") else "predict"


@dataclass(frozen=True)
class Endpoint:
    """What the verdicts read of one Locust statistics entry (``<service> <path>``)."""

    name: str
    requests: int
    failures: int
    p95_ms: float
    #: The successful requests' response times, as Locust's histogram holds them: ms (rounded: to
    #: 1 ms under 100, to 10 under 1000) -> count (``SuccessTimes``).
    response_times: Mapping[int, int]

    @property
    def service(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.name.split(" ", 1)[1].split("?", 1)[0]


class SuccessTimes:
    """Response times of the successful requests, per Locust entry name, fed by Locust's
    ``request`` event; ``bucket`` rounds them as Locust's own histogram (of every request) does
    (``locust.stats.bucket_response_time``: importing Locust here would monkey-patch the tests)."""

    def __init__(self, bucket: Callable[[float], int]) -> None:
        self.bucket = bucket
        self.by_name: defaultdict[str, Counter[int]] = defaultdict(Counter)

    def record(self, name: str, response_time: float | None, exception: BaseException | None) -> None:
        if exception is None and response_time is not None:
            self.by_name[name][self.bucket(response_time)] += 1

    def of(self, name: str) -> dict[int, int]:
        return dict(self.by_name.get(name, {}))


def endpoint_verdict(endpoint: Endpoint, limit_ms: float, max_error_ratio: float) -> tuple[str, list[str]]:
    """The endpoint's line and its problems: failed requests over the ratio, or a p95 over the limit.

    A refused connection answers in no time, so the p95 of a dead endpoint looks fast: its errors
    decide first.
    """
    problems = []
    failed = endpoint.failures / endpoint.requests if endpoint.requests else 0.0
    if failed > max_error_ratio:
        problems.append(
            f"{endpoint.name}: {endpoint.failures} of {endpoint.requests} requests failed "
            f"({failed:.1%} > {max_error_ratio:.2%}; locust_failures.csv says why)"
        )
    if endpoint.p95_ms > limit_ms:
        problems.append(f"{endpoint.name}: p95 {endpoint.p95_ms:.0f} ms > {limit_ms:.0f} ms")
    verdict = "FAILED" if failed > max_error_ratio else "TOO SLOW" if endpoint.p95_ms > limit_ms else "ok"
    line = (
        f"{endpoint.name}: {endpoint.requests} requests, {endpoint.failures} failed, "
        f"p95 {endpoint.p95_ms:.0f} ms (limit {limit_ms:.0f}) {verdict}"
    )
    return line, problems


def unanswered(expected: Iterable[str], endpoints: Iterable[Endpoint]) -> list[str]:
    """Problems for the expected endpoints (``<service> <path>``) no request was sent to."""
    sent = {endpoint.name for endpoint in endpoints if endpoint.requests}
    return [
        f"{name}: no request was made (a service without a user, or too short a run for this kind)"
        for name in expected
        if name not in sent
    ]


def slo_verdict(
    service: str,
    endpoints: Iterable[Endpoint],
    endpoint_path: str,
    threshold_s: float,
    objective: float,
    *,
    enforce: bool,
) -> tuple[str, str | None] | None:
    """The service's latency objective against this run: its line and, when enforced, the problem.

    None when no request went to ``endpoint_path``. The share over the threshold is of the
    successful requests, measured by Locust, on the client: it includes Locust's own time on a
    machine it shares with the services, so it can only overstate what the service's histogram
    counts. None of them successful is a failed verdict, enforced or not: there is no latency to
    report, and "ok" would read as a pass.
    """
    timed = [e for e in endpoints if e.service == service and e.path == endpoint_path and e.requests]
    if not timed:
        return None
    threshold_ms = threshold_s * 1000
    budget = 1 - objective
    requests = sum(n for e in timed for n in e.response_times.values())
    if not requests:
        sent = sum(e.requests for e in timed)
        return (
            f"{service} {endpoint_path} (explained too): no successful requests of {sent} FAILED",
            f"{service} {endpoint_path}: no successful requests (of {sent}) to judge the latency SLO by "
            "(locust_failures.csv says why they failed)",
        )
    slow = sum(n for e in timed for ms, n in e.response_times.items() if ms > threshold_ms)
    share = slow / requests
    figure = (
        f"{service} {endpoint_path} (explained too): {share:.1%} of {requests} successful requests over "
        f"{threshold_ms:g} ms, budget {budget:.0%} (SLO: {objective:.0%} under {threshold_ms:g} ms)"
    )
    if requests < SLO_MIN_REQUESTS:
        return f"{figure} too few requests to judge (< {SLO_MIN_REQUESTS}): run longer", None
    if share <= budget:
        return f"{figure} ok", None
    problem = (
        f"{service} {endpoint_path}: {share:.1%} of successful requests over {threshold_ms:g} ms burns "
        f"the latency budget ({budget:.0%}) {share / budget:.1f}x as fast as the SLO allows "
        "(LatencyBudgetBurn* would follow). Locust times on the client, beside the services on this "
        "machine: compare the service's own p99 (make monitor: "
        "service_endpoint:prediction_latency_seconds:p99_rate5m), try fewer LOAD_USERS, or "
        "LOADTEST_SLO=report to report this figure without failing"
    )
    if not enforce:
        return f"{figure} OVER BUDGET (reported only: LOADTEST_SLO=report)", None
    return f"{figure} OVER BUDGET", problem
