"""An alert of the mixin, as an alerting rule that links to its runbook and its dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from mixin.common import RUNBOOK_URL, dashboard_url
from mixin.grafana import SERVICE_DASHBOARD_VARIABLES

#: The service dashboard's variables an alert can open its link on (:attr:`Alert.opens_on`): the
#: pod (``instance``) and the monitored input (``feature``).
POD, MONITORED_INPUT = SERVICE_DASHBOARD_VARIABLES


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    duration: str = "0m"
    #: The uid of the dashboard that plots what the alert reads (set for a whole rule file by
    #: :func:`on_dashboard`): the notification links to it beside the runbook.
    dashboard: str = ""
    #: The service dashboard's variables (``instance``, ``feature``) the link sets to the alert's
    #: label of the same name, so it opens on the pod or the input that fired, not on every one.
    opens_on: tuple[str, ...] = ()

    def rule(self, service: str | None) -> dict[str, Any]:
        """The alerting rule; ``service`` None for an alert of the platform itself (mixin.platform)."""
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.duration != "0m":
            rule["for"] = self.duration
        rule["labels"] = (
            {"severity": self.severity}
            if service is None
            else {"service": service, "severity": self.severity}
        )
        rule["annotations"] = self.annotations()
        return rule

    def annotations(self) -> dict[str, str]:
        if not self.dashboard:
            raise ValueError(f"{self.name}: no dashboard to link to (mixin.alerts.alert.on_dashboard)")
        return {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{RUNBOOK_URL}#{self.name.lower()}",
            "dashboard_url": dashboard_url(self.dashboard) + self.dashboard_query(),
        }

    def dashboard_query(self) -> str:
        """``?var-instance={{ $labels.instance | urlquery }}``, for the variables it opens on."""
        return "".join(
            f"{'&' if i else '?'}var-{v}={{{{ $labels.{v} | urlquery }}}}"
            for i, v in enumerate(self.opens_on)
        )


def on_dashboard(alerts: Sequence[Alert], uid: str) -> list[Alert]:
    """``alerts``, each linking to the dashboard ``uid``."""
    return [replace(alert, dashboard=uid) for alert in alerts]
