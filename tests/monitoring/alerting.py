"""What the live alerting tests share: the receivers' stand-ins, the committed Alertmanager
configuration made local, and real Alertmanager and Prometheus servers on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from mixin.alertmanager import (
    ALERTMANAGER_CONFIG,
    HEARTBEAT,
    HEARTBEAT_GROUP_INTERVAL,
    HEARTBEAT_REPEAT_INTERVAL,
    HEARTBEAT_URL_KEY,
    PAGERDUTY_ROUTING_KEY_KEY,
    RECEIVERS_DIR,
    SLACK_WEBHOOK_URL_KEY,
)
from processes import free_port, installed, run_prometheus
from scripts import MONITORING
from servekit.local import Server, start
from servekit.testing import StubHandler

CONFIG = MONITORING / ALERTMANAGER_CONFIG


class Receiver(ThreadingHTTPServer):
    """Slack's webhook and PagerDuty's events API, on 127.0.0.1: every JSON body posted, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        #: When each body arrived (time.monotonic), in the order of ``received``.
        self.arrived: list[float] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(StubHandler):
            def do_POST(self) -> None:
                body = self.body()
                with receiver.lock:
                    receiver.received.append((self.path, json.loads(body)))
                    receiver.arrived.append(time.monotonic())
                # What each answers: Alertmanager 0.28 reads a Slack webhook's body, not only
                # its status, and retries on anything but Slack's own "ok".
                if self.path.startswith("/v2/enqueue"):
                    self.answer(202, {"status": "success", "message": "Event processed"})
                else:
                    self.answer(200, b"ok", "text/plain")

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def posted(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.received if p == path]

    def posted_at(self, path: str) -> list[float]:
        """When each body posted to ``path`` arrived (time.monotonic)."""
        with self.lock:
            return [at for (p, _), at in zip(self.received, self.arrived, strict=True) if p == path]


def local_configuration(receiver: Receiver, directory: Path) -> Path:
    """The committed configuration, with three things changed for a test: where the receivers' files
    are (and what they hold: the stand-ins' addresses), PagerDuty's address, and the grouping waits
    (1 s instead of 30 s and 5 m, and the heartbeat's minute, its repeat interval in proportion)."""
    secrets = directory / "receivers"
    secrets.mkdir()
    (secrets / SLACK_WEBHOOK_URL_KEY).write_text(f"{receiver.url}/slack")
    (secrets / PAGERDUTY_ROUTING_KEY_KEY).write_text("test-routing-key")
    (secrets / HEARTBEAT_URL_KEY).write_text(f"{receiver.url}/heartbeat")
    config = yaml.safe_load(CONFIG.read_text().replace(RECEIVERS_DIR, str(secrets)))
    config["global"]["pagerduty_url"] = f"{receiver.url}/v2/enqueue"
    config["route"].update(group_wait="1s", group_interval="1s")
    [heartbeat] = [r for r in config["route"]["routes"] if r["receiver"] == HEARTBEAT]
    repeat = seconds(HEARTBEAT_REPEAT_INTERVAL) / seconds(HEARTBEAT_GROUP_INTERVAL)
    heartbeat.update(group_interval="1s", repeat_interval=f"{round(repeat * 1000)}ms")
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def seconds(duration: str) -> float:
    """A Prometheus duration of one unit in seconds: ``90s``, ``1m``."""
    return float(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A Receiver answering on a thread of its own until the block ends."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


#: Alertmanager's gossip switched off: a replica alone, which waits for no peer before it notifies.
NO_CLUSTER = ("--cluster.listen-address=",)


def cluster(listen: int, peers: Sequence[int] = ()) -> list[str]:
    """Gossip on 127.0.0.1:``listen`` with the members at ``peers`` (none: a cluster of one, as a
    replica whose peer is away, with its cluster metrics)."""
    return [f"--cluster.listen-address=127.0.0.1:{listen}", *(f"--cluster.peer=127.0.0.1:{p}" for p in peers)]


def start_alertmanager(
    config: Path, directory: Path, *, name: str = "alertmanager", gossip: Sequence[str] = NO_CLUSTER
) -> Server:
    """A real Alertmanager on 127.0.0.1 running ``config``, its data and log (``<name>.log``) in
    ``directory``, with the cluster flags ``gossip`` (:func:`cluster`, and any other)."""
    port = free_port()
    return start(
        name,
        [
            installed("alertmanager"),
            f"--config.file={config}",
            f"--storage.path={directory / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # As in the cluster, its links name where it is reached.
            f"--web.external-url=http://127.0.0.1:{port}",
            *gossip,
        ],
        port,
        directory,
    )


def start_prometheus(
    rule_files: Sequence[Path],
    alertmanagers: Sequence[Server],
    directory: Path,
    resend_delay: str,
    *,
    settings: Mapping[str, Any] | None = None,
    name: str = "prometheus",
) -> Server:
    """A Prometheus evaluating ``rule_files`` every second and sending their alerts to every one of
    ``alertmanagers``; ``settings``, a configuration's ``global`` and ``alerting`` sections, are
    added to that (tests/monitoring/test_prometheus_pair.py passes the cluster's). ``name`` is its
    pod's name (``POD_NAME``, which a configuration may expand) and its log's.

    Each alert it sends ends (in Alertmanager) four ``resend_delay`` later unless sent again.
    """
    settings = settings or {}
    targets = [alertmanager.url.removeprefix("http://") for alertmanager in alertmanagers]
    config = {
        "global": {**settings.get("global", {}), "evaluation_interval": "1s"},
        "rule_files": [str(f) for f in rule_files],
        "alerting": {
            **settings.get("alerting", {}),
            "alertmanagers": [{"static_configs": [{"targets": targets}]}],
        },
    }
    return run_prometheus(directory, lambda _: config, resend_delay, name=name)


#: The labels the alerts' summaries name, set on the series that makes them fire.
LABELS = {"instance": "10.0.0.1:8080", "outcome": "churn"}


def always(labels: dict[str, str]) -> str:
    """An expression that holds at once, with ``labels``."""
    expr = "vector(1)"
    for label, value in labels.items():
        expr = f'label_replace({expr}, "{label}", "{value}", "", "")'
    return expr


def slack_titles(receiver: Receiver) -> list[str]:
    return sorted(a["title"] for post in receiver.posted("/slack") for a in post["attachments"])
