"""``python -m servekit.bench``: every service, in process and over HTTP, with reference explainers.

A real MLflow server (temporary, 127.0.0.1) receives each service's model trained
on synthetic data; the in-process figures use the model loaded back from it and
the HTTP figures a real ``mlp serve`` (uvicorn, one worker) loading the same
version. Services are measured one at a time, so they do not compete for the CPU.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from servekit import registry
from servekit.bench import auth_cost, fairness, inprocess, load, logging_cost, reports, scaling, span_cost
from servekit.bench.reference import tree_references
from servekit.bench.servers import (
    champions,
    checked_services,
    dropped_settings,
    machine,
    serving,
    wait_for_variants,
)
from servekit.bench.stats import Latency
from servekit.cli.common import documented_parser
from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.loading import load_artifact
from servekit.local import Server
from servekit.metrics.names import GRPC_INFER
from servekit.model import Record, ServedModel
from servekit.models.trees import TreeModel
from servekit.rpc.messages import infer_message
from servekit.spec import ServiceSpec
from servekit.testing import request_rows, valid_requests
from servekit.training.splitting import split, to_records

ENDPOINTS = {"predict": "/predict", "predict+explain": "/predict?explain=true"}
BATCH_SIZE = 64


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
    beside = {"seconds": args.seconds, "loads": saturating, "alone": result["http"]}
    result["shadow"] = measure_beside(
        spec, mlflow, work, role="shadow", settings={"SHADOW_MODEL_URI": same_run}, **beside
    )
    print_beside(spec.name, "a shadow model comparing every instance", result["shadow"])
    canary = {"CANARY_MODEL_URI": same_run, "CANARY_TRAFFIC_PERCENT": "50"}
    result["canary"] = measure_beside(spec, mlflow, work, role="canary", settings=canary, **beside)
    print_beside(spec.name, "a canary answering half the requests", result["canary"])
    return result


def measure_beside(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    *,
    role: str,
    settings: dict[str, str],
    seconds: float,
    loads: dict[str, Load],
    alone: dict[str, Any],
) -> dict[str, Any]:
    """``loads`` on a server with a second model in ``role`` (``shadow``, ``canary``), against ``alone``."""
    with serving(spec, mlflow, work, label=role, settings=settings) as server:
        wait_for_variants(server, [role])
        http = measure_http(server, loads, seconds)
        for label, row in http.items():
            row["ratio_to_alone"] = round(row["requests_per_second"] / alone[label]["requests_per_second"], 3)
        return {"http": http, "counts": model_counts(server, spec.name, role)}


#: Explained batches sent at this multiple of what one worker answers, by clients that give up
#: after OVERLOAD_DEADLINE seconds: the replica with its admission limits, and with fewer.
OVERLOAD_FACTOR = 2.0
OVERLOAD_DEADLINE = 1.0
OVERLOAD_PATH = "/predict/batch?explain=true"
#: The largest batch the services accept by default (``<SVC>_MAX_BATCH_SIZE``).
LARGE_BATCH_SIZE = 256
LIMITED = "limited"
#: The limits switched off in each comparison: batches of 64 without any limit, and batches of
#: 256 with the request limit alone, which is what bounded them before the instance limit.
UNLIMITED = ("unlimited", {"MAX_CONCURRENT_REQUESTS": "0", "MAX_CONCURRENT_INSTANCES": "0"})
REQUESTS_ONLY = ("requests only", {"MAX_CONCURRENT_INSTANCES": "0"})


def measure_overload(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    records: list[dict[str, Any]],
    seconds: float,
    *,
    rows: int = BATCH_SIZE,
    without: tuple[str, Mapping[str, str]] = UNLIMITED,
) -> dict[str, Any]:
    """Goodput and latency past capacity, with the service's admission limits and ``without`` some."""
    bodies = [{"instances": batch} for batch in load.batches(records, rows)]
    result: dict[str, Any] = {
        "path": OVERLOAD_PATH,
        "rows_per_request": rows,
        "limit": spec.max_concurrent_requests,
        "instance_limit": spec.max_concurrent_instances,
        "compared_with": without[0],
    }
    capacity = 0.0
    # Capacity first, where the limits switched off cannot refuse the saturating load: a closed
    # loop of 4 batches of 256 would pass an instance limit of 512, and a quick 503 is no answer.
    for label, settings in (without, (LIMITED, {})):
        with serving(spec, mlflow, work, label=label.replace(" ", "-"), settings=settings) as server:
            requests = load.post_requests("127.0.0.1", server.port, OVERLOAD_PATH, bodies)
            if not capacity:
                saturated = load.run("127.0.0.1", server.port, requests, concurrency=4, seconds=seconds)
                if saturated.errors:
                    raise RuntimeError(f"{saturated.errors} requests failed while measuring capacity")
                capacity = saturated.requests_per_second
                result["capacity_per_second"] = round(capacity, 1)
            outcome = load.run_open_loop(
                "127.0.0.1",
                server.port,
                requests,
                rate=capacity * OVERLOAD_FACTOR,
                seconds=seconds,
                deadline=OVERLOAD_DEADLINE,
            )
            result[label] = outcome.as_dict()
    other = result[without[0]]["goodput_per_second"]
    result["goodput_ratio"] = round(result[LIMITED]["goodput_per_second"] / other, 2) if other else None
    return result


