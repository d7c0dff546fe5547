"""The log lines predictions write, priced: the capture's (and a shadow's answers beside them), by
the bytes the --cpu file measured, and the access and service lines where it was observed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from costing.errors import CostError
from costing.figures import OBSERVED, OPERATIONAL_BYTES, SHADOW_LINE_KIND
from costing.pricing import HOURS_PER_MONTH
from costing.requests import GIB
from costing.workloads import Workload


def captured_gib(predictions: float, workload: Workload, kinds: Mapping[str, Any], kind: str) -> float:
    """GiB of log lines ``predictions`` of ``kind`` write at the workload's capture percentage, and
    its shadow's answers to them (``kinds``: the service's figures of every kind measured)."""
    figures = kinds[kind]
    if "capture_bytes_per_prediction" not in figures:
        measure = (
            "python -m servekit.bench.observed read none (the capture was off in the window): price the "
            "capture with make cost's measured figures"
            if kind == OBSERVED
            else "measure again with make cost"
        )
        raise CostError(
            f"{workload.name} captures {workload.capture_percent:g} % of its predictions, and the --cpu file "
            f"has no capture_bytes_per_prediction for {kind!r}: {measure}"
        )
    served_bytes, shadow_bytes = line_bytes(kinds, kind)
    captured = predictions * workload.capture_percent / 100
    return captured * (served_bytes + workload.shadow_share * shadow_bytes) / GIB


def line_bytes(kinds: Mapping[str, Any], kind: str) -> tuple[float, float]:
    """The bytes of a captured line of ``kind``, and of a shadow's answer's line beside it: a shadow
    never explains, so its line weighs a ``predict`` line where one was measured. An observed figure
    is already the mean line of both, as the pods wrote them."""
    served = float(kinds[kind]["capture_bytes_per_prediction"])
    shadow_figures = kinds[kind] if kind == OBSERVED else kinds.get(SHADOW_LINE_KIND, kinds[kind])
    return served, float(shadow_figures.get("capture_bytes_per_prediction", served))


def operational_gib(predictions: float, figures: Mapping[str, Any]) -> float:
    """GiB of access and service log lines ``predictions`` write, as observed in production."""
    return predictions * float(figures[OPERATIONAL_BYTES]) / GIB


def log_lines(
    found: Sequence[Workload],
    prices: Mapping[str, Any],
    cpu: Mapping[str, Any],
    loads: Mapping[str, float],
    kind: str,
) -> tuple[float, list[str]]:
    """Dollars a month for the log lines ``loads`` write, and the lines saying so: the capture's where
    the overlay turns it on, the access and service lines where the figures were observed (a
    measurement here cannot know them). The store's free allowance comes off once."""
    by_name = {w.name: w for w in found}
    logs = prices["log_ingestion"]
    gib, lines = 0.0, []
    for service, per_second in loads.items():
        workload = by_name[service]
        figures = cpu["services"][service][kind]
        predictions = per_second * 3600 * HOURS_PER_MONTH
        if workload.capture_percent:
            month = captured_gib(predictions, workload, cpu["services"][service], kind)
            gib += month
            served_bytes, shadow_bytes = line_bytes(cpu["services"][service], kind)
            weighs = f"{served_bytes:,.0f} bytes a line"
            if workload.shadow_share:
                share = workload.shadow_share
                weighs += f", and its shadow's answers to {share:.0%} of them at {shadow_bytes:,.0f}"
            lines.append(
                f"  {service} captures {workload.capture_percent:g} % of {per_second:g}/s at {weighs}: "
                f"{month:,.0f} GiB a month"
            )
        if OPERATIONAL_BYTES in figures:
            month = operational_gib(predictions, figures)
            gib += month
            lines.append(
                f"  {service} writes {figures[OPERATIONAL_BYTES]:,g} bytes of access and service log lines a "
                f"prediction (observed): {month:,.0f} GiB a month"
            )
    if not lines:
        return 0.0, []
    dollars = max(0.0, gib - logs["free_gib_month"]) * logs["gib"]
    lines.append(
        f"  the log lines: ${dollars:,.0f} a month ({logs['what']}: ${logs['gib']:.2f} per GiB "
        f"after {logs['free_gib_month']:g} GiB free)"
    )
    return dollars, lines
