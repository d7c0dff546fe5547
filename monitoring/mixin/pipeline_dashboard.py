"""The alerting pipeline dashboard: whether Prometheus and Alertmanager can still tell anyone.

The services' dashboards show what the alerts watch; this one shows the path an alert takes to
a person: the replicas scraped, the rules evaluated (failing, late), the alerts sent to each
Alertmanager (failing, queued, dropped), the notifications Alertmanager sends through each
integration (failing, slow), and the storage the rules read from. It reads the same series, with
the same thresholds, as the platform's alerts (mixin.platform, mixin.self_monitoring), so a panel
turns red when its alert is about to fire, and shows the trend before and after.
"""

from __future__ import annotations

from typing import Any

from mixin.alertmanager import integrations
from mixin.cluster import statefulset_queries
from mixin.common import PIPELINE_DASHBOARD, regex
from mixin.grafana import Grid, alerts_firing, dashboard, panel
from mixin.platform import (
    ALERTMANAGER_ALERTS,
    ALERTMANAGER_JOB,
    CLUSTER_MEMBERS,
    NOTIFICATION_LATENCY,
    NOTIFICATIONS,
    NOTIFICATIONS_FAILED_RATIO,
    PIPELINE_STATEFULSETS,
    WATCHDOG,
    notifications_failed_share,
    per_integration,
)
from mixin.self_monitoring import (
    ALERTMANAGERS_DISCOVERED,
    ALERTS_DROPPED,
    ALERTS_NOT_SENT_RATIO,
    ALERTS_NOT_SENT_SHARE,
    ALERTS_SENT,
    BLOCKS_BYTES,
    COMPACTIONS_FAILED,
    GROUP_INTERVAL,
    GROUP_LAST_DURATION,
    HEAD_SERIES,
    PROMETHEUS_JOB,
    QUEUE_CAPACITY,
    QUEUE_LENGTH,
    RELOADS_FAILED,
    RETENTION_LIMIT_BYTES,
    RULE_FAILURES,
    RULE_ITERATIONS_MISSED,
    SAMPLES_APPENDED,
    SIZE_RETENTIONS,
    WAL_BYTES,
    per_alertmanager,
)