def print_overload(name: str, overload: dict[str, Any]) -> None:
    print(
        f"\n{name}: overload, {overload['path']} ({overload['rows_per_request']} rows a request) sent at "
        f"{OVERLOAD_FACTOR:g}x the {overload['capacity_per_second']:.1f} requests/s one worker answers, "
        f"by clients giving up after {OVERLOAD_DEADLINE:g} s"
    )
    limits = f"limits {overload['limit']} requests, {overload['instance_limit']} instances"
    compared = overload["compared_with"]
    titles = {"unlimited": "no limit", "requests only": f"limit {overload['limit']} requests only"}
    compared_title = titles.get(compared, compared)
    for label, title in ((LIMITED, limits), (compared, compared_title)):
        row = overload[label]
        answered = row["answered_latency"]
        print(
            f"  {title:<36} goodput {row['goodput_per_second']:>6.1f}/s  answered {row['answered']:>5}  "
            f"shed {row['shed']:>5}  late {row['late']:>5}  failed {row['failed']:>3}  "
            f"p50 {answered['p50_ms']:>6.1f} ms  p99 {answered['p99_ms']:>6.1f} ms"
            + "".join(f"  {kind}: {count}" for kind, count in row["failures"].items())
        )
    ratio = overload["goodput_ratio"]
    verdict = f"no answer in time with {compared_title}" if ratio is None else ratio
    print(f"  goodput, {LIMITED} / {compared}: {verdict}")


def print_fairness(name: str, measured: dict[str, Any]) -> None:
    print(
        f"\n{name}: a runaway client ({measured['runaway_path']}, {BATCH_SIZE} rows, "
        f"{measured['runaway_rate']:.1f}/s) beside a steady one (/predict, {measured['steady_rate']:g}/s), "
        f"API keys on, clients giving up after {measured['deadline_seconds']:g} s"
    )
    for label in fairness.SERVINGS:
        row = measured[label]
        steady, runaway = row[fairness.STEADY], row[fairness.RUNAWAY]
        limit = f"{label} ({row['client_limit'] or 'none'} of {row['request_limit']})"
        refused = steady["shed"] + sum(steady["failures"].values())
        refused_runaway = row["replica_counted"].get(fairness.RUNAWAY, {}).get("429", 0)
        latency = steady["answered_latency"]
        print(
            f"  {limit:<30} steady: in time {steady['answered']:>4} of {steady['sent']:>4}, "
            f"refused {refused:>4}, late {steady['late']:>3}, "
            f"p50 {latency['p50_ms']:>6.1f} ms, p99 {latency['p99_ms']:>6.1f} ms   "
            f"runaway: goodput {runaway['goodput_per_second']:>5.1f}/s, 503 {runaway['shed']}"
            + "".join(f", {kind} {count}" for kind, count in runaway["failures"].items())
            + f" (the replica refused {refused_runaway} with 429)"
        )
    if measured.get("not_meaningful"):
        print(f"  not meaningful: {measured['not_meaningful']}")


