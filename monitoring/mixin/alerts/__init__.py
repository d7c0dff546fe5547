"""The alerting rules of each service, and its rule file (recording rules and alerts).

The alerts are in a module per family, each returning its alerts in the order they are written to
the rule file: ``budget_burn`` (the availability and latency SLOs' budget burns, and the 5xx by
kind their descriptions name), ``targets`` (metrics, targets, models loaded, replicas),
``capacity`` (the autoscaler, shedding, the event loop, memory), ``cronjobs`` (live evaluation,
batch scoring), ``model`` (live quality, following the alias), ``drift`` (outcomes, attributions
and inputs against training, inputs outside its ranges), ``logs`` (the capture, the log volume),
``clients`` (a client's share of a replica, API keys), ``shadow`` and ``canary``; the
:class:`~mixin.alerts.alert.Alert` itself and :func:`~mixin.alerts.alert.on_dashboard` are in
``alert``. A family's alerts need not be next to each other in the file, so the order of the calls
below is the rule file's order.

Each family writes the service's name into its annotations literally (``s``): Prometheus renders
an annotation from the expression's labels, and not every expression keeps ``service``.
"""

from __future__ import annotations

from typing import Any

from mixin.alerts.alert import Alert, on_dashboard
from mixin.alerts.budget_burn import budget_burn_alerts
from mixin.alerts.canary import canary_alerts
from mixin.alerts.capacity import autoscaler_alerts, event_loop_alerts, memory_alerts, shedding_alerts
from mixin.alerts.clients import client_alerts
from mixin.alerts.cronjobs import cronjob_alerts
from mixin.alerts.drift import drift_alerts, outside_training_alerts
from mixin.alerts.logs import capture_alerts, log_volume_alerts
from mixin.alerts.model import model_alerts
from mixin.alerts.shadow import shadow_alerts
from mixin.alerts.targets import target_alerts
from mixin.common import service_dashboard_uid
from mixin.recorded import recording_rules

__all__ = ["Alert", "alerts", "rule_file"]


def alerts(service: str) -> list[Alert]:
    found = [
        *budget_burn_alerts(service),
        *target_alerts(service),
        *autoscaler_alerts(service),
        *cronjob_alerts(service),
        *model_alerts(service),
        *drift_alerts(service),
        *capture_alerts(service),
        *shedding_alerts(service),
        *client_alerts(service),
        *event_loop_alerts(service),
        *shadow_alerts(service),
        *canary_alerts(service),
        *log_volume_alerts(service),
        *memory_alerts(service),
        *outside_training_alerts(service),
    ]
    return on_dashboard(found, service_dashboard_uid(service))


def rule_file(service: str) -> dict[str, Any]:
    return {
        "groups": [
            {"name": f"{service}.recording", "rules": recording_rules(service)},
            {"name": f"{service}.alerts", "rules": [a.rule(service) for a in alerts(service)]},
        ]
    }
