"""The platform overview dashboard: every service on one page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixin.common import (
    AVAILABILITY_EVENTS,
    BURN_THRESHOLDS,
    OVERVIEW_DASHBOARD,
    QUANTILES,
    Objectives,
    live_verdict,
    shadow_verdict,
)
from mixin.grafana import ALERTS, Grid, alerts_firing, dashboard, panel
from mixin.platform import WATCHDOG
from mixin.recorded import (
    ATTRIBUTION_DRIFT,
    CPU_PER_PREDICTION,
    ERROR_RATIO,
    EXPLANATION_P95,
    INPUT_PSI,
    LATENCY_QUANTILE,
    LOG_BYTES_RATE,
    MEMORY_RATIO,
    OUTCOME_DRIFT,
    OUTSIDE_TRAINING_SHARE,
    REQUESTS_BY_ENDPOINT,
    REQUESTS_RATE,
    SHADOW_AGREEMENT,
    VARIANT_FAILURE_RATIO,
    burn_queries,
    gib_a_month,
)
from servekit.metrics.names import (
    PREDICTION_ENDPOINTS,
    MetricNames,
)

#: Prometheus's own series of its alerts, counted by alert, service and state; not the Watchdog,
#: which always fires and says nothing here (its absence is what the heartbeat tells).
ALERTS_BY_STATE = f'count by (alertname, service, alertstate) ({ALERTS}{{alertname!="{WATCHDOG}"}})'


def overview(names: Sequence[str]) -> dict[str, Any]:
    # One set of colours for every service: the default objectives (OBJECTIVES may override them
    # per service, and each service's own dashboard colours by its own).
    o = Objectives()
    g = Grid()
    g.add(
        panel(
            "stat",
            "Requests per second",
            "All endpoints, 5 m rate.",
            "reqps",
            [(REQUESTS_RATE, "{{service}}")],
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Error ratio (5xx of prediction requests, 5 m)",
            f"Availability SLI: the 5xx share of {AVAILABILITY_EVENTS}.",
            "percentunit",
            [(ERROR_RATIO.format(w="5m"), "{{service}}")],
            thresholds=[(1 - o.availability, "red")],
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Model versions",
            "The registry version each service serves (one entry per version while a rollout runs).",
            "none",
            [(f"max by (version) ({MetricNames(s).model_info})", f"{s} v{{{{version}}}}") for s in names],
            text_mode="name",
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Live quality verdict",
            "Each served version's latest live evaluation (mlp evaluate --log): its figure on the answers "
            "joined with their truth against its held-out one, worse or better beyond the noise, within "
            "it, or none; LiveQualityWorse fires on worse. Empty for a version never evaluated; the "
            "service dashboard has the figures.",
            "none",
            [(live_verdict(s), f"{s} v{{{{version}}}}: {{{{verdict}}}}") for s in names],
            text_mode="name",
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Shadow against served on the truth",
            "Each shadow version's latest comparison with the served answers to the same requests (mlp "
            "evaluate --log, with the capture on): better or worse beyond the noise, within it, or none. "
            "Empty for a shadow never compared; the service dashboard's Shadow row has the figures.",
            "none",
            [(shadow_verdict(s), f"{s} shadow v{{{{version}}}}: {{{{verdict}}}}") for s in names],
            text_mode="name",
        ),
        6,
        4,
    )
    g.newline()
    g.add(
        panel(
            "timeseries",
            "Alerts pending and firing",
            "Every alert of every service, and the platform's own, while pending (its `for` not yet "
            "over) and while firing: what Alertmanager was sent (monitoring/README.md, Who is told). "
            "Not the Watchdog, which always fires.",
            "none",
            [(ALERTS_BY_STATE, "{{alertname}} {{service}} {{alertstate}}")],
        ),
        24,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Traffic by service and endpoint",
            "Requests per second (5 m rate).",
            "reqps",
            [(f"sum by (service, endpoint) ({REQUESTS_BY_ENDPOINT})", "{{service}} {{endpoint}}")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Errors: 5xx share of prediction requests",
            f"5 m and 1 h windows of the availability SLI, which counts {AVAILABILITY_EVENTS}.",
            "percentunit",
            [(ERROR_RATIO.format(w=w), f"{{{{service}}}} {w}") for w in ("5m", "1h")],
            thresholds=[(1 - o.availability, "red")],
        ),
        12,
        8,
    )
    for endpoint in PREDICTION_ENDPOINTS:
        g.add(
            panel(
                "timeseries",
                f"Latency of {endpoint} (p50, p95, p99)",
                "Whole-request latency from the service's histogram, 5 m rate: the requests answered, "
                "and those whose client gave up waiting (499); refusals (4xx) and 5xx are left out.",
                "s",
                [
                    (f'{LATENCY_QUANTILE.format(q=q)}{{endpoint="{endpoint}"}}', f"{{{{service}}}} {q}")
                    for q, _ in QUANTILES
                ],
            ),
            8,
            8,
        )
    g.add(
        panel(
            "timeseries",
            "Explanation latency (p95)",
            "Time spent computing SHAP explanations per request.",
            "s",
            [(EXPLANATION_P95, "{{service}}")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "SLO burn rate (x budget)",
            "Error-budget burn of the availability and latency SLOs over 1 h and 6 h; 14.4 pages "
            "(with the 5 m window), 1 over 3 days exhausts the budget in 30 days.",
            "short",
            [q for s in names for q in burn_queries(s)],
            thresholds=BURN_THRESHOLDS,
        ),
        16,
        8,
    )
    g.add(
        panel(
            "stat",
            "Models ready",
            "Ready replicas per service (model loaded and warmed up).",
            "none",
            [(f"sum({MetricNames(s).model_ready})", s) for s in names],
        ),
        8,
        4,
    )
    for title, description, expr, threshold in (
        (
            "Prediction drift (max outcome share gap, 1 h)",
            "Largest |live share - training share| over the outcomes of each service.",
            OUTCOME_DRIFT,
            (o.outcome_drift, "orange"),
        ),
        (
            "Attribution drift (max feature share gap, 1 h)",
            "Largest |live share - training share| of total |SHAP| over the features of each service.",
            ATTRIBUTION_DRIFT,
            (o.attribution_drift, "orange"),
        ),
        (
            "Memory (share of container limit, max replica)",
            "Resident memory over the container limit (cAdvisor, else the configured limit).",
            MEMORY_RATIO,
            (o.memory_ratio, "red"),
        ),
    ):
        g.add(
            panel(
                "stat",
                title,
                description,
                "percentunit",
                [(f"max by (service) ({expr})", "{{service}}")],
                thresholds=[threshold],
            ),
            8,
            4,
        )
    g.add(
        panel(
            "stat",
            "Input drift (max population stability index, 1 h)",
            "Largest PSI over the inputs of each service against its model's training bins; "
            f"InputDrift fires above {o.input_drift_psi:g}.",
            "short",
            [(f"max by (service) ({INPUT_PSI})", "{{service}}")],
            thresholds=[(0.1, "yellow"), (o.input_drift_psi, "orange")],
        ),
        8,
        4,
    )
    g.add(
        panel(
            "stat",
            "Answers with an input outside the training range (largest share per input, 1 h)",
            "Per tree service (BankChurn, ChicagoTaxi), the largest share of a version's answers with one "
            "input beyond the range of its training rows, where the trees answer as at the edge; "
            f"InputsOutsideTraining fires above {o.outside_training_share:.0%}.",
            "percentunit",
            [(f"max by (service) ({OUTSIDE_TRAINING_SHARE})", "{{service}}")],
            thresholds=[(o.outside_training_share, "orange")],
        ),
        8,
        4,
    )
    g.add(
        panel(
            "stat",
            "Shadow agreement (5 m)",
            "Per service with a shadow model (<SVC>_SHADOW_MODEL_URI), the share of instances on which "
            "its outcome is the served model's; details on the service's dashboard.",
            "percentunit",
            [(SHADOW_AGREEMENT, "{{service}}")],
        ),
        8,
        4,
    )
    g.add(
        panel(
            "stat",
            "Canary failure ratio (5 m)",
            "Per service with a canary (<SVC>_CANARY_MODEL_URI), the share of the requests each variant "
            "answered that failed; CanaryFailing fires when the canary's is over "
            f"{o.canary_failure_ratio:.0%} and twice the stable model's.",
            "percentunit",
            [(VARIANT_FAILURE_RATIO, "{{service}} {{variant}}")],
            thresholds=[(o.canary_failure_ratio, "orange")],
        ),
        8,
        4,
    )
    g.add(
        panel(
            "stat",
            "CPU per prediction (5 m)",
            "Per service, the CPU seconds of its ready replicas over the predictions they answered: "
            "what make cost prices (README, Cost). A release that raises it raises the cost of each "
            "prediction; it also falls as the load rises.",
            "s",
            [(CPU_PER_PREDICTION, "{{service}}")],
        ),
        8,
        4,
    )
    g.add(
        panel(
            "stat",
            "Log volume, GiB a month at this rate (5 m)",
            "Per service, the bytes its pods write to their logs, as a month at the last 5 minutes' rate: "
            "what the log store bills for ingestion after its free allowance (README, Cost). The "
            "prediction capture is most of it where it is on.",
            "none",
            [(gib_a_month(f"sum by (service) ({LOG_BYTES_RATE})"), "{{service}}")],
        ),
        8,
        4,
    )
    # The pages (critical), of every service and of the platform: the Watchdog is not one.
    pages = alerts_firing('severity="critical"')
    return dashboard(OVERVIEW_DASHBOARD, "ML platform: overview", ["overview"], g, [], annotation=pages)
