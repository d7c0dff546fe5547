"""What the replicas use: memory against the container limit, and CPU per replica and per prediction."""

from __future__ import annotations

from mixin.common import objectives, sel
from mixin.grafana import Grid, panel
from mixin.recorded import CPU_PER_PREDICTION, CPU_RATE, MEMORY_LIMIT, MEMORY_RATIO
from mixin.service_dashboard.variables import INSTANCE
from servekit.metrics.names import MetricNames


def add_resource_panels(g: Grid, service: str) -> None:
    """Process memory, its share of the container limit, process CPU and CPU per prediction."""
    n, o = MetricNames(service), objectives(service)
    g.add(
        panel(
            "timeseries",
            "Process memory",
            "Resident memory per replica and the container limit.",
            "bytes",
            [
                (
                    f"process_resident_memory_bytes{{{INSTANCE}}} and on (instance, job) {n.model_ready}",
                    "{{instance}}",
                ),
                (sel(MEMORY_LIMIT, service), "limit"),
            ],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Process memory: share of the container limit",
            "Resident memory per replica over its container's limit: the very series MemoryNearLimit "
            f"holds to {o.memory_ratio:.0%} for 5 minutes. Past the limit the pod is OOM-killed.",
            "percentunit",
            [(sel(MEMORY_RATIO, service), "{{instance}}")],
            thresholds=[(o.memory_ratio, "orange")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Process CPU",
            "CPU seconds per second per replica (1 = one core).",
            "percentunit",
            [(sel(CPU_RATE, service, INSTANCE), "{{instance}}")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "CPU per prediction",
            "CPU seconds of every ready replica over the predictions answered, a canary's included: "
            "what make cost measures before a deployment and prices (README, Cost). It falls as the "
            "load rises, and a shadow model adds its own scoring to it.",
            "s",
            [(sel(CPU_PER_PREDICTION, service), "all replicas")],
        ),
        12,
        8,
    )
