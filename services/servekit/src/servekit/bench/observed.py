"""``python -m servekit.bench.observed``: what a prediction costs the pods in production, from Prometheus.

``python -m servekit.bench.cpu`` measures the CPU and log bytes of a prediction on this machine, one
kind of request at a time, before a deployment. This reads the same figures from the Prometheus that
scrapes the deployed services, over a window (a day by default), for the traffic they really got:
its mix of single and batch requests, of explained and not, on the cluster's own nodes. The result
has the shape of ``reports/cpu.json`` with one kind, ``observed``, so ``k8s/cost.py --cpu`` prices
it as it prices a measurement, and ``--load-observed`` prices each service at the rate it was
observed to serve. Per service, over the window:

* ``predictions_per_second``: the predictions answered (a canary's included, counted once), over
  the part of the window the service was there (``seconds_observed``);
* ``cpu_ms_per_prediction``: the CPU of every replica that was ready in the window over them, what
  ``service:process_cpu_seconds_per_prediction:ratio_rate5m`` records every 5 minutes;
* ``cores``: that CPU per ready replica, on average: how near the HPA's target the pods ran;
* ``capture_bytes_per_prediction``: the bytes of the capture's log lines over the instances it
  captured (present only where the capture was on); ``captured_share``, those lines over the
  predictions (a shadow model's captured answers are lines too, so with one it can pass the
  capture's percentage: it is what the log bill counts);
* ``operational_log_bytes_per_prediction``: the access log's and every other logger's bytes over
  the predictions, which ``make cost``'s own measurement cannot know;
* ``rate_profile``: the rate at about 240 points of the window, which ``--load-observed`` prices
  point by point, as an HPA follows the load.

usage: python -m servekit.bench.observed --prometheus URL [--window 1d] [--match 'namespace="ml"']
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from servekit import prometheus, registry
from servekit.bench import reports
from servekit.cli.common import documented_parser
from servekit.errors import ServekitError
from servekit.metrics.names import CANARY, CAPTURE_LOGGER, MetricNames

#: The kind ``k8s/cost.py`` reads these figures under.
OBSERVED = "observed"
DURATION = re.compile(r"^([0-9]+)([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

#: Points of a service's rate over the window (``rate_profile``): enough to follow a daily cycle.
PROFILE_POINTS = 240


class Source(Protocol):
    """Where the figures are read: a Prometheus's HTTP API (:class:`PrometheusSource`)."""

    def value(self, expr: str) -> float | None: ...

    def by(self, expr: str, label: str) -> dict[str, float]: ...

    def series(self, expr: str) -> list[tuple[float, float]]: ...


@dataclass(frozen=True)
class PrometheusSource:
    """Every query evaluated at one instant, ``at``: the window's end.

    The figures are ratios of two queries (bytes over captured lines, CPU over predictions), and
    increase() extrapolates a counter from its last sample to the window's end. Two queries a
    second apart would each extrapolate to their own end, which tilts the ratio of a short window
    by a few per cent; at one instant both are taken over the same samples.
    """

    url: str
    at: float

    def value(self, expr: str) -> float | None:
        return prometheus.query(self.url, expr, at=self.at)

    def by(self, expr: str, label: str) -> dict[str, float]:
        return prometheus.query_by(self.url, expr, label, at=self.at)

    def series(self, expr: str) -> list[tuple[float, float]]:
        return prometheus.series(self.url, expr, at=self.at)


def window_seconds(window: str) -> int:
    """Seconds in a Prometheus duration of one unit (``90s``, ``30m``, ``6h``, ``1d``, ``1w``)."""
    found = DURATION.match(window)
    if not found or int(found[1]) == 0:
        raise ValueError(f"--window {window!r}: a number and one of s, m, h, d, w, e.g. 1d")
    return int(found[1]) * SECONDS[found[2]]


