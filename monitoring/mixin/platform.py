"""The platform's own alerts: the parts that tell of the services, watched in turn.

A kube-state-metrics that is not scraped silences the cluster alerts of every service, and a
receiver that refuses Alertmanager's notifications silences whatever is routed to it. Neither
belongs to one service, so their alerts carry no ``service`` label and have their own rule file
(``rules/platform.rules.yaml``) and promtool tests.

Prometheus and Alertmanager run two replicas each: kube-state-metrics says when one is missing,
and the other still alerts. What no alert can say is that both are down, or cannot reach the
outside: the Watchdog fires always, Alertmanager sends it to a heartbeat service outside the
cluster (mixin.alertmanager), and that service tells the team when the pings stop
(kube-prometheus's dead man's switch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixin.alerts.alert import Alert, on_dashboard
from mixin.cluster import JOB as CLUSTER_JOB
from mixin.cluster import SCRAPED as CLUSTER_SCRAPED
from mixin.cluster import STATEFULSET_READY, STATEFULSET_REPLICAS, statefulset, statefulset_queries
from mixin.common import PIPELINE_DASHBOARD
from mixin.grafana import ALERTS
from mixin.rule_tests.cases import CLUSTER_TARGET, Case, alert_tests, series_str
from mixin.rule_tests.panels import panel_tests
from mixin.self_monitoring import prometheus_alerts, prometheus_cases

#: The rule file's name, beside the services' (rules/<name>.rules.yaml, tests/<name>.test.yaml).
PLATFORM = "platform"
#: Alertmanager's scrape job (k8s/base/prometheus/prometheus.yml).
ALERTMANAGER_JOB = "alertmanager"
NOTIFICATIONS = "alertmanager_notifications_total"
NOTIFICATIONS_FAILED = "alertmanager_notifications_failed_total"
#: Alertmanager's StatefulSet (k8s/base/alertmanager).
ALERTMANAGER_STATEFULSET = "alertmanager"
#: Prometheus's StatefulSet (k8s/base/prometheus).
PROMETHEUS_STATEFULSET = "prometheus"
#: The StatefulSets the alerting pipeline runs on, as its dashboard shows them.
PIPELINE_STATEFULSETS = (PROMETHEUS_STATEFULSET, ALERTMANAGER_STATEFULSET)
#: How many members a replica's gossip cluster has, itself included, as that replica sees it.
CLUSTER_MEMBERS = "alertmanager_cluster_members"
#: The alerts a replica holds, by state (active, suppressed by an inhibition or a silence, unprocessed).
ALERTMANAGER_ALERTS = "alertmanager_alerts"
#: Time to deliver one notification, by integration (a histogram).
NOTIFICATION_LATENCY = "alertmanager_notification_latency_seconds"
#: Share of an integration's notifications that may fail (15 m) before the platform is told.
NOTIFICATIONS_FAILED_RATIO = 0.01
#: The alert that always fires, whose notifications are the heartbeat.
WATCHDOG = "Watchdog"
#: Its severity: it is no problem, and neither pages nor is posted (kube-prometheus's convention).
WATCHDOG_SEVERITY = "none"


def per_integration(metric: str, selector: str = f'job="{ALERTMANAGER_JOB}"') -> str:
    """The rate (15 m) of ``metric``, a counter of Alertmanager's notifications, per integration."""
    return f"sum by (integration) (rate({metric}{{{selector}}}[15m]))"


def notifications_failed_share(selector: str = f'job="{ALERTMANAGER_JOB}"') -> str:
    """The share of each integration's notifications that failed after their retries: what
    NotificationsFailing holds to NOTIFICATIONS_FAILED_RATIO, and the pipeline dashboard plots."""
    return f"{per_integration(NOTIFICATIONS_FAILED, selector)}\n/\n{per_integration(NOTIFICATIONS, selector)}"


