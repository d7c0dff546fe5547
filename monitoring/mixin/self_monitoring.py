"""Prometheus watching itself: the failures that silence alerts without stopping Prometheus.

A rule that fails to evaluate (a join that became many-to-many after a label changed, a query over
its limits) fires nothing, however bad what it watches; a replica that cannot reach Alertmanager
evaluates every alert and tells no one. Neither stops the Watchdog's heartbeat while the other
replica is well, and neither shows on any dashboard of the services. So each replica scrapes both
(job ``prometheus``, k8s/base/prometheus/prometheus.yml), and these alerts, of the platform, name
the replica (``pod``) and what failed (kube-prometheus's Prometheus mixin watches the same).
"""

from __future__ import annotations

from mixin.alerts import Alert
from mixin.rule_tests.cases import Case, series_str

#: The scrape job of the Prometheus replicas themselves.
PROMETHEUS_JOB = "prometheus"
RULE_FAILURES = "prometheus_rule_evaluation_failures_total"
RULE_ITERATIONS_MISSED = "prometheus_rule_group_iterations_missed_total"
ALERTS_SENT = "prometheus_notifications_sent_total"
ALERTS_NOT_SENT = "prometheus_notifications_errors_total"
ALERTMANAGERS_DISCOVERED = "prometheus_notifications_alertmanagers_discovered"
COMPACTIONS_FAILED = "prometheus_tsdb_compactions_failed_total"
RELOADS_FAILED = "prometheus_tsdb_reloads_failures_total"
#: Blocks deleted to stay under --storage.tsdb.retention.size.
SIZE_RETENTIONS = "prometheus_tsdb_size_retentions_total"
#: What the alerting pipeline dashboard (mixin.pipeline_dashboard) reads besides the alerts' series.
GROUP_LAST_DURATION = "prometheus_rule_group_last_duration_seconds"
GROUP_INTERVAL = "prometheus_rule_group_interval_seconds"
QUEUE_LENGTH = "prometheus_notifications_queue_length"
QUEUE_CAPACITY = "prometheus_notifications_queue_capacity"
ALERTS_DROPPED = "prometheus_notifications_dropped_total"
HEAD_SERIES = "prometheus_tsdb_head_series"
SAMPLES_APPENDED = "prometheus_tsdb_head_samples_appended_total"
BLOCKS_BYTES = "prometheus_tsdb_storage_blocks_bytes"
WAL_BYTES = "prometheus_tsdb_wal_storage_size_bytes"
#: --storage.tsdb.retention.size in bytes; 0 without one.
RETENTION_LIMIT_BYTES = "prometheus_tsdb_retention_limit_bytes"
#: Share of one replica's alerts to one Alertmanager whose sending may fail (5 m) before it is told.
ALERTS_NOT_SENT_RATIO = 0.01


def per_alertmanager(metric: str) -> str:
    """Each replica's rate (5 m) of ``metric``, a counter of alerts sent to each Alertmanager."""
    return f'sum by (pod, alertmanager) (rate({metric}{{job="{PROMETHEUS_JOB}"}}[5m]))'


#: The share of each replica's alerts to each Alertmanager whose sending failed: what
#: PrometheusAlertsUndelivered holds to ALERTS_NOT_SENT_RATIO, and the pipeline dashboard plots.
ALERTS_NOT_SENT_SHARE = f"{per_alertmanager(ALERTS_NOT_SENT)}\n/\n{per_alertmanager(ALERTS_SENT)}"

RULE_FAILING = "PrometheusRuleFailing"
EVALUATIONS_MISSED = "PrometheusRuleEvaluationsMissed"
ALERTS_UNDELIVERED = "PrometheusAlertsUndelivered"
NO_ALERTMANAGER = "PrometheusWithoutAlertmanager"
STORAGE_FAILING = "PrometheusStorageFailing"
HISTORY_SHORTENED = "PrometheusHistoryShortened"


