"""An overlay's report: its workloads and CronJobs, its bills at the floor and the ceiling, and with
--cpu and --load what a million predictions and a load cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from costing.bill import at_scale, bill, bill_line
from costing.cronjobs import scheduled
from costing.errors import CostError
from costing.logs import log_lines
from costing.pricing import HOURS_PER_MONTH, autopilot_billed, workload_hour
from costing.rendering import Obj
from costing.schedulable import check_schedulable
from costing.sizing import followed, per_million, profile_points, under_load
from costing.workloads import workloads


def report(
    overlay: str,
    objects: Sequence[Obj],
    prices: Mapping[str, Any],
    *,
    cpu: Mapping[str, Any] | None = None,
    loads: Mapping[str, float] | None = None,
    kind: str = "predict",
    follow_observed: bool = False,
) -> list[str]:
    found = workloads(objects)
    check_schedulable(objects, prices)
    lines = [f"{overlay}: {prices['what']} (list prices of {prices['as_of']}, k8s/prices.yaml)"]
    width = max(len(f"{w.kind}/{w.name}") for w in found)
    lines.append(f"  {'workload':<{width}}  replicas  per pod: CPU  memory GiB  $/pod-hour")
    for w in found:
        span = f"{w.floor}" if w.floor == w.ceiling else f"{w.floor}-{w.ceiling}"
        name = f"{w.kind}/{w.name}"
        line = (
            f"  {name:<{width}}  {span:>8}  {w.pod.cpu:>12.3g}  {w.pod.memory_gib:>10.3g}"
            f"  {workload_hour(w, prices):>10.4f}"
        )
        if w.spot:
            line += "  Spot first (on-demand in a stockout)" if w.spot_first else "  Spot"
        if prices["billing"] == "pod-requests":
            billed = autopilot_billed(w.pod, prices["autopilot_rounding"])
            if billed != w.pod:
                line += f"  billed as {billed.cpu:g} CPU, {billed.memory_gib:.3g} GiB"
        lines.append(line)
    for job in scheduled(objects):
        runs = f"{job.runs_a_month:.3g} run{'' if job.runs_a_month == 1 else 's'}"
        lines.append(
            f"  CronJob/{job.name}: {runs} a month of at most {job.hours_a_run:g} h, "
            f"a pod of {job.pod.cpu:g} CPU and {job.pod.memory_gib:.3g} GiB: "
            f"at most ${job.month(prices):.2f} a month"
        )
    for scale in ("floor", "ceiling"):
        lines.append(bill_line(bill(objects, found, prices, at_scale(found, scale)), f"at the {scale}"))
    if prices.get("cluster_monthly_credit"):
        full = prices["cluster_hour"] * HOURS_PER_MONTH
        credit = prices["cluster_monthly_credit"]
        lines.append(
            f"  (the cluster's ${full:.0f} a month is paid by the free tier's ${credit:.2f} monthly credit, "
            "for one cluster per billing account: a second one pays it)"
        )
    if cpu is not None:
        lines += per_million(found, prices, cpu)
    if loads:
        if cpu is None:
            raise CostError("--load needs --cpu: the CPU a prediction costs sizes the pods")
        sized, notes = under_load(found, cpu, loads, kind)
        given = ", ".join(f"{service} {per_second:g}/s" for service, per_second in loads.items())
        pods = ", ".join(f"{service} {sized[service]} pods" for service in loads)
        priced = bill(objects, found, prices, sized)
        lines.append(bill_line(priced, f"at {given} ({kind}): {pods}"))
        lines += notes
        # Observed rates: the mean rate's bill, then the one of the HPAs following the load.
        points = profile_points(cpu, loads) if follow_observed else []
        if points:
            priced, followed_lines = followed(objects, found, prices, cpu, points)
            lines += followed_lines
            given = "the observed load"
        logged, logged_lines = log_lines(found, prices, cpu, loads, kind)
        lines += logged_lines
        if logged_lines:
            lines.append(f"  at {given} with the log lines: ${priced.total + logged:,.0f} a month")
    return lines