def platform_alerts() -> list[Alert]:
    job = f'job="{ALERTMANAGER_JOB}"'
    up = f"up{{{job}}}"

    # Each reads the alerting pipeline (Prometheus, Alertmanager, their StatefulSets): its dashboard.
    return on_dashboard(
        [
            Alert(
                WATCHDOG,
                "vector(1)",
                WATCHDOG_SEVERITY,
                "The alerting pipeline is working: this alert always fires",
                "Prometheus evaluates its rules and Alertmanager delivers: it sends this alert to the "
                "heartbeat service about every 2 minutes (95-125 s with two replicas; up to 3 minutes "
                "after a slow retry), and that service tells the team when it stops. "
                "Never silence it.",
            ),
            Alert(
                "NotificationsFailing",
                f"{notifications_failed_share()}\n> {NOTIFICATIONS_FAILED_RATIO:g}",
                # Critical, so it goes to both receivers: whichever still works carries it.
                "critical",
                "Alertmanager cannot deliver its {{ $labels.integration }} notifications",
                f"For 10 minutes over {NOTIFICATIONS_FAILED_RATIO:.0%} of Alertmanager's "
                "{{ $labels.integration }} notifications have failed after their retries: the alerts "
                "routed there reach no one. Its log names the "
                "error (a revoked Slack webhook, a wrong PagerDuty routing key, the NetworkPolicy).",
                "10m",
            ),
            Alert(
                "AlertmanagerReplicasApart",
                f"count({up} == 1)\n> min({CLUSTER_MEMBERS}{{{job}}})",
                "warning",
                "The Alertmanager replicas do not gossip: each notifies alone",
                "For 10 minutes a running Alertmanager replica has seen fewer members in its cluster than "
                "the replicas Prometheus scrapes: they no longer share the notification log or the "
                "silences, so every alert is sent once by each, and a silence made on one holds back "
                "nothing the other sends.",
                "10m",
            ),
            replicas_unavailable(
                ALERTMANAGER_STATEFULSET,
                "Alertmanager",
                "the ones left notify alone, and losing them too leaves no one to notify (the heartbeat "
                "service would then say so)",
            ),
            replicas_unavailable(
                PROMETHEUS_STATEFULSET,
                "Prometheus",
                "the one left is the only one scraping and alerting, and losing it too stops every alert "
                "(the heartbeat service would then say so); a replica that comes back has a gap in its "
                "data for the time it was away",
            ),
            Alert(
                "ClusterStateMissing",
                f"absent({CLUSTER_SCRAPED} == 1)",
                "warning",
                "kube-state-metrics is not scraped: no service's replica or autoscaler alert can fire",
                "For 15 minutes Prometheus has had no kube-state-metrics to scrape, or could not scrape "
                "it, so ReplicasUnavailable, AutoscalerAtMaximum and AutoscalerInactive are blind for "
                "every service, and AlertmanagerReplicasUnavailable and PrometheusReplicasUnavailable "
                "for the platform.",
                "15m",
            ),
            *prometheus_alerts(),
        ],
        PIPELINE_DASHBOARD,
    )


def replicas_unavailable(name: str, title: str, consequence: str) -> Alert:
    """``<title>ReplicasUnavailable``: the StatefulSet ``name`` has had fewer ready replicas than it
    wants for 15 minutes, from kube-state-metrics (a replica cannot tell that it is missing)."""
    return Alert(
        f"{title}ReplicasUnavailable",
        f"{statefulset(STATEFULSET_REPLICAS, name)}\n>\n{statefulset(STATEFULSET_READY, name)}",
        "warning",
        f"{title} has had fewer ready replicas than the {{{{ $value }}}} it wants for 15 minutes",
        f"For 15 minutes the {title} StatefulSet has had fewer ready replicas than the "
        f"{{{{ $value }}}} it wants: {consequence}. A replica that cannot be scheduled, whose "
        "volume cannot attach in its zone, or that never becomes ready.",
        "15m",
    )


def platform_rule_file() -> dict[str, Any]:
    return {"groups": [{"name": f"{PLATFORM}.alerts", "rules": [a.rule(None) for a in platform_alerts()]}]}


