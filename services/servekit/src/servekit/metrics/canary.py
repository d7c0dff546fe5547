"""The collectors of a canary rollout, registered only when a service runs a canary.

Both variants are counted the same way (requests by result, model latency, outcomes,
attributions and inputs outside the answering model's training range), so a dashboard and an
alert set the canary's failure ratio, latency, answers, what it weighs and where it extrapolates
beside the stable model's on the same pods at the same time. Without a canary none of these
series exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from servekit.metrics.beside import BesideModelMetrics
from servekit.metrics.collectors import count_attributions
from servekit.metrics.names import (
    CANARY_FALLBACK_REASONS,
    LATENCY_BUCKETS,
    VARIANT_RESULTS,
    VARIANTS,
    MetricNames,
)

if TYPE_CHECKING:
    from servekit.model import ServedModel


class CanaryMetrics(BesideModelMetrics):
    """Requests, model latency, outcomes, attributions and inputs outside the training range per
    variant, and the canary's version."""

    def __init__(self, names: MetricNames, registry: CollectorRegistry) -> None:
        super().__init__(names.canary_model_info, "canary", registry)
        self.requests = Counter(
            names.variant_requests_total,
            "Prediction requests by the model that answered them (stable or canary) and whether it "
            "answered (ok) or raised (failed, a 500).",
            ["variant", "result"],
            registry=registry,
        )
        self.draws = Counter(
            names.variant_draws_total,
            "Requests the router drew at random for each variant by the canary's share, while both "
            "could answer: no X-Model-Variant, no X-Routing-Key, no pinned version. A quiet canary is "
            "judged on these alone (mlp rollout): the others are not chance.",
            ["variant"],
            registry=registry,
        )
        self.latency = Histogram(
            names.variant_latency_seconds,
            "Seconds the answering model spent predicting (and explaining, when asked) a request, by "
            "variant; validation and transport are left out, as they do not depend on the model.",
            ["variant"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            names.variant_predictions_total,
            "Predictions by variant and outcome (class label; for the regressor a bucketed range).",
            ["variant", "outcome"],
            registry=registry,
        )
        self.explanations = Counter(
            names.variant_explanations_total,
            "Explained predictions (instances) by variant.",
            ["variant"],
            registry=registry,
        )
        self.attribution = Counter(
            names.variant_attribution_abs_sum_total,
            "Sum of |SHAP contribution| per input feature over explained predictions, by variant: "
            "divided by variant_explanations_total, what each model weighs on the same traffic.",
            ["variant", "feature"],
            registry=registry,
        )
        self.inputs_outside_training = Counter(
            names.variant_inputs_outside_training_total,
            "Answers by variant with this input outside the range of the answering model's training "
            "rows (once per answer and input; each answer lists them in outside_training): a canary "
            "trained on other rows extrapolates on other inputs than the stable model.",
            ["variant", "feature"],
            registry=registry,
        )
        self.fallbacks = Counter(
            names.canary_fallbacks_total,
            "Requests routed to the canary that the stable model answered, by reason: not_ready (the "
            "canary is not loaded, or would not load), stopped (this pod stopped its traffic after "
            "too many failures).",
            ["reason"],
            registry=registry,
        )
        self.stopped = Gauge(
            names.canary_stopped,
            "1 while this pod sends the canary none of its share, because too many of its latest "
            "requests failed; 0 while it gets its share.",
            registry=registry,
        )
        self.traffic_percent = Gauge(
            names.canary_traffic_percent,
            "The share of prediction requests, in percent, this pod draws for the canary: the "
            "registry's canary.traffic_percent tag (mlp canary --percent, mlp rollout --ramp), or "
            "<SVC>_CANARY_TRAFFIC_PERCENT without one. Pods that disagree have not all refreshed.",
            registry=registry,
        )
        self.refresh_failing = Gauge(
            names.canary_refresh_failing,
            "1 while this pod cannot follow the canary's alias: the version it names does not load "
            "(or the registry cannot be read), and the canary's share is answered by the canary "
            "version loaded before, or by the stable model if none was (a pod whose first canary "
            "load fails is 1 from that failure until one loads); 0 once it follows again, and "
            "while the alias names no version.",
            registry=registry,
        )
        self._fallbacks = {reason: self.fallbacks.labels(reason=reason) for reason in CANARY_FALLBACK_REASONS}
        # Every variant and result from the start, so a ratio is 0 rather than absent.
        self._requests = {
            (variant, result): self.requests.labels(variant=variant, result=result)
            for variant in VARIANTS
            for result in VARIANT_RESULTS
        }
        self._draws = {variant: self.draws.labels(variant=variant) for variant in VARIANTS}
        self._latency = {variant: self.latency.labels(variant=variant) for variant in VARIANTS}
        self._outcomes: dict[tuple[str, str], Counter] = {}
        self._explanations = {variant: self.explanations.labels(variant=variant) for variant in VARIANTS}
        self._attributions: dict[tuple[str, str], Counter] = {}
        self._outside: dict[tuple[str, str], Counter] = {}

    def model_served(self, model: ServedModel, load_seconds: Mapping[str, float]) -> None:
        super().model_served(model, load_seconds)
        # At zero from the canary's first scrape, for both variants (the service's request fields,
        # which both models range), so rate() sees the first answer outside.
        for ranged in model.training_ranges().values():
            for variant in VARIANTS:
                self._outside_child(variant, ranged["field"])

    def model_refresh(self, failed: str | None) -> None:
        # The stable model's model_refresh_failing is the served model's alone: a canary that
        # will not load must not read as the served model's alias being stuck, nor go unseen.
        self.refresh_failing.set(0 if failed is None else 1)

    def fell_back(self, reason: str) -> None:
        self._fallbacks[reason].inc()

    def drew(self, variant: str) -> None:
        self._draws[variant].inc()

    def answered(self, variant: str, seconds: float, *, failed: bool) -> None:
        self._requests[variant, "failed" if failed else "ok"].inc()
        self._latency[variant].observe(seconds)

    def count_outcomes(self, variant: str, outcomes: Iterable[str]) -> None:
        for outcome in outcomes:
            key = (variant, outcome)
            child = self._outcomes.get(key)
            if child is None:
                child = self._outcomes[key] = self.predictions.labels(variant=variant, outcome=outcome)
            child.inc()

    def count_explanations(self, variant: str, attributions: Iterable[Mapping[str, float]]) -> None:
        """Add |contribution| per feature; the models' feature sets are bounded."""
        count_attributions(
            attributions, partial(self._attribution_child, variant), self._explanations[variant]
        )

    def count_outside_training(
        self, variant: str, answers: Iterable[Sequence[Mapping[str, Any]] | None]
    ) -> None:
        """One per answer and field with a value outside the answering model's training range.

        ``answers``: each answer's ``outside_training`` list (None where it has none).
        """
        for found in answers:
            for field in {item["field"] for item in found or ()}:
                self._outside_child(variant, field).inc()

    def _outside_child(self, variant: str, feature: str) -> Counter:
        return _feature_child(self._outside, self.inputs_outside_training, variant, feature)

    def _attribution_child(self, variant: str, feature: str) -> Counter:
        return _feature_child(self._attributions, self.attribution, variant, feature)


def _feature_child(
    children: dict[tuple[str, str], Counter], counter: Counter, variant: str, feature: str
) -> Counter:
    """``counter``'s child of a variant and a feature, kept in ``children``: ``labels()`` costs more
    than a dict lookup, once per answer and feature."""
    child = children.get((variant, feature))
    if child is None:
        child = children[variant, feature] = counter.labels(variant=variant, feature=feature)
    return child
