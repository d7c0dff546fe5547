"""Prometheus's two replicas (k8s/base/prometheus), live: each evaluates every rule and sends every
alert to Alertmanager, which takes the two for one and notifies once; with one replica gone, the
alerts stay firing and the Watchdog's heartbeat goes on.

Each replica runs the cluster's own ``global`` and ``alerting`` settings (from the committed
prometheus.yml) and the platform's rules, and sends to a real Alertmanager on the committed
configuration, whose notifications the stand-ins of alerting.py receive.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerting import (
    LABELS,
    Receiver,
    always,
    local_configuration,
    slack_titles,
    start_alertmanager,
    start_prometheus,
)

from mixin.alerts import alerts
from mixin.platform import PLATFORM
from mixin.self_monitoring import ALERTS_SENT
from processes import metric_value, wait_until
from scripts import MONITORING, ROOT
from servekit import http_client
from servekit.local import Server

#: The cluster's Prometheus configuration (its ConfigMap, k8s/base/prometheus).
CLUSTER_CONFIG = ROOT / "k8s" / "base" / "prometheus" / "prometheus.yml"
#: How often a replica re-sends a firing alert; Alertmanager ends one not re-sent for four of these.
RESEND_SECONDS = 2
#: What a configuration that told the replicas apart would add: the label kube-prometheus's
#: replicas carry for remote storage, from each pod's name, not dropped from the alerts.
REPLICA_LABEL = {"replica": "${POD_NAME}"}


def cluster_settings() -> dict[str, Any]:
    committed = yaml.safe_load(CLUSTER_CONFIG.read_text())
    alerting = {k: v for k, v in committed.get("alerting", {}).items() if k != "alertmanagers"}
    return {"global": committed["global"], "alerting": alerting}


def told_apart() -> dict[str, Any]:
    settings = cluster_settings()
    return {**settings, "global": {**settings["global"], "external_labels": REPLICA_LABEL}}


def held(alertmanager: str, name: str) -> list[dict[str, Any]]:
    """The alerts named ``name`` Alertmanager holds, firing and not ended."""
    found = http_client.get(f"{alertmanager}/api/v2/alerts", params={"active": "true"}, timeout=10).json()
    return [a for a in found if a["labels"]["alertname"] == name]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("settings", "alerts_held"),
    [(cluster_settings, 1), (told_apart, 2)],
    ids=["as-committed", "told-apart"],
)
def test_two_replicas_alert_once_and_one_left_keeps_alerting(
    receiver: Receiver,
    tmp_path: Path,
    settings: Any,
    alerts_held: int,
) -> None:
    """Both replicas evaluate the service's alert and the platform's Watchdog. As committed,
    Alertmanager holds each alert once and posts it once. The control, replicas that add a label of
    their own to their alerts, makes every alert two: what the committed configuration must never do
    (tests/k8s/test_prometheus.py holds it to that). Then one replica stops, as in a drain: the alert
    stays firing past the time Alertmanager would end it, and the heartbeat goes on."""
    service, name = "bankchurn", "PredictionDrift"  # a warning, posted to Slack
    [rule] = [a.rule(service) for a in alerts(service) if a.name == name]
    firing = tmp_path / "firing.rules.yaml"
    firing.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "firing", "rules": [{**rule, "expr": always(LABELS), "for": "0s"}]}]}
        )
    )
    platform = MONITORING / "rules" / f"{PLATFORM}.rules.yaml"
    alertmanager = start_alertmanager(local_configuration(receiver, tmp_path), tmp_path)
    replicas: list[Server] = []
    try:
        alertmanager.wait_for("/-/ready", seconds=60)
        replicas = [
            start_prometheus(
                [firing, platform],
                [alertmanager],
                tmp_path,
                resend_delay=f"{RESEND_SECONDS}s",
                settings=settings(),
                name=f"prometheus-{index}",
            )
            for index in range(2)
        ]
        for replica in replicas:
            replica.wait_for("/-/ready", seconds=60)
        # Each replica has sent its alerts (it counts what it sent), and Alertmanager holds them.
        wait_until(lambda: all(metric_value(r, ALERTS_SENT) > 0 for r in replicas))
        wait_until(lambda: len(held(alertmanager.url, name)) == alerts_held)
        wait_until(lambda: len(receiver.posted("/slack")) >= 1)
        time.sleep(4)  # several group intervals: a second post would have come by now
        both_running = (len(held(alertmanager.url, name)), slack_titles(receiver))

        one_left, heartbeats, later_heartbeats, resolved = 0, 0, 0, []
        if alerts_held == 1:  # the control has shown what it is for
            replicas[0].stop()
            heartbeats = len(receiver.posted("/heartbeat"))
            # Alertmanager ends an alert four resend delays after it was last sent: past that, it
            # still holds the alert only if the replica left sends it.
            time.sleep(4 * RESEND_SECONDS + 4)
            one_left = len(held(alertmanager.url, name))
            later_heartbeats = len(receiver.posted("/heartbeat"))
            resolved = [t for t in slack_titles(receiver) if t.startswith("[RESOLVED")]
    finally:
        for replica in replicas:
            replica.stop()
        alertmanager.stop()

    held_both, titles = both_running
    assert held_both == alerts_held
    # One group (alertname and service) holds the replicas' alerts. As committed: one alert, one
    # post. Told apart: two alerts for one problem, posted as two (and, when the second replica's
    # came after the group's first post, posted again).
    if alerts_held == 1:
        assert titles == [f"[FIRING:1] {name} {service}"]
        assert one_left == 1, "the alert ended when one replica stopped"
        assert not resolved
        assert later_heartbeats > heartbeats, "the heartbeat stopped with one replica"
    else:
        assert titles[-1] == f"[FIRING:2] {name} {service}", titles
