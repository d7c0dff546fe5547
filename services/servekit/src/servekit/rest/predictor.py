"""The predictor: the one path from validated records to answers, for HTTP and gRPC alike.

Both transports call it (``rest.prediction_routes``, ``rest.open_inference``, ``rpc.server``), so
admission of a big batch, the canary's choice and counts, capture and the shadow happen once, the
same way, whichever protocol the request came in by.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from servekit import logs
from servekit.admission import AdmissionLimit, in_worker_thread
from servekit.capture import PredictionCapture
from servekit.errors import ServekitError
from servekit.inference import run_model
from servekit.metrics import ServiceMetrics
from servekit.metrics.names import CANARY, STABLE
from servekit.model import OUTSIDE_TRAINING, Record, ServedModel
from servekit.rest.telemetry import Timings
from servekit.routing import ALONE, UNROUTED, VARIANT_HEADER, CanaryRouter, Choice, Route, no_canary
from servekit.runtime import ModelRuntime
from servekit.shadow import ShadowScorer


class Predictor:
    """Runs validated records through the model (``servekit.inference.run_model``), off the loop unless quick.

    A batch run off the loop holds its instances in the admission's instance limit, and its
    request's place, while it waits for and runs in a worker thread, until the thread is done even
    if its caller stops waiting; one that would pass the limit is refused with 503.

    With a canary, the router picks the model that answers each request, and each variant's
    result and model time are counted (``servekit.routing``).
    """

    def __init__(
        self,
        runtime: ModelRuntime,
        metrics: ServiceMetrics,
        admission: AdmissionLimit,
        *,
        shadow: ShadowScorer | None = None,
        canary: CanaryRouter | None = None,
        capture: PredictionCapture | None = None,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.admission = admission
        self.shadow = shadow
        self.canary = canary
        self.capture = capture

    def run(
        self,
        model: ServedModel,
        records: Sequence[Record],
        explain: bool,
        timings: Timings,
        *,
        stable: ServedModel,
        variant: str,
        reasons: int = 0,
    ) -> list[dict[str, Any]]:
        explained = None if self.canary is None else partial(self.canary.metrics.count_explanations, variant)
        return run_model(
            model,
            records,
            explain,
            timings,
            self.metrics,
            served=stable,
            explained=explained,
            reasons=reasons,
        )

    def choose(self, stable: ServedModel, route: Route) -> Choice:
        if self.canary is not None:
            return self.canary.choose(stable, route)
        if route.variant == CANARY:
            raise no_canary(f"header.{VARIANT_HEADER}", self.admission.service)
        return Choice(STABLE, stable, ALONE)

    async def __call__(
        self,
        records: Sequence[Record],
        explain: bool,
        timings: Timings,
        route: Route = UNROUTED,
        reasons: int = 0,
    ) -> tuple[ServedModel, list[dict[str, Any]]]:
        stable = self.runtime.require()
        variant, model, routed = self.choose(stable, route)
        # The stable model bins the inputs for drift whichever model answers: its baseline is the one
        # published, and the inputs do not depend on the model. Outcomes and attributions depend
        # on it: the service's series hold the stable model's, the variant series both.
        # Work the model calls quick runs on the event loop (faster than a thread hop); longer work
        # runs in a worker thread, so that probes stay answered.
        inline = model.quick(records)
        # Admitted before the model's result is counted: a refusal is the replica's load, not a
        # failure of the variant chosen (which would count towards stopping a canary).
        release = None if inline else self.admission.hold(len(records))
        start = time.perf_counter()
        try:
            work = partial(
                self.run, model, records, explain, timings, stable=stable, variant=variant, reasons=reasons
            )
            # Off the loop, the instances and the request's place are held until the thread is
            # done, even if this caller is cancelled first (a gRPC deadline): the model goes on.
            predictions = work() if release is None else await in_worker_thread(work, release)
        except Exception as exc:
            if self.canary is not None:
                failed = not isinstance(exc, ServekitError) or exc.status_code >= 500
                self.canary.answered(variant, model, time.perf_counter() - start, failed=failed)
            raise
        outcomes = [model.outcome(p) for p in predictions]
        if model is stable:
            self.metrics.count_outcomes(outcomes)
        if self.canary is not None:
            self.canary.answered(variant, model, time.perf_counter() - start, failed=False)
            self.canary.metrics.count_outcomes(variant, outcomes)
            # Each variant's own ranges: the service's series counts the stable model's answers only.
            self.canary.metrics.count_outside_training(
                variant, (p.get(OUTSIDE_TRAINING) for p in predictions)
            )
        captured = self.capture is not None and self.capture(model, variant, routed, records, predictions) > 0
        if self.shadow is not None:
            captured_as = (logs.request_id.get(), routed) if captured else None
            self.shadow.submit(model, records, predictions, variant=variant, captured_as=captured_as)
        return model, predictions
