"""Summaries of latency samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Percentiles of one measurement, in milliseconds."""

    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        values = np.asarray(seconds, dtype=float) * 1000.0
        if values.size == 0:
            return cls(0, float("nan"), float("nan"), float("nan"))
        p50, p99 = np.percentile(values, [50, 99])
        return cls(int(values.size), float(p50), float(p99), float(values.mean()))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
