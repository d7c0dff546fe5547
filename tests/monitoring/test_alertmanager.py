"""The generated Alertmanager configuration: valid, every alert routed by its severity, and live.

``amtool`` (Alertmanager's own tool) checks the file and resolves each alert's receivers. The live
test runs a real Alertmanager on that file, with a real Prometheus sending it alerts, and receives
its notifications on 127.0.0.1 where Slack and PagerDuty would.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from alerting import (
    CONFIG,
    LABELS,
    NO_CLUSTER,
    Receiver,
    always,
    cluster,
    local_configuration,
    slack_titles,
    start_alertmanager,
    start_prometheus,
)

from mixin.alertmanager import (
    CHAT,
    HEARTBEAT,
    INHIBITIONS,
    PAGER,
    RECEIVER_KEYS,
    RECEIVERS_DIR,
    SEVERITIES,
)
from mixin.alerts import alerts
from mixin.platform import CLUSTER_MEMBERS, NOTIFICATIONS, PLATFORM, WATCHDOG, platform_alerts
from mixin.rule_tests.cases import label_actions, render
from processes import free_port, installed, metric_value, wait_until
from scripts import MONITORING
from servekit import http_client, registry
from servekit.local import Server


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
    """Critical pages and is posted to chat; warning and info are posted to chat; the Watchdog goes
    to the heartbeat service alone. Resolved by amtool itself."""
    expected = {"critical": f"{PAGER},{CHAT}", "warning": CHAT, "info": CHAT}
    checked = set()
    every = [(alert, f"service={service}") for service in registry.available() for alert in alerts(service)]
    # The platform's own alerts have no service label (mixin.platform).
    every += [(alert, "") for alert in platform_alerts()]
    for alert, service in every:
        labels = [f"alertname={alert.name}", f"severity={alert.severity}", *([service] if service else [])]
        receivers = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
        want = HEARTBEAT if alert.name == WATCHDOG else expected[alert.severity]
        assert receivers == want, (alert.name, receivers)
        checked.add(alert.name if alert.name == WATCHDOG else alert.severity)
    assert checked == {*SEVERITIES, WATCHDOG}


def test_the_receivers_read_exactly_the_secrets_keys() -> None:
    """Each *_file of a receiver is a key the Deployment mounts (tests/k8s hold the mounts to it)."""
    config = yaml.safe_load(CONFIG.read_text())
    files = {
        value
        for receiver in config["receivers"]
        for integration in receiver.values()
        if isinstance(integration, list)
        for settings in integration
        for key, value in settings.items()
        if key.endswith("_file")
    }
    assert files == {f"{RECEIVERS_DIR}/{key}" for key in RECEIVER_KEYS}


def test_every_inhibition_names_alerts_that_exist() -> None:
    for service in registry.available():
        names = {a.name for a in alerts(service)}
        for inhibition in INHIBITIONS:
            assert inhibition.source in names, inhibition
            assert set(inhibition.targets) <= names, inhibition


#: How long a replica waits for the one before it to notify (15 s in the cluster), in the live test.
PEER_TIMEOUT_SECONDS = 2


def start_replicas(config: Path, directory: Path, *, gossip: bool, count: int = 2) -> list[Server]:
    """``count`` Alertmanagers on ``config``: a gossip cluster as k8s/base/alertmanager runs them (each
    lists every replica as a peer), or, with ``gossip`` False, as many that know nothing of each other."""
    mesh = [free_port() for _ in range(count)]
    replicas = []
    for index in range(count):
        state = directory / f"alertmanager-{index}"
        state.mkdir()
        flags = (
            [*cluster(mesh[index], mesh), f"--cluster.peer-timeout={PEER_TIMEOUT_SECONDS}s"]
            if gossip
            else NO_CLUSTER
        )
        replicas.append(start_alertmanager(config, state, name=f"alertmanager-{index}", gossip=flags))
    return replicas


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
#: Raised by two pods at once: their summaries (and dashboard links) differ, so the group has no
#: common annotation, and a page built from CommonAnnotations arrived as "bankchurn: ".
TWO_PODS = "ModelNotReady"
OTHER_POD = {**LABELS, "instance": "10.0.0.2:8080"}
#: How a page of the two pods' alerts ends its summary.
BOTH_FIRING = " (and 2 firing in all)"
#: Posted to Slack: the pages, and the warning no page explains.
POSTED = PAGES | {"PredictionDrift"}


@pytest.mark.integration
def test_prometheus_alerts_reach_pagerduty_and_slack_through_alertmanager(
    receiver: Receiver, tmp_path: Path
) -> None:
    """Each alert is the service's own rule (labels, annotations) with an expression that holds at once."""
    service = "bankchurn"
    alertmanager = start_alertmanager(local_configuration(receiver, tmp_path), tmp_path)
    # The service's real alerts, as its rule file has them, with an expression that always holds.
    by_name = {a.name: a for a in alerts(service)}

    def summary(name: str) -> str:
        return render(by_name[name].summary, label_actions(LABELS))

    def link(name: str, text: str) -> str:
        return render(by_name[name].annotations()[f"{text}_url"], label_actions(LABELS))

    rules_file = tmp_path / "firing.rules.yaml"

    def expression(name: str) -> str:
        return f"{always(LABELS)} or {always(OTHER_POD)}" if name == TWO_PODS else always(LABELS)

    def fire(names: Sequence[str]) -> None:
        rules = [{**by_name[name].rule(service), "expr": expression(name), "for": "0s"} for name in names]
        rules_file.write_text(yaml.safe_dump({"groups": [{"name": "firing", "rules": rules}]}))

    def held() -> set[str]:
        found = http_client.get(f"{alertmanager.url}/api/v2/alerts", timeout=10).json()
        return {a["labels"]["alertname"] for a in found}

    # The alerts that hold others back fire first, and the others only once Alertmanager has them:
    # Prometheus sends each rule's alerts as it evaluates it, so in one start the warning of a pair
    # can reach Alertmanager first (on a busy machine, seconds first), and nothing yet holds it back.
    # In production the 30 s group wait covers that.
    first = [name for name in FIRING if name not in {i for x in INHIBITIONS for i in x.targets}]
    fire(first)
    prometheus = None
    try:
        alertmanager.wait_for("/-/ready", seconds=60)
        # Its first evaluation may come before it has discovered the Alertmanager: those alerts are
        # dropped, and resent after the resend delay (a minute by default). Not less than 5 s: on a
        # busy machine a gap between two evaluations would end an alert, and it would be notified twice.
        prometheus = start_prometheus([rules_file], [alertmanager], tmp_path, resend_delay="5s")
        prometheus_url = prometheus.url
        prometheus.wait_for("/-/ready", seconds=60)
        wait_until(lambda: held() == set(first))
        fire(FIRING)
        http_client.post(f"{prometheus.url}/-/reload", timeout=30).raise_for_status()
        wait_until(lambda: held() == set(FIRING))
        wait_until(
            lambda: (
                len(receiver.posted("/v2/enqueue")) >= len(PAGES)
                and len(receiver.posted("/slack")) >= len(POSTED)
            )
        )
        # The two pods' alerts may reach Alertmanager a group wait apart: then the first is notified
        # alone, and both in the next notification.
        wait_until(
            lambda: (
                any(p["payload"]["summary"].endswith(BOTH_FIRING) for p in receiver.posted("/v2/enqueue"))
                and any(
                    a["title"].startswith(f"[FIRING:2] {TWO_PODS} ")
                    for post in receiver.posted("/slack")
                    for a in post["attachments"]
                )
            )
        )
        # Several group waits more: an inhibited alert that leaked would have arrived by now.
        time.sleep(4)
        pages, posts = receiver.posted("/v2/enqueue"), receiver.posted("/slack")
        fired = http_client.get(f"{alertmanager.url}/api/v2/alerts", timeout=10).json()
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

    # PagerDuty: one event per page, with the routing key, the summary, the runbook and the dashboard.
    assert {p["routing_key"] for p in pages} == {"test-routing-key"}
    assert all(p["event_action"] == "trigger" for p in pages)
    summaries = {p["payload"]["summary"] for p in pages}
    expected = {f"{service}: {summary(name)}{BOTH_FIRING if name == TWO_PODS else ''}" for name in PAGES}
    first_pod_alone = f"{service}: {summary(TWO_PODS)}"
    assert expected <= summaries <= expected | {first_pod_alone}
    assert {p["payload"]["severity"] for p in pages} == {"critical"}
    assert {
        (link["text"], link["href"]) for p in pages for link in p["links"] if link["text"] != "query"
    } == {(text, link(name, text)) for name in PAGES for text in ("runbook", "dashboard")}
    for page in pages:
        [source] = [link["href"] for link in page["links"] if link["text"] == "query"]
        assert source.startswith(f"{prometheus_url}/graph?"), source
        expressions = {expression(name) for name in PAGES}
        assert urllib.parse.parse_qs(source.partition("?")[2])["g0.expr"][0] in expressions, source

    # Slack: one message per alert not inhibited, titled with its name and service.
    titles = [a["title"] for post in posts for a in post["attachments"]]
    assert len(titles) == len(set(titles)), titles
    expected_titles = {f"[FIRING:{2 if name == TWO_PODS else 1}] {name} {service}" for name in POSTED}
    assert expected_titles <= set(titles) <= expected_titles | {f"[FIRING:1] {TWO_PODS} {service}"}
    texts = " ".join(a["text"] for post in posts for a in post["attachments"])
    for name in POSTED:
        assert summary(name) in texts
        links = {f"<{link(name, text)}|{text}>" for text in ("runbook", "dashboard")}
        assert all(link in texts for link in links), (name, texts)
    # Each post ends with a link to silence its group: Alertmanager's new-silence page, whose filter
    # selects the very alert posted (its name and service), and nothing wider.
    for post in posts:
        [attachment] = post["attachments"]
        [silence] = re.findall(r"<([^|>]+)\|silence>", attachment["text"])
        page, _, query = silence.partition("?")
        assert page == f"{alertmanager.url}/#/silences/new", silence
        matchers = dict(re.findall(r'(\w+)="([^"]*)"', urllib.parse.parse_qs(query)["filter"][0]))
        name = attachment["title"].split()[1]
        assert matchers == {"alertname": name, "service": service}, silence
        posted = [a for a in fired if a["labels"]["alertname"] == name]
        assert posted
        assert all(a["labels"][label] == value for a in posted for label, value in matchers.items())
        # And, for each of its alerts, to the query that raised it, on the Prometheus that evaluated it.
        sources = re.findall(r"<([^|>]+)\|query>", attachment["text"])
        firing = int(attachment["title"].partition(":")[2].partition("]")[0])
        assert len(sources) == firing, attachment["text"]
        for source in sources:
            graph, _, query = source.partition("?")
            assert graph == f"{prometheus_url}/graph", source
            assert urllib.parse.parse_qs(query)["g0.expr"] == [expression(name)], source
    assert not receiver.posted("/heartbeat")  # the Watchdog's rule was not loaded


