"""A Prometheus configuration for the services of `make up` (monitoring/monitor.sh, the live tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mixin.common import HERE, services
from mixin.platform import ALERTMANAGER_JOB
from mixin.self_monitoring import PROMETHEUS_JOB
from servekit import registry


def prometheus_config(
    targets: Mapping[str, str | Sequence[str]],
    interval: str = "15s",
    rules_dir: Path = HERE / "rules",
    alertmanager: str | None = None,
    itself: str | None = None,
) -> dict[str, Any]:
    """A Prometheus configuration scraping ``targets`` (service → host:port, or several) with the rules,
    sending the alerts to the Alertmanager at ``alertmanager`` (host:port) if one is given, and
    scraping it, and scraping itself at ``itself`` (host:port) if given, as each cluster replica
    does: the platform's alerts on failing rules, undelivered alerts and failing notifications then
    hold here too (mixin.platform, mixin.self_monitoring), and the alerting pipeline dashboard has
    its data.

    Each service is its own job and its targets carry ``service=<name>``, ``namespace`` and
    ``pod``, as the in-cluster configuration sets them from the pods' metadata (a process here
    stands for a pod: ``<service>-<port>`` in namespace LOCAL_NAMESPACE).
    """
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules_dir.resolve() / "*.rules.yaml")],
        "scrape_configs": [
            {
                "job_name": service,
                "scrape_timeout": interval,
                "static_configs": [
                    {
                        "targets": [address],
                        "labels": {
                            "service": service,
                            "namespace": LOCAL_NAMESPACE,
                            "pod": f"{service}-{address.rsplit(':', 1)[1]}",
                        },
                    }
                    for address in ([addresses] if isinstance(addresses, str) else addresses)
                ],
            }
            for service, addresses in targets.items()
        ],
    }
    if itself:
        config["scrape_configs"].append(
            {
                "job_name": PROMETHEUS_JOB,
                "static_configs": [
                    {"targets": [itself], "labels": {"pod": f"prometheus-{itself.rsplit(':', 1)[1]}"}}
                ],
            }
        )
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        config["scrape_configs"].append(
            {"job_name": ALERTMANAGER_JOB, "static_configs": [{"targets": [alertmanager]}]}
        )
    return config


LOCAL_NAMESPACE = "local"


def local_targets() -> dict[str, str]:
    """The services of ``make up`` on their local ports (``$MLP_PORT_OFFSET`` included)."""
    return {name: f"127.0.0.1:{registry.local_port(registry.get_service(name))}" for name in services()}
