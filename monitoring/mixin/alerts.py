"""The alerting rules of each service, and its rule file (recording rules and alerts)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from mixin.cluster import (
    AUTOSCALER_CONDITION,
    AUTOSCALER_CURRENT,
    AUTOSCALER_MAX,
    DEPLOYMENT_AVAILABLE,
    DEPLOYMENT_REPLICAS,
    DEPLOYMENT_UPDATED,
    MISSED_SCHEDULE_SECONDS,
    OVERDUE_PERIODS,
    autoscaler,
    batch_scoring,
    deployment,
    live_evaluation,
    newest_run_failed,
    runs_created,
    scheduled_run_overdue,
)
from mixin.common import (
    AVAILABILITY_EVENTS,
    FAST_BURN,
    MIN_BAD_REQUESTS,
    NAMESPACE_LABEL,
    RUNBOOK_URL,
    SHED_FOR,
    SHED_WINDOW,
    SLOW_BURN,
    dashboard_url,
    keeps_training_ranges,
    kubectl,
    le,
    number,
    objectives,
    of_shadow,
    regex,
    sel,
    service_dashboard_uid,
    spelled,
    versioned,
)
from mixin.grafana import SERVICE_DASHBOARD_VARIABLES
from mixin.recorded import (
    ATTRIBUTION_DRIFT,
    ERROR_RATIO,
    EXPLANATIONS_RATE1H,
    INPUT_PSI,
    MEMORY_RATIO,
    OUTCOME_DRIFT,
    OUTSIDE_TRAINING_SHARE,
    PREDICTIONS_BY_VERSION_RATE1H,
    PREDICTIONS_RATE1H,
    SLOW_RATIO,
    VARIANT_FAILURE_RATIO,
    VARIANT_LATENCY_P95,
    VARIANT_REQUESTS_RATE,
    availability_events,
    gib_a_month,
    recording_rules,
)
from servekit.metrics.names import (
    CANARY,
    PREDICTION_ENDPOINTS,
    PROBE_ENDPOINTS,
    STABLE,
    MetricNames,
)


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
            raise ValueError(f"{self.name}: no dashboard to link to (mixin.alerts.on_dashboard)")
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


def unauthenticated_share(n: MetricNames) -> str:
    """The share of a service's requests refused with 401 over 15 minutes, probes left out: what
    RequestsUnauthenticated holds to its threshold, and the service dashboard plots."""
    return (
        f'sum(rate({n.requests_total}{{status="401"}}[15m]))\n/\n'
        f'sum(rate({n.requests_total}{{endpoint!~"{regex(PROBE_ENDPOINTS)}"}}[15m]))'
    )


#: The alert on one client's prediction requests refused at its share of a replica (429).
CLIENT_REFUSED_AT_ITS_SHARE = "ClientRefusedAtItsShare"


def client_predictions(n: MetricNames, function: str, status: str = "") -> str:
    """Per client, its prediction requests over 15 minutes (``rate`` or ``increase``), of ``status``
    only if given. Only a request with a valid key has a client, and only such a request can meet
    its share of a replica, so ``<svc>_client_requests_total`` counts every 429. By ``namespace``
    too (the model-servers scrape job sets it): the alert's kubectl hint names it."""
    predict = f'endpoint=~"{regex(PREDICTION_ENDPOINTS)}"' + (f',status="{status}"' if status else "")
    return f"sum by (namespace, client) ({function}({n.client_requests_total}{{{predict}}}[15m]))"


def burn_expr(
    template: str,
    service: str,
    budget: float,
    tiers: Sequence[tuple[str, str, float]],
    bad_requests: Callable[[str], str],
) -> str:
    """Each tier's ratio over both its windows, and at least ``MIN_BAD_REQUESTS`` bad requests
    (``bad_requests(window)``) over its long window.

    At low traffic a ratio is made of a few requests: under 1 / (14.4 x budget) an hour (69 at
    99.9 %), one 5xx was a fast burn, and a quiet night or a staging service paged on each one.
    At any traffic that spends the budget in earnest, ten come within minutes.
    """
    parts = []
    for long, short, factor in tiers:
        threshold = number(factor * budget)
        parts.append(
            f"(\n  {sel(template.format(w=long), service)} > {threshold}\n  and\n"
            f"  {sel(template.format(w=short), service)} > {threshold}\n  and on ()\n"
            f"  {bad_requests(long)} >= {MIN_BAD_REQUESTS}\n)"
        )
    return "\nor\n".join(parts)


def half_or_more(failing: str, every: str) -> str:
    """The pods ``failing`` selects, while they are half or more of the service's (``every``).

    One pod of ten that cannot load or be scraped is kept out of the Service while nine serve: no
    page at night for it (ReplicasUnavailable tells it in working hours). Half of them is capacity
    the others may not carry, and all of them is an outage the SLO alerts cannot see, since a pod
    out of the Service counts no request.
    """
    return (
        f"{failing}\nand on (service)\n(count by (service) ({failing}) / count by (service) ({every}) >= 0.5)"
    )


