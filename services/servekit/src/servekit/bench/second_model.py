"""The saturating loads again with a second model (a shadow or a canary) beside the served one.

It measures each load against the same load with the model alone, and counts what the
second model did from the replica's own metrics.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from servekit.bench import scaling
from servekit.bench.http_figures import Load, measure_http
from servekit.bench.servers import serving, wait_for_variants
from servekit.local import Server
from servekit.metrics.names import MetricNames
from servekit.spec import ServiceSpec


def measure_beside(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    *,
    role: str,
    settings: dict[str, str],
    seconds: float,
    loads: dict[str, Load],
    alone: dict[str, Any],
) -> dict[str, Any]:
    """``loads`` on a server with a second model in ``role`` (``shadow``, ``canary``), against ``alone``."""
    with serving(spec, mlflow, work, label=role, settings=settings) as server:
        wait_for_variants(server, [role])
        http = measure_http(server, loads, seconds)
        for label, row in http.items():
            row["ratio_to_alone"] = round(row["requests_per_second"] / alone[label]["requests_per_second"], 3)
        return {"http": http, "counts": model_counts(server, spec.name, role)}


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
