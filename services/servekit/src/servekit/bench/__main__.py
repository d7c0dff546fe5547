"""``python -m servekit.bench``: every service, in process and over HTTP, with reference explainers.

A real MLflow server (temporary, 127.0.0.1) receives each service's model trained
on synthetic data; the in-process figures use the model loaded back from it and
the HTTP figures a real ``mlp serve`` (uvicorn, one worker) loading the same
version. Services are measured one at a time, so they do not compete for the CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servekit import registry
from servekit.bench import inprocess, load, logging_cost
from servekit.bench.reference import tree_references
from servekit.bench.stats import Latency
from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.loading import load_artifact
from servekit.local import Server, start_mlflow, start_service
from servekit.models.trees import TreeModel
from servekit.spec import ServiceSpec
from servekit.testing import request_rows, valid_requests
from servekit.training.trainer import split, to_records, train

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

    server = start_service(
        spec.name, work, {"MLFLOW_TRACKING_URI": mlflow.url, f"{spec.name.upper()}_LOG_LEVEL": "WARNING"}
    )
    try:
        server.wait_for("/readyz", seconds=180)
        http: dict[str, Any] = {}
        for label, path in ENDPOINTS.items():
            requests = load.post_requests("127.0.0.1", server.port, path, records[:128])
            for concurrency in args.concurrency:
                outcome = load.run(
                    "127.0.0.1", server.port, requests, concurrency=concurrency, seconds=args.seconds
                )
                http[f"{label} c={concurrency}"] = outcome.as_dict()
        # The same batches as /predict/batch bodies and as Open Inference Protocol tensors.
        chunks = [records[i : i + BATCH_SIZE] for i in range(0, 256, BATCH_SIZE)]
        codec = OpenInferenceCodec(spec.request, spec.response)
        for label, path, bodies in (
            (f"batch of {BATCH_SIZE} c=2", "/predict/batch", [{"instances": c} for c in chunks]),
            (
                f"infer (V2) {BATCH_SIZE} c=2",
                f"/v2/models/{spec.name}/infer",
                [codec.request_for(c) for c in chunks],
            ),
        ):
            requests = load.post_requests("127.0.0.1", server.port, path, bodies)
            outcome = load.run("127.0.0.1", server.port, requests, concurrency=2, seconds=args.seconds)
            http[label] = {
                **outcome.as_dict(),
                "predictions_per_second": round(outcome.requests_per_second * BATCH_SIZE, 1),
            }
        result["http"] = http
        print_http(spec.name, http)
    finally:
        server.stop()
    return result


def print_latencies(title: str, figures: dict[str, Latency], reference_ms: float | None = None) -> None:
    print(f"\n{title}")
    for name, lat in figures.items():
        ratio = f"   x{lat.p50_ms / reference_ms:,.0f}" if reference_ms else ""
        print(f"  {name:<36} p50 {lat.p50_ms:9.3f} ms   p99 {lat.p99_ms:9.3f} ms   n={lat.n}{ratio}")


def print_http(name: str, http: dict[str, Any]) -> None:
    print(f"\n{name}: HTTP, uvicorn 1 worker on 127.0.0.1")
    for label, row in http.items():
        extra = (
            f"   {row['predictions_per_second']:,.0f} predictions/s"
            if "predictions_per_second" in row
            else ""
        )
        print(
            f"  {label:<24} {row['requests_per_second']:8,.0f} req/s   p50 {row['p50_ms']:7.2f} ms   "
            f"p99 {row['p99_ms']:7.2f} ms   errors {row['errors']}/{row['requests']}{extra}"
        )


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m servekit.bench", description=__doc__)
    p.add_argument("--services", nargs="*", help="default: every installed service")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per HTTP run")
    p.add_argument("--inprocess-seconds", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, nargs="*", default=[1, 16])
    p.add_argument("--no-reference", dest="reference", action="store_false")
    p.add_argument("--output", type=Path, default=Path("reports/bench.json"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = args.services or registry.available()
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "services": {},
    }
    with tempfile.TemporaryDirectory(prefix="servekit-bench-") as tmp:
        work = Path(tmp)
        mlflow = start_mlflow(work / "mlflow", work)
        try:
            for name in names:
                train(registry.get_service(name), mlflow.url, seed=42)
            for name in names:
                report["services"][name] = bench_service(registry.get_service(name), mlflow, work, args)
        finally:
            mlflow.stop()
    report["access_log_line"] = access_log_cost(report, args.inprocess_seconds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {args.output}")
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
