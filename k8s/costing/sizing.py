"""Pods sized by the CPU a prediction costs: a million predictions at an HPA's CPU target, the pods
an HPA settles at under a steady load, and the bill as the HPAs follow an observed one."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from costing.bill import Bill, at_scale, bill, bill_line
from costing.errors import CostError
from costing.figures import OBSERVED, OPERATIONAL_BYTES, SHADOW_LINE_KIND, WITH_SHADOW
from costing.logs import captured_gib, operational_gib
from costing.pricing import HOURS_PER_MONTH, workload_hour
from costing.rendering import Obj
from costing.workloads import Workload


def per_million(found: Sequence[Workload], prices: Mapping[str, Any], cpu: Mapping[str, Any]) -> list[str]:
    """Lines pricing a million predictions of each measured service at its HPA's CPU target."""
    lines = []
    by_name = {w.name: w for w in found}
    per_gib = prices["log_ingestion"]["gib"]
    for service, kinds in sorted(cpu["services"].items()):
        workload = by_name.get(service)
        if workload is None:
            continue
        if workload.cpu_target is None:
            lines.append(f"  {service}: its HPA has no CPU utilisation target to hold a pod at")
            continue
        price = workload_hour(workload, prices)
        for kind, figures in kinds.items():
            cpu_ms, shadow = cpu_ms_of(workload, kinds, kind)
            per_pod_second = answers_per_second(workload, cpu_ms)
            dollars = price / (per_pod_second * 3600) * 1e6
            floor_month = workload.floor * per_pod_second * 3600 * HOURS_PER_MONTH
            with_shadow = f", {cpu_ms:.2f} ms with its shadow" if shadow else ""
            line = (
                f"  {service} {kind}: {figures['cpu_ms_per_prediction']:.2f} ms of CPU each (measured at "
                f"{figures['cores']:.2f} cores{with_shadow}); a pod held at {workload.cpu_target:.2f} cores "
                f"answers "
                f"{per_pod_second:,.0f}/s: ${dollars:.4f} per million; the floor's {workload.floor} pods "
                f"answer {floor_month / 1e6:,.0f} million a month"
            )
            if workload.capture_percent:
                logged = captured_gib(1e6, workload, kinds, kind) * per_gib
                line += f"; captured ({workload.capture_percent:g} %), ${logged:.4f} per million in log lines"
            if OPERATIONAL_BYTES in figures:
                logged = operational_gib(1e6, figures) * per_gib
                line += f"; ${logged:.4f} per million in access and service log lines (observed)"
            lines.append(line)
            if shadow:
                lines.append(f"    {shadow}")
    return lines


def cpu_ms_of(workload: Workload, kinds: Mapping[str, Any], kind: str) -> tuple[float, str]:
    """The CPU a prediction of ``kind`` costs the workload's pods (``kinds``: the service's figures
    of every kind measured), its shadow's included, and how the shadow's share was found ("" without
    one).

    A shadow runs the challenger on ``shadow_share`` of the requests, in the replica: measured
    (``python -m servekit.bench.cpu``'s ``with_shadow`` runs, the champion as its own shadow on
    every request), it adds the measured difference at that share; not measured, a ``predict`` of
    the service's on each (a shadow never explains), or the prediction's own where less (a batch's
    row), an upper bound: a shadow scores without the HTTP work a measured prediction includes. An
    observed figure is what production's pods took, with the shadow they ran then, or none.
    """
    figures = kinds[kind]
    served = float(figures["cpu_ms_per_prediction"])
    share = workload.shadow_share
    if not share:
        return served, ""
    if kind == OBSERVED:
        return served, (
            f"{workload.name}'s shadow ({share:.0%} of requests): in the observed CPU where production ran "
            "one, not otherwise"
        )
    beside = figures.get(WITH_SHADOW)
    if beside is not None:
        measured_share = float(beside.get("shadow_sample_rate", 1.0))
        added = max(0.0, float(beside["cpu_ms_per_prediction"]) - served) * share / measured_share
        how = f"measured with a shadow on {measured_share:.0%} of requests"
    else:
        # A shadow scores each request the served model answers, unexplained: no more than a
        # predict of the service's, nor than the prediction it shadows (a batch's row).
        alone = float(kinds.get(SHADOW_LINE_KIND, figures)["cpu_ms_per_prediction"])
        added = share * min(alone, served)
        how = "estimated, an upper bound (the --cpu file has no with_shadow figures: make cost measures them)"
    note = (
        f"{workload.name}'s shadow ({share:.0%} of requests) adds {added:.3f} ms of CPU a prediction, {how}"
    )
    return served + added, note


def answers_per_second(workload: Workload, cpu_ms: float) -> float:
    """Predictions a pod answers each second, held at its HPA's CPU target, at ``cpu_ms`` each."""
    if workload.cpu_target is None:
        raise CostError(f"{workload.name}: its HPA has no CPU utilisation target to size it by")
    return workload.cpu_target / (cpu_ms / 1000)


