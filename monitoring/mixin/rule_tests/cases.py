"""What every promtool unit test of the rules is made of: a case (series, an alert, when it fires
and when it is quiet), the series written as promtool reads them, and the tests of a list of cases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from mixin.alerts import Alert
from mixin.cluster import JOB
from servekit.metrics.names import MetricNames

#: Input and evaluation interval of the test file of the alerts over a day (daily_test_file).
DAILY_INTERVAL_SECONDS = 900
DAILY_INTERVAL = f"{DAILY_INTERVAL_SECONDS // 60}m"


@dataclass
class Case:
    """One alert_rule_test: the series, when to evaluate, and the alerts expected then."""

    alert: str
    description: str
    series: dict[str, str]
    eval_time: str
    expected: list[dict[str, str]] = field(default_factory=list)
    #: What the annotations' other template actions render to (``{{ $value | ... }}``).
    rendered: dict[str, str] = field(default_factory=dict)


def fires_and_quiet(
    alert: str,
    service: str,
    at: str,
    firing: tuple[str, dict[str, str]],
    quiet: tuple[str, dict[str, str]],
) -> list[Case]:
    """The two cases most alerts need: series that fire it (for the service), and series that do not."""
    (fires_when, fires_on), (quiet_when, quiet_on) = firing, quiet
    expected = [{"alertname": alert, "service": service}]
    return [
        Case(alert, f"fires: {fires_when}", fires_on, at, expected),
        Case(alert, f"quiet: {quiet_when}", quiet_on, at),
    ]


def render(template: str, actions: Mapping[str, str]) -> str:
    """``template`` with each template action (``{{ $labels.x }}``, ...) replaced by what it renders to."""
    for action, text in actions.items():
        template = template.replace(action, text)
    return template


def label_actions(labels: Mapping[str, str]) -> dict[str, str]:
    """What each label's template actions render to: ``{{ $labels.x }}`` and, in a link,
    ``{{ $labels.x | urlquery }}`` (Go's url.QueryEscape, which Prometheus's urlquery is)."""
    return {
        **{f"{{{{ $labels.{k} }}}}": v for k, v in labels.items()},
        **{f"{{{{ $labels.{k} | urlquery }}}}": quote_plus(v) for k, v in labels.items()},
    }


def series_str(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def answered(n: MetricNames, labels: dict[str, str], values: str) -> dict[str, str]:
    """The series of prediction requests the model answered (200) at ``labels`` (a target and an
    endpoint): their count by status, and the latency histogram's count, which times each of them
    (``servekit.metrics.collectors.count_request``) and is the availability SLI's events."""
    return {
        series_str(n.requests_total, {**labels, "method": "POST", "status": "200"}): values,
        series_str(f"{n.prediction_latency_seconds}_count", labels): values,
    }


def model_info(n: MetricNames, target: dict[str, str]) -> str:
    """The model_info series of version 7 (run abc) on ``target``: the version the model's alerts name."""
    return series_str(n.model_info, {**target, "version": "7", "run_id": "abc"})


#: The namespace of the rule tests' objects and pods: the alerts whose kubectl hints name it keep it.
NAMESPACE = "ml-platform"


#: The labels of a kube-state-metrics series, as Prometheus keeps them (honor_labels) for an object of
#: the service's namespace.
CLUSTER_TARGET = {"job": JOB, "instance": "kube-state-metrics:8080", "namespace": NAMESPACE}


def alert_tests(rules: list[Alert], cases: list[Case], interval: str = "1m") -> list[dict[str, Any]]:
    """promtool's alert_rule_test of each case, its expected labels and annotations rendered."""
    by_name = {a.name: a for a in rules}
    tests = []
    for case in cases:
        alert = by_name[case.alert]
        expected = []
        for labels in case.expected:
            rule_labels = {k: v for k, v in labels.items() if k != "alertname"}
            actions = {**label_actions(rule_labels), **case.rendered}
            expected.append(
                {
                    "exp_labels": {**rule_labels, "severity": alert.severity},
                    "exp_annotations": {k: render(v, actions) for k, v in alert.annotations().items()},
                }
            )
        tests.append(
            {
                "name": f"{case.alert}: {case.description}",
                "interval": interval,
                "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
                "alert_rule_test": [
                    {"eval_time": case.eval_time, "alertname": case.alert, "exp_alerts": expected}
                ],
            }
        )
    return tests
