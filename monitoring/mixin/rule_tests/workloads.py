"""The cases of the workloads' alerts: replicas and autoscalers, and the scheduled jobs (live
evaluation, batch scoring) failing or overdue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from mixin.cluster import (
    AUTOSCALER_CONDITION,
    AUTOSCALER_CURRENT,
    AUTOSCALER_MAX,
    CRONJOB_CREATED,
    CRONJOB_LAST_SCHEDULE,
    CRONJOB_LAST_SUCCESS,
    CRONJOB_NEXT_SCHEDULE,
    DEPLOYMENT_AVAILABLE,
    DEPLOYMENT_REPLICAS,
    DEPLOYMENT_UPDATED,
    JOB_CREATED,
    JOB_FAILED,
    batch_scoring,
    live_evaluation,
)
from mixin.rule_tests.cases import CLUSTER_TARGET, DAILY_INTERVAL_SECONDS, NAMESPACE, Case, series_str
from servekit.metrics.names import LIVE_VERDICTS, MetricNames


def cluster_cases(service: str) -> list[Case]:
    """The alerts on what kube-state-metrics says of the service's Deployment and autoscaler."""
    deployment = {**CLUSTER_TARGET, "deployment": service}
    hpa = {**CLUSTER_TARGET, "horizontalpodautoscaler": service}

    def replicas(wanted: int, available: str, updated: str) -> dict[str, str]:
        return {
            series_str(DEPLOYMENT_REPLICAS, deployment): f"{wanted}x40",
            series_str(DEPLOYMENT_AVAILABLE, deployment): available,
            series_str(DEPLOYMENT_UPDATED, deployment): updated,
        }

    def scaled(current: str, maximum: int = 10) -> dict[str, str]:
        return {
            series_str(AUTOSCALER_CURRENT, hpa): current,
            series_str(AUTOSCALER_MAX, hpa): f"{maximum}x40",
        }

    def condition(active: bool) -> dict[str, str]:
        def held(status: str) -> str:
            return series_str(AUTOSCALER_CONDITION, {**hpa, "condition": "ScalingActive", "status": status})

        return {held("true"): "1x40" if active else "0x40", held("false"): "0x40" if active else "1x40"}

    def fires(alert: str, when: str, series: dict[str, str], labels: dict[str, str], value: str) -> Case:
        expected = [{"alertname": alert, **labels, "service": service}]
        return Case(alert, f"fires: {when}", series, "30m", expected, {"{{ $value }}": value})

    return [
        # Two of four pods pending for half an hour, the template unchanged: a scheduling problem.
        fires(
            "ReplicasUnavailable",
            "2 of 4 pods available for 30 minutes",
            replicas(4, "2x40", "4x40"),
            deployment,
            "4",
        ),
        Case("ReplicasUnavailable", "quiet: every replica available", replicas(4, "4x40", "4x40"), "30m"),
        # A rollout of 20 replicas, one pod a minute, one pod short throughout: without the guard on
        # the updated replicas it would fire at 15 minutes.
        Case(
            "ReplicasUnavailable",
            "quiet: a slow rollout under way",
            replicas(20, "19x40", "0+1x20 20x20"),
            "19m",
        ),
        fires("AutoscalerAtMaximum", "10 of at most 10 replicas for 30 minutes", scaled("10x40"), hpa, "10"),
        Case("AutoscalerAtMaximum", "quiet: at the maximum for 10 minutes only", scaled("6x20 10x20"), "30m"),
        Case("AutoscalerAtMaximum", "quiet: 9 of at most 10", scaled("9x40"), "30m"),
        fires(
            "AutoscalerInactive",
            "ScalingActive false for 30 minutes",
            condition(active=False),
            {**hpa, "condition": "ScalingActive", "status": "false"},
            "1",
        ),
        Case("AutoscalerInactive", "quiet: ScalingActive true", condition(active=True), "30m"),
    ]


def evaluation_job_series(name: str, runs: Sequence[tuple[int, bool]]) -> dict[str, str]:
    """kube-state-metrics' series of the Jobs of the CronJob ``name``: per run, when it was created
    (its name's suffix, as the CronJob controller names them) and whether it failed."""
    series = {}
    for created, failed in runs:
        job = {**CLUSTER_TARGET, "job_name": f"{name}-{created}"}
        series[series_str(JOB_CREATED, job)] = f"{created}x40"
        for condition, value in (("true", failed), ("false", not failed)):
            series[series_str(JOB_FAILED, {**job, "condition": condition})] = f"{int(value)}x40"
    return series