def pods_for(workload: Workload, per_second: float, cpu_ms: float) -> int:
    """Pods an HPA settles at under a steady load: enough to hold each at its CPU target (unbounded:
    the caller compares it with the ceiling)."""
    return math.ceil(round(per_second / answers_per_second(workload, cpu_ms), 9))


def sized(
    found: Sequence[Workload], cpu: Mapping[str, Any], loads: Mapping[str, float], kind: str
) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """Replicas of each workload under ``loads`` (predictions a second of ``kind``, by service),
    within each HPA's floor and ceiling (a service without a load stays at its floor), the pods
    each loaded service would want, unbounded, and how each shadow's CPU was counted
    (:func:`cpu_ms_of`)."""
    replicas = at_scale(found, "floor")
    wanted = {}
    shadows = []
    by_name = {w.name: w for w in found}
    for service, per_second in loads.items():
        if service not in by_name:
            raise CostError(f"--load {service}: no such workload in the overlay")
        workload = by_name[service]
        try:
            cpu_ms, shadow = cpu_ms_of(workload, cpu["services"][service], kind)
        except KeyError:
            raise CostError(f"--load {service}: no CPU figure for {kind!r} in the --cpu file") from None
        wanted[service] = pods_for(workload, per_second, cpu_ms)
        replicas[service] = min(max(wanted[service], workload.floor), workload.ceiling)
        if shadow:
            shadows.append(shadow)
    return replicas, wanted, shadows


def under_load(
    found: Sequence[Workload], cpu: Mapping[str, Any], loads: Mapping[str, float], kind: str
) -> tuple[dict[str, int], list[str]]:
    """Replicas of each workload under ``loads`` (:func:`sized`), and the notes on the services
    their HPA cannot keep up with."""
    replicas, wanted, shadows = sized(found, cpu, loads, kind)
    ceilings = {w.name: w.ceiling for w in found}
    notes = [f"  {shadow}" for shadow in shadows]
    notes += [
        f"  {service} needs {pods} pods for {loads[service]:g}/s; its HPA stops at {ceilings[service]}: "
        "raise maxReplicas, or its pods run past their target"
        for service, pods in wanted.items()
        if pods > ceilings[service]
    ]
    return replicas, notes


def profile_points(cpu: Mapping[str, Any], services: Iterable[str]) -> list[dict[str, float]]:
    """The observed load at each point of the window: every service's rate then (0 where it had none).

    Prometheus aligns a subquery's points to multiples of its step, so the services' points of
    one time are one point of the profile.
    """
    services = list(services)
    by_time: dict[int, dict[str, float]] = {}
    for service in services:
        for at, rate in cpu["services"][service][OBSERVED].get("rate_profile", []):
            by_time.setdefault(int(at), {})[service] = float(rate)
    return [
        {service: point.get(service, 0.0) for service in services} for _, point in sorted(by_time.items())
    ]


def followed(
    objects: Sequence[Obj],
    found: Sequence[Workload],
    prices: Mapping[str, Any],
    cpu: Mapping[str, Any],
    points: Sequence[Mapping[str, float]],
) -> tuple[Bill, list[str]]:
    """The month's bill as the HPAs follow the observed load: at each point the pods each settles
    at (within its floor and ceiling), the bills of the points averaged. An HPA that follows a
    daily peak holds more pods than the mean rate needs, and fewer than the peak's all day.

    Also what it held: each service's pods, least, most and on average, and the points at which
    it would have needed more than its ceiling.
    """
    ceilings = {w.name: w.ceiling for w in found}
    held: dict[str, list[int]] = {service: [] for service in points[0]}
    short: dict[str, int] = dict.fromkeys(points[0], 0)
    bills = []
    for loads in points:
        replicas, wanted, _ = sized(found, cpu, loads, OBSERVED)
        for service, want in wanted.items():
            held[service].append(replicas[service])
            short[service] += want > ceilings[service]
        bills.append(bill(objects, found, prices, replicas))

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return sum(values) / len(values)

    first = bills[0]
    nodes = None if first.nodes is None else mean(b.nodes or 0 for b in bills)
    averaged = Bill(
        mean(b.compute for b in bills),
        first.storage,
        first.cluster,
        first.load_balancers,
        nodes,
        mean(b.spot_nodes for b in bills),
        # The CronJobs run on their schedule whatever the load: every point's bill has them.
        scheduled=first.scheduled,
    )
    pods = ", ".join(
        f"{service} {min(counts)} pods"
        if min(counts) == max(counts)
        else f"{service} {min(counts)}-{max(counts)} pods ({mean(counts):.2g} on average)"
        for service, counts in held.items()
    )
    lines = [bill_line(averaged, f"as the HPAs follow the observed load ({len(points)} points): {pods}")]
    lines += [
        f"  {service} would have needed more than its {ceilings[service]} pods at {count} of "
        f"{len(points)} points: raise maxReplicas, or its pods ran past their target"
        for service, count in short.items()
        if count
    ]
    return averaged, lines
