"""The verdicts on a reading: a canary worse than the stable model (by the measures of the
``CanaryFailing``, ``CanarySlow`` and ``CanaryStopped`` alerts), one that no longer answers its
share, or one that answered too little to be judged."""

from __future__ import annotations

import math
from dataclasses import dataclass

from servekit.metrics.names import CANARY, CANARY_FAILURE_RATIO, CANARY_LATENCY_FACTOR, STABLE
from servekit.rollout.readings import Reading


@dataclass(frozen=True)
class Criteria:
    """When a canary is worse than the stable model, and when there is enough traffic to tell."""

    max_failure_ratio: float = CANARY_FAILURE_RATIO
    latency_factor: float = CANARY_LATENCY_FACTOR
    min_requests: int = 100


#: How unlikely an interval without one canary request must be, at the share the canary has
#: answered so far, to be taken as the canary no longer answering: a small share on light traffic
#: misses a whole interval by chance (5 % of 20 requests: 36 % of the time).
NO_CANARY_CHANCE = 0.001


def problem(reading: Reading, criteria: Criteria) -> str | None:
    """Why the canary must be rolled back now; None while it is not worse."""
    if reading.stopped_pods > 0:
        return f"{reading.stopped_pods:.0f} pod(s) stopped the canary after too many failures"
    if reading.requests[CANARY] < criteria.min_requests:
        return None  # too few to tell a bad model from bad luck
    canary, stable = reading.failure_ratio(CANARY), reading.failure_ratio(STABLE)
    if canary > criteria.max_failure_ratio and canary > 2 * stable:
        return (
            f"{canary:.2%} of the canary's requests failed (limit {criteria.max_failure_ratio:.2%}; "
            f"stable {stable:.2%})"
        )
    canary_p95, stable_p95 = reading.p95_seconds[CANARY], reading.p95_seconds[STABLE]
    if canary_p95 is not None and stable_p95 and canary_p95 > criteria.latency_factor * stable_p95:
        return (
            f"the canary's p95 model time {canary_p95 * 1000:.2f} ms is over {criteria.latency_factor:g}x "
            f"the stable model's {stable_p95 * 1000:.2f} ms"
        )
    return None


def verdict(reading: Reading, criteria: Criteria) -> str | None:
    """After the last reading: why it may not be promoted (None: it may)."""
    found = problem(reading, criteria)
    if found:
        return found
    if reading.requests[CANARY] < criteria.min_requests:
        never = (
            f"; {reading.not_ready_fallbacks:,.0f} requests routed to it were answered by the stable "
            "model because it did not load"
            if reading.not_ready_fallbacks
            else ""
        )
        return (
            f"the canary answered {reading.requests[CANARY]:,.0f} requests, fewer than the "
            f"{criteria.min_requests} needed to judge it{never}"
        )
    return None


def starved(interval: Reading, total: Reading) -> str | None:
    """Why ``interval`` (since the previous reading) shows the canary no longer answering: the
    router drew the stable model for requests, the canary for none, and at the share the canary
    was drawn until then (``total``, since the start) that is too unlikely to be chance. None
    otherwise, and while the canary was never drawn (its share is unknown; the verdict judges that).

    On random draws alone (``Reading.draws``): a prober sending ``X-Model-Variant: stable``, a
    client pinned to the champion's version or keyed traffic whose keys hash to stable all reach
    the stable model whatever the canary's share, and would stop a healthy rollout in a quiet
    interval."""
    if interval.draws is None or total.draws is None:
        return None
    canary, stable = interval.draws[CANARY], interval.draws[STABLE]
    # Under 1: increase() extrapolates each window to its ends, so a counter that stood still
    # can read a fraction of a request over one window more than over the other.
    if canary >= 1 or stable < 1:
        return None
    drawn = total.draws[CANARY] + total.draws[STABLE]
    share = total.draws[CANARY] / drawn if drawn else 0.0
    if share <= 0 or share >= 1 or stable * math.log1p(-share) > math.log(NO_CANARY_CHANCE):
        return None
    return (
        f"the router drew the canary for no request and the stable model for {stable:,.0f}; at the "
        f"{share:.1%} share it was drawn until then, about "
        f"{stable * share / (1 - share):,.0f} would have been its own: it no longer answers its share "
        "(was its alias deleted, or its share set to 0?)"
    )
