"""ModelRuntime: load until ready, then follow the alias to new versions without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import types
from collections.abc import Callable, Sequence
from typing import Any
from unittest.mock import ANY

import pytest
from fastapi.testclient import TestClient
from toy import TOY, ToyModel

from servekit import runtime as runtime_module
from servekit.metrics import ServiceMetrics
from servekit.model import ModelArtifact, Record
from servekit.rest import create_app
from servekit.runtime import LOAD_PHASES, REFRESH_RETRY_MAX_SECONDS, ModelRuntime
from servekit.settings import load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}


class Registry:
    """A registry stand-in: which version the alias points at, and which versions load."""

    def __init__(self, artifact: ModelArtifact) -> None:
        self.artifact = artifact
        self.alias = "1"
        self.broken: set[str] = set()
        #: Versions that download and load but whose baselines cannot be published.
        self.bad_metadata: set[str] = set()
        self.down = False
        self.loads: list[str] = []
        self.metrics = ServiceMetrics("toy")

    def probe(self) -> str:
        if self.down:
            raise ConnectionError("registry unreachable")
        return self.alias

    def source(self) -> ModelArtifact:
        version = self.alias
        self.loads.append(version)
        if version in self.broken:
            raise FileNotFoundError(f"version {version}: model.skops missing")
        metadata = dict(self.artifact.metadata)
        if version in self.bad_metadata:
            metadata["outcome_shares"] = {"high": "a lot"}
        return dataclasses.replace(self.artifact, version=version, run_id=f"run-{version}", metadata=metadata)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(toy_trained: tuple[ModelArtifact, Split]) -> Registry:
    return Registry(toy_trained[0])


def ready_runtime(registry: Registry, clock: Callable[[], float] | None = None) -> ModelRuntime:
    runtime = ModelRuntime(
        ToyModel,
        registry.source,
        registry.metrics,
        probe=registry.probe,
        refresh_interval=10.0,
        clock=clock or Clock(),
    )
    asyncio.run(runtime.load_until_ready())
    assert runtime.model is not None
    return runtime


def served_version(runtime: ModelRuntime) -> str:
    return runtime.require().artifact.version


def metric(registry: Registry, name: str, labels: dict[str, str] | None = None) -> float | None:
    return registry.metrics.registry.get_sample_value(name, labels or {})


def test_a_moved_alias_is_followed_once_the_new_version_is_warm(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = ready_runtime(registry)
    registry.alias = "2"
    with caplog.at_level(logging.INFO, logger="servekit.runtime"):
        asyncio.run(runtime.refresh())
    assert served_version(runtime) == "2"
    assert registry.loads == ["1", "2"]
    assert metric(registry, "toy_model_info", {"version": "2", "run_id": "run-2"}) == 1
    assert metric(registry, "toy_model_info", {"version": "1", "run_id": "run-1"}) is None
    assert "model updated: toy version 2 (run run-2) replaces version 1" in caplog.text


def test_an_unmoved_alias_loads_nothing(registry: Registry) -> None:
    runtime = ready_runtime(registry)
    asyncio.run(runtime.refresh())
    assert registry.loads == ["1"]
    for step in ("alias", "load"):  # each step's series from the first scrape, at zero
        assert metric(registry, "toy_model_refresh_failures_total", {"step": step}) == 0


def test_a_registry_outage_keeps_the_served_model_and_says_so(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = ready_runtime(registry)
    registry.down = True
    asyncio.run(runtime.refresh())
    assert served_version(runtime) == "1"
    assert runtime.ready
    # Asking the registry failed, not loading a version: the alert names the registry.
    assert metric(registry, "toy_model_refresh_failures_total", {"step": "alias"}) == 1
    assert metric(registry, "toy_model_refresh_failures_total", {"step": "load"}) == 0
    assert metric(registry, "toy_model_refresh_failing") == 1
    status = runtime.refresh_status()
    assert status is not None
    assert status["error"] == "next check in 10s: ConnectionError: registry unreachable"
    registry.down = False
    asyncio.run(runtime.refresh())
    assert metric(registry, "toy_model_refresh_failing") == 0
    assert runtime.refresh_status() == {"every_seconds": 10.0, "last_check": ANY, "error": None}
    assert (
        "model refresh failed (still serving version 1; next check in 10s): "
        "ConnectionError: registry unreachable" in caplog.text
    )


def test_a_version_that_fails_to_load_is_retried_with_backoff_while_the_old_one_serves(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    runtime = ready_runtime(registry, clock)
    registry.alias = "2"
    registry.broken.add("2")
    asyncio.run(runtime.refresh())
    assert served_version(runtime) == "1"
    assert "(still serving version 1; retrying version 2 in 10s): FileNotFoundError" in caplog.text

    clock.now += 5  # before the retry is due: no download, and still failing
    asyncio.run(runtime.refresh())
    assert registry.loads == ["1", "2"]
    assert metric(registry, "toy_model_refresh_failing") == 1

    clock.now += 5
    asyncio.run(runtime.refresh())
    assert registry.loads == ["1", "2", "2"]
    assert "retrying version 2 in 20s" in caplog.text
    assert metric(registry, "toy_model_refresh_failures_total", {"step": "load"}) == 2
    assert metric(registry, "toy_model_refresh_failures_total", {"step": "alias"}) == 0

    for _ in range(12):  # the delay doubles up to its cap
        clock.now += REFRESH_RETRY_MAX_SECONDS
        asyncio.run(runtime.refresh())
    assert f"retrying version 2 in {REFRESH_RETRY_MAX_SECONDS:g}s" in caplog.text

    registry.broken.clear()
    clock.now += REFRESH_RETRY_MAX_SECONDS
    asyncio.run(runtime.refresh())
    assert served_version(runtime) == "2"
    assert metric(registry, "toy_model_refresh_failing") == 0


def test_another_version_after_a_broken_one_is_tried_at_once(registry: Registry) -> None:
    runtime = ready_runtime(registry)
    registry.alias = "2"
    registry.broken.add("2")
    asyncio.run(runtime.refresh())
    registry.alias = "3"  # the fix is promoted
    asyncio.run(runtime.refresh())
    assert served_version(runtime) == "3"
    assert registry.loads == ["1", "2", "3"]


def test_the_served_models_failing_first_load_is_not_ready_rather_than_a_failing_refresh(
    registry: Registry,
) -> None:
    """ModelNotReady (model_ready 0, the readiness probe) says it; ModelRefreshFailing is for a pod
    that serves a model and cannot follow its alias. A canary's is (tests/test_routing.py)."""
    registry.broken.add("1")
    seen: list[tuple[float | None, ...]] = []

    def source() -> ModelArtifact:
        seen.append(
            (
                metric(registry, "toy_model_ready"),
                metric(registry, "toy_model_refresh_failing"),
                *(
                    metric(registry, "toy_model_refresh_failures_total", {"step": s})
                    for s in ("alias", "load")
                ),
            )
        )
        if len(seen) == 3:
            registry.broken.clear()
        return registry.source()

    runtime = ModelRuntime(
        ToyModel, source, registry.metrics, probe=registry.probe, refresh_interval=10.0, initial_delay=0
    )
    asyncio.run(runtime.load_until_ready())
    assert seen == [(0, 0, 0, 0)] * 3
    assert metric(registry, "toy_model_ready") == 1
    assert metric(registry, "toy_model_refresh_failures_total", {"step": "load"}) == 0


