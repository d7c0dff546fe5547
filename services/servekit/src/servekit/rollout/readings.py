"""What a rollout reads from Prometheus, and the PromQL that reads it: the two variants' figures
(``Reading``) and which canary versions the pods serve (``Serving``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from servekit import prometheus
from servekit.errors import ServekitError
from servekit.metrics.names import CANARY, STABLE, MetricNames


@dataclass(frozen=True)
class Serving:
    """Which canary versions the pods serve (``<svc>_canary_model_info``), summed over the pods."""

    #: Pods serving the rollout's version, and pods serving another canary version.
    version_pods: float
    other_pods: float
    #: Pods whose canary cannot follow its alias (``<svc>_canary_refresh_failing``).
    failing_pods: float

    @property
    def loaded(self) -> bool:
        """Whether every canary answer now comes from the rollout's version, and some pod gives them."""
        return self.version_pods > 0 and self.other_pods == 0


@dataclass(frozen=True)
class Reading:
    """The two variants since the rollout began, summed over the pods."""

    requests: dict[str, float]
    failures: dict[str, float]
    p95_seconds: dict[str, float | None]
    stopped_pods: float
    not_ready_fallbacks: float
    #: The p95 over the interval since the previous reading, when it was read with this one (a
    #: quantile cannot be subtracted from another, so it is queried over that interval).
    recent_p95_seconds: dict[str, float | None] | None = None
    #: The requests the router drew at random for each variant (``<svc>_variant_draws_total``):
    #: ``requests`` also holds those asked for, pinned or keyed, which are no sign of the share.
    draws: dict[str, float] | None = None

    def since(self, earlier: Reading) -> Reading:
        """The interval between ``earlier`` and this reading (both since the start): the requests
        and failures in it, their p95 if it was read, and the stopped pods of this reading."""

        def minus(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
            return {variant: max(now[variant] - before.get(variant, 0.0), 0.0) for variant in now}

        return Reading(
            requests=minus(self.requests, earlier.requests),
            failures=minus(self.failures, earlier.failures),
            p95_seconds=self.recent_p95_seconds or dict.fromkeys(self.p95_seconds),
            stopped_pods=self.stopped_pods,
            not_ready_fallbacks=max(self.not_ready_fallbacks - earlier.not_ready_fallbacks, 0.0),
            draws=minus(self.draws, earlier.draws or {}) if self.draws is not None else None,
        )

    def failure_ratio(self, variant: str) -> float:
        requests = self.requests[variant]
        return self.failures[variant] / requests if requests else 0.0

    def line(self) -> str:
        def ms(variant: str) -> str:
            p95 = self.p95_seconds[variant]
            return "-" if p95 is None else f"{p95 * 1000:.2f} ms"

        return (
            f"canary {self.requests[CANARY]:,.0f} requests, {self.failure_ratio(CANARY):.2%} failed, "
            f"p95 {ms(CANARY)}; stable {self.requests[STABLE]:,.0f} requests, "
            f"{self.failure_ratio(STABLE):.2%} failed, p95 {ms(STABLE)}"
        )


class PrometheusReader:
    """Reads a service's variant metrics over the last ``window`` seconds from Prometheus's HTTP API."""

    def __init__(self, url: str, service: str, *, match: str = "", timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.names = MetricNames(service)
        self.match = match
        self.timeout = timeout

    def _selector(self, **labels: str) -> str:
        """``{labels}``; a value that starts with ``!`` is matched with ``!=``."""
        matchers = [self.match] if self.match else []
        matchers += [
            f'{key}!="{value[1:]}"' if value.startswith("!") else f'{key}="{value}"'
            for key, value in labels.items()
        ]
        return "{" + ",".join(matchers) + "}"

    def query(self, expr: str, at: float | None = None) -> float | None:
        return prometheus.query(self.url, expr, self.timeout, at)

    def check(self) -> None:
        """Refuses a Prometheus that holds no series of the service's canary counter: a rollout
        would read 0 requests of each variant, and keep the canary on real traffic for every step."""
        counter = self.names.variant_requests_total + self._selector()
        if self.query(f"count({counter})") is not None:
            return
        matching = f" (--match {self.match})" if self.match else ""
        raise ServekitError(
            400,
            "no_canary_series",
            f"Prometheus at {self.url} has no series {counter}{matching}: check --match, that it "
            f"scrapes the {self.names.service} pods, and that they run with "
            f"{self.names.service.upper()}_CANARY_MODEL_URI (without it they count no canary)",
        )

    def serving(self, version: str) -> Serving:
        """How many pods serve ``version`` as their canary, how many another version, and how many
        cannot follow the canary's alias, at one instant."""
        n, at = self.names, time.time()

        def count(expr: str) -> float:
            return self.query(f"count({expr})", at) or 0.0

        return Serving(
            version_pods=count(n.canary_model_info + self._selector(version=version)),
            other_pods=count(n.canary_model_info + self._selector(version=f"!{version}")),
            failing_pods=self.query(f"sum({n.canary_refresh_failing}{self._selector()})", at) or 0.0,
        )

    def read(self, window: int, recent: int | None = None) -> Reading:
        """The last ``window`` seconds; with ``recent``, the p95 over its last ``recent`` too."""
        n, w = self.names, f"[{window}s]"
        # Every query at one instant: a failure ratio divides one query by another, and
        # ``increase()`` extrapolates each to its own evaluation time, so a second between the two
        # would tilt it (the same fix as servekit.bench.observed's).
        at = time.time()

        def total(expr: str) -> float:
            return self.query(f"sum(increase({expr}{w}))", at) or 0.0

        def p95_over(variant: str, seconds: int) -> float | None:
            buckets = f"{n.variant_latency_seconds}_bucket{self._selector(variant=variant)}[{seconds}s]"
            return self.query(f"histogram_quantile(0.95, sum by (le) (increase({buckets})))", at)

        requests, failures, p95 = {}, {}, {}
        for variant in (STABLE, CANARY):
            requests[variant] = total(n.variant_requests_total + self._selector(variant=variant))
            failures[variant] = total(
                n.variant_requests_total + self._selector(variant=variant, result="failed")
            )
            p95[variant] = p95_over(variant, window)
        return Reading(
            requests=requests,
            failures=failures,
            p95_seconds=p95,
            recent_p95_seconds=(
                {variant: p95_over(variant, recent) for variant in (STABLE, CANARY)} if recent else None
            ),
            stopped_pods=self.query(f"sum({n.canary_stopped}{self._selector()})", at) or 0.0,
            not_ready_fallbacks=total(n.canary_fallbacks_total + self._selector(reason="not_ready")),
            draws={
                variant: total(n.variant_draws_total + self._selector(variant=variant))
                for variant in (STABLE, CANARY)
            },
        )