def pipeline_dashboard() -> dict[str, Any]:
    prometheus = f'job="{PROMETHEUS_JOB}"'
    alertmanager = f'job="{ALERTMANAGER_JOB}"'
    # Alertmanager exports every integration it knows; only the receivers' are of interest.
    used = f'{alertmanager},integration=~"{regex(integrations())}"'

    def per_pod(metric: str) -> str:
        return f"max by (pod) ({metric}{{{prometheus}}})"

    def per_group(metric: str) -> str:
        return f"sum by (pod, rule_group) (rate({metric}{{{prometheus}}}[5m]))"

    g = Grid()
    # Red below one: none up, none gossiping.
    up = [(1.0, "green")]
    for title, description, expr, legend in (
        (
            "Prometheus replicas up",
            "Replicas scraped by the Prometheus this dashboard reads (each scrapes both, by pod "
            "discovery): 2 when both run.",
            f"sum(up{{{prometheus}}})",
            "up",
        ),
        (
            "Alertmanager replicas up",
            "Alertmanager replicas scraped through the headless Service alertmanager-cluster.",
            f"sum(up{{{alertmanager}}})",
            "up",
        ),
        (
            "Alertmanager gossip members (fewest any replica sees)",
            "Below the replicas up, they do not share the notification log and silences, and each "
            "notifies alone: AlertmanagerReplicasApart.",
            f"min({CLUSTER_MEMBERS}{{{alertmanager}}})",
            "members",
        ),
    ):
        g.add(
            panel("stat", title, description, "none", [(expr, legend)], thresholds=up, base_color="red"),
            4,
            4,
        )
    g.add(
        panel(
            "stat",
            "StatefulSets: replicas ready and wanted",
            "From kube-state-metrics, which sees the replicas that cannot be scheduled or never become "
            "ready: ready below wanted for 15 minutes fires PrometheusReplicasUnavailable or "
            "AlertmanagerReplicasUnavailable. Without kube-state-metrics up these are missing, and "
            "ClusterStateMissing fires.",
            "none",
            statefulset_queries(PIPELINE_STATEFULSETS),
            text_mode="value_and_name",
        ),
        6,
        4,
    )
    g.add(
        panel(
            "stat",
            "Alerts Alertmanager holds",
            "By state, the most any replica holds: active ones are notified, suppressed ones are held "
            "back by an inhibition or a silence (monitoring/README.md, Who is told).",
            "none",
            [(f"max by (state) ({ALERTMANAGER_ALERTS}{{{alertmanager}}})", "{{state}}")],
            text_mode="value_and_name",
        ),
        6,
        4,
    )
    g.newline()
    g.add(
        panel(
            "timeseries",
            "Rule evaluation failures (per second, 5 m)",
            "By replica and rule group. A group that fails fires none of its alerts: "
            "PrometheusRuleFailing pages after 15 minutes. Its Rules page (/rules) names the error.",
            "short",
            [(per_group(RULE_FAILURES), "{{pod}} {{rule_group}}")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Rule evaluation time (share of the group's interval)",
            "The last evaluation of each group over its interval: at 1 an evaluation outlasts the "
            "interval, and the next is skipped (PrometheusRuleEvaluationsMissed).",
            "percentunit",
            [
                (
                    f"max by (pod, rule_group) ({GROUP_LAST_DURATION}{{{prometheus}}}\n"
                    f"/\n{GROUP_INTERVAL}{{{prometheus}}})",
                    "{{pod}} {{rule_group}}",
                )
            ],
            thresholds=[(0.5, "orange"), (1, "red")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Rule evaluations skipped (per second, 5 m)",
            "Evaluations of a group skipped because the one before outlasted its interval: its alerts "
            "fire late and its recorded series have gaps.",
            "short",
            [(per_group(RULE_ITERATIONS_MISSED), "{{pod}} {{rule_group}}")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Alerts sent to each Alertmanager (per second, 5 m)",
            "By replica and Alertmanager. Firing alerts are sent again every minute, so a firing "
            "Watchdog alone keeps every line above zero.",
            "short",
            [(per_alertmanager(ALERTS_SENT), "{{pod}} → {{alertmanager}}")],
        ),
        6,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Alerts that failed to reach an Alertmanager (share, 5 m)",
            f"Over {ALERTS_NOT_SENT_RATIO:.0%} for 15 minutes: PrometheusAlertsUndelivered. "
            "Empty while a replica has sent nothing.",
            "percentunit",
            [(ALERTS_NOT_SENT_SHARE, "{{pod}} → {{alertmanager}}")],
            thresholds=[(ALERTS_NOT_SENT_RATIO, "red")],
        ),
        6,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Alertmanagers each replica found",
            "Through the headless Service alertmanager-cluster: below 1 a replica evaluates every "
            "alert and sends none (PrometheusWithoutAlertmanager).",
            "none",
            [(per_pod(ALERTMANAGERS_DISCOVERED), "{{pod}}")],
        ),
        6,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Alerts waiting to be sent, and dropped",
            "The send queue's fill (share of its capacity) and the alerts dropped per second (5 m): "
            "a full queue drops the oldest, so an alert can be lost without any Alertmanager "
            "refusing it.",
            "percentunit",
            [
                (
                    f"max by (pod) ({QUEUE_LENGTH}{{{prometheus}}}\n/\n{QUEUE_CAPACITY}{{{prometheus}}})",
                    "{{pod}} queue",
                ),
                (f"sum by (pod) (rate({ALERTS_DROPPED}{{{prometheus}}}[5m]))", "{{pod}} dropped/s"),
            ],
            thresholds=[(0.5, "orange"), (0.9, "red")],
            # A rate, not a share of the queue: 0.01 dropped a second is not "1 %".
            units={1: "ops"},
        ),
        6,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Notifications sent, by integration (per second, 15 m)",
            "What each replica's receivers send: webhook is the heartbeat (the Watchdog, every two "
            "minutes), pagerduty the pages, slack the chat posts.",
            "short",
            [(per_integration(NOTIFICATIONS, used), "{{integration}}")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Notifications that failed, by integration (share, 15 m)",
            f"After their retries. Over {NOTIFICATIONS_FAILED_RATIO:.0%} for 10 minutes: "
            "NotificationsFailing pages (through whichever receiver still works). Empty while an "
            "integration has sent nothing.",
            "percentunit",
            [(notifications_failed_share(used), "{{integration}}")],
            thresholds=[(NOTIFICATIONS_FAILED_RATIO, "red")],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Time to deliver a notification (p99, 15 m)",
            "By integration, retries included: how long after Alertmanager decides to notify the "
            "receiver has it. Empty while an integration has sent nothing.",
            "s",
            [
                (
                    f"histogram_quantile(0.99, sum by (integration, le) "
                    f"(rate({NOTIFICATION_LATENCY}_bucket{{{used}}}[15m])))",
                    "{{integration}}",
                )
            ],
        ),
        8,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Series in memory",
            "The head block's series per replica: what its memory grows with (README, Prometheus "
            "sizing: about 35,000 at the autoscalers' ceilings).",
            "short",
            [(per_pod(HEAD_SERIES), "{{pod}}")],
        ),
        6,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Samples ingested (per second, 5 m)",
            "Per replica; both scrape every target, so the two lines should be close.",
            "short",
            [(f"sum by (pod) (rate({SAMPLES_APPENDED}{{{prometheus}}}[5m]))", "{{pod}}")],
        ),
        6,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Disk used, and the size limit",
            "Blocks and write-ahead log per replica, against --storage.tsdb.retention.size (0 without "
            "one). At the limit the oldest blocks go before their 15 days (PrometheusHistoryShortened).",
            "bytes",
            [
                (
                    f"max by (pod) ({BLOCKS_BYTES}{{{prometheus}}}\n+\n{WAL_BYTES}{{{prometheus}}})",
                    "{{pod}} used",
                ),
                (per_pod(RETENTION_LIMIT_BYTES), "{{pod}} limit"),
            ],
        ),
        6,
        8,
    )
    g.add(
        panel(
            "timeseries",
            "Storage failures (3 h)",
            "Compactions and block reloads that failed, and blocks deleted for size: a full volume or "
            "a corrupt block (PrometheusStorageFailing, PrometheusHistoryShortened).",
            "short",
            [
                (f"sum by (pod) (increase({metric}{{{prometheus}}}[3h]))", f"{{{{pod}}}} {what}")
                for metric, what in (
                    (COMPACTIONS_FAILED, "compactions failed"),
                    (RELOADS_FAILED, "reloads failed"),
                    (SIZE_RETENTIONS, "deleted for size"),
                )
            ],
        ),
        6,
        8,
    )
    # The platform's own alerts (they name no service), but the Watchdog, which always fires.
    platform = alerts_firing(f'service="",alertname!="{WATCHDOG}"')
    return dashboard(
        PIPELINE_DASHBOARD, "ML platform: alerting pipeline", ["alerting"], g, [], annotation=platform
    )
