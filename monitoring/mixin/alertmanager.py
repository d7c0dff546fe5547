"""Alertmanager's configuration: who hears of each alert, how soon, and what one alert makes redundant.

Prometheus only evaluates the alerts; Alertmanager (k8s/base/alertmanager) groups them, silences
the ones another already explains, and notifies. Severity routes them, as the runbooks promise:
``critical`` pages (PagerDuty) and is posted to chat, ``warning`` is posted to chat (Slack) for
the next working hours, and so is ``info``: news that asks for a decision, not a fix (a shadow
model that scores better than the one served). The inhibitions name alerts of
:mod:`mixin.alerts`, and every severity those use has its route: tests/monitoring hold both, so
renaming an alert cannot leave a rule that silences nothing.

The Watchdog (mixin.platform), which always fires, goes to neither: it is the heartbeat, posted
about every 2 minutes to a dead man's switch outside the cluster (Healthchecks.io, Dead Man's Snitch,
Cronitor: any that takes a POST to a secret URL), which tells the team when the posts stop: when
Prometheus, Alertmanager, the cluster or its way out is down, and no alert here can say so.

No secret is in this file: the receivers read the Slack webhook URL, the PagerDuty routing key and
the heartbeat URL from the files of the Secret ``alertmanager-receivers`` (k8s/README.md), mounted
at RECEIVERS_DIR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixin.platform import WATCHDOG

#: The generated file, relative to monitoring/ (ConfigMap alertmanager-config, monitoring/kustomization.yaml).
ALERTMANAGER_CONFIG = "alertmanager/alertmanager.yml"
#: Where the Secret alertmanager-receivers is mounted (k8s/base/alertmanager).
RECEIVERS_DIR = "/etc/alertmanager/receivers"
SLACK_WEBHOOK_URL_KEY = "slack-webhook-url"
PAGERDUTY_ROUTING_KEY_KEY = "pagerduty-routing-key"
HEARTBEAT_URL_KEY = "heartbeat-url"
#: Every key of the Secret the receivers read (k8s/base/alertmanager mounts exactly these).
RECEIVER_KEYS = (SLACK_WEBHOOK_URL_KEY, PAGERDUTY_ROUTING_KEY_KEY, HEARTBEAT_URL_KEY)
PAGER, CHAT, HEARTBEAT = "pager", "chat", "heartbeat"
#: The heartbeat route's group interval and repeat interval: a post about every 2 minutes (95-125 s
#: with two replicas; up to 3 minutes after a slow retry).
#: Alertmanager looks at a group each group interval and re-sends once the repeat interval has
#: passed since the last post was logged, which is a few milliseconds after the look that sent it.
#: With both at a minute, whether it had passed at the next look was a race of those milliseconds:
#: Alertmanager 0.28.1 posted 60 s or 120 s apart as it fell (a probe saw mostly 60 s). A repeat
#: interval of one and a half group intervals has never passed at the next look and always at the
#: one after: one replica posts every 120 s. Two gossiping replicas (k8s/base/alertmanager) share the
#: log of posts but look on timers of their own phase, the second 15 s later (its peer timeout), so
#: whichever looks first once 90 s have passed posts: 95 to 125 s apart. A slow retry logs a post
#: late and defers the next by a look, to 180 s. The heartbeat check expects one every 2 minutes,
#: with 5 minutes' grace (runbook Watchdog), which covers 180 s twice over.
HEARTBEAT_GROUP_INTERVAL = "1m"
HEARTBEAT_REPEAT_INTERVAL = "90s"
#: The severity that pages (and is posted to CHAT too); every other is posted to CHAT only.
PAGED = "critical"
#: The severities the alerts use (tests/monitoring hold them to it).
SEVERITIES = (PAGED, "warning", "info")
#: One notification per alert and service: a page names one thing to look at.
GROUP_BY = ("alertname", "service")


@dataclass(frozen=True)
class Inhibition:
    """While ``source`` fires for a service, ``targets`` of the same service notify no one."""

    source: str
    #: Alert names; empty means every other alert of the service.
    targets: tuple[str, ...]
    why: str

    def rule(self) -> dict[str, Any]:
        target = f'alertname=~"{"|".join(self.targets)}"' if self.targets else f'alertname!="{self.source}"'
        return {
            "source_matchers": [f'alertname="{self.source}"'],
            "target_matchers": [target],
            "equal": ["service"],
        }


INHIBITIONS = (
    Inhibition(
        "ServiceAbsent",
        (),
        "No target of the service is scraped: whatever else fires for it follows from that.",
    ),
    Inhibition(
        "AvailabilityBudgetBurnFast",
        ("AvailabilityBudgetBurnSlow",),
        "The same budget burning, already paged.",
    ),
    Inhibition(
        "LatencyBudgetBurnFast",
        ("LatencyBudgetBurnSlow",),
        "The same budget burning, already paged.",
    ),
    Inhibition(
        "ModelNotReady",
        ("ReplicasUnavailable",),
        "Pods whose model does not load are the unavailable replicas; the page names the cause.",
    ),
    Inhibition(
        "CanaryStopped",
        ("CanaryFailing",),
        "The pods already stopped the failing canary; the notice says so and what to do.",
    ),
)

SLACK_TITLE = (
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] '
    "{{ .CommonLabels.alertname }} {{ .CommonLabels.service }}"
)
#: Alertmanager's page for a new silence of the notification's group (its alert, and its service if
#: it has one), the matchers filled in: silencing during planned work is one click from the message.
#: ``.ExternalURL`` is --web.external-url (k8s/base/alertmanager: the port-forward's address).
SILENCE_URL = (
    "{{ .ExternalURL }}/#/silences/new?filter=%7B"
    '{{ range .GroupLabels.SortedPairs }}{{ if ne .Name "alertname" }}'
    "{{ .Name }}%3D%22{{ .Value | urlquery }}%22%2C{{ end }}{{ end }}"
    "alertname%3D%22{{ .GroupLabels.alertname | urlquery }}%22%7D"
)
#: A page's text: the group's first alert's summary, and how many fire. Not CommonAnnotations, which
#: is empty once two alerts' annotations differ (ModelNotReady's summary names its pod, and both
#: Prometheus replicas raise PrometheusRuleFailing): such a page arrived titled "bankchurn: ".
PAGE_DESCRIPTION = (
    "{{ with .CommonLabels.service }}{{ . }}: {{ end }}{{ (index .Alerts 0).Annotations.summary }}"
    "{{ if gt (len .Alerts.Firing) 1 }} (and {{ len .Alerts.Firing }} firing in all){{ end }}"
)
#: The first alert's annotations, for the same reason: a dashboard link opens on one pod.
FIRST_ALERT = "(index .Alerts 0).Annotations"
SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
    "{{ if .Labels.instance }}instance: {{ .Labels.instance }}\n{{ end }}"
    "<{{ .Annotations.dashboard_url }}|dashboard> · <{{ .Annotations.runbook_url }}|runbook> · "
    "<{{ .GeneratorURL }}|query>\n{{ end }}"
    f'{{{{ if eq .Status "firing" }}}}<{SILENCE_URL}|silence>{{{{ end }}}}'
)


def alertmanager_config() -> dict[str, Any]:
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": CHAT,
            "group_by": list(GROUP_BY),
            # Long enough for the alerts one cause raises together to leave in one notification.
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": [
                {
                    "receiver": HEARTBEAT,
                    "matchers": [f'alertname="{WATCHDOG}"'],
                    # The first post at once, then one every two group intervals while it fires.
                    "group_wait": "0s",
                    "group_interval": HEARTBEAT_GROUP_INTERVAL,
                    "repeat_interval": HEARTBEAT_REPEAT_INTERVAL,
                },
                {
                    "receiver": PAGER,
                    "matchers": [f'severity="{PAGED}"'],
                    # A page is also posted to chat, where the rest of the team sees it.
                    "continue": True,
                    # Re-sent while it fires: PagerDuty keeps one incident per group (its dedup key).
                    "repeat_interval": "1h",
                },
                {"receiver": CHAT},
            ],
        },
        "inhibit_rules": [inhibition.rule() for inhibition in INHIBITIONS],
        "receivers": [
            {
                "name": HEARTBEAT,
                "webhook_configs": [
                    {
                        "url_file": f"{RECEIVERS_DIR}/{HEARTBEAT_URL_KEY}",
                        # Only "firing" posts are pings: a "resolved" one, sent as Prometheus
                        # stops, would tell the heartbeat service all is well.
                        "send_resolved": False,
                    }
                ],
            },
            {
                "name": PAGER,
                "pagerduty_configs": [
                    {
                        "routing_key_file": f"{RECEIVERS_DIR}/{PAGERDUTY_ROUTING_KEY_KEY}",
                        "description": PAGE_DESCRIPTION,
                        "severity": "{{ .CommonLabels.severity }}",
                        "links": [
                            {"href": f"{{{{ {FIRST_ALERT}.runbook_url }}}}", "text": "runbook"},
                            {"href": f"{{{{ {FIRST_ALERT}.dashboard_url }}}}", "text": "dashboard"},
                            # A page is of one alert and service: its alerts share the expression.
                            {"href": "{{ (index .Alerts 0).GeneratorURL }}", "text": "query"},
                        ],
                        "send_resolved": True,
                    }
                ],
            },
            {
                "name": CHAT,
                "slack_configs": [
                    {
                        "api_url_file": f"{RECEIVERS_DIR}/{SLACK_WEBHOOK_URL_KEY}",
                        "title": SLACK_TITLE,
                        "title_link": f"{{{{ {FIRST_ALERT}.runbook_url }}}}",
                        "text": SLACK_TEXT,
                        "send_resolved": True,
                    }
                ],
            },
        ],
    }


def integrations() -> list[str]:
    """The integrations the receivers notify through, as Alertmanager's ``integration`` label names
    them (a receiver's ``slack_configs`` are ``slack``). Alertmanager exports a series for each of
    the sixteen it knows; the dashboard shows only these."""
    suffix = "_configs"
    receivers = alertmanager_config()["receivers"]
    return sorted({key.removesuffix(suffix) for r in receivers for key in r if key.endswith(suffix)})