def test_without_a_probe_or_an_interval_run_returns_once_loaded(registry: Registry) -> None:
    for probe, interval in ((None, 10.0), (registry.probe, 0.0)):
        runtime = ModelRuntime(
            ToyModel, registry.source, ServiceMetrics("toy"), probe=probe, refresh_interval=interval
        )
        assert not runtime.follows
        assert runtime.refresh_status() is None
        asyncio.run(asyncio.wait_for(runtime.run(), timeout=30))
        assert runtime.ready


def test_a_served_app_switches_versions_between_requests(registry: Registry) -> None:
    settings = load_settings("toy", model_refresh_seconds=1)
    app = create_app(TOY, settings, source=registry.source, probe=registry.probe)
    with TestClient(app) as client:
        wait_ready(client)
        assert client.post("/predict", json=ROW).json()["model"]["version"] == "1"
        registry.alias = "2"
        for _ in range(200):
            if client.get("/model").json()["version"] == "2":
                break
            asyncio.run(asyncio.sleep(0.05))
        assert client.post("/predict", json=ROW).json()["model"]["version"] == "2"
        assert client.get("/readyz").json()["model"]["version"] == "2"
        refresh = client.get("/model").json()["refresh"]
        assert refresh["every_seconds"] == 1
        assert refresh["error"] is None
        assert refresh["last_check"].endswith("+00:00")
        assert 'toy_model_info{run_id="run-2",version="2"} 1.0' in client.get("/metrics").text


