"""``python -m servekit.bench.batch_scoring``: ``mlp score``'s rows a second, in one process and in workers.

Each service's model, fitted on its synthetic data, scores a synthetic file of the same schema
twice in the same run: in this process alone (the reference) and with ``--workers`` processes
(``servekit.scoring.pool``): a CSV file with and without explanations, the first of them as
Parquet and as JSON Lines, and CSV and Parquet each scored into the other and CSV into JSON
Lines. The two outputs must be the same byte
for byte, or the benchmark fails. The figures are of the machine it runs on: the parent reads and
writes the file alone, so two workers on two CPUs cannot double the rate.
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from servekit import registry
from servekit.bench import reports
from servekit.bench.memory import MemorySampler, tree_resident_bytes
from servekit.bench.servers import machine
from servekit.cli.common import documented_parser
from servekit.model import ServedModel
from servekit.scoring import score_file
from servekit.scoring.pool import usable_cpus
from servekit.spec import ServiceSpec
from servekit.testing import train_in_memory

MIB = 1024 * 1024


def score_twice(
    spec: ServiceSpec,
    model: ServedModel,
    source: Path,
    work: Path,
    args: argparse.Namespace,
    *,
    explain: bool,
    written_as: str,
) -> dict[str, Any]:
    """One file scored alone and by ``args.workers`` processes: their seconds, rows/s and ratio."""
    figures: dict[str, Any] = {}
    outputs = []
    score = partial(
        score_file, spec, model, source, explain=explain, prefix="scored_", chunk_rows=args.chunk_rows
    )
    for label, count in (("alone", 1), ("workers", args.workers)):
        output = work / f"{spec.name}-{label}-{explain}{written_as}"
        with MemorySampler(os.getpid(), interval=0.1, measure=tree_resident_bytes) as sampler:
            summary = score(output, workers=count)
        resident = [size for _, size in sampler.samples]
        figures[label] = {
            "seconds": round(summary.seconds, 2),
            "rows_per_second": round(summary.rows / summary.seconds),
            "workers_asked": count,
            "workers_started": summary.workers,
            # This process and its workers, summed (shared pages twice: an upper bound); and what
            # scoring added to this process, which also holds the models the bench fitted.
            "peak_resident_mib": round(max(resident) / MIB),
            "peak_added_mib": round((max(resident) - resident[0]) / MIB),
        }
        outputs.append(output.read_bytes())
    if outputs[0] != outputs[1]:
        raise AssertionError(f"{spec.name}: the workers wrote another file than one process did")
    figures["ratio"] = round(figures["workers"]["rows_per_second"] / figures["alone"]["rows_per_second"], 2)
    return figures


#: What is scored of each service: its name in the report, the argument giving its rows, whether
#: explained, the file's format (the same rows as the first file's, as a warehouse exports them)
#: and the scores'.
FILES = (
    ("predicted", "rows", False, ".csv", ".csv"),
    ("explained", "explained_rows", True, ".csv", ".csv"),
    ("parquet", "rows", False, ".parquet", ".parquet"),
    ("csv_to_parquet", "rows", False, ".csv", ".parquet"),
    ("parquet_to_csv", "rows", False, ".parquet", ".csv"),
    ("jsonl", "rows", False, ".jsonl", ".jsonl"),
    ("csv_to_jsonl", "rows", False, ".csv", ".jsonl"),
    ("jsonl_to_parquet", "rows", False, ".jsonl", ".parquet"),
)
KINDS = tuple(kind for kind, *_ in FILES)


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in args.services:
        spec = registry.get_service(name)
        artifact, _ = train_in_memory(spec, rows=4000, seed=7)
        model = spec.model(artifact)
        result[name] = {}
        for kind, rows_argument, explain, suffix, written_as in FILES:
            if kind not in args.files:
                continue
            rows = getattr(args, rows_argument)
            source = work / f"{name}-{rows}{suffix}"
            if not source.exists():
                frame = spec.recipe.generate(rows, seed=3)
                if suffix == ".csv":
                    frame.to_csv(source, index=False)
                elif suffix == ".jsonl":
                    frame.to_json(source, orient="records", lines=True, date_format="iso")
                else:
                    frame.to_parquet(source, index=False)
            figures = score_twice(spec, model, source, work, args, explain=explain, written_as=written_as)
            result[name][kind] = {"rows": rows, **figures}
            print_figures(name, kind, rows, figures)
    return result


def print_figures(name: str, kind: str, rows: int, figures: dict[str, Any]) -> None:
    alone, shared = figures["alone"], figures["workers"]
    print(
        f"{name}, {rows:,} rows {kind.replace('_', ' ')}: one process {alone['rows_per_second']:,} rows/s "
        f"({alone['seconds']} s, peak {alone['peak_resident_mib']:,} MiB resident, "
        f"+{alone['peak_added_mib']:,} while scoring); {shared['workers_asked']} workers asked, "
        f"{shared['workers_started']} started: {shared['rows_per_second']:,} rows/s "
        f"({shared['seconds']} s, peak {shared['peak_resident_mib']:,} MiB with the workers, "
        f"+{shared['peak_added_mib']:,}); ratio {figures['ratio']}",
        flush=True,
    )


def parser() -> argparse.ArgumentParser:
    p = documented_parser("python -m servekit.bench.batch_scoring", __doc__)
    p.add_argument("--services", nargs="+", default=registry.available())
    p.add_argument("--rows", type=int, default=400_000, help="rows of each file scored without explanations")
    p.add_argument("--explained-rows", type=int, default=100_000, help="rows of each file scored explained")
    p.add_argument(
        "--workers", type=int, default=usable_cpus(), help="default: the CPUs this process may use"
    )
    p.add_argument("--chunk-rows", type=int, default=10_000)
    p.add_argument(
        "--files", nargs="+", choices=KINDS, default=KINDS, help="which files are scored (default: all)"
    )
    p.add_argument("--output", type=Path, default=Path("reports/batch_scoring.json"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-score-") as work:
        result = bench(args, Path(work))
    reports.write(
        args.output,
        {"date": datetime.date.today().isoformat(), "machine": machine(), "workers": args.workers, **result},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
