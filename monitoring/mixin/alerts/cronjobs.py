"""The service's CronJobs: the live evaluation and the batch scoring, failed or overdue."""

from __future__ import annotations

from mixin.alerts.alert import Alert
from mixin.cluster import (
    MISSED_SCHEDULE_SECONDS,
    OVERDUE_PERIODS,
    batch_scoring,
    live_evaluation,
    newest_run_failed,
    runs_created,
    scheduled_run_overdue,
)
from mixin.common import NAMESPACE_LABEL, kubectl
from servekit.metrics.names import MetricNames


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


def cronjob_alerts(service: str) -> list[Alert]:
    """LiveEvaluationFailed, LiveEvaluationOverdue, BatchScoringFailed and BatchScoringOverdue."""
    n = MetricNames(service)
    s = service
    return [
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
    ]
