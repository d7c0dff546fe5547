"""The collectors of a shadow model, registered only when a service runs one.

With no shadow model configured the service exports none of these series, so a dashboard
shows "no data" rather than counters at zero that look like a shadow nobody calls.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from servekit.metrics.beside import BesideModelMetrics
from servekit.metrics.names import DIFFERENCE_BUCKETS, SHADOW_SKIP_REASONS, MetricNames


class ShadowMetrics(BesideModelMetrics):
    """How a shadow model's predictions compare with the served model's, on the same requests."""

    def __init__(self, names: MetricNames, registry: CollectorRegistry) -> None:
        super().__init__(names.shadow_model_info, "shadow", registry)
        self.predictions = Counter(
            names.shadow_predictions_total,
            "Instances scored by both models, by the served model's outcome and the shadow model's; "
            'agree="true" when they are the same.',
            ["outcome", "shadow_outcome", "agree"],
            registry=registry,
        )
        self.score_difference = Histogram(
            names.shadow_score_difference,
            "Per instance, the largest |served - shadow| difference of the scores (probabilities, or "
            "the regressor's prediction in its unit).",
            buckets=DIFFERENCE_BUCKETS,
            registry=registry,
        )
        self.skipped = Counter(
            names.shadow_skipped_total,
            "Sampled instances the shadow model did not score, by reason: queue_full (it fell behind), "
            "not_ready (not loaded yet), same_model (it is the served version), canary (the canary answered "
            "them; the shadow is compared with the stable model only), failed (it raised).",
            ["reason"],
            registry=registry,
        )
        # Every reason from the start, so rate() is 0 rather than absent until the first skip.
        self._skipped = {reason: self.skipped.labels(reason=reason) for reason in SHADOW_SKIP_REASONS}
        self._compared: dict[tuple[str, str], Counter] = {}

    def count_skipped(self, reason: str, instances: int) -> None:
        self._skipped[reason].inc(instances)

    def count_compared(self, outcome: str, shadow_outcome: str, instances: int = 1) -> None:
        key = (outcome, shadow_outcome)
        child = self._compared.get(key)
        if child is None:
            agree = "true" if outcome == shadow_outcome else "false"
            child = self._compared[key] = self.predictions.labels(
                outcome=outcome, shadow_outcome=shadow_outcome, agree=agree
            )
        child.inc(instances)
