"""Alertmanager for `make monitor`: the cluster's routes and inhibitions, told to this terminal.

Every receiver of the committed configuration (mixin.alertmanager) becomes a webhook to the alert
printer (monitoring/print_alerts.py) at ``<printer>/<receiver>``, so a local run shows what the
cluster would page, what it would post to chat and what it would hold back, at the same waits,
with no Slack or PagerDuty to set up.
"""

from __future__ import annotations

from typing import Any

from mixin.alertmanager import HEARTBEAT, alertmanager_config


def local_alertmanager_config(printer_url: str) -> dict[str, Any]:
    config = alertmanager_config()
    config["receivers"] = [
        {
            "name": receiver["name"],
            "webhook_configs": [
                {
                    "url": f"{printer_url.rstrip('/')}/{receiver['name']}",
                    # As the cluster's heartbeat: only firing posts.
                    "send_resolved": receiver["name"] != HEARTBEAT,
                }
            ],
        }
        for receiver in config["receivers"]
    ]
    return config
