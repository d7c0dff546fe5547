"""What capture, the access log, the API key check and request spans cost, against predict p50.

Each function measures one of them, prints its lines and returns its part of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from servekit.bench import auth_cost, logging_cost, span_cost
from servekit.bench.stats import Latency
from servekit.model import Record, ServedModel


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
