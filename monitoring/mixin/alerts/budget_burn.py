"""The SLO budget burns: availability (prediction 5xx) and latency (slow prediction requests), each
fast and slow, and what the availability alerts' descriptions say of their 5xx, kind by kind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from mixin.alerts.alert import Alert
from mixin.common import (
    AVAILABILITY_EVENTS,
    FAST_BURN,
    MIN_BAD_REQUESTS,
    SLOW_BURN,
    le,
    number,
    objectives,
    regex,
    sel,
    spelled,
)
from mixin.recorded import ERROR_RATIO, SLOW_RATIO
from servekit.metrics.names import PREDICTION_ENDPOINTS, MetricNames


def burn_expr(
    template: str,
    service: str,
    budget: float,
    tiers: Sequence[tuple[str, str, float]],
    bad_requests: Callable[[str], str],
) -> str:
    """Each tier's ratio over both its windows, and at least ``MIN_BAD_REQUESTS`` bad requests
    (``bad_requests(window)``) over its long window.

    At low traffic a ratio is made of a few requests: under 1 / (14.4 x budget) an hour (69 at
    99.9 %), one 5xx was a fast burn, and a quiet night or a staging service paged on each one.
    At any traffic that spends the budget in earnest, ten come within minutes.
    """
    parts = []
    for long, short, factor in tiers:
        threshold = number(factor * budget)
        parts.append(
            f"(\n  {sel(template.format(w=long), service)} > {threshold}\n  and\n"
            f"  {sel(template.format(w=short), service)} > {threshold}\n  and on ()\n"
            f"  {bad_requests(long)} >= {MIN_BAD_REQUESTS}\n)"
        )
    return "\nor\n".join(parts)


def burn_text(tiers: Sequence[tuple[str, str, float]]) -> str:
    return " or ".join(f"{factor:g}x over {long} and {short}" for long, short, factor in tiers)


def prediction_errors(n: MetricNames, window: str) -> str:
    """The 5xx answered to prediction requests over ``window``: what the availability SLO counts."""
    predict = f'endpoint=~"{regex(PREDICTION_ENDPOINTS)}"'
    return f'sum(increase({n.requests_total}{{{predict},status=~"5.."}}[{window}]))'


def share_of_errors(n: MetricNames, errors: str, window: str) -> str:
    """A template action: the share of the prediction 5xx over ``window`` that ``errors`` (a counter
    selector) grew by, as a percentage, queried when the alert fires (``none`` with no 5xx at all).

    The availability alerts name their 5xx by kind with it: a 503 of a full replica, a 500 and a
    503 of a model not ready call for different remedies, and the counters tell them apart.
    """
    ratio = f"(sum(increase({errors}[{window}])) or vector(0)) / {prediction_errors(n, window)}"
    return (
        f"{{{{ with query `{ratio}` }}}}"
        "{{ . | first | value | humanizePercentage }}{{ else }}none{{ end }}"
    )


def error_kind_actions(n: MetricNames, window: str) -> tuple[str, str]:
    """The template actions of the shares of the prediction 5xx over ``window`` that were refused by
    a full replica (503 overloaded, the shed counter), and that were 500.

    The rest are 503 of kinds no counter tells apart: a replica with no model ready, a request a
    stopping pod cut (shutting_down), whose count is often never scraped at all, and a request that
    asked for a canary not loaded."""
    predict = f'endpoint=~"{regex(PREDICTION_ENDPOINTS)}"'
    return (
        share_of_errors(n, n.prediction_requests_shed_total, window),
        share_of_errors(n, f'{n.requests_total}{{{predict},status="500"}}', window),
    )


def error_kinds_now_and_long(n: MetricNames, long: str, short: str) -> str:
    """The template that gives the shares of :func:`error_kind_actions` over a burn tier's
    ``short`` window (what fails now) and its ``long`` one (what the burn is made of), or says there
    were no 5xx over the short one.

    The long window alone misled the on-call: 20 minutes after a burst of refusals, a page fired by
    the 500s of a model that no longer loaded still said its hour's 5xx were mostly refusals."""
    shed, failed = error_kind_actions(n, short)
    shed_long, failed_long = error_kind_actions(n, long)
    now, over_long = spelled(short), spelled(long).removeprefix("1 ")
    return (
        f"{{{{ with query `{prediction_errors(n, short)} > 0` }}}}"
        f"Of its prediction 5xx over the last {now}, {shed} were 503 overloaded and {failed} were 500 "
        f"(over the last {over_long}: {shed_long} and {failed_long})."
        f"{{{{ else }}}}It answered no prediction 5xx over the last {now}; of those over the last "
        f"{over_long}, {shed_long} were 503 overloaded and {failed_long} were 500.{{{{ end }}}}"
    )


