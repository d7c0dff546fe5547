"""The benchmark's load generator against a live service: it counts what it sent and what failed."""

from __future__ import annotations

import httpx
import pytest

from processes import Server
from servekit.bench import load

pytestmark = pytest.mark.integration


def test_load_generator_measures_a_live_service(live_services: dict[str, Server]) -> None:
    server = live_services["bankchurn"]
    example = httpx.get(f"{server.url}/model").json()["feature_schema"]["examples"][0]
    good = load.post_requests("127.0.0.1", server.port, "/predict", [example])
    result = load.run("127.0.0.1", server.port, good, concurrency=2, seconds=1.0, warmup=0.2)
    assert result.requests > 10
    assert result.errors == 0
    assert 0 < result.latency.p50_ms <= result.latency.p99_ms
    assert result.requests_per_second == pytest.approx(result.requests / result.seconds)


def test_load_generator_counts_non_200_answers_as_errors(live_services: dict[str, Server]) -> None:
    server = live_services["bankchurn"]
    bad = load.post_requests("127.0.0.1", server.port, "/predict", [{"unexpected": 1}])
    result = load.run("127.0.0.1", server.port, bad, concurrency=1, seconds=0.5, warmup=0.0)
    assert result.requests > 0
    assert result.errors == result.requests