SINGLE_LABEL = "/predict, one record"
OVERLOAD_LABEL = f"{OVERLOAD_PATH}, {BATCH_SIZE} records"


def measure_scaling(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    records: list[dict[str, Any]],
    *,
    capacities: dict[str, float],
    seconds: float,
) -> dict[str, Any]:
    """CPU, prediction concurrency and event loop lag at shares of capacity, single records and batches."""
    bodies = {
        SINGLE_LABEL: ("/predict", records[:128]),
        OVERLOAD_LABEL: (
            OVERLOAD_PATH,
            [{"instances": batch} for batch in load.batches(records[:256], BATCH_SIZE)],
        ),
    }
    result: dict[str, Any] = {}
    with serving(spec, mlflow, work, label="scaling") as server:
        for label, (path, payloads) in bodies.items():
            requests = load.post_requests("127.0.0.1", server.port, path, payloads)
            rows = scaling.measure(
                server.url,
                spec.name,
                requests,
                capacity=capacities[label],
                seconds=seconds,
                deadline=OVERLOAD_DEADLINE,
            )
            result[label] = {"capacity_per_second": capacities[label], "rows": rows}
    return result


def print_scaling(name: str, measured: dict[str, Any]) -> None:
    print(f"\n{name}: one replica at shares of its capacity (clients give up after {OVERLOAD_DEADLINE:g} s)")
    for label, load_rows in measured.items():
        print(f"  {label}, capacity {load_rows['capacity_per_second']:,.1f} requests/s")
        for row in load_rows["rows"]:
            print(
                f"    x{row['fraction_of_capacity']:<4g}"
                + (
                    f" with {row['neighbours_spinning']} processes spinning beside it"
                    if row["neighbours_spinning"]
                    else ""
                )
                + f" CPU {row['cpu_cores']:5.2f} cores   "
                f"prediction concurrency {row['prediction_concurrency']:6.2f}   "
                f"event loop lag {row['event_loop_lag_ms'] or float('nan'):6.1f} ms   "
                f"in time {row['goodput_per_second']:8,.1f}/s   late {row['late']:>5}   "
                f"shed {row['shed']:>5}   "
                f"p99 {row['answered_p99_ms']:7.1f} ms"
            )


GRPC_LABEL = f"infer (gRPC) {BATCH_SIZE} c=2"