def errors_by_kind(n: MetricNames, long: str, short: str) -> str:
    """What the availability alerts' descriptions say of their 5xx, kind by kind."""
    return (
        f"{error_kinds_now_and_long(n, long, short)} 503 overloaded: refused at once by a full replica "
        "(<SVC>_MAX_CONCURRENT_REQUESTS or <SVC>_MAX_CONCURRENT_INSTANCES; Retry-After: 1), a call for "
        "capacity (PredictionsShed: the autoscaler, the client sending large explained batches), not "
        "for a rollback. 500: an exception in the model or the app (the pod log, under the request "
        "id). The rest are 503: model_not_ready, a replica with no model loaded (ModelNotReady fires "
        "too; /readyz says why), shutting_down, requests a stopping pod cut when its shutdown grace ran "
        "out (no ModelNotReady: the access log's '503 in N ms: shutting_down' lines; requests that "
        "outlive the grace), or canary_not_ready, requests asking for a canary not loaded."
    )


def budget_burn_alerts(service: str) -> list[Alert]:
    """AvailabilityBudgetBurn and LatencyBudgetBurn, Fast (critical) then Slow (warning)."""
    n, o = MetricNames(service), objectives(service)
    s = service
    found: list[Alert] = []
    avail_budget = 1 - o.availability
    latency_budget = 1 - o.latency
    ms = f"{o.latency_threshold * 1000:g} ms"
    slo = f'endpoint="{o.latency_endpoint}"'
    hist = n.prediction_latency_seconds

    def slow(w: str) -> str:
        return (
            f"(sum(increase({hist}_count{{{slo}}}[{w}]))\n  - "
            f'sum(increase({hist}_bucket{{{slo},le="{le(o.latency_threshold)}"}}[{w}])))'
        )

    for speed, (severity, tiers, duration) in (("Fast", FAST_BURN), ("Slow", SLOW_BURN)):
        found.append(
            Alert(
                f"AvailabilityBudgetBurn{speed}",
                burn_expr(ERROR_RATIO, service, avail_budget, tiers, partial(prediction_errors, n)),
                severity,
                f"{s} is burning its availability error budget {speed.lower()}",
                f"{s} answers 5xx to prediction requests at a rate that burns the "
                f"{o.availability:.1%} availability SLO budget {burn_text(tiers)}. "
                f"The SLI counts {AVAILABILITY_EVENTS}. " + errors_by_kind(n, *tiers[0][:2]),
                duration,
            )
        )
        found.append(
            Alert(
                f"LatencyBudgetBurn{speed}",
                burn_expr(SLOW_RATIO, service, latency_budget, tiers, slow),
                severity,
                f"{s} is burning its latency error budget {speed.lower()}",
                f"More of the {o.latency_endpoint} requests {s} answered (or whose client gave up "
                f"waiting) take over {ms} than the {o.latency:.0%} latency SLO allows: budget burn "
                f"{burn_text(tiers)}. Refusals (4xx) and 5xx are not counted.",
                duration,
            )
        )
    return found
