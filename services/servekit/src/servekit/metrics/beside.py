"""What every model loaded beside the served one (a shadow, a canary) publishes about itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

if TYPE_CHECKING:
    from servekit.model import ServedModel


class BesideModelMetrics:
    """The model's version and run in ``<svc>_<role>_model_info`` (``servekit.runtime.RuntimeMetrics``)."""

    def __init__(self, info_name: str, role: str, registry: CollectorRegistry) -> None:
        self.model_info = Gauge(
            info_name,
            f"The {role} model's version and training run (value is always 1); absent until it is loaded.",
            ["version", "run_id"],
            registry=registry,
        )

    def model_served(self, model: ServedModel, load_seconds: Mapping[str, float]) -> None:
        """The model's version and run; its load time is in the log line and ``GET /model``."""
        self.model_info.clear()
        self.model_info.labels(version=model.artifact.version, run_id=model.artifact.run_id).set(1)

    def model_ended(self) -> None:
        """The model is no longer served (its alias is gone): no version to publish."""
        self.model_info.clear()

    def model_refresh(self, failed: str | None) -> None:
        """Nothing to publish: the log and ``GET /model`` say why a refresh failed."""
