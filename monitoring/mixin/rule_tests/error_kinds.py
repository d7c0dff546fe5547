"""What the availability alerts' shares of 5xx by kind render to, in the cases that fire them."""

from __future__ import annotations

from mixin.alerts.budget_burn import error_kinds_now_and_long
from mixin.common import spelled
from servekit.metrics.names import MetricNames

Shares = tuple[str, str]
Tier = tuple[str, str, float]


def error_kinds(service: str, tier: Tier, now: Shares | None, long: Shares) -> dict[str, str]:
    """What the availability alerts' shares of 5xx by kind render to: (overloaded, 500) over the
    burn ``tier``'s short window (``now``; None for no 5xx in it) and over its long one."""
    long_window, short_window, _ = tier
    template = error_kinds_now_and_long(MetricNames(service), long_window, short_window)
    over_now, over_long = spelled(short_window), spelled(long_window).removeprefix("1 ")
    text = (
        f"It answered no prediction 5xx over the last {over_now}; of those over the last {over_long}, "
        f"{long[0]} were 503 overloaded and {long[1]} were 500."
        if now is None
        else f"Of its prediction 5xx over the last {over_now}, {now[0]} were 503 overloaded and {now[1]} "
        f"were 500 (over the last {over_long}: {long[0]} and {long[1]})."
    )
    return {template: text}


def all_failed(service: str, tier: Tier) -> dict[str, str]:
    """What the availability alerts' shares of 5xx by kind render to when every 5xx is a 500."""
    return error_kinds(service, tier, ("0%", "100%"), ("0%", "100%"))
