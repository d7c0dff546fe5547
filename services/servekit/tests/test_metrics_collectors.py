"""``ServiceMetrics.count_request``: which prediction requests are events of the latency SLI."""

from __future__ import annotations

import pytest

from servekit.metrics import ServiceMetrics
from servekit.metrics.names import GRPC_INFER, GRPC_METHOD, OPEN_INFERENCE_INFER

LATENCY_COUNT = "toy_prediction_latency_seconds_count"
LATENCY_SUM = "toy_prediction_latency_seconds_sum"


def latency_count(metrics: ServiceMetrics, endpoint: str) -> float | None:
    value: float | None = metrics.registry.get_sample_value(LATENCY_COUNT, {"endpoint": endpoint})
    return value


@pytest.mark.parametrize("status", [401, 403, 408, 413, 422, 429, 500, 503])
@pytest.mark.parametrize(
    ("endpoint", "method"),
    [
        ("/predict", "POST"),
        ("/predict/batch", "POST"),
        (OPEN_INFERENCE_INFER, "POST"),
        (GRPC_INFER, GRPC_METHOD),
    ],
)
def test_a_refused_or_failed_prediction_request_is_counted_but_not_timed(
    endpoint: str, method: str, status: int
) -> None:
    """A keyless scanner's 401s took well under a millisecond each, a fifth of the SLI's events:
    they flattered the latency SLI and could hide a regression from LatencyBudgetBurn*."""
    metrics = ServiceMetrics("toy")
    metrics.count_request(endpoint, method, status, 0.0002)
    labels = {"endpoint": endpoint, "method": method, "status": str(status)}
    assert metrics.registry.get_sample_value("toy_requests_total", labels) == 1
    assert latency_count(metrics, endpoint) == 0


@pytest.mark.parametrize("status", [200, 499])
def test_an_answer_and_a_client_that_gave_up_waiting_are_timed(status: int) -> None:
    metrics = ServiceMetrics("toy")
    metrics.count_request("/predict", "POST", status, 0.08)
    assert latency_count(metrics, "/predict") == 1
    assert metrics.registry.get_sample_value(LATENCY_SUM, {"endpoint": "/predict"}) == pytest.approx(0.08)


def test_a_body_that_never_arrived_is_not_timed_even_as_a_499() -> None:
    """The time was the client's upload, not a wait for the model."""
    metrics = ServiceMetrics("toy")
    metrics.count_request("/predict", "POST", 499, 30.0, timed=False)
    assert latency_count(metrics, "/predict") == 0


def test_other_endpoints_are_never_timed() -> None:
    metrics = ServiceMetrics("toy")
    metrics.count_request("/model", "GET", 200, 0.01)
    assert latency_count(metrics, "/model") is None
