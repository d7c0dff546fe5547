"""One service's dashboard: traffic, latency, errors, model, drift, resources, canary."""

from __future__ import annotations

from typing import Any

from mixin.alerts import unauthenticated_share
from mixin.autoscaling import AUTOSCALING_TARGET_CONCURRENCY
from mixin.cluster import (
    OVERDUE_PERIODS,
    autoscaler_condition_queries,
    batch_scoring,
    live_evaluation,
    replica_queries,
    scheduled_run_queries,
)
from mixin.common import (
    AVAILABILITY_EVENTS,
    BURN_THRESHOLDS,
    QUANTILES,
    canary_share_queries,
    keeps_training_ranges,
    live_quality_queries,
    number,
    objectives,
    sel,
    service_dashboard_uid,
    shadow_comparison_queries,
)
from mixin.grafana import (
    DATASOURCE,
    SERVICE_DASHBOARD_VARIABLES,
    VARIABLE_ALL_VALUES,
    Grid,
    alerts_firing,
    dashboard,
    panel,
)
from mixin.recorded import (
    ATTRIBUTION_DRIFT,
    ATTRIBUTION_MEAN,
    ATTRIBUTION_SHARE,
    CONCURRENCY,
    CPU_PER_PREDICTION,
    CPU_RATE,
    ERROR_RATIO,
    EXPLANATION_P95,
    INPUT_PSI,
    INPUT_SHARE,
    LATENCY_QUANTILE,
    LOG_BYTES_PER_PREDICTION,
    MEMORY_LIMIT,
    MEMORY_RATIO,
    OUTCOME_DRIFT,
    OUTCOME_SHARE,
    OUTSIDE_TRAINING_SHARE,
    REQUESTS_BY_ENDPOINT,
    REQUESTS_RATE,
    SLOW_RATIO,
    TRAINING_ATTRIBUTION_SHARE,
    TRAINING_INPUT_SHARE,
    TRAINING_OUTCOME_SHARE,
    VARIANT_FAILURE_RATIO,
    VARIANT_LATENCY_P95,
    burn_queries,
    shadow_agreement,
)
from servekit.metrics.names import (
    MetricNames,
)


def add_canary_panels(g: Grid, service: str, inst: str) -> None:
    """The canary rollout's row: each variant's traffic, failures, latency and answers side by side."""
    n, o = MetricNames(service), objectives(service)
    variant_requests = f"rate({n.variant_requests_total}{{{inst}}}[5m])"
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
                    f"max by (version, run_id) ({n.canary_model_info}{{{inst}}})",
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
    outcomes = f"sum by (variant, outcome) (rate({n.variant_predictions_total}{{{inst}}}[5m]))"
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
    weighed = f"sum by (variant, feature) (rate({n.variant_attribution_abs_sum_total}{{{inst}}}[5m]))"
    explained = f"sum by (variant) (rate({n.variant_explanations_total}{{{inst}}}[5m]))"
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
        outside = f"sum by (variant, feature) (rate({n.variant_inputs_outside_training_total}{{{inst}}}[5m]))"
        answered = f"sum by (variant) (rate({n.variant_predictions_total}{{{inst}}}[5m]))"
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
                (f"sum by (reason) (rate({n.canary_fallbacks_total}{{{inst}}}[5m]))", "{{reason}} /s"),
                (f"sum({n.canary_stopped}{{{inst}}})", "pods that stopped it"),
                (f"sum({n.canary_refresh_failing}{{{inst}}})", "pods that cannot load the alias's version"),
            ],
        ),
        24,
        6,
    )


