"""The admission limit itself: places taken and given back, the refusal and what it tells the client."""

from __future__ import annotations

import pytest

from servekit.admission import RETRY_AFTER_SECONDS, AdmissionLimit
from servekit.errors import ServekitError


def test_a_request_beyond_the_limit_is_refused_and_a_freed_place_is_taken_again() -> None:
    counts: list[int] = []
    refused: list[None] = []
    limit = AdmissionLimit("toy", 2, on_refused=lambda: refused.append(None))
    limit.enter()
    counts.append(limit.in_flight)
    limit.enter()
    counts.append(limit.in_flight)
    with pytest.raises(ServekitError) as raised:
        limit.enter()
    assert limit.in_flight == 2
    limit.leave()
    counts.append(limit.in_flight)
    limit.enter()
    counts.append(limit.in_flight)
    assert counts == [1, 2, 1, 2]
    assert len(refused) == 1
    error = raised.value
    assert (error.status_code, error.error) == (503, "overloaded")
    assert error.retry_after_seconds == RETRY_AFTER_SECONDS
    assert "answering 2 prediction requests" in error.message
    assert "TOY_MAX_CONCURRENT_REQUESTS" in error.message


def test_a_place_is_given_back_when_the_request_fails() -> None:
    limit = AdmissionLimit("toy", 1)
    with pytest.raises(RuntimeError), limit.admitted():
        raise RuntimeError("the model failed")
    with limit.admitted():
        assert limit.in_flight == 1
    assert limit.status() == {"limit": 1, "in_flight": 0}


def test_zero_means_no_limit() -> None:
    limit = AdmissionLimit("toy", 0)
    for _ in range(10_000):
        limit.enter()
    assert limit.in_flight == 10_000
