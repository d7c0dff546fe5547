"""What one replica shows at a share of its capacity: the figures an autoscaler could scale on.

A load is sent open-loop at fractions of what one worker answers, and for each the replica's
own ``/metrics`` give the CPU it used (``process_cpu_seconds_total``: in a container of one
process, what metrics-server reports to the HorizontalPodAutoscaler) and its prediction
concurrency: the seconds spent answering prediction requests per second of wall time (the rate
of the prediction latency histogram's ``_sum``), by Little's law the mean number of requests in
the app. The second is what ``k8s/components/autoscale-on-concurrency`` scales on, recorded by
the same expression (``monitoring/mixin/recorded.py``: ``CONCURRENCY``).
The event loop's mean lag (``servekit.lag_monitor``) is read too: the wait before the app
that neither of the other two sees.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from servekit import http_client
from servekit.bench import load
from servekit.metrics.names import MetricNames

#: Shares of the measured capacity the load is offered at: below, at and past it.
FRACTIONS = (0.25, 0.5, 0.75, 1.0, 1.5)
#: The share offered again with a process spinning on every core beside the replica, as a noisy
#: neighbour on a node (or a CPU limit) takes its CPU: the pod gets slower while using less.
CONTENDED_FRACTION = 0.5
CPU_SECONDS = "process_cpu_seconds_total"


@dataclass(frozen=True)
class Reading:
    """Cumulative counters of one scrape."""

    at: float
    cpu_seconds: float
    prediction_seconds: float
    #: The event loop's lateness: total seconds and timer wake-ups (the lag histogram's _sum, _count).
    lag_seconds: float
    lag_count: float


def scrape(url: str, timeout: float = 5) -> list[Sample]:
    """Every sample of a replica's ``/metrics``."""
    text = http_client.get(f"{url}/metrics", timeout=timeout).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def read(url: str, service: str) -> Reading:
    names = MetricNames(service)
    totals: defaultdict[str, float] = defaultdict(float)
    samples = scrape(url)
    at = time.monotonic()
    for sample in samples:
        totals[sample.name] += sample.value  # the latency _sum has a series per endpoint
    lag = names.event_loop_lag_seconds
    return Reading(
        at,
        cpu_seconds=totals[CPU_SECONDS],
        prediction_seconds=totals[names.prediction_latency_seconds + "_sum"],
        lag_seconds=totals[lag + "_sum"],
        lag_count=totals[lag + "_count"],
    )


def rates(before: Reading, after: Reading) -> dict[str, float | None]:
    """CPU cores, prediction concurrency and the event loop's mean lag between two readings."""
    elapsed = after.at - before.at
    wakeups = after.lag_count - before.lag_count
    return {
        "cpu_cores": round((after.cpu_seconds - before.cpu_seconds) / elapsed, 3),
        "prediction_concurrency": round((after.prediction_seconds - before.prediction_seconds) / elapsed, 3),
        "event_loop_lag_ms": (
            round(1000 * (after.lag_seconds - before.lag_seconds) / wakeups, 2) if wakeups else None
        ),
    }


@contextlib.contextmanager
def neighbours(count: int) -> Iterator[None]:
    """``count`` processes spinning on the CPU while the block runs; stopped by their process id."""
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        if spinning:
            time.sleep(0.5)  # scheduled and running before the load starts
        yield
    finally:
        for process in spinning:
            process.kill()
            process.wait()


def measure(
    url: str,
    service: str,
    requests: Sequence[bytes],
    *,
    capacity: float,
    seconds: float,
    deadline: float,
    fractions: Sequence[float] = FRACTIONS,
    contended: float | None = CONTENDED_FRACTION,
) -> list[dict[str, Any]]:
    """One row per fraction of ``capacity`` (requests/s): what clients got, and the three signals.

    ``contended``: that fraction again, with a process spinning on each core beside the replica.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    loads = [(fraction, 0) for fraction in fractions]
    if contended is not None:
        loads.append((contended, os.cpu_count() or 1))
    rows = []
    for fraction, spinning in loads:
        with neighbours(spinning):
            before = read(url, service)
            outcome = load.run_open_loop(
                host,
                int(port),
                requests,
                rate=capacity * fraction,
                seconds=seconds,
                deadline=deadline,
                warmup=0,
            )
            after = read(url, service)
        result = outcome.as_dict()
        rows.append(
            {
                "fraction_of_capacity": fraction,
                "neighbours_spinning": spinning,
                **rates(before, after),
                "goodput_per_second": result["goodput_per_second"],
                "late": result["late"],
                "shed": result["shed"],
                "failed": result["failed"],
                "answered_p99_ms": round(result["answered_latency"]["p99_ms"], 1),
                "answered_mean_ms": round(result["answered_latency"]["mean_ms"], 2),
            }
        )
    return rows
