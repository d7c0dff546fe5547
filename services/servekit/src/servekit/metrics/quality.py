"""The served version's quality: its held-out figure and, once scored, its figure on live answers;
and the shadow version's, against the served answers to the same requests.

Read at each scrape from what the pod holds (``servekit.live_quality``), so a version switch
or a new evaluation needs no bookkeeping here, and a version with no live evaluation has no
live series rather than a stale one of the version before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from servekit.metrics.names import LIVE_VERDICTS, QUALITY_BOUNDS, QUALITY_SPLITS, MetricNames

ESTIMATE, CI_LOW, CI_HIGH = QUALITY_BOUNDS
HELD_OUT, LIVE = QUALITY_SPLITS


@dataclass(frozen=True)
class Figure:
    """A figure and its bootstrap 95 % interval (None: the run logged none)."""

    estimate: float
    low: float | None = None
    high: float | None = None

    @classmethod
    def logged(cls, metrics: Mapping[str, float], key: str) -> Figure | None:
        """``key`` and its interval as an MLflow run logs them (``<key>``, ``<key>_ci_low``,
        ``<key>_ci_high``); None when the run logged no ``key``."""
        estimate = metrics.get(key)
        if estimate is None:
            return None
        return cls(estimate, metrics.get(f"{key}_{CI_LOW}"), metrics.get(f"{key}_{CI_HIGH}"))

    def bounds(self) -> Iterator[tuple[str, float]]:
        yield ESTIMATE, self.estimate
        if self.low is not None and self.high is not None:
            yield CI_LOW, self.low
            yield CI_HIGH, self.high


@dataclass(frozen=True)
class QualityFigures:
    """What the served version's quality series say: its primary metric, held out and live."""

    metric: str
    held_out: Figure | None
    #: The latest live evaluation; None: the version has none (all the live series are left out).
    live: Figure | None = None
    answers: int | None = None
    evaluated_at: float | None = None
    #: The Kubernetes Job that made the evaluation (empty: made by hand), kube-state-metrics'
    #: ``job_name``: LiveEvaluationFailed lets a Job's failure pass only on a verdict it recorded.
    evaluated_by_job: str = ""
    #: One of ``LIVE_VERDICTS``.
    verdict: str | None = None
    #: The groups whose live figure is worse than the same group's held out beyond the noise;
    #: None: the run compared none (a version trained before its held-out rows' groups were kept).
    groups_worse: int | None = None


Figures = TypeVar("Figures")


class _FiguresCollector(Collector, Generic[Figures]):
    """Series of the figures ``current`` returns at each scrape, made afresh each time."""

    def __init__(self, names: MetricNames, current: Callable[[], Figures | None]) -> None:
        self.names = names
        self.current = current

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        raise NotImplementedError

    def describe(self) -> Iterator[Metric]:
        yield from self._families()


def _verdicts(family: GaugeMetricFamily, held: str) -> None:
    """1 on the verdict held, 0 on the others: a panel or an alert selects ``== 1``."""
    for verdict in LIVE_VERDICTS:
        family.add_metric((verdict,), 1.0 if verdict == held else 0.0)


