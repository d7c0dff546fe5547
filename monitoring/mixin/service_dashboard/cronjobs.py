"""What the service's CronJobs report: the live evaluation's quality figures and runs, and batch scoring's."""

from __future__ import annotations

from mixin.cluster import OVERDUE_PERIODS, batch_scoring, live_evaluation, scheduled_run_queries
from mixin.common import live_quality_queries
from mixin.grafana import Grid, panel


def add_live_evaluation_panels(g: Grid, service: str) -> None:
    """Each served version's quality on its answers joined with the truth, and the CronJob that scores it."""
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


def add_batch_scoring_panel(g: Grid, service: str) -> None:
    """The batch scoring CronJob: hours since it last scored the table, and whether its newest run failed."""
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