def service_dashboard(service: str) -> dict[str, Any]:
    n, o = MetricNames(service), objectives(service)
    inst = 'instance=~"$instance"'
    ready = f"{n.model_ready}{{{inst}}}"
    left_out = n.access_log_lines_left_out_total
    g = Grid()
    g.add(
        panel(
            "stat",
            "Ready replicas",
            "Model loaded and warmed up (ready), pods Prometheus scrapes (scraped), and pods whose "
            "scrape fails (not scraped: their model_ready goes stale at once, so ready and scraped "
            "both drop by them): a pod it cannot scrape for 2 minutes fires ServiceTargetDown.",
            "none",
            [
                (f"sum({ready})", "ready"),
                (f'sum(up{{service="{service}",{inst}}})', "scraped"),
                (f'count(up{{service="{service}",{inst}}} == 0) or vector(0)', "not scraped"),
            ],
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Model version",
            "Registry version and training run of the served model.",
            "none",
            [(f"max by (version, run_id) ({n.model_info}{{{inst}}})", "v{{version}} (run {{run_id}})")],
            text_mode="name",
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Requests per second",
            "All endpoints, 5 m rate.",
            "reqps",
            [(sel(REQUESTS_RATE, service), "rps")],
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Error ratio (5 m)",
            f"Availability SLI: the 5xx share of {AVAILABILITY_EVENTS}.",
            "percentunit",
            [(sel(ERROR_RATIO.format(w="5m"), service), "5xx")],
            thresholds=[(1 - o.availability, "red")],
        ),
        6,
        4,
    )
    g.add(
        panel(
            "timeseries",
            "Requests by endpoint and status",
            "5 m rate per endpoint label (unknown paths are counted as `other`).",
            "reqps",
            [(sel(REQUESTS_BY_ENDPOINT, service), "{{endpoint}} {{status}}")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Latency by endpoint (p50, p95, p99)",
            "Whole-request latency of the prediction requests each endpoint answered, and of those "
            "whose client gave up waiting (499), 5 m rate. Refusals (4xx: no key, invalid input) are left "
            "out, as a refusal in a fraction of a millisecond would pull the quantiles down, and so are "
            "5xx, which the availability SLI counts.",
            "s",
            [(sel(LATENCY_QUANTILE.format(q=q), service), f"{{{{endpoint}}}} {q}") for q, _ in QUANTILES],
            thresholds=[(o.latency_threshold, "red")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Explanation latency (p95)",
            "SHAP computation per request.",
            "s",
            [(sel(EXPLANATION_P95, service), "p95")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            f"{o.latency_endpoint} requests over {o.latency_threshold * 1000:g} ms",
            f"Latency SLI: the share of the {o.latency_endpoint} requests the model answered, or whose "
            "client gave up waiting (499), that took longer; refusals (4xx) and 5xx are no latency "
            f"events. The SLO allows {1 - o.latency:.0%}.",
            "percentunit",
            [(sel(SLOW_RATIO.format(w=w), service), w) for w in ("5m", "1h")],
            thresholds=[(1 - o.latency, "red")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "SLO burn rate (x budget)",
            "14.4 over 1 h and 5 m or 6 over 6 h and 30 m pages; 3 over 1 d or 1 over 3 d opens a ticket.",
            "short",
            burn_queries(service),
            thresholds=BURN_THRESHOLDS,
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Prediction requests in flight",
            "Prediction requests each replica was answering when scraped. At "
            f"{service.upper()}_MAX_CONCURRENT_REQUESTS it refuses the next at once (503, Retry-After).",
            "short",
            [(f"max by (instance) ({n.prediction_requests_in_flight}{{{inst}}})", "{{instance}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Batch instances in flight",
            "Instances of the batches each replica was predicting in worker threads when scraped (single "
            f"records and small batches are answered on the event loop). At {service.upper()}_MAX_CONCURRENT_"
            "INSTANCES it refuses the next batch that would pass it (503, Retry-After).",
            "short",
            [(f"max by (instance) ({n.prediction_instances_in_flight}{{{inst}}})", "{{instance}}")],
        ),
        12,
        6,
    )
    lag = n.event_loop_lag_seconds
    g.add(
        panel(
            "timeseries",
            "Event loop lag (mean, 1 m)",
            "How late each replica's event loop runs ready work. Single requests wait that long before "
            f"the app sees them; EventLoopSaturated past {number(o.event_loop_lag * 1000)} ms for 10 m.",
            "s",
            [
                (
                    f"sum by (instance) (rate({lag}_sum{{{inst}}}[1m]))\n/\n"
                    f"sum by (instance) (rate({lag}_count{{{inst}}}[1m]))",
                    "{{instance}}",
                )
            ],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Prediction concurrency (1 m)",
            "Seconds spent answering prediction requests per second: the mean number in the app (the "
            "latency histogram's sum: refusals and 5xx, mostly instant, are left out). "
            "The autoscaler's metric with k8s/components/autoscale-on-concurrency (target "
            f"{number(AUTOSCALING_TARGET_CONCURRENCY)} per pod).",
            "short",
            [(f"max by (instance) ({sel(CONCURRENCY, service, inst)})", "{{instance}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Replicas: the autoscaler's bounds, what it wants, what is available",
            "From kube-state-metrics. Desired at the maximum: more load is shed or answered late "
            "(AutoscalerAtMaximum). Available under desired: pods that cannot be scheduled, pulled or "
            "made ready (ReplicasUnavailable).",
            "none",
            replica_queries(service),
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Autoscaler conditions (1 = holds)",
            "From kube-state-metrics. ScalingActive at 0: the autoscaler cannot read its metrics and "
            "holds the replica count whatever the load (AutoscalerInactive). ScalingLimited at 1: it "
            "wants more, or fewer, replicas than its bounds allow.",
            "none",
            autoscaler_condition_queries(service),
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Prediction requests shed (per second, 5 m)",
            "Refused at once because the replica was full, by the limit they would have passed: requests "
            "in flight or batch instances in flight. They are 503s in the error ratio too. Sustained, the "
            "autoscaler needs more room (PredictionsShed).",
            "reqps",
            [
                (
                    f"sum by (instance, limit) (rate({n.prediction_requests_shed_total}{{{inst}}}[5m]))",
                    "{{instance}} ({{limit}})",
                )
            ],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Requests by client and status (per second, 5 m)",
            "Requests answered with an API key, by the client the key is of: who sends the traffic, and "
            "whose requests fail (4xx are the client's; 429 is a client over its share of a replica, "
            "<SVC>_MAX_CONCURRENT_REQUESTS_PER_CLIENT, which the service's only caller meets when the "
            "replicas are too small for it: ClientRefusedAtItsShare). Requests without a valid key are "
            "401s on the endpoint panel; they belong to no client.",
            "reqps",
            [
                (
                    f"sum by (client, status) (rate({n.client_requests_total}{{{inst}}}[5m]))",
                    "{{client}} {{status}}",
                )
            ],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "stat",
            "Time left on each client's API keys",
            "Until each client's last key expires (clients with a key that never expires are not "
            f"shown). ApiKeyExpiresSoon warns {o.api_key_expiry_warning_days} days before; a key past its "
            "date is refused with 401.",
            "dtdurations",
            [(f"min by (client) ({n.api_key_expiry_timestamp_seconds}{{{inst}}}) - time()", "{{client}}")],
            # Red while ApiKeyExpiresSoon fires (or the key is refused already), orange for as long again.
            base_color="red",
            thresholds=[
                (o.api_key_expiry_warning_days * 86400, "orange"),
                (o.api_key_expiry_warning_days * 2 * 86400, "green"),
            ],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Requests refused for want of a valid API key (share, 15 m)",
            "Requests answered 401 (no key, an unknown, revoked or expired one) over every request but "
            f"the probes, on every pod: the very ratio RequestsUnauthenticated holds to "
            f"{o.unauthenticated_ratio:.0%} (with at least {o.unauthenticated_min} such requests).",
            "percentunit",
            [(unauthenticated_share(n), "refused with 401")],
            thresholds=[(o.unauthenticated_ratio, "orange")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Replicas on the API keys read last (keys file unreadable)",
            f"Replicas whose keys file ({service.upper()}_API_KEYS_FILE) could not be read or holds a bad "
            "line: they answer with the keys they read before, so a key revoked since still works, and a "
            "pod started on that file exits. ApiKeysReloadFailing pages after 5 minutes; the pod log "
            "names the line. No data: the service needs no key.",
            "none",
            [(f"sum({n.api_keys_reload_failing}{{{inst}}})", "replicas on old keys")],
            thresholds=[(1, "red")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Model load time (last load, by phase)",
            "How long each replica's last model load took: fetch (resolve the URI, download and "
            "deserialise), build, warm_up. Part of how long a new pod takes to turn ready, and of a "
            "promotion's switch (ModelNotReady when it never ends).",
            "s",
            [(f"max by (instance, phase) ({n.model_load_seconds}{{{inst}}})", "{{instance}} {{phase}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Outcome distribution against the training baseline",
            "Share of each outcome the served model predicted (5 m; a canary's are on the canary "
            "panels) and its share on the training data (dashed baseline).",
            "percentunit",
            [
                (sel(OUTCOME_SHARE.format(w="5m"), service), "{{outcome}} live"),
                (sel(TRAINING_OUTCOME_SHARE, service), "{{outcome}} training"),
            ],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Prediction drift: |live - training| outcome share (1 h)",
            f"PredictionDrift fires above {o.outcome_drift:.0%} for 30 minutes.",
            "percentunit",
            [(sel(OUTCOME_DRIFT, service), "{{outcome}}")],
            thresholds=[(o.outcome_drift, "orange")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Attribution: share of total |SHAP| per feature, live (1 h) and training",
            "What the model relies on, per model version; a change means it uses different features.",
            "percentunit",
            [
                (sel(ATTRIBUTION_SHARE, service), "{{feature}} v{{version}} live"),
                (sel(TRAINING_ATTRIBUTION_SHARE, service), "{{feature}} v{{version}} training"),
            ],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Attribution drift: |live - training| feature share (1 h)",
            f"AttributionDrift fires above {o.attribution_drift:.0%} for 30 minutes.",
            "percentunit",
            [(sel(ATTRIBUTION_DRIFT, service), "{{feature}} v{{version}}")],
            thresholds=[(o.attribution_drift, "orange")],
        ),
        12,
        8,
    )
    quality, verdict, answers, groups_worse, age = live_quality_queries(service)
    g.add(
        panel(
            "timeseries",
            "Live quality: the primary metric on answers joined with their truth, and held out",
            "Per served version: its primary metric on its training run's held-out rows (held_out) and on "
            "its answers joined with the truth that came later (live), each with its bootstrap 95 % "
            "interval (ci_low, ci_high), as the latest mlp evaluate --log recorded it in MLflow; the pods "
            f"read it every {service.upper()}_LIVE_EVALUATION_REFRESH_SECONDS. No live series: the "
            "version was never evaluated.",
            "none",
            [quality],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "stat",
            "Live quality: verdict, answers scored, groups worse, hours since",
            "The latest evaluation's verdict on each served version (its live figure against the held-out "
            "one: worse or better beyond the noise of both samples, within the noise, or none: no figure or "
            "nothing to compare with), how many answers it scored, for how many groups its live figure is "
            "worse than the same group's held out (LiveGroupWorse; absent where none were compared), and "
            "how long ago it ended.",
            "none",
            [verdict, answers, groups_worse, age],
            units={1: "short", 2: "short", 3: "h"},
        ),
        12,
        8,
    )
    since, overdue, failed = scheduled_run_queries(live_evaluation(service))
    g.add(
        panel(
            "timeseries",
            "Live evaluation: hours since the answers were last scored against the truth",
            f"The daily CronJob {live_evaluation(service)} (k8s/components/live-evaluation) joins the "
            "captured answers with the truth that came later and scores each version against its "
            "held-out figure (mlp evaluate --log; the figures are in MLflow). Past the second line, "
            f"{OVERDUE_PERIODS:g} periods of the CronJob's schedule (36 hours on the daily one), "
            "LiveEvaluationOverdue fires. Empty without the component.",
            "h",
            [since, overdue],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Live evaluation: newest run failed (1)",
            "1 while the newest Job of the CronJob failed (LiveEvaluationFailed): a version scored worse "
            "on the live answers than held out, beyond the noise, or the run could not complete; its "
            "log says which. 0 while it runs or after it succeeded.",
            "none",
            [failed],
            thresholds=[(1, "red")],
        ),
        12,
        8,
    )
    since, overdue, failed = scheduled_run_queries(batch_scoring(service))
    g.add(
        panel(
            "timeseries",
            "Batch scoring: hours since the table was last scored, newest run failed (1)",
            f"The monthly CronJob {batch_scoring(service)} (k8s/components/batch-scoring) scores the "
            "table exported to the bucket with the champion (mlp score) and uploads the scores. Past "
            f"the second line, {OVERDUE_PERIODS:g} periods of its schedule (about 45 days on the "
            "monthly one), BatchScoringOverdue fires; the third is 1 while the newest run failed "
            "(BatchScoringFailed: too many rows rejected, a table that cannot be scored, or nothing "
            "exported), and no scores were uploaded for it. Empty without the component.",
            "h",
            [since, overdue, failed],
            units={2: "short"},
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Input drift: population stability index per input (1 h)",
            "Each input's live distribution over the bins of the model version's training rows "
            f"(deciles, or categories). Under 0.1: stable; over {o.input_drift_psi:g}: a major shift, "
            "and InputDrift fires after 30 minutes.",
            "short",
            [(sel(INPUT_PSI, service), "{{feature}} v{{version}}")],
            thresholds=[(0.1, "yellow"), (o.input_drift_psi, "orange")],
        ),
        24,
        8,
    )
    if keeps_training_ranges(service):
        g.add(
            panel(
                "timeseries",
                "Answers with an input outside the training range, per input (1 h)",
                "Share of the model version's answers with this input beyond the range of its training "
                "rows, where the trees answer as at the nearest edge of what they saw (each answer lists "
                f"them in outside_training). Over {o.outside_training_share:.0%} for 30 minutes, "
                "InputsOutsideTraining fires.",
                "percentunit",
                [(sel(OUTSIDE_TRAINING_SHARE, service), "{{feature}} v{{version}}")],
                thresholds=[(o.outside_training_share, "orange")],
            ),
            24,
            8,
        )
    feature = 'feature=~"$feature"'
    g.add(
        panel(
            "timeseries",
            "Input shares per bin, live against training (1 h; pick inputs above)",
            "Where an input's values moved: each bin's share of the last hour's values and of the "
            "held-out training rows (bins: deciles 01-10 of a number, the top categories and other, "
            "missing; the edges are in GET /model).",
            "percentunit",
            [
                (sel(INPUT_SHARE, service, feature), "{{feature}} {{bin}} live v{{version}}"),
                (sel(TRAINING_INPUT_SHARE, service, feature), "{{feature}} {{bin}} training v{{version}}"),
            ],
        ),
        24,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Mean |SHAP| per feature (5 m)",
            "On the explained scale of the model (probability, log-odds or USD).",
            "short",
            [(sel(ATTRIBUTION_MEAN.format(w="5m"), service), "{{feature}} v{{version}}")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Process memory",
            "Resident memory per replica and the container limit.",
            "bytes",
            [
                (
                    f"process_resident_memory_bytes{{{inst}}} and on (instance, job) {n.model_ready}",
                    "{{instance}}",
                ),
                (sel(MEMORY_LIMIT, service), "limit"),
            ],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Process memory: share of the container limit",
            "Resident memory per replica over its container's limit: the very series MemoryNearLimit "
            f"holds to {o.memory_ratio:.0%} for 5 minutes. Past the limit the pod is OOM-killed.",
            "percentunit",
            [(sel(MEMORY_RATIO, service), "{{instance}}")],
            thresholds=[(o.memory_ratio, "orange")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Process CPU",
            "CPU seconds per second per replica (1 = one core).",
            "percentunit",
            [(sel(CPU_RATE, service, inst), "{{instance}}")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "CPU per prediction",
            "CPU seconds of every ready replica over the predictions answered, a canary's included: "
            "what make cost measures before a deployment and prices (README, Cost). It falls as the "
            "load rises, and a shadow model adds its own scoring to it.",
            "s",
            [(sel(CPU_PER_PREDICTION, service), "all replicas")],
        ),
        12,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Replicas by model version",
            "Replicas serving each registry version: a promotion moves them within "
            f"{service.upper()}_MODEL_REFRESH_SECONDS; a replica left behind cannot load the new one.",
            "none",
            [(f"count by (version) ({n.model_info}{{{inst}}})", "v{{version}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Model refresh failing",
            "Replicas that cannot check their alias or load the version it points at (they keep "
            "serving the one they have); ModelRefreshFailing fires after 15 minutes.",
            "none",
            [(f"sum({n.model_refresh_failing}{{{inst}}})", "failing replicas")],
            thresholds=[(1, "orange")],
        ),
        12,
        6,
    )
    shadow_rate = f"rate({n.shadow_predictions_total}{{{inst}}}[5m])"
    g.add(
        panel(
            "stat",
            "Shadow model version",
            f"The model {service.upper()}_SHADOW_MODEL_URI names, scoring a copy of the traffic; its "
            "answers are compared, never returned. No data: no shadow model is configured.",
            "none",
            [
                (
                    f"max by (version, run_id) ({n.shadow_model_info}{{{inst}}})",
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
            [(shadow_agreement(n, inst), "agreement")],
        ),
        9,
        8,
    )
    difference = f"sum by (le) (rate({n.shadow_score_difference}_bucket{{{inst}}}[5m]))"
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
            [(f"sum by (reason) (rate({n.shadow_skipped_total}{{{inst}}}[5m]))", "{{reason}}")],
        ),
        12,
        8,
    )
    add_canary_panels(g, service, inst)
    g.add(
        panel(
            "timeseries",
            "Access log lines left out (per second, 5 m)",
            "Above zero, the access log is incomplete: more 4xx/5xx lines were due than "
            f"{service.upper()}_ACCESS_LOG_MAX_PER_SECOND allows; the Requests panel still counts "
            "every request.",
            "short",
            [(f"sum by (instance) (rate({left_out}{{{inst}}}[5m]))", "{{instance}}")],
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
                (f"sum by (instance) (rate({n.captured_instances_total}{{{inst}}}[5m]))", "{{instance}}"),
                (
                    f"sum by (instance) (rate({n.capture_failures_total}{{{inst}}}[5m]))",
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
            [(f"sum by (logger) (rate({n.log_bytes_total}{{{inst}}}[5m]))", "{{logger}}")],
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
    return dashboard(
        service_dashboard_uid(service),
        f"ML platform: {service}",
        ["service", service],
        g,
        [instance, monitored],
        annotation=alerts_firing(f'service="{service}"'),
    )