@pytest.mark.integration
def test_the_watchdog_is_posted_to_the_heartbeat_until_prometheus_stops(
    receiver: Receiver, tmp_path: Path
) -> None:
    """The platform's rule file as committed: its Watchdog reaches the heartbeat service, and only it,
    while Prometheus runs; when Prometheus stops, so do the posts, which is what the service watches."""
    resend_delay = 2
    alertmanager = start_alertmanager(local_configuration(receiver, tmp_path), tmp_path)
    prometheus = None
    try:
        alertmanager.wait_for("/-/ready", seconds=60)
        rules = MONITORING / "rules" / f"{PLATFORM}.rules.yaml"
        prometheus = start_prometheus([rules], [alertmanager], tmp_path, resend_delay=f"{resend_delay}s")
        prometheus.wait_for("/-/ready", seconds=60)
        wait_until(lambda: len(receiver.posted("/heartbeat")) >= 4)
        arrived = receiver.posted_at("/heartbeat")
        prometheus.stop()
        # The alert ends four resend delays after Prometheus last sent it; a post already under way
        # may still arrive.
        time.sleep(4 * resend_delay + 4)
        after_stop = len(receiver.posted("/heartbeat"))
        time.sleep(5)  # two more heartbeat posts' time
        pings = receiver.posted("/heartbeat")
    finally:
        if prometheus is not None:
            prometheus.stop()
        alertmanager.stop()
    assert len(pings) == after_stop, "posted after Prometheus stopped: the heartbeat would not notice"
    # Two group intervals apart (1 s here for the cluster's minute), every time: the repeat interval
    # has passed at the second look, never at the first. Equal intervals gave a mix of one and two.
    # A late post only widens a gap; none can come sooner than the repeat interval after the last.
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrived)]
    assert all(gap > 1.5 for gap in gaps), gaps
    for ping in pings:
        assert ping["receiver"] == HEARTBEAT
        # A resolved post would read as a heartbeat to the service: only firing ones are sent.
        assert ping["status"] == "firing"
        assert [a["labels"]["alertname"] for a in ping["alerts"]] == [WATCHDOG]
    assert not receiver.posted("/slack")
    assert not receiver.posted("/v2/enqueue")


