"""What one replica shows at a share of its capacity: the figures an autoscaler could scale on.

A load is sent open-loop at fractions of what one worker answers, and for each the replica's
own ``/metrics`` give the CPU it used (``process_cpu_seconds_total``, what the kubelet reports
to the HorizontalPodAutoscaler as the pod's CPU) and its prediction concurrency: the seconds
spent answering prediction requests per second of wall time (the rate of the prediction
latency histogram's ``_sum``), by Little's law the mean number of requests in the app. The
second is the metric ``k8s/components/autoscale-on-concurrency`` scales on, through the same
expression (``monitoring/generate.py``: ``prediction_concurrency``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from servekit.bench import load
from servekit.metrics.names import MetricNames

#: Shares of the measured capacity the load is offered at: below, at and past it.
FRACTIONS = (0.25, 0.5, 0.75, 1.0, 1.5)
CPU_SECONDS = "process_cpu_seconds_total"


@dataclass(frozen=True)
class Reading:
    """Cumulative counters of one scrape."""

    at: float
    cpu_seconds: float
    prediction_seconds: float


def read(url: str, service: str) -> Reading:
    busy = MetricNames(service).prediction_latency_seconds + "_sum"
    cpu = prediction = 0.0
    text = httpx.get(f"{url}/metrics", timeout=5).text
    at = time.monotonic()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == CPU_SECONDS:
                cpu = sample.value
            elif sample.name == busy:
                prediction += sample.value
    return Reading(at, cpu, prediction)


def rates(before: Reading, after: Reading) -> dict[str, float]:
    """CPU cores and prediction concurrency between two readings."""
    elapsed = after.at - before.at
    return {
        "cpu_cores": round((after.cpu_seconds - before.cpu_seconds) / elapsed, 3),
        "prediction_concurrency": round((after.prediction_seconds - before.prediction_seconds) / elapsed, 3),
    }


def measure(
    url: str,
    service: str,
    requests: Sequence[bytes],
    *,
    capacity: float,
    seconds: float,
    deadline: float,
    fractions: Sequence[float] = FRACTIONS,
) -> list[dict[str, Any]]:
    """One row per fraction of ``capacity`` (requests/s): what clients got, and the two signals."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    rows = []
    for fraction in fractions:
        before = read(url, service)
        outcome = load.run_open_loop(
            host, int(port), requests, rate=capacity * fraction, seconds=seconds, deadline=deadline, warmup=0
        )
        after = read(url, service)
        result = outcome.as_dict()
        rows.append(
            {
                "fraction_of_capacity": fraction,
                **rates(before, after),
                "goodput_per_second": result["goodput_per_second"],
                "late": result["late"],
                "shed": result["shed"],
                "failed": result["failed"],
                "answered_p99_ms": round(result["answered_latency"]["p99_ms"], 1),
            }
        )
    return rows
