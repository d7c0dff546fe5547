"""The fairness benchmark: each client's own key, and the two servings it compares."""

from __future__ import annotations

import json

from servekit.bench import fairness, load


def test_each_request_carries_its_clients_key_and_its_body() -> None:
    bodies = [{"instances": [{"x": 1.0}]}, {"instances": [{"x": 2.0}]}]
    requests = load.post_requests(
        "127.0.0.1", 8123, "/predict/batch?explain=true", bodies, headers=fairness.bearer("mlp_key")
    )
    assert len(requests) == 2
    head, _, body = requests[1].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /predict/batch?explain=true HTTP/1.1"
    assert "Authorization: Bearer mlp_key" in lines
    assert "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == bodies[1]


def test_the_servings_compare_the_default_limit_with_none() -> None:
    assert fairness.SERVINGS[fairness.WITH_LIMIT] == {}
    assert fairness.SERVINGS[fairness.WITHOUT_LIMIT] == {"MAX_CONCURRENT_REQUESTS_PER_CLIENT": "0"}
