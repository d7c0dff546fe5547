"""What the cluster knows of a service and the service cannot: its replicas and its autoscaler.

A pod does not know how many siblings the cluster wanted, that some cannot be scheduled, or that
its HorizontalPodAutoscaler is at its ceiling. kube-state-metrics (k8s/base/kube-state-metrics)
reads these from the API server. Its ``--metric-allowlist`` is exactly :data:`CLUSTER_METRICS`, and
a service's Deployment and HorizontalPodAutoscaler are named after it (tests/k8s hold both).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The scrape job of kube-state-metrics (k8s/base/prometheus/prometheus.yml).
JOB = "kube-state-metrics"
#: Whether Prometheus scrapes kube-state-metrics: without it every series below is missing.
SCRAPED = f'up{{job="{JOB}"}}'

DEPLOYMENT_REPLICAS = "kube_deployment_spec_replicas"
DEPLOYMENT_AVAILABLE = "kube_deployment_status_replicas_available"
#: Replicas of the current template: it changes while a rollout is under way.
DEPLOYMENT_UPDATED = "kube_deployment_status_replicas_updated"
AUTOSCALER_MIN = "kube_horizontalpodautoscaler_spec_min_replicas"
AUTOSCALER_MAX = "kube_horizontalpodautoscaler_spec_max_replicas"
AUTOSCALER_CURRENT = "kube_horizontalpodautoscaler_status_current_replicas"
AUTOSCALER_DESIRED = "kube_horizontalpodautoscaler_status_desired_replicas"
#: One series per condition (AbleToScale, ScalingActive, ScalingLimited) and status; 1 is the one held.
AUTOSCALER_CONDITION = "kube_horizontalpodautoscaler_status_condition"
#: The platform's StatefulSets (Prometheus's and Alertmanager's pairs): replicas wanted, and ready.
STATEFULSET_REPLICAS = "kube_statefulset_replicas"
STATEFULSET_READY = "kube_statefulset_status_replicas_ready"
#: A Job's Failed condition (one series per condition value; 1 is the one held), and when it was
#: created: which of a CronJob's Jobs is the newest.
JOB_FAILED = "kube_job_failed"
JOB_CREATED = "kube_job_created"
#: When a CronJob's Job last succeeded (absent until one has), and when the CronJob was created.
CRONJOB_LAST_SUCCESS = "kube_cronjob_status_last_successful_time"
CRONJOB_CREATED = "kube_cronjob_created"
#: When a CronJob last started a Job (absent until it has), and its schedule's next time after that
#: (after its creation until then): kube-state-metrics computes it from the schedule, so the two
#: are one period apart, and a next time long past is a run that was not started.
CRONJOB_LAST_SCHEDULE = "kube_cronjob_status_last_schedule_time"
CRONJOB_NEXT_SCHEDULE = "kube_cronjob_next_schedule_time"

CLUSTER_METRICS = (
    DEPLOYMENT_REPLICAS,
    DEPLOYMENT_AVAILABLE,
    DEPLOYMENT_UPDATED,
    AUTOSCALER_MIN,
    AUTOSCALER_MAX,
    AUTOSCALER_CURRENT,
    AUTOSCALER_DESIRED,
    AUTOSCALER_CONDITION,
    STATEFULSET_REPLICAS,
    STATEFULSET_READY,
    JOB_FAILED,
    JOB_CREATED,
    CRONJOB_LAST_SUCCESS,
    CRONJOB_CREATED,
    CRONJOB_LAST_SCHEDULE,
    CRONJOB_NEXT_SCHEDULE,
)


def deployment(metric: str, service: str) -> str:
    """A Deployment series of the service's Deployment."""
    return f'{metric}{{job="{JOB}",deployment="{service}"}}'


def statefulset(metric: str, name: str) -> str:
    """A StatefulSet series of the StatefulSet ``name``."""
    return f'{metric}{{job="{JOB}",statefulset="{name}"}}'


def autoscaler(metric: str, service: str, extra: str = "") -> str:
    """A HorizontalPodAutoscaler series of the service's autoscaler."""
    return f'{metric}{{job="{JOB}",horizontalpodautoscaler="{service}"{"," + extra if extra else ""}}}'


#: How many periods of its schedule a scheduled run (a live evaluation, a batch scoring) may go
#: without a success before it is overdue: one, and half of one more for a run that waits on a node
#: or takes its time. Read from the schedule, so a CronJob patched to run hourly or weekly is held to
#: its own rhythm (36 hours on the live evaluation's daily one, about 45 days on the batch
#: scoring's monthly one).
OVERDUE_PERIODS = 1.5
#: How long a time the schedule named may pass with no run started (suspended, or a run still
#: going under concurrencyPolicy Forbid) before it is overdue, whatever the period.
MISSED_SCHEDULE_SECONDS = 3600


def live_evaluation(service: str) -> str:
    """The CronJob of the live-evaluation component (k8s/components/live-evaluation) for ``service``."""
    return f"{service}-live-evaluation"


def batch_scoring(service: str) -> str:
    """The CronJob of the batch-scoring component (k8s/components/batch-scoring) for ``service``."""
    return f"{service}-batch-scoring"


def cronjob(metric: str, name: str) -> str:
    """A series of the CronJob ``name``."""
    return f'{metric}{{job="{JOB}",cronjob="{name}"}}'


def cronjob_jobs(metric: str, name: str, extra: str = "") -> str:
    """A Job series of the CronJob ``name``'s runs: its Jobs (``<cronjob>-<minute>``) and those started
    from it by hand (``kubectl create job --from=cronjob/<cronjob> <cronjob>-now``)."""
    selector = f'job="{JOB}",job_name=~"{name}-.+"'
    return f"{metric}{{{selector}{',' + extra if extra else ''}}}"


