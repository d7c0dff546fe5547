"""``mlp train | promote | canary | rollout | versions``: a service's versions in the registry, from
training to the champion."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from servekit import registry
from servekit.cli.common import (
    DEFAULT_TRACKING_URI,
    MAX_SEED,
    UsageError,
    failure_ratio,
    interval_seconds,
    latency_factor,
    not_a_file,
    positive_int,
    ramp_shares,
    random_seed,
    registry_version,
    resolve_tracking_uri,
    share_percent,
)
from servekit.datasets import DatasetError, is_parquet
from servekit.metrics.names import CANARY_FAILURE_RATIO, CANARY_LATENCY_FACTOR
from servekit.rollout.pods import LOAD_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from servekit.cli.common import Commands


def cmd_train(args: argparse.Namespace) -> int:
    from servekit.mlflow_registry import registry_client
    from servekit.training.aliases import current_champion
    from servekit.training.trainer import train

    if args.data is not None and len(args.services) > 1:
        raise UsageError("train: --data is one service's file; name a single service with it")
    if args.data is not None and not args.data.is_file():
        raise UsageError(f"train: --data {args.data}: {not_a_file(args.data)}")
    if args.data is not None and is_parquet(args.data):
        raise UsageError(
            f"train: --data {args.data}: a Parquet file; mlp train reads CSV only (optionally "
            "gzip-compressed, .csv.gz): save the rows as CSV (Parquet is for `mlp score`)"
        )
    # Names, data file and server are checked before anything trains: a typo costs no run.
    specs = [registry.get_service(name) for name in args.services]
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    client = registry_client(tracking_uri, create=True)  # the one command that may make one
    for spec in specs:
        champion = current_champion(client, spec.name) if args.if_no_champion else None
        if champion is not None:
            print(f"{spec.name}: champion v{champion} exists; not training")
            continue
        if args.if_no_champion:  # `make up`'s first run: say what the wait is for, before it
            data = args.data or "synthetic data"
            print(f"{spec.name}: no champion in the registry; training on {data}...", flush=True)
        try:
            result = train(spec, tracking_uri, args.data, seed=args.seed)
        except DatasetError as exc:
            raise UsageError(f"train {spec.name}: {args.data or 'the synthetic data'}: {exc}") from exc
        figures = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()))
        if result.artifacts:
            print(f"{spec.name}: new experiment; its runs' artifacts go to {result.artifacts}")
        print(f"{spec.name}: registered v{result.version} (run {result.run_id}) as challenger; {figures}")
        if result.held_out_note:
            print(f"{spec.name}: {result.held_out_note}")
        print(f"{spec.name}: {result.decision}")
        if result.canary:
            print(result.canary)
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from servekit.training.aliases import promote

    spec = registry.get_service(args.service)
    print(promote(spec, resolve_tracking_uri(args.tracking_uri), args.version))
    return 0


def cmd_canary(args: argparse.Namespace) -> int:
    from servekit.training.aliases import set_canary

    spec = registry.get_service(args.service)
    if args.end and args.percent is not None:
        raise UsageError("canary: --percent sets the share of a new canary; --end sends it none")
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    print(set_canary(spec, tracking_uri, None if args.end else args.version, args.percent))
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from servekit.rollout.criteria import Criteria
    from servekit.rollout.readings import PrometheusReader
    from servekit.rollout.run import rollout

    # httpx logs every request at INFO: a dozen Prometheus queries a reading buried the readings and
    # the verdict in the rollout's log. Its failures raise, and the rollout says them.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    spec = registry.get_service(args.service)
    criteria = Criteria(args.max_failure_ratio, args.latency_factor, args.min_requests)
    reader = PrometheusReader(args.prometheus, spec.name, match=args.match)
    promoted = rollout(
        spec,
        resolve_tracking_uri(args.tracking_uri),
        args.version,
        reader,
        criteria=criteria,
        interval=args.interval,
        steps=args.steps,
        ramp=args.ramp,
        load_timeout=args.load_timeout,
    )
    return 0 if promoted else 1


def cmd_versions(args: argparse.Namespace) -> int:
    from servekit.mlflow_registry import registry_client
    from servekit.training.versions import list_versions, render

    spec = registry.get_service(args.service)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    rows = list_versions(spec, registry_client(tracking_uri), args.limit)
    print(render(spec, rows, tracking_uri))
    return 0


def add_commands(commands: Commands) -> None:
    """Adds ``mlp train``, ``mlp promote``, ``mlp canary``, ``mlp rollout``, ``mlp versions``."""
    train = commands.add_parser("train", help="train, register as challenger, promote if better")
    train.add_argument("services", nargs="+", metavar="service", help="one or more, trained in order")
    train.add_argument("--data", type=Path, help="real CSV (default: synthetic data)")
    train.add_argument("--seed", type=random_seed, default=42, help=f"0 to {MAX_SEED} (default 42)")
    train.add_argument("--tracking-uri", help=f"default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI}")
    train.add_argument("--if-no-champion", action="store_true", help="do nothing when a champion exists")
    train.set_defaults(func=cmd_train)

    promote = commands.add_parser("promote", help="set the champion alias to VERSION by hand")
    promote.add_argument("service")
    promote.add_argument("version", type=registry_version)
    promote.add_argument("--tracking-uri")
    promote.set_defaults(func=cmd_promote)

    canary = commands.add_parser(
        "canary", help="set the canary alias to VERSION (a canary rollout), or --end it on the champion"
    )
    canary.add_argument("service")
    which = canary.add_mutually_exclusive_group(required=True)
    which.add_argument("version", nargs="?", type=registry_version)
    which.add_argument("--end", action="store_true", help="point canary at the champion's version")
    canary.add_argument(
        "--percent",
        type=share_percent,
        help="share of requests the pods send it, read from the registry at their next refresh "
        "(default: each pod's <SVC>_CANARY_TRAFFIC_PERCENT)",
    )
    canary.add_argument("--tracking-uri")
    canary.set_defaults(func=cmd_canary)

    roll = commands.add_parser(
        "rollout",
        help="start VERSION as the canary and promote it, or roll it back, on what Prometheus sees",
    )
    roll.add_argument("service")
    roll.add_argument("version", type=registry_version)
    roll.add_argument("--prometheus", required=True, help="base URL of the Prometheus scraping the pods")
    roll.add_argument("--match", default="", help='extra label matchers, e.g. namespace="ml-platform"')
    roll.add_argument(
        "--interval", type=interval_seconds, default=60.0, help="seconds between readings (default 60)"
    )
    roll.add_argument("--steps", type=positive_int, default=10, help="readings before promoting (default 10)")
    roll.add_argument(
        "--ramp",
        type=ramp_shares,
        help="shares the canary answers, e.g. 5,25,50: each reading that judged it sound moves it to "
        "the next, and the last holds (default: the pods' own share throughout)",
    )
    roll.add_argument(
        "--load-timeout",
        type=interval_seconds,
        default=LOAD_TIMEOUT_SECONDS,
        help="seconds the pods have to load VERSION before it is rolled back unjudged (default "
        f"{LOAD_TIMEOUT_SECONDS:g}); readings count only its answers, once no pod serves another",
    )
    roll.add_argument(
        "--min-requests", type=positive_int, default=100, help="canary requests needed to judge (default 100)"
    )
    roll.add_argument(
        "--max-failure-ratio",
        type=failure_ratio,
        default=CANARY_FAILURE_RATIO,
        help="fraction of the canary's requests that may fail, 0 to under 1: 0.01 is 1 %% (default "
        f"{CANARY_FAILURE_RATIO:g}); over it, and over twice the stable model's, rolls it back",
    )
    roll.add_argument(
        "--latency-factor",
        type=latency_factor,
        default=CANARY_LATENCY_FACTOR,
        help="times the stable model's p95 model time the canary's may be, 1 or more (default "
        f"{CANARY_LATENCY_FACTOR:g}); over it rolls it back",
    )
    roll.add_argument("--tracking-uri")
    roll.set_defaults(func=cmd_rollout)

    versions = commands.add_parser(
        "versions", help="registered versions: aliases, held-out metric, data, decision"
    )
    versions.add_argument("service")
    versions.add_argument("--limit", type=positive_int, default=20, help="newest N versions (default 20)")
    versions.add_argument("--tracking-uri")
    versions.set_defaults(func=cmd_versions)
