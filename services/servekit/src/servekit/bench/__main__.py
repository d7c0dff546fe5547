"""``python -m servekit.bench``: every service, in process and over HTTP, with reference explainers.

A real MLflow server (temporary, 127.0.0.1) receives each service's model trained
on synthetic data; the in-process figures use the model loaded back from it and
the HTTP figures a real ``mlp serve`` (uvicorn, one worker) loading the same
version. Services are measured one at a time, so they do not compete for the CPU.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servekit import registry
from servekit.bench import fairness, inprocess, load, reports
from servekit.bench.costs import access_log_cost, api_key_cost, capture_cost, spans_cost
from servekit.bench.http_figures import (
    BATCH_LABEL,
    BATCH_SIZE,
    GRPC_LABEL,
    V2_LABEL,
    against_reference,
    http_loads,
    measure_grpc,
    measure_http,
    measure_reference,
)
from servekit.bench.overload import (
    LARGE_BATCH_SIZE,
    OVERLOAD_PATH,
    REQUESTS_ONLY,
    measure_overload,
    print_overload,
)
from servekit.bench.printing import (
    print_beside,
    print_fairness,
    print_http,
    print_latencies,
    print_reference,
    print_targets,
)
from servekit.bench.reference import tree_references
from servekit.bench.scaling_loads import OVERLOAD_LABEL, SINGLE_LABEL, measure_scaling, print_scaling
from servekit.bench.second_model import measure_beside
from servekit.bench.servers import (
    champions,
    checked_services,
    dropped_settings,
    machine,
    serving,
)
from servekit.bench.targets import check
from servekit.cli.common import documented_parser
from servekit.loading import load_artifact
from servekit.local import Server
from servekit.models.trees import TreeModel
from servekit.spec import ServiceSpec
from servekit.testing import request_rows, valid_requests
from servekit.training.splitting import split, to_records


def bench_service(spec: ServiceSpec, mlflow: Server, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    recipe = spec.recipe
    data = split(spec, recipe.generate(4000, seed=7), seed=7)
    records = valid_requests(spec, request_rows(data, 1000))[:512]
    artifact = load_artifact(spec.name, f"models:/{spec.name}@champion", mlflow.url)
    model = spec.model(artifact)
    result: dict[str, Any] = {"version": artifact.version}

    in_process = inprocess.measure(model, records, args.inprocess_seconds)
    result["in_process"] = {k: v.as_dict() for k, v in in_process.items()}
    print_latencies(f"{spec.name}: in process, one record per call", in_process)
    result["capture_line"] = capture_cost(model, records, in_process["predict"], args.inprocess_seconds)

    if args.reference and isinstance(model, TreeModel):
        references = tree_references(
            model, to_records(data.x_train.head(3000)), data.y_train.head(3000), records, task=recipe.task
        )
        ours = in_process["explain"].p50_ms
        result["reference_explainers"] = {
            name: {**lat.as_dict(), "ratio_to_servekit_p50": lat.p50_ms / ours}
            for name, lat in references.items()
        }
        print_latencies(
            f"{spec.name}: reference explainers (ratio = p50 / servekit explain p50)", references, ours
        )

    loads = http_loads(spec, records, args.concurrency)
    with serving(spec, mlflow, work, grpc=True) as server:
        # What the replica ran with: these alone, nothing of the caller's environment.
        result["settings"] = server.settings
        result["http"] = measure_http(server, loads, args.seconds)
        # The same batches again, over gRPC with raw contents, as Triton's client sends them.
        v2_bodies = loads[V2_LABEL][1]
        result["http"][GRPC_LABEL] = measure_grpc(server, spec.name, v2_bodies, args.seconds)
        print_http(spec.name, result["http"])
    # The host's own speed, next to the service's: a bare uvicorn app, the same client and bodies.
    result["http_reference"] = measure_reference(
        work, loads[f"predict c={args.concurrency[0]}"][1], args.concurrency, args.seconds
    )
    result["http_against_reference"] = against_reference(result["http"], result["http_reference"])
    print_reference(spec.name, result["http_reference"], result["http_against_reference"])
    result["targets"] = [verdict.as_dict() for verdict in check(result["http"])]

    result["overload"] = measure_overload(spec, mlflow, work, records, args.seconds)
    print_overload(spec.name, result["overload"])
    result["overload_large_batches"] = measure_overload(
        spec, mlflow, work, records, args.seconds, rows=LARGE_BATCH_SIZE, without=REQUESTS_ONLY
    )
    print_overload(spec.name, result["overload_large_batches"])
    result["fairness"] = fairness.measure(
        spec,
        mlflow,
        work,
        steady_records=records,
        runaway_bodies=[{"instances": batch} for batch in load.batches(records, BATCH_SIZE)],
        runaway_path=OVERLOAD_PATH,
        capacity=result["overload"]["capacity_per_second"],
        seconds=args.seconds,
    )
    print_fairness(spec.name, result["fairness"])

    capacities = {
        SINGLE_LABEL: result["http"][f"predict c={max(args.concurrency)}"]["requests_per_second"],
        OVERLOAD_LABEL: result["overload"]["capacity_per_second"],
    }
    result["scaling"] = measure_scaling(
        spec, mlflow, work, records, capacities=capacities, seconds=args.seconds / 2
    )
    print_scaling(spec.name, result["scaling"])

    # The loads that saturate the worker again, with a second model beside the served one: the
    # champion's own run (runs:/, so not skipped or unrouted as the served version) costs what any
    # challenger of the same kind would. A shadow compares every instance; a canary answers half
    # the requests, so its row is the price of the routing and the per-variant metrics.
    saturating = {label: loads[label] for label in (f"predict c={max(args.concurrency)}", BATCH_LABEL)}
    same_run = f"runs:/{artifact.run_id}/model"
    beside = {"seconds": args.seconds, "loads": saturating}
    result["shadow"] = measure_beside(
        spec, mlflow, work, role="shadow", settings={"SHADOW_MODEL_URI": same_run}, **beside
    )
    print_beside(spec.name, "a shadow model comparing every instance", result["shadow"])
    canary = {"CANARY_MODEL_URI": same_run, "CANARY_TRAFFIC_PERCENT": "50"}
    result["canary"] = measure_beside(spec, mlflow, work, role="canary", settings=canary, **beside)
    print_beside(spec.name, "a canary answering half the requests", result["canary"])
    return result


def parser() -> argparse.ArgumentParser:
    p = documented_parser("python -m servekit.bench", __doc__)
    p.add_argument("--services", nargs="*", help="default: every installed service")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per HTTP run")
    p.add_argument("--inprocess-seconds", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, nargs="*", default=[1, 16])
    p.add_argument("--no-reference", dest="reference", action="store_false")
    p.add_argument(
        "--strict-targets",
        action="store_true",
        help="exit 1 when a service misses a target (default: printed and reported, exit 0)",
    )
    p.add_argument("--output", type=Path, default=Path("reports/bench.json"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = checked_services(p, args.services)
    # Names only, never values (a key file's path, a token): each serving sets its own settings.
    report: dict[str, Any] = {
        "machine": machine(),
        "settings_not_inherited": dropped_settings(),
        "services": {},
    }
    with champions(names, "servekit-bench-") as (mlflow, work, _):
        for name in names:
            report["services"][name] = bench_service(registry.get_service(name), mlflow, work, args)
    report["access_log_line"] = access_log_cost(report, args.inprocess_seconds)
    report["api_key_check"] = api_key_cost(report, args.inprocess_seconds)
    report["request_spans"] = spans_cost(report, args.inprocess_seconds)
    print_targets({name: figures["targets"] for name, figures in report["services"].items()})
    print()
    reports.write(args.output, report)
    failed = [
        f"{name} {label}: {row['errors']} of {row['requests']}"
        for name, figures in report["services"].items()
        for label, row in figures["http"].items()
        if row["errors"]
    ]
    if failed:
        print("requests that did not get a 200 (the figures above do not measure predictions):")
        print("\n".join(f"  {line}" for line in failed))
        return 1
    missed = [v for figures in report["services"].values() for v in figures["targets"] if v["met"] is False]
    if args.strict_targets and missed:
        print(f"--strict-targets: {len(missed)} target(s) missed")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
