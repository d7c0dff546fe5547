"""The service's logs: the prediction capture's record, and the volume logged against its budget."""

from __future__ import annotations

from mixin.alerts.alert import Alert
from mixin.common import number, objectives
from mixin.recorded import gib_a_month
from servekit.metrics.names import MetricNames


def capture_alerts(service: str) -> list[Alert]:
    """CaptureFailing."""
    n = MetricNames(service)
    s = service
    return [
        Alert(
            "CaptureFailing",
            f"sum(increase({n.capture_failures_total}[15m])) > 0",
            "warning",
            f"{s}'s prediction capture is leaving instances out of the record",
            f"In the last 15 minutes some instances drawn for {s}'s servekit.capture log could not be "
            "written (the Captured instances panel counts them): the audit record of those answers "
            "has a gap. Predictions are unaffected; each pod's log says why, once.",
        ),
    ]


def log_volume_alerts(service: str) -> list[Alert]:
    """LogVolumeOverBudget."""
    n, o = MetricNames(service), objectives(service)
    s = service
    logged_a_month = gib_a_month(f"sum(rate({n.log_bytes_total}[1d]))")
    return [
        Alert(
            "LogVolumeOverBudget",
            # A day's rate, so a daily peak does not fire it; a jump (the capture turned to 100 %)
            # outweighs the quiet day within the hour.
            f"{logged_a_month}\n> {number(o.log_gib_per_month)}",
            "warning",
            f"{s}'s logs would come to over {o.log_gib_per_month:g} GiB a month",
            f"Over the last day the pods of {s} logged at a rate of "
            '{{ $value | printf "%.0f" }} GiB a month, over its budget of '
            f"{o.log_gib_per_month:g} GiB, for an hour: the log store bills each GiB beyond its "
            "free allowance (Cloud Logging and CloudWatch Logs: $0.50). The service dashboard's "
            "Log volume by logger names the logger.",
            "1h",
        ),
    ]
