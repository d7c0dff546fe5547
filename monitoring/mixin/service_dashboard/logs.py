"""What the pods log: access log lines left out, captured instances, and the log volume billed."""

from __future__ import annotations

from mixin.common import sel
from mixin.grafana import Grid, panel
from mixin.recorded import LOG_BYTES_PER_PREDICTION
from mixin.service_dashboard.variables import INSTANCE
from servekit.metrics.names import MetricNames


def add_log_panels(g: Grid, service: str) -> None:
    """Access log lines left out, captured instances, log bytes by logger and per prediction."""
    n = MetricNames(service)
    left_out = n.access_log_lines_left_out_total
    g.add(
        panel(
            "timeseries",
            "Access log lines left out (per second, 5 m)",
            "Above zero, the access log is incomplete: more 4xx/5xx lines were due than "
            f"{service.upper()}_ACCESS_LOG_MAX_PER_SECOND allows; the Requests panel still counts "
            "every request.",
            "short",
            [(f"sum by (instance) (rate({left_out}{{{INSTANCE}}}[5m]))", "{{instance}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Captured instances (per second, 5 m)",
            "Instances written with their inputs and answers to the servekit.capture log "
            f"({service.upper()}_CAPTURE_PERCENT of the prediction requests; zero when capture is off). "
            "Each is a log line the log store bills for; any 'failed' series is a gap in the record "
            "(CaptureFailing).",
            "short",
            [
                (f"sum by (instance) (rate({n.captured_instances_total}{{{INSTANCE}}}[5m]))", "{{instance}}"),
                (
                    f"sum by (instance) (rate({n.capture_failures_total}{{{INSTANCE}}}[5m]))",
                    "{{instance}} failed",
                ),
            ],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Log volume by logger (bytes per second, 5 m)",
            "Bytes the pods write to their logs, newlines included: what Cloud Logging and CloudWatch Logs "
            f"bill for ingestion. servekit.capture grows with {service.upper()}_CAPTURE_PERCENT and with "
            f"explanations, servekit.access with {service.upper()}_ACCESS_LOG; other is start-up, model "
            "loads, warnings and errors.",
            "Bps",
            [(f"sum by (logger) (rate({n.log_bytes_total}{{{INSTANCE}}}[5m]))", "{{logger}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Log bytes per prediction by logger (5 m)",
            "Every pod's log bytes over the predictions answered. The capture's is what make cost measures "
            "before a deployment and prices per million (README, Cost): 1.6 to 2.9 times larger when "
            "the requests ask for explanations.",
            "decbytes",
            [(sel(LOG_BYTES_PER_PREDICTION, service), "{{logger}}")],
        ),
        12,
        6,
    )