def platform_cases() -> list[Case]:
    # A replica as the DNS discovery names it (by pod IP), and the one kube-state-metrics.
    alertmanager = {"job": ALERTMANAGER_JOB, "instance": "10.0.0.1:9093"}
    kube_state_metrics = {"job": CLUSTER_JOB, "instance": "kube-state-metrics:8080"}

    def sent(integration: str, total: str, failed: str) -> dict[str, str]:
        labels = {**alertmanager, "integration": integration}
        return {series_str(NOTIFICATIONS, labels): total, series_str(NOTIFICATIONS_FAILED, labels): failed}

    def scraped(up: str) -> dict[str, str]:
        return {series_str("up", kube_state_metrics): up}

    def replicas(*members: tuple[str, str | None]) -> dict[str, str]:
        """Each replica's ``up`` and its count of members (none when it is down), by pod IP, as the
        DNS discovery names them."""
        series = {}
        for index, (up, seen) in enumerate(members):
            replica = {**alertmanager, "instance": f"10.0.0.{index + 1}:9093"}
            series[series_str("up", replica)] = up
            if seen is not None:
                series[series_str(CLUSTER_MEMBERS, replica)] = seen
        return series

    def wanted_and_ready(wanted: str, ready: str, name: str = ALERTMANAGER_STATEFULSET) -> dict[str, str]:
        pair = {**kube_state_metrics, "statefulset": name}
        return {
            series_str(STATEFULSET_REPLICAS, pair): wanted,
            series_str(STATEFULSET_READY, pair): ready,
        }

    failing = "NotificationsFailing"
    apart = "AlertmanagerReplicasApart"
    unavailable = "AlertmanagerReplicasUnavailable"
    prometheus_unavailable = "PrometheusReplicasUnavailable"
    missing = "ClusterStateMissing"
    return [
        # Whatever the series, from the first evaluation.
        Case(WATCHDOG, "fires: always", {}, "0m", [{"alertname": WATCHDOG}]),
        Case(WATCHDOG, "fires: always, beside anything", scraped("0x30"), "20m", [{"alertname": WATCHDOG}]),
        # Slack refuses 1 in 5; PagerDuty delivers: only Slack is named.
        Case(
            failing,
            "fires: 1 in 5 Slack notifications failed",
            {**sent("slack", "0+5x30", "0+1x30"), **sent("pagerduty", "0+5x30", "0x30")},
            "25m",
            [{"alertname": failing, "integration": "slack"}],
        ),
        Case(failing, "quiet: every notification delivered", sent("slack", "0+5x30", "0x30"), "25m"),
        # The gossip port closed between them: each sees itself alone.
        Case(
            apart,
            "fires: two replicas, each alone",
            replicas(("1x30", "1x30"), ("1x30", "1x30")),
            "15m",
            [{"alertname": apart}],
        ),
        Case(
            apart,
            "fires: one of two alone",
            replicas(("1x30", "2x30"), ("1x30", "1x30")),
            "15m",
            [{"alertname": apart}],
        ),
        Case(apart, "quiet: two replicas, one cluster", replicas(("1x30", "2x30"), ("1x30", "2x30")), "15m"),
        # A replica down: the other notifies for both (and the Watchdog notices when neither does).
        Case(
            apart,
            "quiet: one of two down, the other alone",
            replicas(("0x30", None), ("1x30", "1x30")),
            "15m",
        ),
        Case(apart, "quiet: not for 10 minutes yet", replicas(("1x30", "1x30"), ("1x30", "1x30")), "9m"),
        Case(
            unavailable,
            "fires: one of two not ready",
            wanted_and_ready("2x30", "1x30"),
            "20m",
            [{"alertname": unavailable, **kube_state_metrics, "statefulset": ALERTMANAGER_STATEFULSET}],
            rendered={"{{ $value }}": "2"},
        ),
        Case(unavailable, "quiet: both ready", wanted_and_ready("2x30", "2x30"), "20m"),
        Case(
            unavailable,
            "quiet: a restart, ready again within 15 minutes",
            wanted_and_ready("2x30", "1x5 2x25"),
            "20m",
        ),
        # The same rule for Prometheus's pair; the other StatefulSet's series do not fire it.
        Case(
            prometheus_unavailable,
            "fires: one of two not ready",
            {
                **wanted_and_ready("2x30", "1x30", PROMETHEUS_STATEFULSET),
                **wanted_and_ready("2x30", "2x30"),
            },
            "20m",
            [
                {
                    "alertname": prometheus_unavailable,
                    **kube_state_metrics,
                    "statefulset": PROMETHEUS_STATEFULSET,
                }
            ],
            rendered={"{{ $value }}": "2"},
        ),
        Case(
            prometheus_unavailable,
            "quiet: Alertmanager's replica missing, Prometheus's both ready",
            {
                **wanted_and_ready("2x30", "2x30", PROMETHEUS_STATEFULSET),
                **wanted_and_ready("2x30", "1x30"),
            },
            "20m",
        ),
        # The staging footprint (k8s/components/staging-footprint) wants one.
        Case(
            prometheus_unavailable,
            "quiet: the one replica staging wants, ready",
            wanted_and_ready("1x30", "1x30", PROMETHEUS_STATEFULSET),
            "20m",
        ),
        Case(missing, "fires: scraped, but down", scraped("0x30"), "20m", [{"alertname": missing}]),
        Case(
            missing,
            "fires: not scraped at all",
            {series_str("up", {"job": "model-servers", "instance": "10.0.0.1:8080"}): "1x30"},
            "20m",
            [{"alertname": missing}],
        ),
        Case(missing, "quiet: scraped and up", scraped("1x30"), "20m"),
        *prometheus_cases(),
    ]


