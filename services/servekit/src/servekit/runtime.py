"""Readiness: load the model in the background, warm it up, retry with backoff.

Chosen behaviour when the model cannot be loaded (registry down, alias missing,
artifact corrupt): the process stays alive and NOT ready, logs exactly what
failed in one line per attempt, and retries with exponential backoff. On
Kubernetes the readiness probe keeps traffic away while the liveness probe
keeps the pod, so a registry outage heals without a crash loop, and
``<svc>_model_ready`` = 0 lets an alert fire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from servekit.errors import ServekitError
from servekit.loading import one_line
from servekit.metrics import ServiceMetrics
from servekit.model import ModelArtifact, ServedModel

logger = logging.getLogger("servekit.runtime")

ArtifactSource = Callable[[], ModelArtifact]


class ModelRuntime:
    """Holds the served model once it is loaded and warmed up."""

    def __init__(
        self,
        model_class: type[ServedModel],
        source: ArtifactSource,
        metrics: ServiceMetrics,
        *,
        initial_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        self._model_class = model_class
        self._source = source
        self._metrics = metrics
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self.model: ServedModel | None = None
        self.last_error: str | None = None
        self.attempts = 0

    @property
    def ready(self) -> bool:
        return self.model is not None

    def require(self) -> ServedModel:
        if self.model is None:
            reason = self.last_error or "the model is still loading"
            raise ServekitError(503, "model_not_ready", f"model not ready: {reason}")
        return self.model

    def load_once(self) -> ServedModel:
        """Load, build and warm up; raises on any failure."""
        artifact = self._source()
        model = self._model_class(artifact)
        warm_up(model)
        return model

    def activate(self, model: ServedModel) -> None:
        meta = model.artifact.metadata
        self._metrics.set_model(
            model.artifact.version,
            model.artifact.run_id,
            meta.get("outcome_shares", {}),
            meta.get("attribution_means", {}),
        )
        self.model = model
        self.last_error = None
        self._metrics.model_ready.set(1)

    async def run(self) -> None:
        """Retry until loaded; meant to run as a background task for the app's lifetime."""
        delay = self._initial_delay
        while self.model is None:
            self.attempts += 1
            try:
                model = await asyncio.to_thread(self.load_once)
            except Exception as exc:
                self.last_error = one_line(exc)
                logger.error(
                    "model load failed (attempt %d, retrying in %.1fs): %s",
                    self.attempts,
                    delay,
                    self.last_error,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay)
                continue
            self.activate(model)
            logger.info(
                "model ready: %s version %s (run %s)",
                model.artifact.name,
                model.artifact.version,
                model.artifact.run_id or "-",
            )


def warm_up(model: ServedModel) -> list[dict[str, Any]]:
    """One prediction and one explanation, so the first user request pays no lazy init."""
    example = model.example()
    if not example:
        raise ValueError("the model has no input example to warm up on")
    predictions = model.predict(example)
    model.explain(example)
    return predictions
