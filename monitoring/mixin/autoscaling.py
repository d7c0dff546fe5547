"""prometheus-adapter's rules for the HorizontalPodAutoscalers (k8s/components/autoscale-on-concurrency)."""

from __future__ import annotations

from typing import Any

from mixin.recorded import CONCURRENCY

#: Where k8s/components/autoscale-on-concurrency reads the adapter's rules (relative to monitoring/:
#: kustomize loads a component's files from inside its own directory only).
ADAPTER_CONFIG = "../k8s/components/autoscale-on-concurrency/adapter-config.yaml"
#: The custom metric the HorizontalPodAutoscalers read through prometheus-adapter.
AUTOSCALING_METRIC = "prediction_concurrency"
#: Per-pod prediction concurrency the HorizontalPodAutoscalers keep (README, Autoscaling): a
#: single-record load reaches it at about half of what one worker answers, and stops at 0.8.
AUTOSCALING_TARGET_CONCURRENCY = 0.5


def adapter_config() -> dict[str, Any]:
    """prometheus-adapter's rules: the recorded CONCURRENCY, as the pods metric AUTOSCALING_METRIC.

    Every service records it under one name (its ``service`` label tells them apart), so one
    rule serves them all; the HorizontalPodAutoscaler's pod selector picks a service's pods.
    """
    return {
        "rules": [
            {
                "seriesQuery": f'{CONCURRENCY}{{namespace!="",pod!=""}}',
                "resources": {
                    "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
                },
                "name": {"matches": f"^{CONCURRENCY}$", "as": AUTOSCALING_METRIC},
                "metricsQuery": "max by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})",
            }
        ]
    }
