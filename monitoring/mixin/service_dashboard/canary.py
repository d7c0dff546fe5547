"""The canary rollout's row: the stable model and the canary answering side by side."""

from __future__ import annotations

from mixin.common import canary_share_queries, keeps_training_ranges, objectives, sel
from mixin.grafana import Grid, panel
from mixin.recorded import VARIANT_FAILURE_RATIO, VARIANT_LATENCY_P95
from mixin.service_dashboard.variables import INSTANCE
from servekit.metrics.names import MetricNames


def add_canary_panels(g: Grid, service: str) -> None:
    """The canary rollout's row: each variant's traffic, failures, latency and answers side by side."""
    n, o = MetricNames(service), objectives(service)
    variant_requests = f"rate({n.variant_requests_total}{{{INSTANCE}}}[5m])"
    g.add(
        panel(
            "stat",
            "Canary model version",
            f"The model {service.upper()}_CANARY_MODEL_URI names, answering "
            f"{service.upper()}_CANARY_TRAFFIC_PERCENT of the requests (and those asking for it with "
            "X-Model-Variant: canary). No data: no canary is configured.",
            "none",
            [
                (
                    f"max by (version, run_id) ({n.canary_model_info}{{{INSTANCE}}})",
                    "v{{version}} (run {{run_id}})",
                )
            ],
            text_mode="name",
        ),
        6,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Requests by variant (per second, 5 m)",
            "Prediction requests answered by the stable model and by the canary; the canary's share is "
            "its traffic percentage once it has loaded, and 0 while it is the stable version.",
            "reqps",
            [(f"sum by (variant) ({variant_requests})", "{{variant}}")],
        ),
        9,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Failed requests by variant (5 m)",
            "Share of each variant's requests that failed (500), over every pod: the very series "
            f"CanaryFailing compares. It fires when the canary's is over {o.canary_failure_ratio:.0%} and "
            "twice the stable model's for 5 minutes.",
            "percentunit",
            [(sel(VARIANT_FAILURE_RATIO, service), "{{variant}}")],
            thresholds=[(o.canary_failure_ratio, "orange")],
        ),
        9,
        8,
    )
    latency = f"sum by (variant, le) (rate({sel(n.variant_latency_seconds + '_bucket', service)}[5m]))"
    g.add(
        panel(
            "timeseries",
            "Model latency by variant (5 m)",
            "Time the answering model spent predicting (and explaining) a request, over every pod; the "
            f"p95 is the very series CanarySlow compares. It fires when the canary's is over "
            f"{o.canary_latency_factor:g}x the stable model's for 10 minutes.",
            "s",
            [
                (f"histogram_quantile(0.5, {latency})", "{{variant}} p50"),
                (sel(VARIANT_LATENCY_P95, service), "{{variant}} p95"),
            ],
        ),
        12,
        8,
    )
    outcomes = f"sum by (variant, outcome) (rate({n.variant_predictions_total}{{{INSTANCE}}}[5m]))"
    g.add(
        panel(
            "timeseries",
            "Outcome share by variant (5 m)",
            "Each variant's predictions by outcome, as a share of its own: a canary that answers "
            "differently shows here before anyone reports it.",
            "percentunit",
            [
                (
                    f"{outcomes}\n/ ignoring (outcome) group_left\nsum by (variant) ({outcomes})",
                    "{{variant}} {{outcome}}",
                )
            ],
        ),
        12,
        8,
    )
    weighed = f"sum by (variant, feature) (rate({n.variant_attribution_abs_sum_total}{{{INSTANCE}}}[5m]))"
    explained = f"sum by (variant) (rate({n.variant_explanations_total}{{{INSTANCE}}}[5m]))"
    g.add(
        panel(
            "timeseries",
            "Mean |attribution| per feature by variant (5 m)",
            "What each variant's explanations weigh, on the same traffic: the mean |SHAP contribution| "
            "of each input over the explained predictions it answered. A canary leaning on another input "
            "than the stable model shows here, whatever its accuracy.",
            "short",
            [(f"{weighed}\n/ on (variant) group_left\n{explained}", "{{variant}} {{feature}}")],
        ),
        24,
        8,
    )
    if keeps_training_ranges(service):
        outside = (
            f"sum by (variant, feature) (rate({n.variant_inputs_outside_training_total}{{{INSTANCE}}}[5m]))"
        )
        answered = f"sum by (variant) (rate({n.variant_predictions_total}{{{INSTANCE}}}[5m]))"
        g.add(
            panel(
                "timeseries",
                "Answers with an input outside the training range by variant (5 m)",
                "Share of each variant's answers with this input beyond the range of the answering "
                "model's training rows, where its trees answer as at the nearest edge. The service's "
                "own series count the stable model's answers alone; a canary trained on other rows "
                "extrapolates on other inputs, and shows here.",
                "percentunit",
                [(f"{outside}\n/ on (variant) group_left\n{answered}", "{{variant}} {{feature}}")],
                thresholds=[(o.outside_training_share, "orange")],
            ),
            24,
            8,
        )
    g.add(
        panel(
            "timeseries",
            "Canary share: set on the pods, drawn, and answered (5 m)",
            "The share each pod draws for the canary (the registry's canary.traffic_percent tag, set by "
            f"mlp canary --percent and mlp rollout --ramp, or {service.upper()}_CANARY_TRAFFIC_PERCENT), "
            "lowest and highest over the pods: apart, some pods have not refreshed yet. Drawn: the "
            f"canary's share of the router's random draws ({n.variant_draws_total}), which is the set "
            "share within chance; a request that asks for a variant (X-Model-Variant), pins a version or "
            "carries an X-Routing-Key is no draw, nor is one while the canary cannot answer (loading, or "
            "stopped: the panel below). mlp rollout rolls back a canary drawn for no request in an "
            "interval in which the stable model was drawn too often for chance. Answered: the share of "
            "all prediction requests the canary answered, those asked for, pinned or keyed included (the "
            "requests whose failures and latency mlp rollout, CanaryFailing and CanarySlow judge): above "
            "the drawn share while clients ask for the canary, under it while it loads or is stopped.",
            "percentunit",
            list(canary_share_queries(service)),
        ),
        24,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Canary share answered by the stable model (per second, 5 m)",
            "Requests routed to the canary that the stable model answered: not_ready (the canary is not "
            f"loaded), stopped (the pod stopped it after too many failures; {service.upper()}_CANARY_STOP_"
            "FAILURE_RATIO). The second query counts the pods that stopped it; CanaryStopped fires on one. "
            "The third counts the pods that cannot load the version the canary alias names (they answer "
            "with the canary they had, or with the stable model); CanaryRefreshFailing fires on one.",
            "short",
            [
                (f"sum by (reason) (rate({n.canary_fallbacks_total}{{{INSTANCE}}}[5m]))", "{{reason}} /s"),
                (f"sum({n.canary_stopped}{{{INSTANCE}}})", "pods that stopped it"),
                (
                    f"sum({n.canary_refresh_failing}{{{INSTANCE}}})",
                    "pods that cannot load the alias's version",
                ),
            ],
        ),
        24,
        6,
    )
