"""Grafana's building blocks: the datasource, a panel grid, targets, panels and a dashboard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mixin.common import GENERATED, number

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: The tag every dashboard of the platform carries; each links to the others through it.
PLATFORM_TAG = "ml-platform"
#: Grafana template variables and the value a query sees when "All" is selected.
VARIABLE_ALL_VALUES = {"$instance": ".*", "$feature": ".*"}
#: The variables of every service dashboard (mixin.service_dashboard): a pod, an input. An alert's
#: link sets those whose label it names (mixin.alerts.alert.Alert.dashboard_query).
SERVICE_DASHBOARD_VARIABLES = ("instance", "feature")


@dataclass
class Grid:
    """Places panels left to right in rows of 24 columns (explicit gridPos for every panel)."""

    panels: list[dict[str, Any]] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_height: int = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0


def target(expr: str, legend: str, ref: int, instant: bool = False) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": chr(ord("A") + ref),
        "range": not instant,
        "instant": instant,
    }


def panel(
    kind: str,
    title: str,
    description: str,
    unit: str,
    queries: Sequence[tuple[str, str]],
    *,
    thresholds: Sequence[tuple[float, str]] = (),
    text_mode: str = "auto",
    base_color: str = "green",
    units: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """A panel of ``queries`` in ``unit``; ``units`` gives a query (by its index) a unit of its
    own, for a stat panel that puts a figure, a count and an age side by side."""
    instant = kind == "stat"
    steps: list[dict[str, Any]] = [{"color": base_color, "value": None}]
    # Thresholds are often derived (1 - 0.999): write them without float noise, as the rules do.
    steps += [{"color": color, "value": float(number(value))} for value, color in thresholds]
    result: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(expr, legend, i, instant) for i, (expr, legend) in enumerate(queries)],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [
                {
                    "matcher": {"id": "byFrameRefID", "options": target(*queries[i], i)["refId"]},
                    "properties": [{"id": "unit", "value": own}],
                }
                for i, own in sorted((units or {}).items())
            ],
        },
    }
    if kind == "stat":
        result["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": text_mode,
            "colorMode": "value",
        }
    else:
        result["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "fillOpacity": 10}
        if thresholds:
            result["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] = {"mode": "line"}
        result["options"] = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return result


#: Prometheus's series of the alerts its rules hold: one per alert and label set, 1 while it is.
ALERTS = "ALERTS"


def alerts_firing(matchers: str) -> dict[str, Any]:
    """A Grafana annotation that marks on every panel when the alerts ``matchers`` select fired, from
    Prometheus's own ``ALERTS`` series: a graph's bend and the alert it raised are seen together."""
    return {
        "name": "Alerts firing",
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": "red",
        "expr": f'{ALERTS}{{alertstate="firing",{matchers}}}',
        "step": "1m",
        "titleFormat": "{{alertname}}",
        "textFormat": "{{severity}} {{instance}}",
        "tagKeys": "alertname,severity",
        "useValueForTime": False,
    }


def dashboard(
    uid: str,
    title: str,
    tags: list[str],
    grid: Grid,
    variables: list[dict[str, Any]],
    *,
    annotation: dict[str, Any],
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": GENERATED,
        "tags": [PLATFORM_TAG, *tags],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "annotations": {"list": [annotation]},
        # A drop-down of the platform's other dashboards (those imported with this tag), keeping
        # the time range: from a page the way to the service's dashboard, or to the alerting
        # pipeline's, is one click.
        "links": [
            {
                "type": "dashboards",
                "title": "ML platform",
                "tags": [PLATFORM_TAG],
                "asDropdown": True,
                "keepTime": True,
                "includeVars": False,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "options": [],
                },
                *variables,
            ]
        },
        "panels": grid.panels,
    }