def points(share: float) -> str:
    """A difference of two shares as a description says it: 0.15 is 15 percentage points."""
    return f"{share * 100:g} percentage points"


def burn_text(tiers: Sequence[tuple[str, str, float]]) -> str:
    return " or ".join(f"{factor:g}x over {long} and {short}" for long, short, factor in tiers)


def prediction_errors(n: MetricNames, window: str) -> str:
    """The 5xx answered to prediction requests over ``window``: what the availability SLO counts."""
    predict = f'endpoint=~"{regex(PREDICTION_ENDPOINTS)}"'
    return f'sum(increase({n.requests_total}{{{predict},status=~"5.."}}[{window}]))'


def share_of_errors(n: MetricNames, errors: str, window: str) -> str:
    """A template action: the share of the prediction 5xx over ``window`` that ``errors`` (a counter
    selector) grew by, as a percentage, queried when the alert fires (``none`` with no 5xx at all).

    The availability alerts name their 5xx by kind with it: a 503 of a full replica, a 500 and a
    503 of a model not ready call for different remedies, and the counters tell them apart.
    """
    ratio = f"(sum(increase({errors}[{window}])) or vector(0)) / {prediction_errors(n, window)}"
    return (
        f"{{{{ with query `{ratio}` }}}}"
        "{{ . | first | value | humanizePercentage }}{{ else }}none{{ end }}"
    )


def error_kind_actions(n: MetricNames, window: str) -> tuple[str, str]:
    """The template actions of the shares of the prediction 5xx over ``window`` that were refused by
    a full replica (503 overloaded, the shed counter), and that were 500.

    The rest are 503 of kinds no counter tells apart: a replica with no model ready, a request a
    stopping pod cut (shutting_down), whose count is often never scraped at all, and a request that
    asked for a canary not loaded."""
    predict = f'endpoint=~"{regex(PREDICTION_ENDPOINTS)}"'
    return (
        share_of_errors(n, n.prediction_requests_shed_total, window),
        share_of_errors(n, f'{n.requests_total}{{{predict},status="500"}}', window),
    )


def errors_by_kind(n: MetricNames, window: str) -> str:
    """What the availability alerts' descriptions say of their 5xx over ``window``, kind by kind."""
    shed, failed = error_kind_actions(n, window)
    return (
        f"Of its prediction 5xx over the last {spelled(window).removeprefix('1 ')}: {shed} were 503 "
        "overloaded, refused at once by a full replica (<SVC>_MAX_CONCURRENT_REQUESTS or "
        "<SVC>_MAX_CONCURRENT_INSTANCES; Retry-After: 1), a call for capacity (PredictionsShed: the "
        "autoscaler, the client sending large explained batches), not for a rollback; "
        f"{failed} were 500, an exception in the model or the app (the pod log, under the request "
        "id); the rest were 503: model_not_ready, a replica with no model loaded (ModelNotReady fires "
        "too; /readyz says why), shutting_down, requests a stopping pod cut when its shutdown grace "
        "ran out (no ModelNotReady: the access log's '503 in N ms: shutting_down' lines; requests "
        "that outlive the grace), or canary_not_ready, requests asking for a canary not loaded."
    )


def evaluation_failed(service: str, n: MetricNames) -> str:
    """The service's newest live evaluation failed, unless the pods hold a worse verdict that this
    very Job recorded (the pods label its time with the Job's name, ``mlp evaluate --job``), which
    LiveQualityWorse names by its version. A worse verdict recorded by an earlier run, or by hand,
    explains nothing: a run failing on the registry the day after must still be told. The verdict
    must also end after the Job was created, in case a Job of the same name was run before."""
    worse_recorded = (
        f'max by (job_name) (\n  {n.model_live_evaluation_timestamp_seconds}{{job_name!=""}}\n'
        f'  and on (instance, job)\n  ({n.model_live_verdict}{{verdict="worse"}} == 1)\n)'
    )
    return (
        f"{newest_run_failed(live_evaluation(service))}\nunless on (job_name)\n"
        f"({worse_recorded}\n>= on (job_name)\n{runs_created(live_evaluation(service))})"
    )


