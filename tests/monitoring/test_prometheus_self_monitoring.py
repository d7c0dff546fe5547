"""Prometheus watching itself, live: a rule that fails at evaluation, alerts that cannot reach their
Alertmanager and a Prometheus with no Alertmanager each fire the platform's alert that names them
(mixin.self_monitoring), from the metrics a real Prometheus exports about itself.

Each Prometheus scrapes itself as `make monitor`'s does (mixin.local_prometheus, job "prometheus")
and loads the committed platform rules with their ``for`` set to 0, so an alert fires at its first
evaluation that holds instead of after 10 or 15 minutes (the promtool cases hold the durations).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin.local_prometheus import prometheus_config
from mixin.platform import PLATFORM, platform_alerts
from mixin.self_monitoring import ALERTS_UNDELIVERED, NO_ALERTMANAGER, PROMETHEUS_JOB, RULE_FAILING
from processes import free_port, run_prometheus, wait_until
from servekit import http_client
from servekit.local import Server

pytestmark = pytest.mark.integration

#: An alert whose join became one-to-many, as after a label was added to one side: valid to
#: promtool, it fails at every evaluation ("multiple matches for labels").
BROKEN_GROUP = "orders.alerts"
BROKEN = {
    "groups": [
        {
            "name": BROKEN_GROUP,
            "rules": [
                {
                    "alert": "OrdersSlow",
                    "expr": '(label_replace(vector(1), "zone", "a", "", "") or '
                    'label_replace(vector(1), "zone", "b", "", "")) * on() vector(1) > 0',
                    "labels": {"severity": "warning"},
                }
            ],
        }
    ]
}


def platform_rules_at_once() -> dict[str, Any]:
    """The platform's rule file, each alert firing at its first evaluation that holds."""
    return {
        "groups": [
            {
                "name": f"{PLATFORM}.alerts",
                "rules": [{**alert.rule(None), "for": "0s"} for alert in platform_alerts()],
            }
        ]
    }


def start_watching_itself(
    directory: Path, rule_files: Sequence[Path], alertmanager: str | None
) -> tuple[Server, str]:
    """A Prometheus scraping itself every second, sending to ``alertmanager`` if given; and the pod
    label its configuration gives it."""
    directory.mkdir()

    def config(itself: str) -> dict[str, Any]:
        local = prometheus_config({}, "1s", alertmanager=alertmanager, itself=itself)
        return {**local, "rule_files": [str(f) for f in rule_files]}

    server = run_prometheus(directory, config, resend_delay="1s")
    written = yaml.safe_load((directory / "prometheus.yml").read_text())
    [job] = [j for j in written["scrape_configs"] if j["job_name"] == PROMETHEUS_JOB]
    return server, job["static_configs"][0]["labels"]["pod"]


def firing(prometheus: Server, name: str) -> list[dict[str, str]]:
    """The labels of each firing alert named ``name``."""
    found = http_client.get(f"{prometheus.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a["labels"] for a in found if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_a_failing_rule_and_undelivered_alerts_are_named(tmp_path: Path) -> None:
    """One Prometheus with a rule that fails and an Alertmanager address where nothing listens (the
    Watchdog, always firing, is sent there and fails); one with no Alertmanager at all."""
    platform, broken = tmp_path / "platform.rules.yaml", tmp_path / "broken.rules.yaml"
    platform.write_text(yaml.safe_dump(platform_rules_at_once()))
    broken.write_text(yaml.safe_dump(BROKEN))
    nowhere = f"127.0.0.1:{free_port()}"
    failing, failing_pod = start_watching_itself(tmp_path / "failing", [platform, broken], nowhere)
    alone, alone_pod = None, ""
    try:
        alone, alone_pod = start_watching_itself(tmp_path / "alone", [platform], None)
        for server in (failing, alone):
            server.wait_for("/-/ready", seconds=60)
        # increase() and rate() need two samples of the counters after they moved: seconds.
        wait_until(lambda: firing(failing, RULE_FAILING) and firing(failing, ALERTS_UNDELIVERED))
        wait_until(lambda: firing(alone, NO_ALERTMANAGER))
        rule_failing, undelivered = firing(failing, RULE_FAILING), firing(failing, ALERTS_UNDELIVERED)
        failing_without, alone_without = firing(failing, NO_ALERTMANAGER), firing(alone, NO_ALERTMANAGER)
        alone_failing = firing(alone, RULE_FAILING)
    finally:
        failing.stop()
        if alone is not None:
            alone.stop()

    # The broken group, and only it: the platform's own rules evaluate.
    assert [(a["pod"], a["rule_group"].rsplit(";", 1)) for a in rule_failing] == [
        (failing_pod, [str(broken), BROKEN_GROUP])
    ]
    assert [(a["pod"], a["alertmanager"]) for a in undelivered] == [
        (failing_pod, f"http://{nowhere}/api/v2/alerts")
    ]
    # One Alertmanager configured, found (and unreachable): that is the other alert's.
    assert not failing_without
    assert [a["pod"] for a in alone_without] == [alone_pod]
    assert not alone_failing
