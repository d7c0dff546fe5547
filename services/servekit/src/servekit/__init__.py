"""servekit: the shared serving library of the ML platform.

A model service is a small package that plugs into servekit through a
:class:`~servekit.spec.ServiceSpec` (its request schema, data, training recipe
and model class); servekit gives it the HTTP API, SHAP explanations, Prometheus
metrics, MLflow-registry loading, the ``mlp`` CLI and benchmarks.
"""

from servekit.errors import ServekitError
from servekit.spec import ServiceSpec

__all__ = ["ServekitError", "ServiceSpec"]
