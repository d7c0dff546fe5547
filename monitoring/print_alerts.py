#!/usr/bin/env python3
"""`make monitor`'s receiver: each notification Alertmanager sends, as one line per alert.

The path of each post is the receiver the cluster would have used (monitoring/mixin/
local_alertmanager.py): ``pager`` (PagerDuty, and chat too), ``chat`` (Slack), ``heartbeat``
(the dead man's switch). The heartbeat's first post is printed, as proof that alerts reach
Alertmanager and leave it; the next ones, every two minutes, are counted, not printed.
Standard library only, listening on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The runbooks, from the root of the checkout (where `make monitor` runs).
RUNBOOKS = "monitoring/runbooks.md"
#: What each receiver is in the cluster.
RECEIVERS = {"pager": "would page through PagerDuty", "chat": "would post to Slack", "heartbeat": "heartbeat"}


def lines(receiver: str, notification: dict[str, Any], heartbeats: int) -> list[str]:
    """What to print for one notification (none for a heartbeat after the first)."""
    stamp = time.strftime("%H:%M:%S")
    if receiver == "heartbeat":
        if heartbeats > 1:
            return []
        return [
            f"{stamp} heartbeat: Prometheus evaluates the rules and Alertmanager notifies "
            "(the Watchdog; in the cluster it goes to the dead man's switch every 2 minutes)"
        ]
    where = RECEIVERS.get(receiver, receiver)
    printed = []
    for alert in notification.get("alerts", []):
        labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
        service = labels.get("service", "platform")
        printed.append(
            f"{stamp} {alert.get('status', '?').upper():8} {labels.get('alertname', '?')} "
            f"[{labels.get('severity', '?')}] {service}: {annotations.get('summary', '')} ({where})"
        )
        # Here the runbook is the checkout's own file; the cluster's link is a served copy of it.
        _, _, section = annotations.get("runbook_url", "").partition("#")
        if alert.get("status") == "firing":
            indent = " " * len(stamp)
            if section:
                printed.append(f"{indent} runbook: {RUNBOOKS}#{section}")
            # The expression that raised it, graphed on the Prometheus of `make monitor`.
            if alert.get("generatorURL"):
                printed.append(f"{indent} query:   {alert['generatorURL']}")
    return printed


def serve(port: int) -> None:
    heartbeats = 0
    # Each post is handled in a thread of its own, and Alertmanager sends the pager's and the chat's
    # notifications of one alert at once: a notification's lines are written whole, under the lock,
    # or two of them interleave on one line. The heartbeat count is shared as well.
    printing = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal heartbeats
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver = self.path.strip("/")
            try:
                notification = json.loads(body)
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            with printing:
                if receiver == "heartbeat":
                    heartbeats += 1
                printed = lines(receiver, notification, heartbeats)
                if printed:
                    sys.stdout.write("".join(f"{line}\n" for line in printed))
                    sys.stdout.flush()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        serve(args.port)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
