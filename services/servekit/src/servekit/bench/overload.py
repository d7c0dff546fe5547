"""The overload measurement: explained batches sent past what one worker answers.

It compares the replica with its admission limits against the same replica with some of them
switched off, and prints that comparison. The scaling measurement shares its path and deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from servekit.bench import load
from servekit.bench.http_figures import BATCH_SIZE
from servekit.bench.printing import all_p99, p99_text
from servekit.bench.servers import serving
from servekit.local import Server
from servekit.spec import ServiceSpec

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
        p99 = p99_text(answered["p99_ms"], answered["n"], digits=1, width=6)
        print(
            f"  {title:<36} goodput {row['goodput_per_second']:>6.1f}/s  answered {row['answered']:>5}  "
            f"shed {row['shed']:>5}  late {row['late']:>5}  failed {row['failed']:>3}  "
            f"in time: p50 {answered['p50_ms']:>6.1f} ms  {p99}  {all_p99(row)}"
            + "".join(f"  {kind}: {count}" for kind, count in row["failures"].items())
        )
    ratio = overload["goodput_ratio"]
    verdict = f"no answer in time with {compared_title}" if ratio is None else ratio
    print(f"  goodput, {LIMITED} / {compared}: {verdict}")
