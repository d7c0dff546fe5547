"""One service's dashboard: traffic, latency, errors, model, drift, resources, canary.

The panels are in a module per row, or run of rows, of the dashboard, each adding its panels to
the grid in the order they are shown: ``traffic`` (the headline figures, requests, latency and the
SLOs), ``capacity`` (in flight, the autoscaler, shedding), ``clients`` (API keys), ``model_versions``
(loads and versions), ``drift`` (outcomes, attributions and inputs against training), ``cronjobs``
(live evaluation, batch scoring), ``resources`` (memory, CPU), ``shadow``, ``canary`` and ``logs``;
the template variables and the matchers that select them are in ``variables``. The grid places each
panel after the one before (:class:`mixin.grafana.Grid`), so the order of the calls below is the
dashboard's layout.
"""

from __future__ import annotations

from typing import Any

from mixin.common import service_dashboard_uid
from mixin.grafana import Grid, alerts_firing, dashboard
from mixin.service_dashboard.canary import add_canary_panels
from mixin.service_dashboard.capacity import add_capacity_panels
from mixin.service_dashboard.clients import add_client_panels
from mixin.service_dashboard.cronjobs import add_batch_scoring_panel, add_live_evaluation_panels
from mixin.service_dashboard.drift import add_input_drift_panels, add_outcome_and_attribution_drift_panels
from mixin.service_dashboard.logs import add_log_panels
from mixin.service_dashboard.model_versions import add_model_load_panel, add_model_version_panels
from mixin.service_dashboard.resources import add_resource_panels
from mixin.service_dashboard.shadow import add_shadow_panels
from mixin.service_dashboard.traffic import add_headline_panels, add_request_panels
from mixin.service_dashboard.variables import template_variables

__all__ = ["service_dashboard"]


def service_dashboard(service: str) -> dict[str, Any]:
    g = Grid()
    add_headline_panels(g, service)
    add_request_panels(g, service)
    add_capacity_panels(g, service)
    add_client_panels(g, service)
    add_model_load_panel(g, service)
    add_outcome_and_attribution_drift_panels(g, service)
    add_live_evaluation_panels(g, service)
    add_batch_scoring_panel(g, service)
    add_input_drift_panels(g, service)
    add_resource_panels(g, service)
    add_model_version_panels(g, service)
    add_shadow_panels(g, service)
    add_canary_panels(g, service)
    add_log_panels(g, service)
    return dashboard(
        service_dashboard_uid(service),
        f"ML platform: {service}",
        ["service", service],
        g,
        template_variables(service),
        annotation=alerts_firing(f'service="{service}"'),
    )