def clustered(replica: Server) -> bool:
    """Whether the replica's gossip has settled with every peer (its own status API says so)."""
    status = http_client.get(f"{replica.url}/api/v2/status", timeout=10).json()["cluster"]
    return status["status"] == "ready" and len(status.get("peers") or []) == 2


@pytest.mark.integration
@pytest.mark.parametrize(("gossip", "posts"), [(True, 1), (False, 2)], ids=["cluster", "two-strangers"])
def test_two_replicas_notify_once_and_one_left_still_notifies(
    receiver: Receiver, tmp_path: Path, gossip: bool, posts: int
) -> None:
    """Prometheus sends each alert to both replicas, as in the cluster. In a gossip cluster one posts
    it and the other, seeing that in the shared notification log, does not; once one replica is
    gone, the other posts a new alert alone. Two replicas without the gossip (the control) post
    each alert twice: what the cluster saves an on-call engineer from."""
    service = "bankchurn"
    by_name = {a.name: a for a in alerts(service)}
    rules_file = tmp_path / "firing.rules.yaml"

    def fire(names: Sequence[str]) -> None:
        rules = [{**by_name[name].rule(service), "expr": always(LABELS), "for": "0s"} for name in names]
        rules_file.write_text(yaml.safe_dump({"groups": [{"name": "firing", "rules": rules}]}))

    def holds(replica: Server, names: set[str]) -> bool:
        found = http_client.get(f"{replica.url}/api/v2/alerts", timeout=10).json()
        return {a["labels"]["alertname"] for a in found} == names

    first, second = "PredictionDrift", "ReplicasUnavailable"  # two warnings, posted to Slack
    fire([first])
    replicas = start_replicas(local_configuration(receiver, tmp_path), tmp_path, gossip=gossip)
    prometheus = None
    try:
        for replica in replicas:
            replica.wait_for("/-/ready", seconds=60)
        if gossip:
            wait_until(lambda: all(clustered(r) for r in replicas))
        prometheus = start_prometheus([rules_file], replicas, tmp_path, resend_delay="5s")
        prometheus.wait_for("/-/ready", seconds=60)
        wait_until(lambda: all(holds(r, {first}) for r in replicas))  # each was sent the alert
        wait_until(lambda: len(receiver.posted("/slack")) >= 1)
        # Both peer timeouts and several group intervals: a second post would have come by now.
        time.sleep(2 * PEER_TIMEOUT_SECONDS + 4)
        after_both = slack_titles(receiver)
        # What the platform alerts read, as the replicas export it (mixin.platform).
        members = [metric_value(replica, CLUSTER_MEMBERS) for replica in replicas]
        sent = sum(metric_value(replica, NOTIFICATIONS, integration="slack") for replica in replicas)
        if gossip:
            replicas[0].stop()  # a node drained, a zone lost
            fire([first, second])
            http_client.post(f"{prometheus.url}/-/reload", timeout=30).raise_for_status()
            wait_until(lambda: any(second in title for title in slack_titles(receiver)))
            time.sleep(2 * PEER_TIMEOUT_SECONDS + 4)
        after_one = slack_titles(receiver)
    finally:
        if prometheus is not None:
            prometheus.stop()
        for replica in replicas:
            replica.stop()

    assert after_both == [f"[FIRING:1] {first} {service}"] * posts
    assert sent == posts
    # Each counts the whole cluster (AlertmanagerReplicasApart fires when one counts fewer); without
    # the gossip there is no cluster, and no count.
    assert members == ([2.0, 2.0] if gossip else [0.0, 0.0])
    if gossip:
        # The survivor posts the new alert once (its group holds only it: one alert per group).
        assert after_one == sorted([*after_both, f"[FIRING:1] {second} {service}"])
