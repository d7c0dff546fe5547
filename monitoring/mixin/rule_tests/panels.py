"""The tests of the dashboards' panel queries that recording rules do not cover: each query,
evaluated by promtool on given series, gives the value the panel is meant to show."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mixin.cluster import (
    AUTOSCALER_CONDITION,
    AUTOSCALER_CONDITIONS,
    AUTOSCALER_DESIRED,
    AUTOSCALER_MAX,
    AUTOSCALER_MIN,
    CRONJOB_LAST_SCHEDULE,
    CRONJOB_LAST_SUCCESS,
    CRONJOB_NEXT_SCHEDULE,
    DEPLOYMENT_AVAILABLE,
    OVERDUE_PERIODS,
    autoscaler_condition_queries,
    replica_queries,
    scheduled_run_queries,
)
from mixin.common import canary_share_queries, live_quality_queries, shadow_comparison_queries
from mixin.grafana import VARIABLE_ALL_VALUES
from mixin.rule_tests.cases import CLUSTER_TARGET, series_str
from mixin.rule_tests.workloads import evaluation_job_series
from servekit.metrics.names import CANARY, LIVE_VERDICTS, STABLE, MetricNames


def replica_panel_tests(service: str) -> list[dict[str, Any]]:
    """The replica panel's queries over kube-state-metrics' series (no live test has them: no cluster).

    Beside another service's objects, so a query that missed its service's name would show.
    """
    # Maximum, desired, available and minimum, in the order of the panel's queries.
    # The other service's are all higher: a query that ignored the name would read them.
    own, other = (10, 6, 5, 2), (12, 8, 7, 4)
    series: dict[str, str] = {}
    for name, (maximum, desired, available, minimum) in ((service, own), (f"other-{service}", other)):
        hpa = {**CLUSTER_TARGET, "horizontalpodautoscaler": name}
        series[series_str(AUTOSCALER_MAX, hpa)] = f"{maximum}x10"
        series[series_str(AUTOSCALER_DESIRED, hpa)] = f"{desired}x10"
        series[series_str(DEPLOYMENT_AVAILABLE, {**CLUSTER_TARGET, "deployment": name})] = f"{available}x10"
        series[series_str(AUTOSCALER_MIN, hpa)] = f"{minimum}x10"
    return panel_tests("replica panel", replica_queries(service), series, own)


def autoscaler_condition_panel_tests(service: str) -> list[dict[str, Any]]:
    """The autoscaler conditions panel over kube-state-metrics' series: a series per condition and
    status, 1 on the status held. Beside another service's autoscaler, whose conditions are the
    opposite, so a query that missed its service's name, or the status, would show."""
    own = {"ScalingActive": 1, "AbleToScale": 1, "ScalingLimited": 0}
    series: dict[str, str] = {}
    for name, held in ((service, own), (f"other-{service}", {c: 1 - v for c, v in own.items()})):
        hpa = {**CLUSTER_TARGET, "horizontalpodautoscaler": name}
        for condition, value in held.items():
            for status, sample in (("true", value), ("false", 1 - value)):
                labels = {**hpa, "condition": condition, "status": status}
                series[series_str(AUTOSCALER_CONDITION, labels)] = f"{sample}x10"
    values = [own[condition] for condition in AUTOSCALER_CONDITIONS]
    return panel_tests("autoscaler conditions panel", autoscaler_condition_queries(service), series, values)


