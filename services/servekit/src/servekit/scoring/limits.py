"""``mlp score --max-rejected``: how many rejected rows a run may have and still succeed.

A file scored every month keeps a few rows the API refuses (ChicagoTaxi's real trips without a
distance, a customer aged 17), and each keeps its place with its problem in the ``error`` column.
A scheduled run must not fail for those, yet must fail when an upstream change (a renamed category,
a column of text where numbers were) makes most rows unscorable. The limit is a count (``100``) or
a share of the rows read (``0.5%``), as BigQuery's ``max_bad_records`` and Spark's bad-record
thresholds let a load tolerate a known few.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RejectionLimit:
    """At most ``count`` rejected rows, or at most ``percent`` of the rows read (one of the two)."""

    count: int | None = 0
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> RejectionLimit:
        """``"12"`` (rows) or ``"0.5%"`` (of the rows read); ValueError names what is wrong."""
        stripped = text.strip()
        if stripped.endswith("%"):
            number = stripped[:-1].strip()
            try:
                percent = float(number)
            except ValueError:
                raise ValueError(f"{text!r}: {number!r} is not a number") from None
            if not math.isfinite(percent) or not 0 <= percent <= 100:
                raise ValueError(f"{text!r} is not a percentage from 0% to 100%")
            return cls(count=None, percent=percent)
        if not stripped.isdigit():
            raise ValueError(f"{text!r} is neither a number of rows (12) nor a share of them (0.5%)")
        return cls(count=int(stripped))

    def allowed(self, rows: int) -> int:
        """How many of ``rows`` may be rejected: a share is rounded down, so 1% of 99 rows is none."""
        if self.percent is None:
            return self.count or 0
        # A tolerance of float rounding: 1% of 300 rows is 3, not 2.999....
        return math.floor(rows * self.percent / 100 + 1e-9)

    def exceeded(self, rejected: int, rows: int) -> bool:
        return rejected > self.allowed(rows)

    def __str__(self) -> str:
        if self.percent is None:
            return f"{self.count:,} row{'' if self.count == 1 else 's'}"
        return f"{self.percent:g}% of the rows"
