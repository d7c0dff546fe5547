"""The two loads the scaling measurement offers one replica: single records and explained batches.

``scaling`` reads a replica's counters at shares of a capacity; this module serves the replica,
gives it the capacities the other measurements found, and prints the rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servekit.bench import load, scaling
from servekit.bench.http_figures import BATCH_SIZE
from servekit.bench.overload import OVERLOAD_DEADLINE, OVERLOAD_PATH
from servekit.bench.servers import serving
from servekit.local import Server
from servekit.spec import ServiceSpec

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