def evaluation_cases(service: str) -> list[Case]:
    """LiveEvaluationFailed, on the live-evaluation component's Jobs and the verdict the pods read."""
    name = live_evaluation(service)
    n = MetricNames(service)
    pod = {"instance": "10.0.0.1:8080", "job": "model-servers", "service": service}
    # Beside another service's CronJob whose newest run failed, so an alert that missed the
    # service's name would fire in the quiet case.
    other = evaluation_job_series(live_evaluation(f"other-{service}"), [(9000, True)])
    newest_failed = {**other, **evaluation_job_series(name, [(1000, False), (2000, True)])}
    fired = [
        {
            "alertname": "LiveEvaluationFailed",
            "job_name": f"{name}-2000",
            "namespace": NAMESPACE,
            "service": service,
        }
    ]

    newest = f"{name}-2000"

    def recorded(verdict: str, ended: int, by: str | None = newest) -> dict[str, str]:
        """The verdict the pods read from the registry two minutes in, from a run ended at ``ended``
        by the Job ``by`` (None: by hand, so the series has no ``job_name``)."""
        job = {} if by is None else {"job_name": by}
        return {
            series_str(n.model_live_evaluation_timestamp_seconds, {**pod, **job}): f"_x2 {ended}x38",
            **{
                series_str(n.model_live_verdict, {**pod, "verdict": v}): f"_x2 {int(v == verdict)}x38"
                for v in LIVE_VERDICTS
            },
        }

    return [
        Case("LiveEvaluationFailed", "fires: the newest run failed", newest_failed, "15m", fired),
        Case(
            "LiveEvaluationFailed",
            "quiet: an older run failed, the newest succeeded",
            {**other, **evaluation_job_series(name, [(1000, True), (2000, False)])},
            "15m",
        ),
        Case(
            "LiveEvaluationFailed",
            "quiet: the newest run failed on the worse verdict it recorded (LiveQualityWorse names it)",
            {**newest_failed, **recorded("worse", 2100)},
            "15m",
        ),
        Case(
            "LiveEvaluationFailed",
            "quiet: a minute after the run failed, before the pods read its verdict",
            {**newest_failed, **recorded("worse", 2100)},
            "1m",
        ),
        Case(
            "LiveEvaluationFailed",
            "fires: the worse verdict the pods hold is an earlier run's",
            {**newest_failed, **recorded("worse", 1100, by=f"{name}-1000")},
            "15m",
            fired,
        ),
        Case(
            "LiveEvaluationFailed",
            "fires: the worse verdict the pods hold was recorded by hand while the newest run failed",
            {**newest_failed, **recorded("worse", 2100, by=None)},
            "15m",
            fired,
        ),
        Case(
            "LiveEvaluationFailed",
            "fires: the worse verdict is an earlier Job's of the same name, from before this one began",
            {**newest_failed, **recorded("worse", 1900)},
            "15m",
            fired,
        ),
        Case(
            "LiveEvaluationFailed",
            "fires: the newest run recorded no worse verdict on the version served (a canary's, or none)",
            {**newest_failed, **recorded("within the noise", 2100)},
            "15m",
            fired,
        ),
    ]


#: A CronJob's series at an eval time (:func:`schedule_series`): at, created, period, last run, success.
Scheduled = Callable[[int, int, int, int | None, int | None], tuple[dict[str, str], str]]


def schedule_series(service: str, name_of: Callable[[str], str]) -> Scheduled:
    """The series of the service's CronJob ``name_of(service)`` at ``at`` seconds (the eval time, in
    the daily file), constant until then: created, last started a run at ``last_run`` (None: never),
    its next time one ``period`` later (or after its creation), and its last success. Times before
    the test's start are negative: a monthly schedule needs no month of samples."""
    cronjob = {**CLUSTER_TARGET, "cronjob": name_of(service)}
    # Beside another service's CronJob created at the start, never run since and long past its
    # time, so an alert that missed the service's name would fire in every quiet case.
    other = {**CLUSTER_TARGET, "cronjob": name_of(f"other-{service}")}

    def scheduled(
        at: int, created: int, period: int, last_run: int | None, succeeded: int | None
    ) -> tuple[dict[str, str], str]:
        samples = f"x{at // DAILY_INTERVAL_SECONDS + 1}"
        series = {
            series_str(CRONJOB_CREATED, other): f"0{samples}",
            series_str(CRONJOB_NEXT_SCHEDULE, other): f"60{samples}",
            series_str(CRONJOB_CREATED, cronjob): f"{created}{samples}",
            series_str(CRONJOB_NEXT_SCHEDULE, cronjob): (
                f"{(last_run if last_run is not None else created) + period}{samples}"
            ),
        }
        if last_run is not None:
            series[series_str(CRONJOB_LAST_SCHEDULE, cronjob)] = f"{last_run}{samples}"
        if succeeded is not None:
            series[series_str(CRONJOB_LAST_SUCCESS, cronjob)] = f"{succeeded}{samples}"
        return series, f"{at // 60}m"

    return scheduled