class Queries:
    """The PromQL of one service's figures over a window, built from the metric names it exports."""

    def __init__(self, service: str, window: str, match: str = "") -> None:
        self.names = MetricNames(service)
        self.window = window
        self.match = match
        # The mean number of ready replicas and the rate profile are subqueries of about 240 points.
        step = max(1, -(-window_seconds(window) // PROFILE_POINTS))  # rounded up: 240 points at most
        self.step = f"{step}s"
        # Each point's rate covers its step (no load between points is missed), and a minute at
        # least, so that a 30 s scrape interval gives it two samples.
        self.rate_range = f"{max(60, step)}s"

    def selector(self, name: str, **labels: str) -> str:
        matchers = [self.match] if self.match else []
        matchers += [f'{key}="{value}"' for key, value in labels.items()]
        return f"{name}{{{','.join(matchers)}}}" if matchers else name

    def over(self, function: str, name: str, window: str, **labels: str) -> str:
        """``function`` (increase, rate) of a counter's selector over ``window``."""
        return f"{function}({self.selector(name, **labels)}[{window}])"

    def increase(self, name: str, **labels: str) -> str:
        return self.over("increase", name, self.window, **labels)

    def _answered(self, function: str, window: str) -> str:
        # A canary's answers are counted only in the variant series; the stable model's in both.
        n = self.names
        served = self.over(function, n.predictions_total, window)
        canary = self.over(function, n.variant_predictions_total, window, variant=CANARY)
        return f"sum({served}) + (sum({canary}) or vector(0))"

    @property
    def answered(self) -> str:
        return self._answered("increase", self.window)

    @property
    def rate_profile(self) -> str:
        return f"({self._answered('rate', self.rate_range)})[{self.window}:{self.step}]"

    @property
    def cpu_seconds(self) -> str:
        # The service's pods are the processes that exported its model_ready in the window.
        ready = f"last_over_time({self.selector(self.names.model_ready)}[{self.window}])"
        return f"sum({self.increase('process_cpu_seconds_total')} and on (instance, job) {ready})"

    @property
    def replicas(self) -> str:
        return f"avg_over_time(sum({self.selector(self.names.model_ready)})[{self.window}:{self.step}])"

    @property
    def seconds_observed(self) -> str:
        # A service deployed (or a Prometheus started) within the window has less history than the
        # window: its rates are over the time it was there, not over the whole window.
        ready = f"sum({self.selector(self.names.model_ready)})"
        return f"time() - min_over_time(timestamp({ready})[{self.window}:{self.step}])"

    @property
    def captured(self) -> str:
        return f"sum({self.increase(self.names.captured_instances_total)})"

    @property
    def log_bytes(self) -> str:
        return f"sum by (logger) ({self.increase(self.names.log_bytes_total)})"


def observe(service: str, window: str, source: Source, match: str = "") -> dict[str, Any] | None:
    """The service's figures over ``window``; None when it answered no prediction in it."""
    q = Queries(service, window, match)
    # The ratios are taken over the counts as reported, so that a reader dividing the report's own
    # figures gets its rates: over a few seconds, rounding the window to 0.1 s and increase()'s
    # extrapolated count to a whole prediction each moves a rate by half a per cent.
    answered = round(source.value(q.answered) or 0.0)
    if answered < 1:
        return None
    seconds = round(min(float(window_seconds(window)), source.value(q.seconds_observed) or float("inf")), 1)
    cpu_seconds = round(source.value(q.cpu_seconds) or 0.0, 3)
    replicas = source.value(q.replicas) or 0.0
    captured = source.value(q.captured) or 0.0
    logged = source.by(q.log_bytes, "logger")
    figures: dict[str, Any] = {
        "window": window,
        "seconds_observed": seconds,
        "predictions": answered,
        "predictions_per_second": round(answered / seconds, 3),
        "replicas": round(replicas, 2),
        "cpu_seconds": cpu_seconds,
        "cores": round(cpu_seconds / seconds / replicas, 3) if replicas else 0.0,
        "cpu_ms_per_prediction": round(1000 * cpu_seconds / answered, 4),
        "captured_share": round(captured / answered, 4),
    }
    if captured >= 1 and logged.get(CAPTURE_LOGGER):
        figures["capture_bytes_per_prediction"] = round(logged[CAPTURE_LOGGER] / captured)
    operational = sum(size for logger, size in logged.items() if logger != CAPTURE_LOGGER)
    figures["operational_log_bytes_per_prediction"] = round(operational / answered, 1)
    # The rate at each step of the window: an HPA follows the load, so a day's pods are priced
    # point by point (k8s/cost.py --load-observed), not at the day's mean rate.
    figures["rate_profile"] = [[round(t), round(rate, 3)] for t, rate in source.series(q.rate_profile)]
    return figures


def describe(service: str, figures: dict[str, Any]) -> str:
    line = (
        f"{service}: {figures['predictions_per_second']:,.1f} predictions/s over {figures['window']} "
        f"({figures['seconds_observed']:,.0f} s of it observed), "
        f"{figures['cpu_ms_per_prediction']:.3f} ms of CPU each ({figures['replicas']:g} ready replicas at "
        f"{figures['cores']:.2f} cores); {figures['operational_log_bytes_per_prediction']:,g} bytes of "
        "access and service log lines each"
    )
    if "capture_bytes_per_prediction" in figures:
        line += (
            f"; {figures['captured_share']:.1%} captured, {figures['capture_bytes_per_prediction']:,} "
            "bytes a captured line"
        )
    return line


def parser() -> argparse.ArgumentParser:
    p = documented_parser("python -m servekit.bench.observed", __doc__)
    p.add_argument(
        "--prometheus", required=True, help=f"its URL (a bearer token from ${prometheus.TOKEN_ENV})"
    )
    p.add_argument("--window", default="1d", help="how far back, as a Prometheus duration (default 1d)")
    p.add_argument(
        "--match", default="", help='a label matcher every selector gets, e.g. namespace="ml-platform"'
    )
    p.add_argument("--services", nargs="*", help="default: every installed service")
    p.add_argument("--output", type=Path, default=Path("reports/observed.json"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        window_seconds(args.window)
    except ValueError as error:
        p.error(str(error))
    source = PrometheusSource(args.prometheus, at=time.time())
    report: dict[str, Any] = {
        # The window's end, at which every figure was evaluated.
        "measured_at": datetime.datetime.fromtimestamp(source.at, datetime.UTC).isoformat(timespec="seconds"),
        "observed": {"prometheus": args.prometheus, "window": args.window, "match": args.match},
        "services": {},
    }
    try:
        for name in args.services or registry.available():
            figures = observe(name, args.window, source, args.match)
            if figures is None:
                print(f"{name}: no prediction answered in the last {args.window}: left out")
                continue
            report["services"][name] = {OBSERVED: figures}
            print(describe(name, figures))
    except ServekitError as error:
        print(f"observed: {error.message}", file=sys.stderr)
        return 1
    if not report["services"]:
        print("observed: no service answered a prediction in the window; nothing written", file=sys.stderr)
        return 1
    reports.write(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
