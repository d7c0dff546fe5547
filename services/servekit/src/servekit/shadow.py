"""Shadow scoring: a second model scores a copy of the live traffic, and nobody sees its answers.

Before a challenger is promoted, the question a reviewer asks is how it would have answered
the requests the champion answered. ``<SVC>_SHADOW_MODEL_URI`` (``models:/<svc>@challenger``,
say) loads a second model beside the served one; every sampled request's instances are then
scored by it too, and the two predictions are compared per instance in
``<svc>_shadow_predictions_total{outcome, shadow_outcome, agree}`` (a confusion matrix between
the two models) and ``<svc>_shadow_score_difference``. Those say how often the two disagree, not
which is right: with the prediction capture on, the shadow's answers to the captured requests are
captured too (``variant`` ``shadow``), and ``mlp evaluate`` scores both against the truth once it
is known, on the same requests (``servekit.evaluation.shadow``).

The shadow never costs a request its latency or its answer: instances are handed to one
worker thread through a queue bounded in instances, and when it falls behind they are
skipped and counted rather than queued without limit. The worker scores everything queued
in one call to the model, so under load it predicts large batches, the cheapest way per
instance. Like the served model, the shadow follows its alias (``servekit.runtime``); as the
canary's, a deleted alias ends it (until the alias names a version again): nothing is sampled for it,
``<svc>_shadow_model_info`` is gone, and ``GET /model`` says why in ``shadow.error``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from servekit.capture import PredictionCapture
from servekit.loading import one_line
from servekit.metrics.names import STABLE
from servekit.metrics.shadow import ShadowMetrics
from servekit.model import Record, ServedModel
from servekit.runtime import ModelRuntime

logger = logging.getLogger("servekit.shadow")

#: The worker scores at most this many instances in one call to the model.
MAX_SHADOW_BATCH = 1024
#: Seconds the worker gathers requests before scoring them. Nobody waits for the shadow's
#: answers, so this costs no latency, and it turns a request rate into batches: a tree model
#: scores one instance in 80 µs but 64 in 1.3 ms, and each wake-up of the worker takes the
#: interpreter lock from the requests.
GATHER_SECONDS = 0.05


@dataclass(frozen=True)
class Answered:
    """Instances the served model answered, waiting for the shadow model."""

    served: ServedModel
    records: Sequence[Record]
    predictions: Sequence[Mapping[str, Any]]
    #: The request's id and how its variant was chosen, when the served answers were captured (the
    #: shadow's are captured too); an empty id when they were not.
    captured_as: tuple[str, str] | None = None


def score_difference(served: Mapping[str, float], shadow: Mapping[str, float]) -> float | None:
    """The largest |served - shadow| over the scores both predictions have; None if none."""
    shared = served.keys() & shadow.keys()
    if not shared:
        return None
    return max(abs(float(served[key]) - float(shadow[key])) for key in shared)


class ShadowScorer:
    """Scores answered instances with the shadow runtime's model, off the request path."""

    def __init__(
        self,
        runtime: ModelRuntime,
        metrics: ShadowMetrics,
        *,
        uri: str,
        sample_rate: float = 1.0,
        max_pending: int = 10_000,
        gather_seconds: float = GATHER_SECONDS,
        draw: Callable[[], float] = random.random,
        capture: PredictionCapture | None = None,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.capture = capture
        self.uri = uri
        self.sample_rate = sample_rate
        self.max_pending = max_pending
        self.gather_seconds = gather_seconds
        self._draw = draw
        self._pending: deque[Answered] = deque()
        self._pending_instances = 0
        self._busy = False
        self._stopping = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        #: Versions whose prediction failed once already: one log line each, not one per batch.
        self._failed_versions: set[str] = set()
        # Deleting the challenger alias ends the comparison, as deleting the canary's ends the
        # canary: a shadow kept on the deleted version would be compared on every sampled request,
        # for nobody, with a warning at every refresh.
        runtime.end_when_missing(self.metrics.model_ended)

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="shadow-scorer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Score what is queued (within ``timeout``), then end the worker."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(
        self,
        served: ServedModel,
        records: Sequence[Record],
        predictions: Sequence[Mapping[str, Any]],
        *,
        variant: str = STABLE,
        captured_as: tuple[str, str] | None = None,
    ) -> None:
        """Queue a request's instances for the shadow model, if sampled and there is room.

        ``captured_as`` (the request id and how it was routed) says the served answers were
        captured: the shadow's are then captured too.

        Instances a canary answered are counted as skipped: the shadow's figures compare a
        challenger with the stable model, and during a rollout they would otherwise mix in the
        canary's answers under the stable model's name.
        """
        if self.runtime.ended is not None:  # no shadow any more: nothing is sampled, or skipped
            return
        if self.sample_rate < 1.0 and self._draw() >= self.sample_rate:
            return
        count = len(records)
        if variant != STABLE:
            self.metrics.count_skipped("canary", count)
            return
        with self._changed:
            if self._pending_instances + count > self.max_pending:
                full = True
            else:
                full = False
                self._pending.append(Answered(served, records, predictions, captured_as))
                self._pending_instances += count
                # Wake the worker for the first request (it starts gathering) and when a batch is
                # full, not for every request.
                if len(self._pending) == 1 or self._pending_instances >= MAX_SHADOW_BATCH:
                    self._changed.notify_all()
        if full:
            self.metrics.count_skipped("queue_full", count)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued has been scored (tests and benchmarks read the counts after)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._stopping)
                if not self._pending:
                    return
                self._changed.wait_for(
                    lambda: self._stopping or self._pending_instances >= MAX_SHADOW_BATCH,
                    timeout=self.gather_seconds,
                )
                batch = self._take()
                self._busy = True
            try:
                self.score(batch)
            except Exception:  # a bug here must not end shadow scoring for the pod's life
                logger.exception("shadow scoring crashed; %d instances not compared", _size(batch))
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _take(self) -> list[Answered]:
        """Queued requests up to MAX_SHADOW_BATCH instances (at least one request)."""
        batch = [self._pending.popleft()]
        size = len(batch[0].records)
        while self._pending and size + len(self._pending[0].records) <= MAX_SHADOW_BATCH:
            answered = self._pending.popleft()
            batch.append(answered)
            size += len(answered.records)
        self._pending_instances -= size
        return batch

    def score(self, batch: Sequence[Answered]) -> None:
        """Predict ``batch`` with the shadow model in one call and count how it compares."""
        shadow = self.runtime.model
        if shadow is None:
            self.metrics.count_skipped("not_ready", _size(batch))
            return
        compared = [a for a in batch if not a.served.artifact.same_version_as(shadow.artifact)]
        if len(compared) < len(batch):
            self.metrics.count_skipped("same_model", _size(batch) - _size(compared))
        if not compared:
            return
        records = [record for answered in compared for record in answered.records]
        try:
            shadow_predictions = shadow.predict(records)
            if len(shadow_predictions) != len(records):
                raise ValueError(f"{len(shadow_predictions)} predictions for {len(records)} instances")
        except Exception as exc:
            self.metrics.count_skipped("failed", len(records))
            version = shadow.artifact.version
            if version not in self._failed_versions:
                self._failed_versions.add(version)
                logger.error(
                    "shadow model version %s failed to predict (logged once per version; "
                    "served predictions are unaffected): %s",
                    version,
                    one_line(exc),
                )
            return
        pairs: Counter[tuple[str, str]] = Counter()
        start = 0
        for answered in compared:
            served, end = answered.served, start + len(answered.records)
            answers = shadow_predictions[start:end]
            start = end
            for prediction, shadow_prediction in zip(answered.predictions, answers, strict=True):
                pairs[served.outcome(prediction), shadow.outcome(shadow_prediction)] += 1
                difference = score_difference(served.scores(prediction), shadow.scores(shadow_prediction))
                if difference is not None:
                    self.metrics.score_difference.observe(difference)
            if self.capture is not None and answered.captured_as is not None:
                request_id, routed = answered.captured_as
                self.capture.shadowed(shadow, routed, request_id, answered.records, answers)
        for (outcome, shadow_outcome), count in pairs.items():
            self.metrics.count_compared(outcome, shadow_outcome, count)

    def status(self) -> dict[str, Any]:
        """The shadow model as ``GET /model`` describes it."""
        shadow = self.runtime.model
        return {
            "uri": self.uri,
            "version": shadow.artifact.version if shadow else None,
            "run_id": shadow.artifact.run_id if shadow else None,
            "ready": shadow is not None,
            # Why none is loaded: not yet (the last load's failure), or no more (its alias is gone).
            "error": None if shadow else self.runtime.ended or self.runtime.last_error,
            "sample_rate": self.sample_rate,
            "max_pending": self.max_pending,
            "refresh": self.runtime.refresh_status(),
        }


def _size(batch: Sequence[Answered]) -> int:
    return sum(len(answered.records) for answered in batch)