def test_a_version_whose_baselines_cannot_be_published_is_not_half_switched_to(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = ready_runtime(registry)
    registry.alias = "2"
    registry.bad_metadata.add("2")
    asyncio.run(runtime.refresh())
    assert served_version(runtime) == "1"
    assert metric(registry, "toy_model_info", {"version": "1", "run_id": "run-1"}) == 1
    assert metric(registry, "toy_model_info", {"version": "2", "run_id": "run-2"}) is None
    assert "retrying version 2 in 10s): ValueError: could not convert" in caplog.text


class PhaseClock:
    """The runtime's ``perf_counter`` in the test of its phases: moved only by the phases' own waits,
    so a phase's time is its wait alone, whatever else the machine is doing (on a busy machine a
    real 0.1 s sleep was measured as 0.19 s)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


PHASES = PhaseClock()


class SlowToBuild(ToyModel):
    """Takes BUILD_SECONDS to build and WARM_SECONDS more for its warm-up's prediction."""

    BUILD_SECONDS = 0.1
    WARM_SECONDS = 0.1

    def __init__(self, artifact: ModelArtifact) -> None:
        PHASES.wait(self.BUILD_SECONDS)
        super().__init__(artifact)

    def predict(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        PHASES.wait(self.WARM_SECONDS)
        return super().predict(records)


def test_each_phase_of_a_load_is_timed_published_and_logged(
    registry: Registry, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_seconds = 0.1
    # The runtime's clock for its phases (its other clocks stay the machine's).
    clock = types.SimpleNamespace(perf_counter=PHASES.perf_counter, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(runtime_module, "time", clock)

    def slow_source() -> ModelArtifact:
        PHASES.wait(fetch_seconds)
        return registry.source()

    runtime = ModelRuntime(
        SlowToBuild, slow_source, registry.metrics, probe=registry.probe, refresh_interval=10
    )
    with caplog.at_level(logging.INFO, logger="servekit.runtime"):
        asyncio.run(runtime.load_until_ready())
        registry.alias = "2"
        asyncio.run(runtime.refresh())

    least = {"fetch": fetch_seconds, "build": SlowToBuild.BUILD_SECONDS, "warm_up": SlowToBuild.WARM_SECONDS}
    assert set(runtime.load_seconds) == set(LOAD_PHASES) == set(least)
    for phase, seconds in least.items():
        # Each phase's own time: had it taken in a neighbour's 0.1 s, it would be 0.2 s.
        assert runtime.load_seconds[phase] == pytest.approx(seconds), phase
        assert metric(registry, "toy_model_load_seconds", {"phase": phase}) == runtime.load_seconds[phase]
    timing = f"in {sum(runtime.load_seconds.values()):.2f} s (fetch "
    ready, updated = (r.getMessage() for r in caplog.records if "version" in r.getMessage())
    assert "model ready: toy version 1 (run run-1) in " in ready
    assert "model updated: toy version 2" in updated
    assert f"loaded {timing}" in updated
    assert "build 0.10 s" in updated
    assert "warm_up 0.10 s" in updated


def test_the_served_model_s_load_time_is_in_get_model(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    with TestClient(create_app(TOY, load_settings("toy"), source=lambda: artifact)) as client:
        wait_ready(client)
        load_seconds = client.get("/model").json()["load_seconds"]
    assert set(load_seconds) == set(LOAD_PHASES)
    assert all(seconds > 0 for seconds in load_seconds.values())
