"""`make monitor`'s receiver (monitoring/print_alerts.py) as Alertmanager calls it: posts at once."""

from __future__ import annotations

import contextlib
import io
import queue
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from scripts import MONITORING, load_script
from servekit import http_client

PRINTER = load_script("print_alerts", MONITORING / "print_alerts.py")


class Crowded(io.StringIO):
    """A terminal where each write waits (a while at most) for another thread's write.

    Two notifications handled at once then reach it together, as they do when Alertmanager sends
    the pager's and the chat's at the same moment, and any line written in parts is cut by the other.
    """

    def __init__(self) -> None:
        super().__init__()
        self.together = threading.Barrier(2, timeout=1)

    def write(self, text: str) -> int:
        written = super().write(text)
        # Broken (timed out): the other writer waits on the printer's lock, as it should.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.together.wait()
        return written


def notification(alertname: str) -> dict[str, Any]:
    labels = {"alertname": alertname, "severity": "critical", "service": "bankchurn"}
    summary = f"{alertname} is over"
    return {"alerts": [{"status": "resolved", "labels": labels, "annotations": {"summary": summary}}]}


def unstamped(text: str) -> list[str]:
    """The lines, each without its time (two posts may straddle a second)."""
    return sorted(line[len("00:00:00") :] for line in text.splitlines())


def test_notifications_posted_at_once_are_printed_each_on_lines_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servers: queue.Queue[ThreadingHTTPServer] = queue.Queue()

    class Server(ThreadingHTTPServer):
        def server_activate(self) -> None:
            super().server_activate()
            servers.put(self)

    monkeypatch.setattr(PRINTER, "ThreadingHTTPServer", Server)
    terminal = Crowded()
    monkeypatch.setattr(sys, "stdout", terminal)
    serving = threading.Thread(target=PRINTER.serve, args=(0,), daemon=True)
    serving.start()
    server = servers.get(timeout=10)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    posts = {"pager": notification("ModelNotReady"), "chat": notification("ReplicasUnavailable")}
    statuses: dict[str, int] = {}

    def post(receiver: str) -> None:
        statuses[receiver] = http_client.post(
            f"{url}/{receiver}", json=posts[receiver], timeout=10
        ).status_code

    try:
        senders = [threading.Thread(target=post, args=(receiver,)) for receiver in posts]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
        serving.join(timeout=10)
    assert statuses == {"pager": 200, "chat": 200}
    expected = "".join(
        f"{line}\n" for receiver, sent in posts.items() for line in PRINTER.lines(receiver, sent, 0)
    )
    assert unstamped(terminal.getvalue()) == unstamped(expected), terminal.getvalue()