def alerts(service: str) -> list[Alert]:
    n, o = MetricNames(service), objectives(service)
    s = service  # annotations are rendered from the expression's labels: name the service literally
    client = "{{ $labels.client }}"

    def canary(record: str) -> str:
        return sel(record, service, f'variant="{CANARY}"')

    def stable(record: str) -> str:
        return sel(record, service, f'variant="{STABLE}"')

    pod, monitored_input = SERVICE_DASHBOARD_VARIABLES
    worse_verdict = f'({n.model_live_verdict}{{verdict="worse"}} == 1)'
    logged_a_month = gib_a_month(f"sum(rate({n.log_bytes_total}[1d]))")
    found: list[Alert] = []
    avail_budget = 1 - o.availability
    latency_budget = 1 - o.latency
    ms = f"{o.latency_threshold * 1000:g} ms"
    slo = f'endpoint="{o.latency_endpoint}"'
    hist = n.prediction_latency_seconds

    def slow(w: str) -> str:
        return (
            f"(sum(increase({hist}_count{{{slo}}}[{w}]))\n  - "
            f'sum(increase({hist}_bucket{{{slo},le="{le(o.latency_threshold)}"}}[{w}])))'
        )

    for speed, (severity, tiers, duration) in (("Fast", FAST_BURN), ("Slow", SLOW_BURN)):
        found.append(
            Alert(
                f"AvailabilityBudgetBurn{speed}",
                burn_expr(ERROR_RATIO, service, avail_budget, tiers, partial(prediction_errors, n)),
                severity,
                f"{s} is burning its availability error budget {speed.lower()}",
                f"{s} answers 5xx to prediction requests at a rate that burns the "
                f"{o.availability:.1%} availability SLO budget {burn_text(tiers)}. "
                f"The SLI counts {AVAILABILITY_EVENTS}. " + errors_by_kind(n, tiers[0][0]),
                duration,
            )
        )
        found.append(
            Alert(
                f"LatencyBudgetBurn{speed}",
                burn_expr(SLOW_RATIO, service, latency_budget, tiers, slow),
                severity,
                f"{s} is burning its latency error budget {speed.lower()}",
                f"More of the {o.latency_endpoint} requests {s} answered (or whose client gave up "
                f"waiting) take over {ms} than the {o.latency:.0%} latency SLO allows: budget burn "
                f"{burn_text(tiers)}. Refusals (4xx) and 5xx are not counted.",
                duration,
            )
        )
    found += [
        Alert(
            "ServiceAbsent",
            f"absent({n.model_ready})",
            "critical",
            f"{s} exports no metrics",
            f"No target of {s} has been scraped successfully for 5 minutes: every replica is down, "
            "or Prometheus no longer discovers it.",
            "5m",
        ),
        Alert(
            "ServiceTargetDown",
            half_or_more(f'up{{service="{service}"}} == 0', f'up{{service="{service}"}}'),
            "critical",
            f"{s} target {{{{ $labels.instance }}}} is down",
            f"Prometheus cannot scrape {s} at {{{{ $labels.instance }}}} for 2 minutes, nor half or "
            "more of the service's targets (one of many is ReplicasUnavailable's, in working hours).",
            "2m",
            opens_on=(pod,),
        ),
        Alert(
            "ModelNotReady",
            half_or_more(f"{n.model_ready} == 0", n.model_ready),
            "critical",
            f"{s} at {{{{ $labels.instance }}}} has no model loaded",
            f"{s} at {{{{ $labels.instance }}}} has been alive but not ready (model not loaded or not "
            "warmed up) for 5 minutes, and so have half or more of its replicas; /readyz says why.",
            "5m",
            opens_on=(pod,),
        ),
        Alert(
            "ReplicasUnavailable",
            f"(\n  {deployment(DEPLOYMENT_REPLICAS, service)}\n  >\n"
            f"  {deployment(DEPLOYMENT_AVAILABLE, service)}\n)\nand\n"
            f"changes({deployment(DEPLOYMENT_UPDATED, service)}[10m]) == 0",
            "warning",
            f"{s} has had fewer available replicas than the {{{{ $value }}}} it wants for 15 minutes",
            f"The {s} Deployment wants {{{{ $value }}}} replicas and fewer have been available for 15 "
            "minutes, with no rollout under way. Pods that cannot be scheduled (no node fits, a Spot "
            "stockout, a quota), cannot pull their image, or never become ready (see ModelNotReady). "
            f"{kubectl(f'describe deployment {s}', NAMESPACE_LABEL)} and its pods' events say which.",
            "15m",
        ),
        Alert(
            "AutoscalerAtMaximum",
            f"{autoscaler(AUTOSCALER_CURRENT, service)}\n>=\n{autoscaler(AUTOSCALER_MAX, service)}",
            "warning",
            f"{s} has run at its autoscaler's maximum of {{{{ $value }}}} replicas for 15 minutes",
            f"The HorizontalPodAutoscaler of {s} has held its maximum replica count for 15 minutes: "
            "more traffic cannot be spread over more pods, so the pods shed it (PredictionsShed) or "
            "answer it late. Raise maxReplicas in the overlay if the nodes and the budget allow "
            "(`make cost` prices the ceiling), or find the client that brought the load.",
            "15m",
        ),
        Alert(
            "AutoscalerInactive",
            autoscaler(AUTOSCALER_CONDITION, service, 'condition="ScalingActive",status="false"') + " == 1",
            "warning",
            f"{s}'s autoscaler cannot compute how many replicas it needs",
            f"For 15 minutes the HorizontalPodAutoscaler of {s} has been unable to read its metrics "
            "(ScalingActive is false), so it holds the replica count whatever the load. The "
            "concurrency metric comes through prometheus-adapter (k8s/components/autoscale-on-"
            f"concurrency), CPU through metrics-server: {kubectl(f'describe hpa {s}', NAMESPACE_LABEL)} "
            "names the one it cannot read.",
            "15m",
        ),
        Alert(
            "LiveEvaluationFailed",
            evaluation_failed(service, n),
            "warning",
            f"{s}'s newest live evaluation failed: a version scored worse than held out, or it could not run",
            f"The Job {{{{ $labels.job_name }}}} of the CronJob {live_evaluation(service)} "
            "(k8s/components/live-evaluation) failed. Exit status 3 of the evaluate step is a verdict: "
            "a version, or a canary against the stable model, scored worse beyond the noise on the "
            "answers whose truth is known. Any other is the run: 2, none of the answers has a truth "
            "row (or no capture was copied), not retried; 1, the registry was unreachable, retried "
            "twice first; or the capture or the truth could not be copied (-c fetch). "
            f"{kubectl('logs job/{{ $labels.job_name }} -c evaluate', NAMESPACE_LABEL)} (or -c fetch) "
            "says which. "
            "A worse verdict on the version served, recorded by this run, is told by LiveQualityWorse "
            "instead.",
            # Long enough for the pods to read the run's verdict from the registry
            # (<SVC>_LIVE_EVALUATION_REFRESH_SECONDS, a minute) and be scraped: until then a failure
            # on a verdict looks like any other.
            "10m",
        ),
        Alert(
            "LiveEvaluationOverdue",
            scheduled_run_overdue(live_evaluation(service)),
            "warning",
            f"{s}'s answers are no longer scored against the truth on schedule",
            f"The CronJob {live_evaluation(service)} has not completed a run for "
            f"{OVERDUE_PERIODS:g} periods of its schedule (36 hours on the daily one), or ever since "
            "it was created that long ago, or a time its schedule named passed over "
            f"{MISSED_SCHEDULE_SECONDS // 60} minutes ago with no run started: it is suspended, a "
            "run is still going (concurrencyPolicy Forbid skips the next), its Jobs cannot start "
            "(a node, a quota, an image), or they keep failing (LiveEvaluationFailed). "
            f"{kubectl(f'describe cronjob {live_evaluation(service)}', NAMESPACE_LABEL)} and its Jobs' "
            "events say which.",
        ),
        Alert(
            "BatchScoringFailed",
            newest_run_failed(batch_scoring(service)),
            "warning",
            f"{s}'s newest batch scoring failed: no scores were written for this run",
            f"The Job {{{{ $labels.job_name }}}} of the CronJob {batch_scoring(service)} "
            "(k8s/components/batch-scoring) failed, and its scores were not uploaded. Exit status 3 of "
            "the score step: more rows were rejected than --max-rejected allows (an upstream change of "
            "the export: a renamed category, a column of text). 2: the table cannot be scored (a "
            "missing column, parts of two schemas), or nothing was exported under the input prefix (or "
            "the export's marker, INPUT_MARKER, never appeared). "
            "Anything else was retried twice: the registry, the bucket or the node. "
            f"{kubectl('logs job/{{ $labels.job_name }} -c score', NAMESPACE_LABEL)} (or -c fetch, "
            "-c upload) says which, and lists the first rejected rows.",
        ),
        Alert(
            "BatchScoringOverdue",
            scheduled_run_overdue(batch_scoring(service)),
            "warning",
            f"{s}'s table has not been scored on schedule",
            f"The CronJob {batch_scoring(service)} has not completed a run for {OVERDUE_PERIODS:g} "
            "periods of its schedule (about 45 days on the monthly one), or ever since it was created "
            f"that long ago, or a time its schedule named passed over {MISSED_SCHEDULE_SECONDS // 60} "
            "minutes ago with no run started: it is suspended, a run is still going, its Jobs cannot "
            "start (a node, a quota, an image), or they keep failing (BatchScoringFailed). "
            f"{kubectl(f'describe cronjob {batch_scoring(service)}', NAMESPACE_LABEL)} and its Jobs' "
            "events say which.",
        ),
        Alert(
            "LiveQualityWorse",
            f"max by (version) ({versioned(worse_verdict, n)})",
            "warning",
            f"{s} version {{{{ $labels.version }}}} scores worse on its live answers than held out",
            f"The latest live evaluation of {s} version {{{{ $labels.version }}}} (mlp evaluate --log: the "
            "live-evaluation CronJob, or by hand) scored it worse on the answers whose truth is known than "
            "on its training run's held-out rows, beyond the noise of both samples. The pods serving it "
            "read the verdict from the registry; it holds until a newer evaluation of the version says "
            "otherwise, or another version is served.",
            "5m",
        ),
        Alert(
            "LiveGroupWorse",
            # The whole figure worse is LiveQualityWorse's to tell; its groups would say it twice.
            f"max by (version) ({versioned(f'({n.model_live_groups_worse} > 0)', n)})\n"
            f"unless on (version)\nmax by (version) ({versioned(worse_verdict, n)})",
            "warning",
            f"{s} version {{{{ $labels.version }}}} scores worse for {{{{ $value }}}} group(s) than the "
            "same groups held out",
            f"The latest live evaluation of {s} version {{{{ $labels.version }}}} scored it worse on the "
            "live answers of {{ $value }} group(s) (a country, an age band, a kind of text) than on the "
            "same groups' held-out rows, beyond the noise of both samples, the groups' intervals held "
            "together at 95 %, while its whole figure is not worse: the customers of those groups are "
            "served worse than the version was shown to serve them. The version's tag live.groups_worse "
            "names them (mlp versions, mlp promote); its run holds each group's difference.",
            "5m",
        ),
        Alert(
            "ModelRefreshFailing",
            versioned(f"({n.model_refresh_failing} == 1)", n),
            "warning",
            f"{s} at {{{{ $labels.instance }}}} cannot follow its model alias",
            f"For 15 minutes {s} at {{{{ $labels.instance }}}} has failed to check which version its "
            "model alias points at, or to load that version; it still serves version "
            "{{ $labels.version }}. The pod log says which step failed.",
            "15m",
            opens_on=(pod,),
        ),
        Alert(
            "PredictionDrift",
            f"{sel(OUTCOME_DRIFT, service)} > {number(o.outcome_drift)}\n"
            f"and on ()\n{sel(PREDICTIONS_RATE1H, service)} * 3600 >= {o.outcome_drift_min_per_hour}",
            "warning",
            f'{s} predicts "{{{{ $labels.outcome }}}}" far more or less often than in training',
            f'Over the last hour the share of "{{{{ $labels.outcome }}}}" predictions of {s} is more than '
            f"{points(o.outcome_drift)} away from its share on the training data (the absolute "
            "difference of the two shares, not a relative change).",
            "30m",
        ),
        Alert(
            "AttributionDrift",
            f"{sel(ATTRIBUTION_DRIFT, service)} > {number(o.attribution_drift)}\n"
            f"and on (version)\n{sel(EXPLANATIONS_RATE1H, service)} * 3600 >= "
            f"{o.attribution_drift_min_per_hour}",
            "warning",
            f"{s} model {{{{ $labels.version }}}} relies on {{{{ $labels.feature }}}} differently than in "
            "training",
            f"Over the last hour the share of total |SHAP| attributed to {{{{ $labels.feature }}}} by {s} "
            f"model version {{{{ $labels.version }}}} is more than {points(o.attribution_drift)} away "
            "from its share on the training data (the absolute difference of the two shares, not a "
            "relative change).",
            "30m",
        ),
        Alert(
            "InputDrift",
            f"{sel(INPUT_PSI, service)} > {number(o.input_drift_psi)}\n"
            f"and on (version)\n{sel(PREDICTIONS_BY_VERSION_RATE1H, service)} * 3600 >= "
            f"{o.input_drift_min_per_hour}",
            "warning",
            f"{s} receives {{{{ $labels.feature }}}} values unlike model {{{{ $labels.version }}}}'s "
            "training data",
            f"Over the last hour the population stability index of {{{{ $labels.feature }}}} sent to {s} "
            f"model version {{{{ $labels.version }}}}, against the bins of its training rows, is above "
            f"{o.input_drift_psi:g} (a major shift) and has stayed there for 30 minutes.",
            "30m",
            opens_on=(monitored_input,),
        ),
        Alert(
            "CaptureFailing",
            f"sum(increase({n.capture_failures_total}[15m])) > 0",
            "warning",
            f"{s}'s prediction capture is leaving instances out of the record",
            f"In the last 15 minutes some instances drawn for {s}'s servekit.capture log could not be "
            "written (the Captured instances panel counts them): the audit record of those answers "
            "has a gap. Predictions are unaffected; each pod's log says why, once.",
        ),
        Alert(
            "PredictionsShed",
            f"sum(rate({n.prediction_requests_shed_total}[{SHED_WINDOW}]))\n/\n"
            f"{availability_events(n, SHED_WINDOW)}\n> {number(o.shed_ratio)}",
            "warning",
            f"{s}'s replicas are full and refuse prediction requests",
            f"For {spelled(SHED_FOR)} {s}'s replicas have refused more than {o.shed_ratio:.0%} of the "
            f"prediction requests of the last {spelled(SHED_WINDOW)} (those the availability SLI counts: "
            "answered, failed or given up by their client waiting, not the client's own refusals, 4xx) "
            "with "
            "503 overloaded at once "
            "(Retry-After: 1), each having <SVC>_MAX_CONCURRENT_REQUESTS requests or "
            "<SVC>_MAX_CONCURRENT_INSTANCES batch instances in flight (the shed counter's limit label). "
            "They are 5xx in the availability SLO too: a burst of them pages AvailabilityBudgetBurnFast "
            "as well, and that page calls for capacity, not a rollback. The autoscaler is at its "
            "maximum or cannot add pods fast enough: raise the HorizontalPodAutoscaler's maxReplicas, "
            "or find the client sending large explained batches and have it honour Retry-After.",
            SHED_FOR,
        ),
        Alert(
            CLIENT_REFUSED_AT_ITS_SHARE,
            f"{client_predictions(n, 'rate', '429')}\n/\n{client_predictions(n, 'rate')}\n"
            f"> {number(o.client_refused_ratio)}\nand\n"
            f"{client_predictions(n, 'increase', '429')} >= {o.client_refused_min}",
            "warning",
            f"{s} refuses {client}'s prediction requests at its share of a replica (429)",
            f"For 15 minutes more than {o.client_refused_ratio:.0%} of client {client}'s prediction "
            f"requests to {s} ({{{{ $value | humanizePercentage }}}} over the last 15 minutes) were "
            f"refused with 429 too_many_requests: it had {s.upper()}_MAX_CONCURRENT_REQUESTS_PER_CLIENT "
            "requests in flight on a replica (unset: three quarters of "
            f"{s.upper()}_MAX_CONCURRENT_REQUESTS). "
            "The share is checked before the replica's own limit, and a 429 is neither a 5xx of the "
            "availability SLO nor shed, so no other alert sees it: a client with the replicas to itself "
            "(the service's one caller) is refused 429, not 503, when they are overloaded (the "
            "autoscaler at its maximum, or the model slower: in flight = rate x latency). The service "
            "dashboard's Requests by client and status shows who is refused and who is served. The "
            f"service's only or main caller: the replicas are too small for it; raise the "
            f"HorizontalPodAutoscaler's maxReplicas ({kubectl(f'get hpa {s}', NAMESPACE_LABEL)}) or "
            f"{s.upper()}_MAX_CONCURRENT_REQUESTS_PER_CLIENT. One client among others that are served: "
            "a runaway loop in its code, for the client's owner.",
            "15m",
        ),
        Alert(
            "RequestsUnauthenticated",
            f"{unauthenticated_share(n)}\n> {number(o.unauthenticated_ratio)}\nand\n"
            f'sum(increase({n.requests_total}{{status="401"}}[15m])) >= {o.unauthenticated_min}',
            "warning",
            f"{s} refuses many requests for want of a valid API key",
            f"For 15 minutes more than {o.unauthenticated_ratio:.0%} of the requests to {s} have been "
            "refused with 401: a client whose key was revoked or not yet handed out, a key sent to the "
            "wrong service, or someone trying the API without one. The access log's lines with "
            'error.code="unauthenticated" name the header, the problem, the address and the user agent.',
            "15m",
        ),
        Alert(
            "ApiKeysReloadFailing",
            f"{n.api_keys_reload_failing} == 1",
            # Critical: the pod keeps the keys it read last (the right call for its clients), so a
            # key revoked in the bad file, a leaked one say, still works until someone fixes it;
            # and a pod started on that file refuses to, so new replicas crash-loop meanwhile.
            "critical",
            f"{s} at {{{{ $labels.instance }}}} cannot read its API keys file: keys revoked in it still work",
            f"For 5 minutes {s} at {{{{ $labels.instance }}}} has been unable to read its keys file "
            f"({s.upper()}_API_KEYS_FILE, mounted from the Secret {s}-api-keys) or has found a bad "
            "line in it, so it keeps the keys it read last: a key taken out of the file since, "
            "revoked or leaked, is still answered, and a pod started on the same file exits at once "
            "(new replicas crash-loop). The pod log's 'API keys not reloaded, the keys read last stay "
            "in force' names the file and the line; fix the Secret (mlp api-keys <file> checks it).",
            "5m",
            opens_on=(pod,),
        ),
        Alert(
            "ApiKeyExpiresSoon",
            f"min by (client) ({n.api_key_expiry_timestamp_seconds})\n"
            f"< time() + {o.api_key_expiry_warning_days} * 86400",
            "warning",
            f"{client}'s API keys for {s} run out within {o.api_key_expiry_warning_days} days",
            f"{client}'s last API key for {s} expires at {{{{ $value | humanizeTimestamp }}}} "
            f"(if that is past, it is refused already). From then on every request of {client} "
            "gets 401. Give the client a new key of the same scope (mlp api-key <client> --append, with "
            "--read-only for a key mlp api-keys lists as scope=read, as on-call's) and roll the "
            "Secret out; remove the old line once the client has switched.",
            "1h",
        ),
        Alert(
            "EventLoopSaturated",
            f"max(\n  rate({n.event_loop_lag_seconds}_sum[10m])\n  /\n"
            f"  rate({n.event_loop_lag_seconds}_count[10m])\n)\n> {number(o.event_loop_lag)}",
            "warning",
            f"A {s} replica's event loop is saturated: requests wait before they are answered",
            f"For 10 minutes a {s} replica's event loop has run ready work more than "
            f"{o.event_loop_lag * 1000:g} ms late on average. Single requests then queue before the app "
            "sees them, so they are neither refused nor counted in flight, and answers arrive late. "
            "Add replicas (the HorizontalPodAutoscaler's target or maxReplicas) or give the pods CPU.",
            "10m",
        ),
        Alert(
            "ShadowFallingBehind",
            f'sum(rate({n.shadow_skipped_total}{{reason="queue_full"}}[10m]))\n/\n'
            f"(sum(rate({n.shadow_predictions_total}[10m])) + sum(rate({n.shadow_skipped_total}[10m])))\n"
            f"> {number(o.shadow_queue_full_ratio)}",
            "warning",
            f"{s}'s shadow model cannot keep up with the traffic",
            f"For 15 minutes more than {o.shadow_queue_full_ratio:.0%} of the instances sampled for "
            f"{s}'s shadow model were skipped because its queue was full, so the shadow panels compare "
            "a biased sample (the quiet moments). Lower <SVC>_SHADOW_SAMPLE_RATE or give the pods "
            "more CPU.",
            "15m",
        ),
        Alert(
            "ShadowBetter",
            # Only against the version the pod serves: a comparison with the one served before a
            # promotion says nothing of the one served now (the pods drop it; this holds for pods
            # that do not, and for the scrape between the switch and their next read).
            "max by (version, against, metric) (\n"
            + of_shadow(
                f'({n.shadow_live_difference}{{bound="estimate"}}\nand on (instance, job, against)\n'
                f'label_replace({n.model_info}, "against", "$1", "version", "(.+)")\n'
                f'and on (instance, job)\n({n.shadow_live_verdict}{{verdict="better"}} == 1)\n'
                f"unless on (instance, job)\n({n.shadow_live_groups_worse} > 0))",
                n,
            )
            + "\n)",
            "info",
            f"{s}'s shadow version {{{{ $labels.version }}}} scores better than the served version "
            "{{ $labels.against }} on the same requests' truth",
            f"The latest comparison of {s}'s shadow model, version {{{{ $labels.version }}}}, with the "
            "served version {{ $labels.against }} on the answers both gave to the same captured "
            "requests, joined with their truth (mlp evaluate --log: the live-evaluation CronJob, or "
            "by hand), found the shadow's {{ $labels.metric }} better beyond the noise: "
            '{{ $value | printf "%+.4f" }}, the paired 95 % interval clear of 0. Not a fault but a '
            f"decision for the model's owner: read `mlp versions {s}` (the `as shadow` column) and "
            "the run's figures per group, then promote it, through a canary or at once, or note why "
            "not. One better on the whole but worse beyond the noise for a group (a country, an age "
            "band) on its answers alone raises nothing: its promotion needs a reviewer's reasons. It "
            "holds until a newer comparison says otherwise, or the shadow or the served model moves "
            "to another version.",
            "15m",
        ),
        Alert(
            "CanaryFailing",
            # A stable model that answered nothing has a ratio of NaN, which no comparison holds:
            # with the canary at 100 %, it is held to its own threshold alone.
            f"(\n  {canary(VARIANT_FAILURE_RATIO)}\n  > ignoring (variant)\n"
            f"  2 * ({stable(VARIANT_FAILURE_RATIO)} >= 0)\n  or\n"
            f"  max without (variant) ({canary(VARIANT_FAILURE_RATIO)}\n  unless ignoring (variant)\n"
            f"  ({stable(VARIANT_FAILURE_RATIO)} >= 0))\n)\n"
            f"and on (service)\n{canary(VARIANT_FAILURE_RATIO)} > {number(o.canary_failure_ratio)}\n"
            f"and on (service)\n{canary(VARIANT_REQUESTS_RATE)} * 300 >= {o.canary_min_requests}",
            "warning",
            f"{s}'s canary fails more requests than its stable model",
            f"For 5 minutes more than {o.canary_failure_ratio:.0%} of the requests {s}'s canary "
            "answered failed (500), over twice the stable model's share (or the stable model answered "
            "none: a canary at 100 %). Roll it back with "
            f"`mlp canary {s} --end`; the pod log has the cause under each request id.",
            "5m",
        ),
        Alert(
            "CanarySlow",
            f"{canary(VARIANT_LATENCY_P95)}\n> ignoring (variant)\n"
            f"{number(o.canary_latency_factor)} * {stable(VARIANT_LATENCY_P95)}\n"
            f"and on (service)\n{canary(VARIANT_REQUESTS_RATE)} * 300 >= {o.canary_min_requests}",
            "warning",
            f"{s}'s canary answers more slowly than its stable model",
            f"For 10 minutes the p95 time {s}'s canary spent predicting a request has been over "
            f"{o.canary_latency_factor:g}x the stable model's, on the same pods. Promoting it would slow "
            f"every request; roll it back with `mlp canary {s} --end` or accept the cost knowingly.",
            "10m",
        ),
        Alert(
            "CanaryStopped",
            f"max by (service) ({n.canary_stopped}) == 1",
            "warning",
            f"{s}'s canary was stopped by the pods after too many failures",
            f"At least one pod of {s} stopped sending its canary any traffic, because more of the "
            "canary's latest requests failed than <SVC>_CANARY_STOP_FAILURE_RATIO allows; the stable "
            f"model answers its share. End the rollout with `mlp canary {s} --end`, or fix the "
            "version and point the canary alias at the fix.",
            "1m",
        ),
        Alert(
            "CanaryRefreshFailing",
            # Not joined on canary_model_info: a pod with no canary loaded (its alias was deleted,
            # then set to a version that does not load, or it started while the alias named one) has
            # none, and must page all the same.
            f"{n.canary_refresh_failing} == 1",
            "warning",
            f"{s} at {{{{ $labels.instance }}}} cannot load the version its canary alias names",
            f"For 10 minutes {s} at {{{{ $labels.instance }}}} has failed to load the version the canary "
            "alias names (or to read the registry), or has loaded no canary at all since it started: "
            "it answers the canary's share with the canary version it had, which `mlp canary` or "
            "`mlp rollout` meant to replace (canary_model_info names it), or with the stable model if "
            "it had none (a pod started while the alias names a version that does not load). "
            "Restarting the pod does not clear it: a new pod tries the same version from its start, "
            "fails the same way and fires in its turn. "
            "`GET /model` on the pod says why under canary.refresh.error, and so does its log "
            "('canary model refresh failed').",
            "10m",
            opens_on=(pod,),
        ),
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
        Alert(
            "MemoryNearLimit",
            f"{sel(MEMORY_RATIO, service)} > {number(o.memory_ratio)}",
            "warning",
            f"{s} at {{{{ $labels.instance }}}} uses over {o.memory_ratio:.0%} of its memory limit",
            f"Resident memory of {s} at {{{{ $labels.instance }}}} has been above {o.memory_ratio:.0%} of "
            "the container memory limit for 5 minutes; it will be OOM-killed if it grows further.",
            "5m",
            opens_on=(pod,),
        ),
    ]
    if keeps_training_ranges(service):
        found.append(
            Alert(
                "InputsOutsideTraining",
                f"{sel(OUTSIDE_TRAINING_SHARE, service)} > {number(o.outside_training_share)}\n"
                f"and on (version)\n{sel(PREDICTIONS_BY_VERSION_RATE1H, service)} * 3600 >= "
                f"{o.outside_training_min_per_hour}",
                "warning",
                f"{s} answers many requests whose {{{{ $labels.feature }}}} lies outside model "
                "{{ $labels.version }}'s training data",
                f"Over the last hour more than {o.outside_training_share:.0%} of the answers of {s} model "
                "version {{ $labels.version }} had {{ $labels.feature }} outside the range of the "
                "version's training rows, and it has stayed so for 30 minutes. There the trees answer as "
                "at the nearest edge of what they saw: a value twice the largest trained on gets the "
                "answer of the largest. Each answer lists such inputs in outside_training; GET /model gives "
                "the ranges (baselines.training_ranges).",
                "30m",
            )
        )
    return on_dashboard(found, service_dashboard_uid(service))


def rule_file(service: str) -> dict[str, Any]:
    return {
        "groups": [
            {"name": f"{service}.recording", "rules": recording_rules(service)},
            {"name": f"{service}.alerts", "rules": [a.rule(service) for a in alerts(service)]},
        ]
    }
