"""The benchmark's lines on the console: latencies, HTTP loads, a second model beside, fairness.

The overload and scaling lines are printed beside their own measurements instead.
"""

from __future__ import annotations

from typing import Any

from servekit.bench import fairness
from servekit.bench.http_figures import BATCH_SIZE
from servekit.bench.stats import Latency


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
