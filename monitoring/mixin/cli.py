"""`monitoring/generate.py`: write the generated files, check them, or write a local Prometheus config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mixin.common import HERE
from mixin.local_alertmanager import local_alertmanager_config
from mixin.local_prometheus import local_targets, prometheus_config
from mixin.outputs import outputs, stale
from mixin.text import yaml_text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="monitoring/generate.py",
        description="Generate the rules, promtool rule tests and Grafana dashboards in monitoring/.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is stale")
    parser.add_argument(
        "--prometheus-config",
        type=Path,
        metavar="FILE",
        help="write a Prometheus configuration scraping the `make up` services (and nothing else)",
    )
    parser.add_argument("--scrape-interval", default="5s", help="with --prometheus-config")
    parser.add_argument(
        "--alertmanager", metavar="HOST:PORT", help="with --prometheus-config: where to send the alerts"
    )
    parser.add_argument(
        "--itself",
        metavar="HOST:PORT",
        help="with --prometheus-config: where this Prometheus listens, to scrape its own metrics",
    )
    parser.add_argument(
        "--alertmanager-config",
        type=Path,
        metavar="FILE",
        help="write an Alertmanager configuration that routes as the cluster's, to --printer-url",
    )
    parser.add_argument("--printer-url", metavar="URL", help="with --alertmanager-config: print_alerts.py")
    args = parser.parse_args(argv)
    if args.alertmanager_config and not args.printer_url:
        parser.error("--alertmanager-config needs --printer-url")
    written = {}
    if args.prometheus_config:
        config = prometheus_config(
            local_targets(), args.scrape_interval, alertmanager=args.alertmanager, itself=args.itself
        )
        written[args.prometheus_config] = config
    if args.alertmanager_config:
        written[args.alertmanager_config] = local_alertmanager_config(args.printer_url)
    for path, content in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml_text(content))
    if written:
        return 0
    if args.check:
        problems = stale()
        for problem in problems:
            print(f"stale: monitoring/{problem}", file=sys.stderr)
        if problems:
            print("run: .venv/bin/python monitoring/generate.py", file=sys.stderr)
        return 1 if problems else 0
    for path, text in outputs().items():
        target_path = HERE / path
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target_path.write_text(text)
        print(f"wrote monitoring/{path}")
    return 0
