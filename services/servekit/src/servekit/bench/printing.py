"""The benchmark's lines on the console: latencies, HTTP loads, a second model beside, fairness.

The overload and scaling lines are printed beside their own measurements instead.
"""

from __future__ import annotations

from typing import Any

from servekit.bench import fairness
from servekit.bench.http_figures import BATCH_SIZE
from servekit.bench.stats import Latency
from servekit.bench.targets import WORDS


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
        p99 = p99_text(latency["p99_ms"], latency["n"], digits=1, width=6)
        print(
            f"  {limit:<30} steady: in time {steady['answered']:>4} of {steady['sent']:>4}, "
            f"refused {refused:>4}, late {steady['late']:>3}, "
            f"in time: p50 {latency['p50_ms']:>6.1f} ms, {p99}, {all_p99(steady)}   "
            f"runaway: goodput {runaway['goodput_per_second']:>5.1f}/s, 503 {runaway['shed']}"
            + "".join(f", {kind} {count}" for kind, count in runaway["failures"].items())
            + f" (the replica refused {refused_runaway} with 429)"
        )
    if measured.get("not_meaningful"):
        print(f"  not meaningful: {measured['not_meaningful']}")


#: Below this many samples a p99 is not printed (it is the largest sample or near it); below
#: ``COUNTED`` it is printed with its count, as the p50 is, so no one reads more into it than it holds.
MIN_P99_SAMPLES, COUNTED = 100, 1000


def p99_text(p99_ms: float, n: int, *, digits: int = 2, width: int = 7, counted: bool = True) -> str:
    """``p99 <ms> ms``, with ``(n=...)`` under ``COUNTED`` samples (unless the line prints its ``n``
    anyway: ``counted=False``); none under ``MIN_P99_SAMPLES``."""
    if n < MIN_P99_SAMPLES:
        return f"p99 {'-':>{width}}    (n={n}, too few)"
    counted_text = f" (n={n:,})" if counted and n < COUNTED else ""
    return f"p99 {p99_ms:{width}.{digits}f} ms{counted_text}"


def all_p99(row: dict[str, Any]) -> str:
    """An open loop's p99 over every request sent, late ones at the deadline (``>=`` when the p99 is
    one of them: its clients gave up there), beside the answered-in-time p99 it is printed with."""
    every = row.get("all_latency") or {"n": 0}
    if every["n"] < MIN_P99_SAMPLES:
        return f"all sent: p99 - (n={every['n']}, too few)"
    bound = ">=" if row.get("all_p99_is_lower_bound") else ""
    counted = f" (n={every['n']:,})" if every["n"] < COUNTED else ""
    return f"all sent: p99 {bound}{every['p99_ms']:.1f} ms{counted}"


def print_latencies(title: str, figures: dict[str, Latency], reference_ms: float | None = None) -> None:
    print(f"\n{title}")
    for name, lat in figures.items():
        ratio = f"   x{lat.p50_ms / reference_ms:,.0f}" if reference_ms else ""
        p99 = p99_text(lat.p99_ms, lat.n, digits=3, width=9, counted=False)
        print(f"  {name:<36} p50 {lat.p50_ms:9.3f} ms   {p99}   n={lat.n}{ratio}")


def print_http(name: str, http: dict[str, Any]) -> None:
    print_rows(f"{name}: HTTP, uvicorn 1 worker on 127.0.0.1", http, "errors {errors}/{requests}")


def print_reference(name: str, reference: dict[str, Any], ratios: dict[str, dict[str, float]]) -> None:
    """The bare uvicorn app's rows, measured in this run, and the service's rows against them."""
    print_rows(
        f"{name}: the reference, a bare uvicorn app (1 worker, 127.0.0.1, a fixed JSON, no validation,"
        " no model), same client and bodies, this run",
        reference,
        "errors {errors}/{requests}",
    )
    for label, ratio in ratios.items():
        print(
            f"  {label:<24} against it: p50 x{ratio['p50_ratio']:.2f}, "
            f"req/s x{ratio['requests_per_second_ratio']:.2f}"
        )


def print_targets(targets: dict[str, list[dict[str, Any]]]) -> None:
    """Each service's targets, met or missed, with the figure (servekit.bench.targets)."""
    print("\ntargets (judged on this run's figures; a loaded host may miss one: see --strict-targets)")
    for name, verdicts in targets.items():
        for verdict in verdicts:
            figure = "" if verdict["figure"] is None else f": {verdict['figure']:,.2f} {verdict['unit']}"
            print(f"  {name:<12} {WORDS[verdict['met']]:<12} {verdict['target']}{figure}")


def print_beside(name: str, what: str, beside: dict[str, Any]) -> None:
    print_rows(
        f"{name}: the same loads with {what} (req/s: the median of {beside['rounds']} rounds, "
        "each alone then beside)",
        beside["http"],
        "x{ratio_to_alone:.2f} of alone (rounds x{ratio_low:.2f} to x{ratio_high:.2f})",
    )
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
        counted = f" (n={row['n']:,})" if row["n"] < COUNTED else ""
        p99 = p99_text(row["p99_ms"], row["n"])
        print(
            f"  {label:<24} {row['requests_per_second']:8,.0f} req/s   "
            f"p50 {row['p50_ms']:7.2f} ms{counted}   {p99}   {last.format(**row)}{extra}"
        )
