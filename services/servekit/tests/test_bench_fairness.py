"""The fairness benchmark's requests: each client's own key, a JSON body each."""

from __future__ import annotations

import json

from servekit.bench import fairness


def test_each_request_carries_its_clients_key_and_its_body() -> None:
    bodies = [{"instances": [{"x": 1.0}]}, {"instances": [{"x": 2.0}]}]
    requests = fairness.keyed_posts(8123, "/predict/batch?explain=true", bodies, "mlp_key")
    assert len(requests) == 2
    head, _, body = requests[1].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /predict/batch?explain=true HTTP/1.1"
    assert "Authorization: Bearer mlp_key" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == bodies[1]


def test_the_servings_compare_the_default_limit_with_none() -> None:
    assert fairness.SERVINGS[fairness.WITH_LIMIT] == {}
    assert fairness.SERVINGS[fairness.WITHOUT_LIMIT] == {"MAX_CONCURRENT_REQUESTS_PER_CLIENT": "0"}