def prometheus_alerts() -> list[Alert]:
    job = f'job="{PROMETHEUS_JOB}"'

    def per_group(metric: str) -> str:
        return f"sum by (pod, rule_group) (increase({metric}{{{job}}}[5m])) > 0"

    pod, group = "{{ $labels.pod }}", "{{ $labels.rule_group }}"
    return [
        Alert(
            RULE_FAILING,
            per_group(RULE_FAILURES),
            # Critical: every alert of that group is blind, and nothing else says so.
            "critical",
            f"Prometheus {pod} fails to evaluate the rules of {group}: their alerts cannot fire",
            f"For 15 minutes Prometheus {pod} has failed to evaluate rules of the group {group}. "
            "An alerting rule that fails fires nothing, however bad what it watches; a recording "
            "rule that fails leaves the alerts and panels built on it without data. Its Rules page "
            "(/rules) shows the error of each rule.",
            "15m",
        ),
        Alert(
            EVALUATIONS_MISSED,
            per_group(RULE_ITERATIONS_MISSED),
            "warning",
            f"Prometheus {pod} skips evaluations of {group}: it takes longer than its interval",
            f"For 15 minutes Prometheus {pod} has skipped evaluations of the rule group {group}, "
            "because one evaluation took longer than the interval: its alerts fire late, and its "
            "recorded series have gaps. A replica short of CPU, or a rule whose query grew with the "
            "series it reads.",
            "15m",
        ),
        Alert(
            ALERTS_UNDELIVERED,
            f"{ALERTS_NOT_SENT_SHARE}\n> {ALERTS_NOT_SENT_RATIO:g}",
            "warning",
            f"Prometheus {pod} cannot send alerts to the Alertmanager at {{{{ $labels.alertmanager }}}}",
            f"For 15 minutes over {ALERTS_NOT_SENT_RATIO:.0%} of the alerts Prometheus {pod} sent "
            "to the Alertmanager at {{ $labels.alertmanager }} failed. The other Alertmanager, or "
            "the other Prometheus, may still carry them; if neither can, this alert cannot arrive "
            "either, and the Watchdog's heartbeat stops.",
            "15m",
        ),
        Alert(
            NO_ALERTMANAGER,
            f"max by (pod) (max_over_time({ALERTMANAGERS_DISCOVERED}{{{job}}}[5m])) < 1",
            "warning",
            f"Prometheus {pod} has found no Alertmanager to send its alerts to",
            f"For 10 minutes Prometheus {pod} has found no Alertmanager through the headless "
            "Service alertmanager-cluster: it evaluates every alert and sends none. The other "
            "replica still may.",
            "10m",
        ),
        Alert(
            STORAGE_FAILING,
            f"sum by (pod) (increase({COMPACTIONS_FAILED}{{{job}}}[3h]))\n"
            f"+\nsum by (pod) (increase({RELOADS_FAILED}{{{job}}}[3h]))\n> 0",
            "warning",
            f"Prometheus {pod} fails to compact or reload its stored blocks",
            f"Prometheus {pod} has failed to compact its recent data into blocks, or to reload "
            "them, in the last 3 hours: its volume is full or a block is corrupt. Its memory grows "
            "with the data it cannot write out, and a restart may lose what is not yet in blocks.",
            "1h",
        ),
        Alert(
            HISTORY_SHORTENED,
            f"sum by (pod) (increase({SIZE_RETENTIONS}{{{job}}}[1d])) > 0",
            "warning",
            f"Prometheus {pod} deletes data before its 15 days to stay under its size limit",
            f"In the last day Prometheus {pod} has deleted its oldest blocks to stay under "
            "--storage.tsdb.retention.size, before they were 15 days old: it holds more series than "
            "its volume was sized for, so dashboards and the daily drift rules see less history "
            "than they expect.",
        ),
    ]


