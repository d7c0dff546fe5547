"""Prometheus metrics of a model service: the contract names and their collectors."""

from servekit.metrics.collectors import ServiceMetrics
from servekit.metrics.names import MetricNames

__all__ = ["MetricNames", "ServiceMetrics"]
