"""A real `mlp serve` past its admission limit: the excess refused at once, the rest answered."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from processes import Server, metric_value

pytestmark = pytest.mark.integration

#: Requests sent at once beyond the limit; each explained batch of 256 texts takes a few
#: hundred milliseconds, so the first ones still hold every place when the last arrive.
EXCESS = 6


def test_a_full_replica_refuses_the_excess_and_answers_the_rest(live_services: dict[str, Server]) -> None:
    server = live_services["nlpinsight"]
    described = httpx.get(f"{server.url}/model").json()
    limit = described["admission"]["limit"]
    body = {"instances": [described["feature_schema"]["examples"][0]] * 256}
    shed_before = metric_value(server, "nlpinsight_prediction_requests_shed_total")

    def send(_: int) -> httpx.Response:
        return httpx.post(f"{server.url}/predict/batch?explain=true", json=body, timeout=60)

    with ThreadPoolExecutor(limit + EXCESS) as pool:
        responses = list(pool.map(send, range(limit + EXCESS)))

    answered = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 503]
    assert len(answered) + len(refused) == limit + EXCESS, [r.status_code for r in responses]
    assert len(answered) >= limit
    assert refused, "no request was refused with every place taken"
    for response in refused:
        assert response.json()["error"] == "overloaded"
        assert "NLPINSIGHT_MAX_CONCURRENT_REQUESTS" in response.json()["message"]
        assert response.headers["retry-after"] == "1"
    for response in answered:
        assert len(response.json()["predictions"]) == 256
    shed = metric_value(server, "nlpinsight_prediction_requests_shed_total") - shed_before
    assert shed == len(refused)
    assert metric_value(server, "nlpinsight_prediction_requests_in_flight") == 0
    assert httpx.get(f"{server.url}/model").json()["admission"] == {"limit": limit, "in_flight": 0}
