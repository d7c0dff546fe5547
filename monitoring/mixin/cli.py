"""`monitoring/generate.py`: write the generated files, check them, or write a local Prometheus config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mixin.common import HERE
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
    args = parser.parse_args(argv)
    if args.prometheus_config:
        config = prometheus_config(local_targets(), args.scrape_interval)
        args.prometheus_config.parent.mkdir(parents=True, exist_ok=True)
        args.prometheus_config.write_text(yaml_text(config))
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
