"""The dashboard's template variables (a pod, an input) and the matchers its panels select them with."""

from __future__ import annotations

from typing import Any

from mixin.grafana import DATASOURCE, SERVICE_DASHBOARD_VARIABLES, VARIABLE_ALL_VALUES
from servekit.metrics.names import MetricNames

#: The pods picked in the Instance variable, as the panels on the pods' own series select them.
INSTANCE = 'instance=~"$instance"'
#: The inputs picked in the Input variable, as the panel of every input's bins selects them.
FEATURE = 'feature=~"$feature"'


def template_variables(service: str) -> list[dict[str, Any]]:
    """The Instance and Input variables, with every value and "All" to pick from."""
    n = MetricNames(service)
    pod, feature = SERVICE_DASHBOARD_VARIABLES
    instance = {
        "name": pod,
        "label": "Instance",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": f"label_values({n.model_ready}, instance)", "refId": "instance"},
        "definition": f"label_values({n.model_ready}, instance)",
        "includeAll": True,
        "allValue": VARIABLE_ALL_VALUES["$instance"],
        "multi": True,
        "refresh": 2,
        "sort": 1,
        "current": {},
        "options": [],
        "hide": 0,
    }
    monitored = {
        **instance,
        "name": feature,
        "label": "Input",
        "query": {"query": f"label_values({n.training_input_share}, feature)", "refId": "feature"},
        "definition": f"label_values({n.training_input_share}, feature)",
        "allValue": VARIABLE_ALL_VALUES["$feature"],
    }
    return [instance, monitored]