def scheduled_run_panel_tests(
    service: str, name_of: Callable[[str], str], what: str, period: int
) -> list[dict[str, Any]]:
    """A CronJob's panels (the live evaluation's, the batch scoring's): an hour since the last success
    (at 5 minutes, a success at -55 minutes), overdue past OVERDUE_PERIODS of its ``period``, and the
    newest run failed, beside another service's CronJob that did the opposite on an hourly schedule."""
    series: dict[str, str] = {}
    for name, success, runs in (
        (service, -3300, [(100, False), (200, True)]),
        (f"other-{service}", 0, [(100, True), (300, False)]),
    ):
        cronjob = {**CLUSTER_TARGET, "cronjob": name_of(name)}
        series[series_str(CRONJOB_LAST_SUCCESS, cronjob)] = f"{success}x10"
        every = period if name == service else 3600
        series[series_str(CRONJOB_LAST_SCHEDULE, cronjob)] = "100x10"
        series[series_str(CRONJOB_NEXT_SCHEDULE, cronjob)] = f"{100 + every}x10"
        series.update(evaluation_job_series(name_of(name), runs))
    overdue_hours = OVERDUE_PERIODS * period / 3600
    return panel_tests(
        f"{what} panels", scheduled_run_queries(name_of(service)), series, [1, overdue_hours, 1]
    )


def live_quality_panel_tests(service: str) -> list[dict[str, Any]]:
    """The live quality panels, over two pods: one serves version 3, evaluated 2 hours before (worse,
    on 400 answers); the other version 4, never evaluated. Each figure is its own version's, and the
    verdict query gives the verdict held, not the three that are 0."""
    n = MetricNames(service)
    series: dict[str, str] = {}
    for instance, version, figures in (
        ("10.0.0.1:8080", "3", {("held_out", "estimate"): 0.86, ("live", "estimate"): 0.8}),
        ("10.0.0.2:8080", "4", {("held_out", "estimate"): 0.87}),
    ):
        target = {"instance": instance, "job": "model-servers", "service": service}
        series[series_str(n.model_info, {**target, "version": version, "run_id": f"run-{version}"})] = "1x10"
        for (split, bound), value in figures.items():
            labels = {**target, "split": split, "metric": "roc_auc", "bound": bound}
            series[series_str(n.model_quality, labels)] = f"{value}x10"
        if version == "3":
            for verdict in LIVE_VERDICTS:
                series[series_str(n.model_live_verdict, {**target, "verdict": verdict})] = (
                    f"{int(verdict == 'worse')}x10"
                )
            series[series_str(n.model_live_answers, target)] = "400x10"
            series[series_str(n.model_live_groups_worse, target)] = "1x10"
            # Ended 6,900 s before the start: 2 hours before the cases' evaluation, at 5 minutes.
            series[series_str(n.model_live_evaluation_timestamp_seconds, target)] = "-6900x10"
    expected: list[list[tuple[dict[str, str], float]]] = [
        [({"version": "3", "split": "held_out", "bound": "estimate"}, 0.86),
         ({"version": "3", "split": "live", "bound": "estimate"}, 0.8),
         ({"version": "4", "split": "held_out", "bound": "estimate"}, 0.87)],
        [({"version": "3", "verdict": "worse"}, 1)],
        [({"version": "3"}, 400)],
        [({"version": "3"}, 1)],
        [({"version": "3"}, 2)],
    ]  # fmt: skip
    return panel_sample_tests("live quality panels", live_quality_queries(service), series, expected)


