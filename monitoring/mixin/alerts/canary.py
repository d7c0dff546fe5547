"""The canary rollout: a canary failing or slower than the stable model, stopped by the pods, or not
loaded."""

from __future__ import annotations

from mixin.alerts.alert import POD, Alert
from mixin.common import number, objectives, sel
from mixin.recorded import VARIANT_FAILURE_RATIO, VARIANT_LATENCY_P95, VARIANT_REQUESTS_RATE
from servekit.metrics.names import CANARY, STABLE, MetricNames


def canary_alerts(service: str) -> list[Alert]:
    """CanaryFailing, CanarySlow, CanaryStopped and CanaryRefreshFailing."""
    n, o = MetricNames(service), objectives(service)
    s = service

    def canary(record: str) -> str:
        return sel(record, service, f'variant="{CANARY}"')

    def stable(record: str) -> str:
        return sel(record, service, f'variant="{STABLE}"')

    return [
        Alert(
            "CanaryFailing",
            # A stable model that answered nothing has a ratio of NaN, which no comparison holds:
            # with the canary at 100 %, it is held to its own threshold alone.
            f"(\n  {canary(VARIANT_FAILURE_RATIO)}\n  > ignoring (variant)\n"
            f"  2 * ({stable(VARIANT_FAILURE_RATIO)} >= 0)\n  or\n"
            f"  max without (variant) ({canary(VARIANT_FAILURE_RATIO)}\n  unless ignoring (variant)\n"
            f"  ({stable(VARIANT_FAILURE_RATIO)} >= 0))\n)\n"
            f"and on (service)\n{canary(VARIANT_FAILURE_RATIO)} > {number(o.canary_failure_ratio)}\n"
            f"and on (service)\n{canary(VARIANT_REQUESTS_RATE)} * 300 >= {o.canary_min_requests}",
            "warning",
            f"{s}'s canary fails more requests than its stable model",
            f"For 5 minutes more than {o.canary_failure_ratio:.0%} of the requests {s}'s canary "
            "answered failed (500), over twice the stable model's share (or the stable model answered "
            "none: a canary at 100 %). Roll it back with "
            f"`mlp canary {s} --end`; the pod log has the cause under each request id.",
            "5m",
        ),
        Alert(
            "CanarySlow",
            f"{canary(VARIANT_LATENCY_P95)}\n> ignoring (variant)\n"
            f"{number(o.canary_latency_factor)} * {stable(VARIANT_LATENCY_P95)}\n"
            f"and on (service)\n{canary(VARIANT_REQUESTS_RATE)} * 300 >= {o.canary_min_requests}",
            "warning",
            f"{s}'s canary answers more slowly than its stable model",
            f"For 10 minutes the p95 time {s}'s canary spent predicting a request has been over "
            f"{o.canary_latency_factor:g}x the stable model's, on the same pods. Promoting it would slow "
            f"every request; roll it back with `mlp canary {s} --end` or accept the cost knowingly.",
            "10m",
        ),
        Alert(
            "CanaryStopped",
            f"max by (service) ({n.canary_stopped}) == 1",
            "warning",
            f"{s}'s canary was stopped by the pods after too many failures",
            f"At least one pod of {s} stopped sending its canary any traffic, because more of the "
            "canary's latest requests failed than <SVC>_CANARY_STOP_FAILURE_RATIO allows; the stable "
            f"model answers its share. End the rollout with `mlp canary {s} --end`, or fix the "
            "version and point the canary alias at the fix.",
            "1m",
        ),
        Alert(
            "CanaryRefreshFailing",
            # Not joined on canary_model_info: a pod with no canary loaded (its alias was deleted,
            # then set to a version that does not load, or it started while the alias named one) has
            # none, and must page all the same.
            f"{n.canary_refresh_failing} == 1",
            "warning",
            f"{s} at {{{{ $labels.instance }}}} cannot load the version its canary alias names",
            f"For 10 minutes {s} at {{{{ $labels.instance }}}} has failed to load the version the canary "
            "alias names (or to read the registry), or has loaded no canary at all since it started: "
            "it answers the canary's share with the canary version it had, which `mlp canary` or "
            "`mlp rollout` meant to replace (canary_model_info names it), or with the stable model if "
            "it had none (a pod started while the alias names a version that does not load). "
            "Restarting the pod does not clear it: a new pod tries the same version from its start, "
            "fails the same way and fires in its turn. "
            "`GET /model` on the pod says why under canary.refresh.error (canary.error where no "
            "canary has loaded), and so does its log ('canary model refresh failed'; 'canary model "
            "load failed' where none has).",
            "10m",
            opens_on=(POD,),
        ),
    ]