def newest_run_condition(name: str) -> str:
    """The Failed condition (1 failed, 0 running or done) of the CronJob ``name``'s newest run
    alone, by ``job_name``: an older failure a later run has followed is history, not news."""
    failed = cronjob_jobs(JOB_FAILED, name, 'condition="true"')
    return f"{failed}\nand on (job_name)\ntopk(1, {cronjob_jobs(JOB_CREATED, name)})"


def newest_run_failed(name: str) -> str:
    """The CronJob ``name``'s newest run, when it failed (1, with its ``job_name`` and the
    ``namespace`` kube-state-metrics sets, which the alert's kubectl hint names)."""
    return f"max by (namespace, job_name) (\n{newest_run_condition(name)}\n) == 1"


def runs_created(name: str) -> str:
    """When each of the CronJob ``name``'s runs was created (Unix seconds), by ``job_name``."""
    return f"max by (job_name) ({cronjob_jobs(JOB_CREATED, name)})"


def newest_run_state(name: str) -> str:
    """Whether the CronJob ``name``'s newest run failed: 1 failed, 0 running or done."""
    return f"max({newest_run_condition(name)})"


def hours_since_success(name: str) -> str:
    """Hours since the CronJob ``name`` last succeeded (absent until it has)."""
    return f"(time() - max({cronjob(CRONJOB_LAST_SUCCESS, name)})) / 3600"


def schedule_period(name: str) -> str:
    """Seconds between two runs of the CronJob ``name``, as its schedule says (absent until it has
    started one)."""
    return f"(max({cronjob(CRONJOB_NEXT_SCHEDULE, name)}) - max({cronjob(CRONJOB_LAST_SCHEDULE, name)}))"


def overdue_seconds(name: str) -> str:
    """How long the CronJob ``name`` may go without a success: :data:`OVERDUE_PERIODS` periods of
    its schedule."""
    return f"{OVERDUE_PERIODS:g} * {schedule_period(name)}"


def scheduled_run_queries(name: str) -> list[tuple[str, str]]:
    """A dashboard's panels of the CronJob ``name``: hours since its last success and the hours after
    which that is overdue, and whether its newest run failed."""
    return [
        (hours_since_success(name), "hours since the last success"),
        (f"{overdue_seconds(name)} / 3600", "overdue past"),
        (newest_run_state(name), "newest run failed"),
    ]


def scheduled_run_overdue(name: str) -> str:
    """The CronJob ``name`` is overdue: no success for :data:`OVERDUE_PERIODS` periods of its
    schedule, or none since it was created that long ago, or a scheduled time passed
    :data:`MISSED_SCHEDULE_SECONDS` ago without a run started. Each part keeps the ``namespace``
    kube-state-metrics sets, which the alert's kubectl hint names: ``or`` and ``unless`` match on it,
    and the limit (the dashboard's, of no labels) is a scalar: NaN, which nothing exceeds, until the
    CronJob has started a run."""
    limit = f"scalar({overdue_seconds(name)})"
    success = f"max by (namespace) ({cronjob(CRONJOB_LAST_SUCCESS, name)})"
    created = f"max by (namespace) ({cronjob(CRONJOB_CREATED, name)})"
    next_time = f"max by (namespace) ({cronjob(CRONJOB_NEXT_SCHEDULE, name)})"
    return (
        f"time() - {success} > {limit}\nor\n"
        f"(time() - {created} > {limit}\nunless\n{success})\nor\n"
        f"time() - {next_time} > {MISSED_SCHEDULE_SECONDS}"
    )


def replica_queries(service: str) -> list[tuple[str, str]]:
    """The dashboard's replica panel: the autoscaler's bounds, what it wants, and what is available."""
    return [
        (f"max({autoscaler(AUTOSCALER_MAX, service)})", "maximum"),
        (f"max({autoscaler(AUTOSCALER_DESIRED, service)})", "desired by the autoscaler"),
        (f"max({deployment(DEPLOYMENT_AVAILABLE, service)})", "available"),
        (f"max({autoscaler(AUTOSCALER_MIN, service)})", "minimum"),
    ]


#: The HorizontalPodAutoscaler's conditions, as the conditions panel names each when it holds.
AUTOSCALER_CONDITIONS = {
    "ScalingActive": "reads its metrics (ScalingActive)",
    "AbleToScale": "able to scale (AbleToScale)",
    "ScalingLimited": "held at a bound (ScalingLimited)",
}


def autoscaler_condition_queries(service: str) -> list[tuple[str, str]]:
    """The dashboard's autoscaler conditions panel: 1 while each condition holds, 0 while it does not."""
    queries = []
    for condition, legend in AUTOSCALER_CONDITIONS.items():
        holds = autoscaler(AUTOSCALER_CONDITION, service, f'condition="{condition}",status="true"')
        queries.append((f"max({holds})", legend))
    return queries


def statefulset_queries(names: Sequence[str]) -> list[tuple[str, str]]:
    """The alerting pipeline dashboard's replica panel: each StatefulSet's replicas ready and wanted,
    and last whether kube-state-metrics, which counts them, is scraped."""
    return [
        *(
            (f"max({statefulset(metric, name)})", f"{name} {what}")
            for name in names
            for metric, what in ((STATEFULSET_READY, "ready"), (STATEFULSET_REPLICAS, "wanted"))
        ),
        (f"sum({SCRAPED})", "kube-state-metrics up"),
    ]
