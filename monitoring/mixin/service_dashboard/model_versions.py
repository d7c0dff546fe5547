"""The served model's loads and versions across the replicas."""

from __future__ import annotations

from mixin.grafana import Grid, panel
from mixin.service_dashboard.variables import INSTANCE
from servekit.metrics.names import MetricNames


def add_model_load_panel(g: Grid, service: str) -> None:
    """How long each replica's last model load took, by phase."""
    n = MetricNames(service)
    g.add(
        panel(
            "timeseries",
            "Model load time (last load, by phase)",
            "How long each replica's last model load took: fetch (resolve the URI, download and "
            "deserialise), build, warm_up. Part of how long a new pod takes to turn ready, and of a "
            "promotion's switch (ModelNotReady when it never ends).",
            "s",
            [(f"max by (instance, phase) ({n.model_load_seconds}{{{INSTANCE}}})", "{{instance}} {{phase}}")],
        ),
        12,
        6,
    )


def add_model_version_panels(g: Grid, service: str) -> None:
    """The replicas serving each version, and those that cannot refresh to the one their alias names."""
    n = MetricNames(service)
    g.add(
        panel(
            "timeseries",
            "Replicas by model version",
            "Replicas serving each registry version: a promotion moves them within "
            f"{service.upper()}_MODEL_REFRESH_SECONDS; a replica left behind cannot load the new one.",
            "none",
            [(f"count by (version) ({n.model_info}{{{INSTANCE}}})", "v{{version}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Model refresh failing",
            "Replicas that cannot check their alias or load the version it points at (they keep "
            "serving the one they have); ModelRefreshFailing fires after 15 minutes.",
            "none",
            [(f"sum({n.model_refresh_failing}{{{INSTANCE}}})", "failing replicas")],
            thresholds=[(1, "orange")],
        ),
        12,
        6,
    )