def prometheus_cases() -> list[Case]:
    # Each replica as the pod discovery labels it.
    replica = {"job": PROMETHEUS_JOB, "instance": "10.0.0.5:9090", "pod": "prometheus-0"}
    other = {"job": PROMETHEUS_JOB, "instance": "10.0.0.6:9090", "pod": "prometheus-1"}
    services_group = "/etc/prometheus/rules/bankchurn.rules.yaml;bankchurn.alerts"

    def per_group(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
        return {series_str(metric, {**labels, "rule_group": services_group}): values}

    def sending(
        labels: dict[str, str], sent: str, failed: str, to: str = "http://10.0.0.9:9093"
    ) -> dict[str, str]:
        at = {**labels, "alertmanager": f"{to}/api/v2/alerts"}
        return {series_str(ALERTS_SENT, at): sent, series_str(ALERTS_NOT_SENT, at): failed}

    def stored(labels: dict[str, str], compactions: str, reloads: str) -> dict[str, str]:
        return {
            series_str(COMPACTIONS_FAILED, labels): compactions,
            series_str(RELOADS_FAILED, labels): reloads,
        }

    blind = {"alertname": RULE_FAILING, "pod": "prometheus-0", "rule_group": services_group}
    late = {**blind, "alertname": EVALUATIONS_MISSED}
    return [
        Case(
            RULE_FAILING,
            "fires: one replica's rules of a group fail at every evaluation",
            {
                **per_group(RULE_FAILURES, replica, "0+4x30"),
                **per_group(RULE_FAILURES, other, "0x30"),
            },
            "20m",
            [blind],
        ),
        Case(RULE_FAILING, "quiet: no failure", per_group(RULE_FAILURES, replica, "0x30"), "20m"),
        Case(
            RULE_FAILING,
            "quiet: a failure once, then none (a restart's first evaluation)",
            per_group(RULE_FAILURES, replica, "0 1x29"),
            "20m",
        ),
        Case(
            EVALUATIONS_MISSED,
            "fires: an evaluation skipped every minute",
            per_group(RULE_ITERATIONS_MISSED, replica, "0+1x30"),
            "20m",
            [late],
        ),
        Case(
            EVALUATIONS_MISSED,
            "quiet: none skipped",
            per_group(RULE_ITERATIONS_MISSED, replica, "0x30"),
            "20m",
        ),
        Case(
            ALERTS_UNDELIVERED,
            "fires: one replica's alerts to one Alertmanager fail, to the other go through",
            {
                **sending(replica, "0+10x30", "0+10x30"),
                **sending(replica, "0+10x30", "0x30", to="http://10.0.0.8:9093"),
                **sending(other, "0+10x30", "0x30"),
            },
            "20m",
            [
                {
                    "alertname": ALERTS_UNDELIVERED,
                    "pod": "prometheus-0",
                    "alertmanager": "http://10.0.0.9:9093/api/v2/alerts",
                }
            ],
        ),
        Case(ALERTS_UNDELIVERED, "quiet: every alert sent", sending(replica, "0+10x30", "0x30"), "20m"),
        Case(
            NO_ALERTMANAGER,
            "fires: none discovered",
            {
                series_str(ALERTMANAGERS_DISCOVERED, replica): "0x30",
                series_str(ALERTMANAGERS_DISCOVERED, other): "2x30",
            },
            "20m",
            [{"alertname": NO_ALERTMANAGER, "pod": "prometheus-0"}],
        ),
        Case(
            NO_ALERTMANAGER,
            "quiet: one of two discovered (AlertmanagerReplicasUnavailable says which is missing)",
            {series_str(ALERTMANAGERS_DISCOVERED, replica): "1x30"},
            "20m",
        ),
        Case(
            STORAGE_FAILING,
            "fires: a compaction failed",
            stored(replica, "0x30 1x200", "0x230"),
            "3h",
            [{"alertname": STORAGE_FAILING, "pod": "prometheus-0"}],
        ),
        Case(
            STORAGE_FAILING,
            "fires: a reload failed",
            stored(replica, "0x230", "0x30 1x200"),
            "3h",
            [{"alertname": STORAGE_FAILING, "pod": "prometheus-0"}],
        ),
        Case(STORAGE_FAILING, "quiet: none failed", stored(replica, "0x230", "0x230"), "3h"),
        Case(
            HISTORY_SHORTENED,
            "fires: blocks deleted for size an hour ago",
            {series_str(SIZE_RETENTIONS, replica): "0x60 1x60"},
            "2h",
            [{"alertname": HISTORY_SHORTENED, "pod": "prometheus-0"}],
        ),
        Case(
            HISTORY_SHORTENED,
            "quiet: deleted for size two days ago, not since",
            {series_str(SIZE_RETENTIONS, replica): "0x60 1x3000"},
            "2d",
        ),
    ]
