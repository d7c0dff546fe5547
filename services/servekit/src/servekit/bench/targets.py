"""The service targets, checked against each run's HTTP figures: met or missed, with the figure.

A missed target is printed and reported, and fails the run only with ``--strict-targets``: on a
loaded machine (the load generator shares its cores with the server) a run may miss one that the
service meets, and that alone should not fail ``make bench``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PREDICT_P50_MS = 2.0
EXPLAIN_ADDS_MS = 5.0
PREDICTIONS_PER_SECOND = 1000.0
#: A verdict's ``met`` as printed.
WORDS = {True: "met", False: "missed", None: "not measured"}


@dataclass(frozen=True)
class Verdict:
    target: str
    #: The figure it was judged on, None where the run did not measure it.
    figure: float | None
    unit: str
    met: bool | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(http: dict[str, Any]) -> list[Verdict]:
    """The targets on one service's HTTP rows (``predict c=1``, ``predict+explain c=1``, ``predict c=16``)."""
    alone = http.get("predict c=1", {}).get("p50_ms")
    explained = http.get("predict+explain c=1", {}).get("p50_ms")
    wide = http.get("predict c=16", {}).get("requests_per_second")
    adds = explained - alone if alone is not None and explained is not None else None

    def verdict(target: str, figure: float | None, unit: str, met: bool) -> Verdict:
        if figure is None:
            return Verdict(target, None, unit, None)
        return Verdict(target, round(figure, 3), unit, met)

    return [
        verdict(
            f"HTTP predict p50 <= {PREDICT_P50_MS:g} ms at concurrency 1",
            alone,
            "ms",
            alone is not None and alone <= PREDICT_P50_MS,
        ),
        verdict(
            f"an explanation adds <= {EXPLAIN_ADDS_MS:g} ms at p50 (concurrency 1)",
            adds,
            "ms",
            adds is not None and adds <= EXPLAIN_ADDS_MS,
        ),
        verdict(
            f">= {PREDICTIONS_PER_SECOND:,.0f} predictions/s from one worker at concurrency 16",
            wide,
            "predictions/s",
            wide is not None and wide >= PREDICTIONS_PER_SECOND,
        ),
    ]