def overdue_cases(service: str) -> list[Case]:
    """LiveEvaluationOverdue on the daily schedule, on one patched to hourly or weekly, and on a
    suspended one: in the daily file, a sample every DAILY_INTERVAL (at the minute, the first four
    cases took promtool 55 of the service file's 66 seconds)."""
    hour, day = 3600, 86400
    fired = [{"alertname": "LiveEvaluationOverdue", "namespace": NAMESPACE, "service": service}]
    scheduled = schedule_series(service, live_evaluation)

    cases = [
        # Daily: 36 hours.
        ("fires: daily, the last success 37 hours ago", scheduled(37 * hour, 0, day, day, 0), True),
        ("quiet: daily, a success 7 hours ago", scheduled(37 * hour, 0, day, 30 * hour, 30 * hour), False),
        (
            "fires: daily, none since the CronJob was created 37 hours ago",
            scheduled(37 * hour, 0, day, day, None),
            True,
        ),
        (
            "quiet: daily, none yet, the CronJob created 7 hours ago and its first run started",
            scheduled(37 * hour, 30 * hour, day, 31 * hour, None),
            False,
        ),
        # Patched to hourly: an hour and a half; to weekly: ten and a half days.
        (
            "fires: hourly, the last success 2 hours ago",
            scheduled(10 * hour, 0, hour, 10 * hour - 900, 8 * hour),
            True,
        ),
        (
            "quiet: weekly, the last success 5 days ago",
            scheduled(5 * day, 0, 7 * day, 0, 0),
            False,
        ),
        # Suspended a day ago: its next time passed two hours ago, a success 26 hours ago.
        (
            "fires: daily, a scheduled time passed 2 hours ago with no run started",
            scheduled(26 * hour, 0, day, 0, 0),
            True,
        ),
    ]
    return [
        Case("LiveEvaluationOverdue", description, series, at, fired if fires else [])
        for description, (series, at), fires in cases
    ]


def batch_scoring_cases(service: str) -> list[Case]:
    """BatchScoringFailed on the batch-scoring component's Jobs: the newest run alone counts."""
    name = batch_scoring(service)
    # Beside another service's CronJob whose newest run failed, and the service's live evaluation
    # failing, so an alert that missed the CronJob's name would fire in the quiet case.
    others = {
        **evaluation_job_series(batch_scoring(f"other-{service}"), [(9000, True)]),
        **evaluation_job_series(live_evaluation(service), [(9000, True)]),
    }
    fired = [
        {
            "alertname": "BatchScoringFailed",
            "job_name": f"{name}-2000",
            "namespace": NAMESPACE,
            "service": service,
        }
    ]
    return [
        Case(
            "BatchScoringFailed",
            "fires: the newest run failed",
            {**others, **evaluation_job_series(name, [(1000, False), (2000, True)])},
            "1m",
            fired,
        ),
        Case(
            "BatchScoringFailed",
            "quiet: an older run failed, the newest succeeded",
            {**others, **evaluation_job_series(name, [(1000, True), (2000, False)])},
            "1m",
        ),
    ]


def batch_scoring_overdue_cases(service: str) -> list[Case]:
    """BatchScoringOverdue on the monthly schedule, in the daily file: its times lie before the
    test's start, so a month costs no samples."""
    hour, day = 3600, 86400
    month = 30 * day
    at = 2 * hour
    fired = [{"alertname": "BatchScoringOverdue", "namespace": NAMESPACE, "service": service}]
    scheduled = partial(schedule_series(service, batch_scoring), at)
    cases = [
        # 45 days: a month and a half.
        (
            "fires: monthly, the last success 46 days ago",
            scheduled(-90 * day, month, at - 16 * day, at - 46 * day),
            True,
        ),
        (
            "quiet: monthly, the last success 44 days ago",
            scheduled(-90 * day, month, at - 14 * day, at - 44 * day),
            False,
        ),
        (
            "fires: monthly, none since the CronJob was created 46 days ago",
            scheduled(at - 46 * day, month, at - 16 * day, None),
            True,
        ),
        (
            "quiet: monthly, none yet, the CronJob created 20 days ago",
            scheduled(at - 20 * day, month, None, None),
            False,
        ),
        (
            "fires: monthly, a scheduled time passed 2 hours ago with no run started",
            scheduled(-90 * day, month, at - month - 2 * hour, at - month - hour),
            True,
        ),
    ]
    return [
        Case("BatchScoringOverdue", description, series, when, fired if fires else [])
        for description, (series, when), fires in cases
    ]