def measure_grpc(server: Server, name: str, bodies: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The V2 load's request bodies as gRPC messages with raw contents, two calls in flight."""
    messages = [infer_message({"model_name": name, **body}).SerializeToString() for body in bodies]
    outcome = load.run_grpc(
        "127.0.0.1", server.grpc_port, GRPC_INFER, messages, concurrency=2, seconds=seconds
    )
    return figures(outcome, BATCH_SIZE)


def figures(outcome: load.LoadResult, per_request: int) -> dict[str, Any]:
    """A load's row of the report; predictions per second too when a request holds several."""
    row = outcome.as_dict()
    if per_request > 1:
        row["predictions_per_second"] = round(outcome.requests_per_second * per_request, 1)
    return row


#: A load: path, request bodies, concurrency, and instances per request.
Load = tuple[str, list[Any], int, int]
BATCH_LABEL = f"batch of {BATCH_SIZE} c=2"
V2_LABEL = f"infer (V2) {BATCH_SIZE} c=2"


def http_loads(
    spec: ServiceSpec, records: list[dict[str, Any]], concurrency: Sequence[int]
) -> dict[str, Load]:
    loads: dict[str, Load] = {
        f"{label} c={c}": (path, records[:128], c, 1)
        for label, path in ENDPOINTS.items()
        for c in concurrency
    }
    # The same batches as /predict/batch bodies and as Open Inference Protocol tensors.
    chunks = load.batches(records[:256], BATCH_SIZE)
    codec = OpenInferenceCodec.of_service(spec)
    loads[BATCH_LABEL] = ("/predict/batch", [{"instances": c} for c in chunks], 2, BATCH_SIZE)
    loads[V2_LABEL] = (
        f"/v2/models/{spec.name}/infer",
        [codec.request_for(c) for c in chunks],
        2,
        BATCH_SIZE,
    )
    return loads


def measure_http(server: Server, loads: dict[str, Load], seconds: float) -> dict[str, Any]:
    http: dict[str, Any] = {}
    for label, (path, bodies, concurrency, per_request) in loads.items():
        requests = load.post_requests("127.0.0.1", server.port, path, bodies)
        outcome = load.run("127.0.0.1", server.port, requests, concurrency=concurrency, seconds=seconds)
        http[label] = figures(outcome, per_request)
    return http


def model_counts(server: Server, name: str, role: str) -> dict[str, float]:
    """What the second model did: instances compared and skipped, or requests per variant."""
    counted = {"shadow": f"{name}_shadow_predictions_total", "canary": f"{name}_variant_requests_total"}[role]

    def scrape() -> dict[str, float]:
        counts: dict[str, float] = {}
        for sample in scaling.scrape(server.url):
            if sample.name == counted:
                key = (
                    "compared"
                    if role == "shadow"
                    else f"{sample.labels['variant']} {sample.labels['result']}"
                )
                counts[key] = counts.get(key, 0.0) + sample.value
            elif sample.name == f"{name}_shadow_skipped_total":
                counts[f"skipped {sample.labels['reason']}"] = sample.value
        return counts

    counts = scrape()
    for _ in range(50):  # a shadow's worker may still be scoring the last requests
        time.sleep(0.1)
        again = scrape()
        if again == counts:
            break
        counts = again
    return counts


def print_latencies(title: str, figures: dict[str, Latency], reference_ms: float | None = None) -> None:
    print(f"\n{title}")
    for name, lat in figures.items():
        ratio = f"   x{lat.p50_ms / reference_ms:,.0f}" if reference_ms else ""
        print(f"  {name:<36} p50 {lat.p50_ms:9.3f} ms   p99 {lat.p99_ms:9.3f} ms   n={lat.n}{ratio}")


def print_http(name: str, http: dict[str, Any]) -> None:
    print_rows(f"{name}: HTTP, uvicorn 1 worker on 127.0.0.1", http, "errors {errors}/{requests}")


def print_beside(name: str, what: str, beside: dict[str, Any]) -> None:
    print_rows(f"{name}: the same loads with {what}", beside["http"], "x{ratio_to_alone:.2f} of alone")
    counts = beside["counts"]
    print("  counted: " + ", ".join(f"{key} {value:,.0f}" for key, value in counts.items()))


def print_rows(title: str, rows: dict[str, Any], last: str) -> None:
    """One line per load: rate, latency, then ``last`` (a format of the row's fields)."""
    print(f"\n{title}")
    for label, row in rows.items():
        extra = (
            f"   {row['predictions_per_second']:,.0f} predictions/s"
            if "predictions_per_second" in row
            else ""
        )
        print(
            f"  {label:<24} {row['requests_per_second']:8,.0f} req/s   p50 {row['p50_ms']:7.2f} ms   "
            f"p99 {row['p99_ms']:7.2f} ms   {last.format(**row)}{extra}"
        )


def capture_cost(
    model: ServedModel, records: Sequence[Record], predict: Latency, seconds: float
) -> dict[str, Any]:
    """One explained instance captured as a JSON line (CAPTURE_PERCENT=100), against predict p50."""
    line = logging_cost.capture_line(model, records, seconds)
    size = logging_cost.capture_line_bytes(model, records[:100])
    ratio = line.p50_ms / predict.p50_ms
    print(
        f"  {'capture, one explained instance':<36} p50 {line.p50_ms:9.3f} ms   p99 {line.p99_ms:9.3f} ms   "
        f"n={line.n}   {size} bytes   x{ratio:.2f} of predict p50"
    )
    return {**line.as_dict(), "bytes": size, "ratio_to_predict_p50": ratio}


def access_log_cost(report: dict[str, Any], seconds: float) -> dict[str, Any]:
    """One JSON access line against each service's in-process predict p50 (why successes are not logged)."""
    line = logging_cost.access_line(seconds)
    size = logging_cost.access_line_bytes()
    ratios = {
        name: line.p50_ms / figures["in_process"]["predict"]["p50_ms"]
        for name, figures in report["services"].items()
    }
    print("\naccess log, one JSON line per request (ACCESS_LOG=all)")
    print(f"  {'line':<36} p50 {line.p50_ms:9.3f} ms   p99 {line.p99_ms:9.3f} ms   n={line.n}   {size} bytes")
    for name, ratio in ratios.items():
        print(f"  {'/ ' + name + ' predict p50':<36} x{ratio:.2f}")
    return {**line.as_dict(), "bytes": size, "ratio_to_predict_p50": ratios}


def api_key_cost(report: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The key check per request (API_KEYS_FILE set) against each service's in-process predict p50."""
    measured = auth_cost.key_check(seconds)
    added_ms = measured["with the key check"].p50_ms - measured["bare app"].p50_ms
    print(f"\nAPI key check, per request (API_KEYS_FILE of {auth_cost.CLIENTS} clients)")
    for label, lat in measured.items():  # microseconds: in milliseconds both would print 0.00x
        print(f"  {label:<36} p50 {lat.p50_ms * 1e3:7.1f} µs   p99 {lat.p99_ms * 1e3:7.1f} µs   n={lat.n}")
    ratios = {
        name: added_ms / figures["in_process"]["predict"]["p50_ms"]
        for name, figures in report["services"].items()
    }
    print(f"  {'adds at p50':<36} {added_ms * 1e3:9.1f} µs")
    for name, ratio in ratios.items():
        print(f"  {'/ ' + name + ' predict p50':<36} x{ratio:.3f}")
    counts = auth_cost.client_count(seconds)
    count_added_ms = counts["count it for its client too"].p50_ms - counts["count a request"].p50_ms
    print("  the request's metrics, per request")
    for label, lat in counts.items():
        print(f"  {label:<36} p50 {lat.p50_ms * 1e3:7.1f} µs   p99 {lat.p99_ms * 1e3:7.1f} µs   n={lat.n}")
    print(f"  {'its client adds at p50':<36} {count_added_ms * 1e3:9.1f} µs")
    return {
        **{label: latency.as_dict() for label, latency in {**measured, **counts}.items()},
        "added_p50_ms": added_ms,
        "client_count_added_p50_ms": count_added_ms,
        "ratio_to_predict_p50": ratios,
    }


def spans_cost(report: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A request's spans (an OpenTelemetry collector named) against each service's in-process
    predict p50: on the request's path, sampled and not, and the exporter's CPU in all."""
    measured = span_cost.request_path(seconds)
    exported = span_cost.export_cpu()
    bare = measured["no spans"].p50_ms
    print("\nrequest spans, per request (OTEL_EXPORTER_OTLP_ENDPOINT set; servekit.spans)")
    for label, lat in measured.items():
        print(f"  {label:<36} p50 {lat.p50_ms * 1e3:7.1f} µs   p99 {lat.p99_ms * 1e3:7.1f} µs   n={lat.n}")
    added = {label: lat.p50_ms - bare for label, lat in measured.items() if label != "no spans"}
    for label, ms in added.items():
        print(f"  {'adds at p50, ' + label:<36} {ms * 1e3:9.1f} µs")
    print(f"  {'CPU a sampled request adds in all':<36} {exported * 1e6:9.1f} µs (its spans made and sent)")
    ratios = {
        name: exported * 1e3 / figures["in_process"]["predict"]["p50_ms"]
        for name, figures in report["services"].items()
    }
    for name, ratio in ratios.items():
        print(f"  {'/ ' + name + ' predict p50':<36} x{ratio:.2f}")
    return {
        **{label: latency.as_dict() for label, latency in measured.items()},
        "added_p50_ms": added,
        "export_cpu_ms_per_sampled_request": exported * 1e3,
        "ratio_to_predict_p50": ratios,
    }


def parser() -> argparse.ArgumentParser:
    p = documented_parser("python -m servekit.bench", __doc__)
    p.add_argument("--services", nargs="*", help="default: every installed service")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per HTTP run")
    p.add_argument("--inprocess-seconds", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, nargs="*", default=[1, 16])
    p.add_argument("--no-reference", dest="reference", action="store_false")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
