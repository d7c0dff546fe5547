"""The shadow model's row: its version, and how its answers compare with the served model's."""

from __future__ import annotations

from mixin.common import shadow_comparison_queries
from mixin.grafana import Grid, panel
from mixin.recorded import shadow_agreement
from mixin.service_dashboard.variables import INSTANCE
from servekit.metrics.names import MetricNames


def add_shadow_panels(g: Grid, service: str) -> None:
    """The shadow version, its agreement and score difference with the served model, its comparison
    on the truth, the served → shadow outcomes, and the instances it skipped."""
    n = MetricNames(service)
    shadow_rate = f"rate({n.shadow_predictions_total}{{{INSTANCE}}}[5m])"
    g.add(
        panel(
            "stat",
            "Shadow model version",
            f"The model {service.upper()}_SHADOW_MODEL_URI names, scoring a copy of the traffic; its "
            "answers are compared, never returned. No data: no shadow model is configured.",
            "none",
            [
                (
                    f"max by (version, run_id) ({n.shadow_model_info}{{{INSTANCE}}})",
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
            "Shadow agreement: same outcome as the served model (5 m)",
            "Share of instances scored by both models on which the shadow model's outcome (label, or "
            "fare range) is the served model's: how often promoting it would change an answer.",
            "percentunit",
            [(shadow_agreement(n, INSTANCE), "agreement")],
        ),
        9,
        8,
    )
    difference = f"sum by (le) (rate({n.shadow_score_difference}_bucket{{{INSTANCE}}}[5m]))"
    g.add(
        panel(
            "timeseries",
            "Shadow score difference |served - shadow| (5 m)",
            "Per instance, the largest difference of the two models' scores, in their unit "
            "(probability, or the regressor's prediction).",
            "short",
            [(f"histogram_quantile({q}, {difference})", f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)],
        ),
        9,
        8,
    )
    g.add(
        panel(
            "stat",
            "Shadow against served on the truth: paired difference, verdict, answers",
            "The shadow version's primary metric minus the served version's (against), on the same "
            "requests' answers joined with the truth that came later, with its paired bootstrap 95 % "
            "interval, as the latest mlp evaluate --log recorded it (the capture must be on: the shadow's "
            "answers to the captured requests are captured too); the verdict (better or worse beyond the "
            "noise, within it, or none), the answers paired, and the groups (a country, an age band) "
            "for which it is worse beyond the noise on their answers alone. Which of the two was "
            "right, where the agreement says only how often they differ. No data: the shadow version "
            "was never compared.",
            "none",
            list(shadow_comparison_queries(service)),
            units={2: "short", 3: "short"},
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Served → shadow outcomes (per second, 5 m)",
            "The confusion matrix between the two models over time: each pair of the served model's "
            "outcome and the shadow model's, for the same instance.",
            "reqps",
            [(f"sum by (outcome, shadow_outcome) ({shadow_rate})", "{{outcome}} → {{shadow_outcome}}")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Shadow skipped instances by reason (per second, 5 m)",
            "Sampled instances the shadow model did not score: queue_full (it fell behind; raise "
            f"{service.upper()}_SHADOW_MAX_PENDING or lower {service.upper()}_SHADOW_SAMPLE_RATE), "
            "not_ready, same_model (it is the served version), canary (the canary answered them; the shadow "
            "is compared with the stable model only), failed (see the service log).",
            "reqps",
            [(f"sum by (reason) (rate({n.shadow_skipped_total}{{{INSTANCE}}}[5m]))", "{{reason}}")],
        ),
        12,
        8,
    )
