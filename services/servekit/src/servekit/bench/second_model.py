"""The saturating loads again with a second model (a shadow or a canary) beside the served one.

It measures each load against the same load with the model alone, on a second replica up at the
same time, in alternating rounds (alone then beside, then beside then alone, ``ROUNDS`` in all):
a ratio to one "alone" taken minutes earlier also measured whatever else the host did in between.
The ratio reported is the median of the rounds' ratios, with their lowest and highest. It counts
what the second model did from the replica's own metrics.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from servekit.bench import scaling
from servekit.bench.http_figures import Load, measure_http
from servekit.bench.servers import serving, wait_for_variants
from servekit.local import Server
from servekit.metrics.names import MetricNames
from servekit.spec import ServiceSpec

#: Rounds of alone-then-beside; each load runs ``seconds / ROUNDS`` (at least MIN_ROUND_SECONDS)
#: on each replica per round.
ROUNDS = 3
MIN_ROUND_SECONDS = 2.0


def measure_beside(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    *,
    role: str,
    settings: dict[str, str],
    seconds: float,
    loads: dict[str, Load],
) -> dict[str, Any]:
    """``loads`` on a server with a second model in ``role`` (``shadow``, ``canary``), against the same
    loads on a server without it, in :data:`ROUNDS` alternating rounds."""
    per_round = max(seconds / ROUNDS, MIN_ROUND_SECONDS)
    with (
        serving(spec, mlflow, work, label=f"{role}-alone") as alone,
        serving(spec, mlflow, work, label=role, settings=settings) as server,
    ):
        wait_for_variants(server, [role])
        rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for number in range(ROUNDS):
            # Which goes first alternates too: the second of a pair runs on a host the first has
            # just warmed (or heated), and that would otherwise always favour one side.
            if number % 2:
                beside = measure_http(server, loads, per_round)
                rounds.append((measure_http(alone, loads, per_round), beside))
            else:
                rounds.append((measure_http(alone, loads, per_round), measure_http(server, loads, per_round)))
        http = {label: beside_row(label, rounds) for label in loads}
        return {"http": http, "rounds": ROUNDS, "counts": model_counts(server, spec.name, role)}


def beside_row(label: str, rounds: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """A load's row: the round whose beside req/s is the median, the median of the rounds' ratios
    (beside / alone, each round's own), their lowest and highest, and each round's req/s."""
    pairs = [(alone[label], beside[label]) for alone, beside in rounds]
    ratios = [b["requests_per_second"] / a["requests_per_second"] for a, b in pairs]
    median_beside = sorted(pairs, key=lambda pair: pair[1]["requests_per_second"])[len(pairs) // 2][1]
    return {
        **median_beside,
        "ratio_to_alone": round(statistics.median(ratios), 3),
        "ratio_low": round(min(ratios), 3),
        "ratio_high": round(max(ratios), 3),
        "rounds": [
            {
                "alone_requests_per_second": a["requests_per_second"],
                "beside_requests_per_second": b["requests_per_second"],
                "ratio": round(r, 3),
            }
            for (a, b), r in zip(pairs, ratios, strict=True)
        ],
    }


def model_counts(server: Server, name: str, role: str) -> dict[str, float]:
    """What the second model did: instances compared and skipped, or requests per variant."""
    names = MetricNames(name)
    counted = {"shadow": names.shadow_predictions_total, "canary": names.variant_requests_total}[role]

    def scrape() -> dict[str, float]:
        counts: dict[str, float] = {}
        for sample in scaling.scrape(server.url):
            if sample.name == counted:
                key = (
                    "compared"
                    if role == "shadow"
                    else f"{sample.labels['variant']} {sample.labels['result']}"
                )
                counts[key] = counts.get(key, 0.0) + sample.value
            elif sample.name == names.shadow_skipped_total:
                counts[f"skipped {sample.labels['reason']}"] = sample.value
        return counts

    counts = scrape()
    for _ in range(50):  # a shadow's worker may still be scoring the last requests
        time.sleep(0.1)
        again = scrape()
        if again == counts:
            break
        counts = again
    return counts