def statefulset_panel_tests() -> list[dict[str, Any]]:
    """The alerting pipeline dashboard's StatefulSet panel over kube-state-metrics' series (no live
    test has them: no cluster), beside another StatefulSet with more of both, so a query that
    missed the name would show."""
    # Ready and wanted, per StatefulSet.
    own = dict(zip(PIPELINE_STATEFULSETS, ((1, 2), (2, 2)), strict=True))
    series: dict[str, str] = {}
    for name, (ready, wanted) in {**own, "other": (5, 7)}.items():
        labels = {**CLUSTER_TARGET, "statefulset": name}
        series[series_str(STATEFULSET_READY, labels)] = f"{ready}x10"
        series[series_str(STATEFULSET_REPLICAS, labels)] = f"{wanted}x10"
    # kube-state-metrics up, beside another job's target up and one down: one, not three.
    series[series_str("up", CLUSTER_TARGET)] = "1x10"
    series[series_str("up", {"job": "prometheus", "instance": "10.0.0.9:9090"})] = "1x10"
    series[series_str("up", {"job": CLUSTER_JOB, "instance": "10.0.0.8:8080"})] = "0x10"
    expected = [*(value for ready, wanted in own.values() for value in (ready, wanted)), 1]
    return panel_tests("StatefulSet panel", statefulset_queries(PIPELINE_STATEFULSETS), series, expected)


def annotation_tests(annotations: Mapping[str, str], services: list[str]) -> list[dict[str, Any]]:
    """Each dashboard's *Alerts firing* annotation (``annotations``: its expr by dashboard file name)
    over the ALERTS series of every scope: each service's firing and pending alerts, a page of the
    first service, a page of the platform, and the Watchdog, which the rule file itself fires. A
    service's dashboard marks its own firing alerts; the pipeline's, the platform's but the
    Watchdog; the overview, every page."""

    def alert(name: str, state: str, severity: str, **labels: str) -> str:
        return series_str(ALERTS, {"alertname": name, "alertstate": state, "severity": severity, **labels})

    paged = alert("AvailabilityBudgetBurnFast", "firing", "critical", service=services[0])
    platform_page = alert("NotificationsFailing", "firing", "critical", integration="slack")
    firing = {
        service: alert("ReplicasUnavailable", "firing", "warning", service=service) for service in services
    }
    series = {
        **dict.fromkeys((paged, platform_page, *firing.values()), "1x10"),
        **{alert("InputDrift", "pending", "warning", service=service): "1x10" for service in services},
    }
    expected = {
        **{service: [firing[service], *([paged] if service == services[0] else [])] for service in services},
        "alerting": [platform_page],
        "overview": [paged, platform_page],
        # Control: the Watchdog is there to be left out.
        "the Watchdog itself": [alert(WATCHDOG, "firing", WATCHDOG_SEVERITY)],
    }
    exprs = {**annotations, "the Watchdog itself": f'{ALERTS}{{alertname="{WATCHDOG}",alertstate="firing"}}'}
    assert set(exprs) == set(expected), sorted(exprs)
    return [
        {
            "name": f"Alerts firing annotation: {name}",
            "interval": "1m",
            "input_series": [{"series": k, "values": v} for k, v in series.items()],
            "promql_expr_test": [
                {
                    "expr": exprs[name],
                    "eval_time": "5m",
                    "exp_samples": [{"labels": labels, "value": 1} for labels in expected[name]],
                }
            ],
        }
        for name in expected
    ]


def platform_test_file(annotations: Mapping[str, str], services: list[str]) -> dict[str, Any]:
    return {
        "rule_files": [f"../rules/{PLATFORM}.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": alert_tests(platform_alerts(), platform_cases())
        + statefulset_panel_tests()
        + annotation_tests(annotations, services),
    }