def shadow_comparison_panel_tests(service: str) -> list[dict[str, Any]]:
    """The shadow comparison panel, over two pods shadowing with version 5 against version 4: one
    exports its comparison (better, by 0.03, on 900 answers), the other not yet. The figures are
    the shadow's version's (not the served one's), and the verdict query gives the verdict held."""
    n = MetricNames(service)
    series: dict[str, str] = {}
    for instance, compared in (("10.0.0.1:8080", True), ("10.0.0.2:8080", False)):
        target = {"instance": instance, "job": "model-servers", "service": service}
        series[series_str(n.model_info, {**target, "version": "4", "run_id": "run-4"})] = "1x10"
        series[series_str(n.shadow_model_info, {**target, "version": "5", "run_id": "run-5"})] = "1x10"
        if not compared:
            continue
        for bound, value in (("estimate", 0.03), ("ci_low", 0.01), ("ci_high", 0.05)):
            labels = {**target, "metric": "roc_auc", "bound": bound, "against": "4"}
            series[series_str(n.shadow_live_difference, labels)] = f"{value}x10"
        for verdict in LIVE_VERDICTS:
            series[series_str(n.shadow_live_verdict, {**target, "verdict": verdict})] = (
                f"{int(verdict == 'better')}x10"
            )
        series[series_str(n.shadow_live_answers, target)] = "900x10"
        series[series_str(n.shadow_live_groups_worse, target)] = "1x10"
    expected: list[list[tuple[dict[str, str], float]]] = [
        [({"version": "5", "against": "4", "bound": "ci_high"}, 0.05),
         ({"version": "5", "against": "4", "bound": "ci_low"}, 0.01),
         ({"version": "5", "against": "4", "bound": "estimate"}, 0.03)],
        [({"version": "5", "verdict": "better"}, 1)],
        [({"version": "5"}, 900)],
        [({"version": "5"}, 1)],
    ]  # fmt: skip
    return panel_sample_tests("shadow comparison panel", shadow_comparison_queries(service), series, expected)


def canary_share_panel_tests(service: str) -> list[dict[str, Any]]:
    """The canary share panel over two pods, one set to 20 % and one not refreshed yet (30 %), each
    answering 100 requests a minute: 50 drawn at random (10 for the canary), 15 asking for the canary
    (X-Model-Variant) and 35 keyed or pinned to the stable model. The drawn share is the 20 % set
    on the pods whose draws they are; the answered share, 25 %, is not (a probe found 33 % answered
    of 20 % set, which the panel used to show as the canary's share)."""
    n = MetricNames(service)
    series: dict[str, str] = {}
    for instance, percent in (("10.0.0.1:8080", 20), ("10.0.0.2:8080", 30)):
        target = {"instance": instance, "job": "model-servers", "service": service}
        series[series_str(n.canary_traffic_percent, target)] = f"{percent}x10"
        for variant, drawn, answered in ((CANARY, 10, 10 + 15), (STABLE, 40, 40 + 35)):
            series[series_str(n.variant_draws_total, {**target, "variant": variant})] = f"0+{drawn}x10"
            for result, per_minute in (("ok", answered), ("failed", 0)):
                labels = {**target, "variant": variant, "result": result}
                series[series_str(n.variant_requests_total, labels)] = f"0+{per_minute}x10"
    expected: list[list[tuple[dict[str, str], float]]] = [[({}, 0.2)], [({}, 0.3)], [({}, 0.2)], [({}, 0.25)]]
    return panel_sample_tests("canary share panel", canary_share_queries(service), series, expected)


def panel_tests(
    panel: str, queries: Sequence[tuple[str, str]], series: dict[str, str], values: Sequence[float]
) -> list[dict[str, Any]]:
    """One promtool case per query of a panel (its expr and legend): over ``series`` (constant for
    10 minutes), the query gives one sample, of its value in ``values``."""
    return panel_sample_tests(panel, queries, series, [[({}, value)] for value in values])


def panel_sample_tests(
    panel: str,
    queries: Sequence[tuple[str, str]],
    series: dict[str, str],
    samples: Sequence[Sequence[tuple[dict[str, str], float]]],
) -> list[dict[str, Any]]:
    """One promtool case per query of a panel: over ``series`` (constant for 10 minutes), the query
    gives its ``samples``, each labels and value. The dashboard's ``$instance`` reads every pod."""
    return [
        {
            "name": f"{panel}: {legend}",
            "interval": "1m",
            "input_series": [{"series": k, "values": v} for k, v in series.items()],
            "promql_expr_test": [
                {
                    "expr": expr.replace("$instance", VARIABLE_ALL_VALUES["$instance"]),
                    "eval_time": "5m",
                    "exp_samples": [
                        {"labels": series_str("", labels), "value": value} for labels, value in found
                    ],
                }
            ],
        }
        for (expr, legend), found in zip(queries, samples, strict=True)
    ]
