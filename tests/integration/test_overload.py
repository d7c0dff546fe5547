"""A real `mlp serve` past its admission limits: the excess refused at once, the rest answered."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from processes import Server, metric_value
from servekit import http_client

pytestmark = pytest.mark.integration

SHED = "nlpinsight_prediction_requests_shed_total"
#: Requests sent at once beyond what the limit admits; each explained batch takes tens to
#: hundreds of milliseconds, so the first ones are still answered when the last arrive.
EXCESS = 6


def send_at_once(server: Server, size: int, count: int) -> tuple[list[httpx.Response], list[httpx.Response]]:
    """``count`` explained batches of ``size`` texts sent at once: the answered and the refused."""
    described = http_client.get(f"{server.url}/model").json()
    body = {"instances": [described["feature_schema"]["examples"][0]] * size}

    # Every thread sends once all are ready: started one by one, the first requests could be
    # answered before the last are sent, and the places would never all be taken at once.
    ready = threading.Barrier(count)

    def send(_: int) -> httpx.Response:
        with http_client.client(timeout=60) as client:
            ready.wait(timeout=30)
            return client.post(f"{server.url}/predict/batch?explain=true", json=body)

    with ThreadPoolExecutor(count) as pool:
        responses = list(pool.map(send, range(count)))
    answered = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 503]
    assert len(answered) + len(refused) == count, [r.status_code for r in responses]
    for response in answered:
        assert len(response.json()["predictions"]) == size
    for response in refused:
        assert response.json()["error"] == "overloaded"
        assert response.headers["retry-after"] == "1"
    return answered, refused


def shed_by_limit(server: Server) -> dict[str, float]:
    return {limit: metric_value(server, SHED, limit=limit) for limit in ("requests", "instances", "loop_lag")}


def admission_of(server: Server) -> dict[str, Any]:
    admission: dict[str, Any] = http_client.get(f"{server.url}/model").json()["admission"]
    return admission


def test_a_replica_with_every_place_taken_refuses_the_excess(live_services: dict[str, Server]) -> None:
    server = live_services["nlpinsight"]
    limit = admission_of(server)["limit"]
    before = shed_by_limit(server)

    # Batches of 64: the limit's places fill (8 batches of 64 texts are within the instance limit too).
    answered, refused = send_at_once(server, 64, limit + EXCESS)

    assert len(answered) >= limit
    assert refused, "no request was refused with every place taken"
    by_requests = [r for r in refused if "NLPINSIGHT_MAX_CONCURRENT_REQUESTS" in r.json()["message"]]
    assert by_requests, [r.json()["message"] for r in refused]
    after = shed_by_limit(server)
    assert after["requests"] - before["requests"] == len(by_requests)
    assert sum(after.values()) - sum(before.values()) == len(refused)
    assert metric_value(server, "nlpinsight_prediction_requests_in_flight") == 0


def test_large_batches_are_refused_by_the_instances_they_would_add(live_services: dict[str, Server]) -> None:
    server = live_services["nlpinsight"]
    admission = admission_of(server)
    per_batch = 256
    admitted_at_once = admission["instance_limit"] // per_batch
    assert admitted_at_once < admission["limit"], "the request limit would refuse these first"
    before = shed_by_limit(server)

    # As many batches as the request limit admits: only the instance limit can refuse them.
    answered, refused = send_at_once(server, per_batch, admission["limit"])

    assert len(answered) >= admitted_at_once
    assert refused, "no batch was refused with the instance limit full"
    for response in refused:
        message = response.json()["message"]
        assert "NLPINSIGHT_MAX_CONCURRENT_INSTANCES" in message
        assert f"{per_batch} more would pass its limit of {admission['instance_limit']}" in message
    after = shed_by_limit(server)
    assert after["instances"] - before["instances"] == len(refused)
    assert after["requests"] == before["requests"]
    assert metric_value(server, "nlpinsight_prediction_instances_in_flight") == 0
    assert admission_of(server) == {**admission, "in_flight": 0, "instances_in_flight": 0}
