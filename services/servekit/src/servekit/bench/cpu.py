"""``python -m servekit.bench.cpu``: the CPU one prediction costs a replica, for ``make cost``.

Each service's champion (trained on its synthetic data into a temporary MLflow server) is served
by a real ``mlp serve``; requests are sent open-loop at a steady rate, about what a pod answers at
its HorizontalPodAutoscaler's CPU target, and the replica's own ``process_cpu_seconds_total`` gives
the CPU they took: everything the process did in that time, its event loop, metrics and model
refresh included, divided by the predictions it answered. ``k8s/cost.py --cpu`` turns the figures
into dollars per million predictions. Beside each, the bytes one captured prediction writes to the
log (``<SVC>_CAPTURE_PERCENT``, off here: its CPU is not in the figure), which ``--load`` prices
where an overlay turns the capture on.

A shadow model (the shadow-challenger component) takes CPU of the replica too, for each request it
answers: each kind is measured again, taking turns with the first, on a second replica running the
champion's own run as its shadow on every request (``with_shadow``), and ``k8s/cost.py`` sizes a
shadowed service by the difference at the share its overlay samples. The servers run with no
service setting but these (``servers`` in the report, with what the shadow compared and skipped):
none is inherited from the caller's environment.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servekit import registry
from servekit.bench import load, logging_cost, reports, scaling
from servekit.bench.servers import (
    champions,
    checked_services,
    dropped_settings,
    machine,
    serving,
    wait_for_variants,
)
from servekit.cli.common import documented_parser
from servekit.loading import load_artifact
from servekit.local import Server
from servekit.metrics.names import MetricNames
from servekit.spec import ServiceSpec
from servekit.testing import request_rows, valid_requests
from servekit.training.splitting import split


@dataclass(frozen=True)
class Kind:
    """One kind of prediction request, sent at ``rate`` requests a second."""

    label: str
    path: str
    rows: int
    rate: float

    @property
    def explained(self) -> bool:
        return "explain=true" in self.path


#: Rates at which one replica used 0.12 to 0.39 cores on this machine, by the hour: near the 0.3
#: cores the base's HPAs hold a pod at (60 % of its 500m request). CPU per request falls as the
#: rate rises (2.3 ms for a BankChurn prediction at 50/s, 1.7 ms at 200/s, 0.84 ms at 800/s, in one
#: hour): a figure measured far from the pods' working point would price them wrongly.
KINDS = (
    Kind("predict", "/predict", 1, 200.0),
    Kind("predict+explain", "/predict?explain=true", 1, 100.0),
    Kind("explained batches of 64, per row", "/predict/batch?explain=true", 64, 5.0),
)


def bodies(records: Sequence[dict[str, Any]], rows: int) -> list[Any]:
    return list(records[:128]) if rows == 1 else [{"instances": b} for b in load.batches(records, rows)]


def cpu_per_prediction(
    url: str, service: str, kind: Kind, records: Sequence[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """Send ``kind`` for ``seconds`` and divide the replica's CPU by the predictions it answered."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    requests = load.post_requests(host, int(port), kind.path, bodies(records, kind.rows))
    before = scaling.read(url, service)
    outcome = load.run_open_loop(host, int(port), requests, rate=kind.rate, seconds=seconds, warmup=0)
    after = scaling.read(url, service)
    if outcome.answered != outcome.sent:
        # A request late, shed or failed still took CPU: the figure would be too high, and hide it.
        raise RuntimeError(
            f"{service} {kind.label}: {outcome.sent - outcome.answered} of {outcome.sent} requests were not "
            f"answered in time (late {outcome.late}, shed {outcome.shed}, failed {dict(outcome.failures)})"
        )
    predictions = outcome.answered * kind.rows
    cpu_seconds = after.cpu_seconds - before.cpu_seconds
    return {
        "path": kind.path,
        "requests_per_second": kind.rate,
        "rows_per_request": kind.rows,
        "predictions": predictions,
        "cpu_seconds": round(cpu_seconds, 3),
        "cores": round(cpu_seconds / (after.at - before.at), 3),
        "cpu_ms_per_prediction": round(1000 * cpu_seconds / predictions, 4),
    }


def summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Repeated runs of one kind as one figure: the median run's, with the range of all of them.

    The host's state moves a run's CPU by up to two times (README, Cost); the median of runs spread
    over the measurement is not carried by one noisy stretch, and the range says how far they went.
    """
    ordered = sorted(runs, key=lambda run: run["cpu_ms_per_prediction"])
    median = ordered[(len(ordered) - 1) // 2]
    return {
        **median,
        "runs": len(runs),
        "cpu_ms_range": [ordered[0]["cpu_ms_per_prediction"], ordered[-1]["cpu_ms_per_prediction"]],
    }


#: The key of a kind's figures measured with a shadow beside the champion, at this sample rate.
WITH_SHADOW = "with_shadow"
SHADOW_SAMPLE_RATE = 1.0


def measure(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    seconds: float,
    repeats: int,
    *,
    shadow_run_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each kind of request ``repeats`` times, the kinds taking turns, on one served champion; and
    with ``shadow_run_id``'s model as its shadow, on a second replica, each run beside the first's.
    The figures of each kind, and each replica's settings (and what the shadow did: instances
    compared, and skipped by reason, which a measured shadow's CPU is only as good as)."""
    records = valid_requests(spec, request_rows(split(spec, spec.recipe.generate(2000, seed=7), seed=7), 512))
    runs: dict[str, list[dict[str, Any]]] = {kind.label: [] for kind in KINDS}
    shadowed_runs: dict[str, list[dict[str, Any]]] = {kind.label: [] for kind in KINDS}
    servers: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(serving(spec, mlflow, work))
        servers["alone"] = {"settings": server.settings}
        shadowed = None
        if shadow_run_id:
            shadow = {"SHADOW_MODEL_URI": f"runs:/{shadow_run_id}/model", "SHADOW_SAMPLE_RATE": "1"}
            shadowed = stack.enter_context(serving(spec, mlflow, work, label="shadow", settings=shadow))
            wait_for_variants(shadowed, ["shadow"])
            servers[WITH_SHADOW] = {"settings": shadowed.settings}
        # The two replicas take turns, kind by kind: a noisy stretch of the host moves both alike.
        for _ in range(repeats):
            for kind in KINDS:
                runs[kind.label].append(cpu_per_prediction(server.url, spec.name, kind, records, seconds))
                if shadowed is not None:
                    shadowed_runs[kind.label].append(
                        cpu_per_prediction(shadowed.url, spec.name, kind, records, seconds)
                    )
        if shadowed is not None:
            servers[WITH_SHADOW]["shadow_counted"] = shadow_counted(shadowed.url, spec.name)
    figures: dict[str, Any] = {label: summary(found) for label, found in runs.items()}
    model = spec.model(load_artifact(spec.name, f"models:/{spec.name}@champion", mlflow.url))
    for kind in KINDS:
        row = figures[kind.label]
        row["capture_bytes_per_prediction"] = logging_cost.capture_line_bytes(
            model, records[:128], explain=kind.explained, rows=kind.rows
        )
        low, high = row["cpu_ms_range"]
        print(
            f"{spec.name} {kind.label}: {row['cpu_ms_per_prediction']:.3f} ms of CPU per prediction, the "
            f"median of {row['runs']} runs ({low:.3f} to {high:.3f}; {kind.rate:g} requests/s, "
            f"{row['cores']:.2f} cores); captured, {row['capture_bytes_per_prediction']:,} bytes of log each"
        )
        if shadowed_runs[kind.label]:
            beside = summary(shadowed_runs[kind.label])
            row[WITH_SHADOW] = {
                key: beside[key]
                for key in ("cpu_ms_per_prediction", "cpu_ms_range", "runs", "cores", "cpu_seconds")
            } | {"shadow_sample_rate": SHADOW_SAMPLE_RATE}
            low, high = beside["cpu_ms_range"]
            print(
                f"{spec.name} {kind.label} with a shadow on every request: "
                f"{beside['cpu_ms_per_prediction']:.3f} ms ({low:.3f} to {high:.3f})"
            )
    return figures, servers


def shadow_counted(url: str, service: str) -> dict[str, float]:
    """The instances the replica's shadow compared, and those it skipped by reason, so far."""
    counted: dict[str, float] = {}
    names = MetricNames(service)
    for sample in scaling.scrape(url, timeout=60):
        if sample.name == names.shadow_predictions_total:
            counted["compared"] = counted.get("compared", 0.0) + sample.value
        elif sample.name == names.shadow_skipped_total:
            counted[f"skipped {sample.labels['reason']}"] = sample.value
    return counted


def parser() -> argparse.ArgumentParser:
    p = documented_parser("python -m servekit.bench.cpu", __doc__)
    p.add_argument("--services", nargs="*", help="default: every installed service")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds of each run")
    p.add_argument("--repeats", type=int, default=3, help="runs of each kind of request, taking turns")
    p.add_argument(
        "--no-shadow",
        dest="shadow",
        action="store_false",
        help="skip the runs with a shadow model (k8s/cost.py then estimates a shadow's CPU, and says so)",
    )
    p.add_argument("--output", type=Path, default=Path("reports/cpu.json"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = checked_services(p, args.services)
    report: dict[str, Any] = {
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        # Names only: the values may be secrets. Each service's own settings are beside its figures.
        "settings_not_inherited": dropped_settings(),
        "services": {},
        "servers": {},
    }
    with champions(names, "servekit-cpu-") as (mlflow, work, trained):
        for name in names:
            report["services"][name], report["servers"][name] = measure(
                registry.get_service(name),
                mlflow,
                work,
                args.seconds,
                args.repeats,
                shadow_run_id=trained[name].run_id if args.shadow else None,
            )
    reports.write(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