class QualityCollector(_FiguresCollector[QualityFigures]):
    """``model_quality``, ``model_live_answers``, ``model_live_evaluation_timestamp_seconds`` and
    ``model_live_verdict`` of the figures ``current`` returns at each scrape (None: no model yet)."""

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        n = self.names
        return (
            GaugeMetricFamily(
                n.model_quality,
                "The served version's primary metric (metric) on its training run's held-out rows "
                '(split="held_out") and on its answers joined with their truth by the latest '
                '`mlp evaluate --log` (split="live"); bound: estimate, ci_low, ci_high (bootstrap 95 %).',
                labels=("split", "metric", "bound"),
            ),
            GaugeMetricFamily(
                n.model_live_answers,
                "Answers with their truth that the served version's latest live evaluation scored.",
            ),
            GaugeMetricFamily(
                n.model_live_evaluation_timestamp_seconds,
                "When the served version's latest live evaluation ended (Unix seconds); job_name: the "
                "Kubernetes Job that ran it (mlp evaluate --job), empty when it was run by hand.",
                labels=("job_name",),
            ),
            GaugeMetricFamily(
                n.model_live_verdict,
                "1 for the latest live evaluation's verdict on the served version, 0 for the others: "
                "its live figure against the held-out one is worse, within the noise or better; none: "
                "no figure (too few answers, one class) or none held out to compare with.",
                labels=("verdict",),
            ),
            GaugeMetricFamily(
                n.model_live_groups_worse,
                "Groups (a country, an age band, ...) whose live figure the served version's latest live "
                "evaluation found worse than the same group's on the held-out rows, beyond the noise "
                "(the groups' intervals held together at 95 %); absent where it compared none.",
            ),
        )

    def collect(self) -> Iterator[Metric]:
        quality, answers, evaluated, verdicts, groups_worse = self._families()
        figures = self.current()
        if figures is not None:
            for split, figure in ((HELD_OUT, figures.held_out), (LIVE, figures.live)):
                for bound, value in figure.bounds() if figure else ():
                    quality.add_metric((split, figures.metric, bound), value)
            if figures.answers is not None:
                answers.add_metric((), figures.answers)
            if figures.evaluated_at is not None:
                evaluated.add_metric((figures.evaluated_by_job,), figures.evaluated_at)
            if figures.verdict is not None:
                _verdicts(verdicts, figures.verdict)
            if figures.groups_worse is not None:
                groups_worse.add_metric((), figures.groups_worse)
        yield from (quality, answers, evaluated, verdicts, groups_worse)


@dataclass(frozen=True)
class ShadowFigures:
    """What the shadow's series say: its latest comparison with the served answers to the same
    requests (``mlp evaluate --log``)."""

    metric: str
    #: shadow - served, paired; None: the comparison had no figure (too few answers, one class).
    difference: Figure | None
    #: The version it was compared against.
    against: str
    answers: int
    #: One of ``LIVE_VERDICTS``.
    verdict: str
    #: The groups it is worse for beyond the noise; None: the run counted none.
    groups_worse: int | None = None


class ShadowQualityCollector(_FiguresCollector[ShadowFigures]):
    """``shadow_live_difference``, ``shadow_live_answers``, ``shadow_live_verdict`` and
    ``shadow_live_groups_worse`` of the figures ``current`` returns at each scrape (None: no shadow
    loaded, or never compared)."""

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        n = self.names
        return (
            GaugeMetricFamily(
                n.shadow_live_difference,
                "The shadow version's primary metric (metric) minus the served version's (against), on "
                "the same requests' answers joined with their truth by the latest `mlp evaluate --log`; "
                "bound: estimate, ci_low, ci_high (paired bootstrap 95 %).",
                labels=("metric", "bound", "against"),
            ),
            GaugeMetricFamily(
                n.shadow_live_answers,
                "Requests' answers with their truth that the shadow version's latest comparison paired.",
            ),
            GaugeMetricFamily(
                n.shadow_live_verdict,
                "1 for the verdict of the shadow version's latest comparison with the served answers, 0 "
                "for the others: worse, within the noise or better; none: no figure.",
                labels=("verdict",),
            ),
            GaugeMetricFamily(
                n.shadow_live_groups_worse,
                "Groups (a country, an age band, ...) for which the shadow version's latest comparison "
                "found it worse than the served version beyond the noise, on their answers alone.",
            ),
        )

    def collect(self) -> Iterator[Metric]:
        difference, answers, verdicts, groups_worse = self._families()
        figures = self.current()
        if figures is not None:
            for bound, value in figures.difference.bounds() if figures.difference else ():
                difference.add_metric((figures.metric, bound, figures.against), value)
            answers.add_metric((), figures.answers)
            _verdicts(verdicts, figures.verdict)
            if figures.groups_worse is not None:
                groups_worse.add_metric((), figures.groups_worse)
        yield from (difference, answers, verdicts, groups_worse)
