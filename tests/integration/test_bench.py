"""The benchmark's load generator against a live service: it counts what it sent and what failed."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from processes import Server
from servekit.bench import load, scaling

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


def test_scaling_rows_read_the_replicas_own_counters(live_services: dict[str, Server]) -> None:
    """CPU and prediction concurrency come from the replica's /metrics, a row per offered load."""
    server = live_services["bankchurn"]
    example = httpx.get(f"{server.url}/model").json()["feature_schema"]["examples"][0]
    explained = load.post_requests("127.0.0.1", server.port, "/predict?explain=true", [example])
    before = scaling.read(server.url, "bankchurn")
    rows = scaling.measure(
        server.url,
        "bankchurn",
        explained,
        capacity=200,
        seconds=1.0,
        deadline=1.0,
        fractions=(0.5,),
        contended=0.5,
    )
    after = scaling.read(server.url, "bankchurn")
    quiet, contended = rows
    assert (quiet["neighbours_spinning"], contended["neighbours_spinning"]) == (0, os.cpu_count())
    for row in rows:
        assert row["fraction_of_capacity"] == 0.5
        assert row["failed"] == row["shed"] == 0
        assert row["goodput_per_second"] == pytest.approx(100, rel=0.1)
        assert 0 < row["cpu_cores"] <= (os.cpu_count() or 1)
        # 100 explained requests a second of well under 10 ms each: busy a small share of the time.
        assert 0 < row["prediction_concurrency"] < 1
    assert after.cpu_seconds > before.cpu_seconds
    assert after.prediction_seconds > before.prediction_seconds
    # The spinning processes are gone.
    assert not spinning_processes()


def spinning_processes() -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().endswith(b"while True: pass\0"):
                found.append(cmdline.parent.name)
        except OSError:  # ended while we looked
            pass
    return found
