"""The generated Alertmanager configuration: valid, every alert routed by its severity, and live.

``amtool`` (Alertmanager's own tool) checks the file and resolves each alert's receivers. The live
test runs a real Alertmanager on that file, with a real Prometheus sending it alerts, and receives
its notifications on 127.0.0.1 where Slack and PagerDuty would.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mixin.alertmanager import (
    ALERTMANAGER_CONFIG,
    CHAT,
    INHIBITIONS,
    PAGER,
    PAGERDUTY_ROUTING_KEY_KEY,
    RECEIVERS_DIR,
    SEVERITIES,
    SLACK_WEBHOOK_URL_KEY,
)
from mixin.alerts import alerts
from mixin.platform import platform_alerts
from mixin.rule_tests import render
from processes import free_port, installed
from scripts import MONITORING
from servekit import registry
from servekit.local import start

CONFIG = MONITORING / ALERTMANAGER_CONFIG


def amtool(*args: str) -> str:
    done = subprocess.run(
        [installed("amtool"), *args], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_amtool_accepts_the_generated_configuration() -> None:
    out = amtool("check-config", str(CONFIG))
    assert "SUCCESS" in out
    assert f"{len(INHIBITIONS)} inhibit rules" in out


def test_every_alert_reaches_the_receivers_of_its_severity() -> None:
    """Critical pages and is posted to chat; warning is posted to chat. Resolved by amtool itself."""
    expected = {"critical": f"{PAGER},{CHAT}", "warning": CHAT}
    checked = set()
    every = [(alert, f"service={service}") for service in registry.available() for alert in alerts(service)]
    # The platform's own alerts have no service label (mixin.platform).
    every += [(alert, "") for alert in platform_alerts()]
    for alert, service in every:
        labels = [f"alertname={alert.name}", f"severity={alert.severity}", *([service] if service else [])]
        receivers = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
        assert receivers == expected[alert.severity], (alert.name, receivers)
        checked.add(alert.severity)
    assert checked == set(SEVERITIES)


def test_every_inhibition_names_alerts_that_exist() -> None:
    for service in registry.available():
        names = {a.name for a in alerts(service)}
        for inhibition in INHIBITIONS:
            assert inhibition.source in names, inhibition
            assert set(inhibition.targets) <= names, inhibition


class Receiver(ThreadingHTTPServer):
    """Slack's webhook and PagerDuty's events API, on 127.0.0.1: every JSON body posted, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append((self.path, json.loads(body)))
                self.send_response(202 if self.path.startswith("/v2/enqueue") else 200)
                self.end_headers()
                self.wfile.write(b'{"status":"success"}')

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def posted(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.received if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


#: The alerts Prometheus fires in the live test, for BankChurn: two pages, each with a warning the
#: inhibitions silence, and a warning that is posted.
FIRING = (
    "AvailabilityBudgetBurnFast",
    "AvailabilityBudgetBurnSlow",
    "ModelNotReady",
    "ReplicasUnavailable",
    "PredictionDrift",
)
PAGES = {"AvailabilityBudgetBurnFast", "ModelNotReady"}
#: Posted to Slack: the pages, and the warning no page explains.
POSTED = PAGES | {"PredictionDrift"}
#: The labels the alerts' summaries name, set on the series that makes them fire.
LABELS = {"instance": "10.0.0.1:8080", "outcome": "churn"}


def always(labels: dict[str, str]) -> str:
    """An expression that holds at once, with ``labels``."""
    expr = "vector(1)"
    for label, value in labels.items():
        expr = f'label_replace({expr}, "{label}", "{value}", "", "")'
    return expr


@pytest.mark.integration
def test_prometheus_alerts_reach_pagerduty_and_slack_through_alertmanager(
    receiver: Receiver, tmp_path: Path
) -> None:
    """The committed configuration, with three things changed for a test: where the receivers' files
    are, PagerDuty's address (127.0.0.1), and the grouping waits (1 s instead of 30 s and 5 m).

    Each alert is the service's own rule (labels, annotations) with an expression that holds at once.
    """
    service = "bankchurn"
    secrets = tmp_path / "receivers"
    secrets.mkdir()
    (secrets / SLACK_WEBHOOK_URL_KEY).write_text(f"{receiver.url}/slack")
    (secrets / PAGERDUTY_ROUTING_KEY_KEY).write_text("test-routing-key")
    config = yaml.safe_load(CONFIG.read_text().replace(RECEIVERS_DIR, str(secrets)))
    config["global"]["pagerduty_url"] = f"{receiver.url}/v2/enqueue"
    config["route"].update(group_wait="1s", group_interval="1s")
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(config))
    am_port = free_port()
    alertmanager = start(
        "alertmanager",
        [
            installed("alertmanager", "prometheus-alertmanager"),
            f"--config.file={am_config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        am_port,
        tmp_path,
    )
    # The service's real alerts, as its rule file has them, with an expression that always holds.
    by_name = {a.name: a for a in alerts(service)}

    def summary(name: str) -> str:
        return render(by_name[name].summary, {f"{{{{ $labels.{k} }}}}": v for k, v in LABELS.items()})

    rules_file = tmp_path / "firing.rules.yaml"

    def fire(names: Sequence[str]) -> None:
        rules = [{**by_name[name].rule(service), "expr": always(LABELS), "for": "0s"} for name in names]
        rules_file.write_text(yaml.safe_dump({"groups": [{"name": "firing", "rules": rules}]}))

    def held() -> set[str]:
        found = httpx.get(f"{alertmanager.url}/api/v2/alerts", timeout=10).json()
        return {a["labels"]["alertname"] for a in found}

    # The alerts that hold others back fire first, and the others only once Alertmanager has them:
    # Prometheus sends each rule's alerts as it evaluates it, so in one start the warning of a pair
    # can reach Alertmanager first (on a busy machine, seconds first), and nothing yet holds it back.
    # In production the 30 s group wait covers that.
    first = [name for name in FIRING if name not in {i for x in INHIBITIONS for i in x.targets}]
    fire(first)
    prometheus_config = {
        "global": {"evaluation_interval": "1s"},
        "rule_files": [str(rules_file)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config))
    prom_port = free_port()
    prometheus = None
    try:
        alertmanager.wait_for("/-/ready", seconds=60)
        prometheus = start(
            "prometheus",
            [
                installed("prometheus"),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                "--log.level=warn",
                # Its first evaluation may come before it has discovered the Alertmanager: those
                # alerts are dropped, and resent a minute later by default. Each alert it sends
                # ends in four of these unless sent again, so not less: on a busy machine a gap
                # between two evaluations would resolve it, and it would be notified twice.
                "--rules.alert.resend-delay=5s",
                "--web.enable-lifecycle",
            ],
            prom_port,
            tmp_path,
        )
        prometheus.wait_for("/-/ready", seconds=60)

        def wait_until_held(names: Sequence[str]) -> None:
            deadline = time.monotonic() + 60
            while held() != set(names):
                assert time.monotonic() < deadline, held()
                time.sleep(0.5)

        wait_until_held(first)
        fire(FIRING)
        httpx.post(f"{prometheus.url}/-/reload", timeout=30).raise_for_status()
        wait_until_held(FIRING)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pages, posts = receiver.posted("/v2/enqueue"), receiver.posted("/slack")
            if len(pages) >= len(PAGES) and len(posts) >= len(POSTED):
                break
            time.sleep(0.5)
        # Several group waits more: an inhibited alert that leaked would have arrived by now.
        time.sleep(4)
        pages, posts = receiver.posted("/v2/enqueue"), receiver.posted("/slack")
        fired = httpx.get(f"{alertmanager.url}/api/v2/alerts", timeout=10).json()
    finally:
        if prometheus is not None:
            prometheus.stop()
        alertmanager.stop()

    # Alertmanager holds all five, the two warnings inhibited by the pages that explain them.
    states = {a["labels"]["alertname"]: a["status"] for a in fired}
    assert set(states) == set(FIRING)
    for name in set(FIRING) - POSTED:
        assert states[name]["state"] == "suppressed", states[name]
        assert states[name]["inhibitedBy"], states[name]

    # PagerDuty: one event per page, with the routing key, the summary and the runbook.
    assert {p["routing_key"] for p in pages} == {"test-routing-key"}
    assert all(p["event_action"] == "trigger" for p in pages)
    summaries = {p["payload"]["summary"] for p in pages}
    assert summaries == {f"{service}: {summary(name)}" for name in PAGES}
    assert {p["payload"]["severity"] for p in pages} == {"critical"}
    assert {link["href"] for p in pages for link in p["links"]} == {
        by_name[name].annotations()["runbook_url"] for name in PAGES
    }

    # Slack: one message per alert not inhibited, titled with its name and service.
    titles = sorted(a["title"] for post in posts for a in post["attachments"])
    assert titles == sorted(f"[FIRING:1] {name} {service}" for name in POSTED)
    texts = " ".join(a["text"] for post in posts for a in post["attachments"])
    for name in POSTED:
        assert summary(name) in texts
