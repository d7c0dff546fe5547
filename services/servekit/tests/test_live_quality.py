"""The served version's live evaluation: read back from a real MLflow registry, followed by the pod,
exported beside the held-out figure and shown in ``GET /model``."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from toy import TOY, ToyModel, registered

from servekit.evaluation import GroupComparison, Quality, ShadowComparison, log_run, log_shadow_run
from servekit.live_quality import LiveQualityFollower, LiveRecord, read_live_record
from servekit.metrics import MetricNames, ServiceMetrics
from servekit.metrics.names import LIVE_VERDICTS
from servekit.metrics.quality import Figure, QualityCollector, QualityFigures, ShadowQualityCollector
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.runtimes import shadow_comparison
from servekit.runtime import ModelRuntime
from servekit.settings import load_settings
from servekit.shadow import ShadowScorer
from servekit.testing import wait_ready
from servekit.training.splitting import Split
from servekit.training.uncertainty import Interval
from servekit.training.versions import AS_SHADOW

HELD_OUT = {"mae": 0.25, "mae_ci_low": 0.22, "mae_ci_high": 0.28}


class CountingClient:
    """A real MLflow client whose run reads are counted."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.runs_read = 0

    def get_model_version(self, name: str, version: str) -> Any:
        return self.client.get_model_version(name, version)

    def get_run(self, run_id: str) -> Any:
        self.runs_read += 1
        return self.client.get_run(run_id)


def evaluated(version: str, estimate: float | None, verdict: str | None, rows: int = 400) -> Quality:
    live = None if estimate is None else Interval(estimate, estimate - 0.02, estimate + 0.03)
    return Quality(
        "toy",
        version,
        "mae",
        rows,
        live=live,
        note="" if live else "too few answers with their truth (40 < 100)",
        held_out=Interval(0.25, 0.22, 0.28),
        verdict=verdict,  # type: ignore[arg-type]
    )


def test_the_latest_evaluation_logged_is_read_back_from_the_registry(mlflow_client: Any) -> None:
    client = CountingClient(mlflow_client)
    assert read_live_record(client, "toy", "1", "mae") is None  # never evaluated
    # Logged by the live-evaluation component's Job, which names itself.
    first, kept = log_run(
        mlflow_client, evaluated("1", 0.31, "worse"), "captures/", "toy-live-evaluation-29000000"
    )
    assert kept == ""  # a figure replaces the tags
    record = read_live_record(client, "toy", "1", "mae")
    assert record is not None
    assert (record.version, record.run_id, record.answers, record.verdict) == ("1", first, 400, "worse")
    assert record.job == record.describe()["job"] == "toy-live-evaluation-29000000"
    assert record.figure == Figure(pytest.approx(0.31), pytest.approx(0.29), pytest.approx(0.34))
    run = mlflow_client.get_run(first)
    assert record.evaluated_at == run.info.end_time / 1000
    assert record.describe()["evaluated_at"].endswith("+00:00")
    # Unchanged since: one registry call, the run is not read again.
    assert client.runs_read == 1
    assert read_live_record(client, "toy", "1", "mae", known=record) is record
    assert client.runs_read == 1
    # Evaluated again without a figure (the truth came late): the worse verdict stands, as the
    # run says nothing of the version's quality; cleared, LiveQualityWorse resolved on it.
    late = log_run(mlflow_client, evaluated("1", None, None, rows=40), "captures/")
    assert late.kept == "mae 0.3100 on 400, worse"  # what mlp evaluate prints it left as it was
    assert read_live_record(client, "toy", "1", "mae", known=record) is record
    # Evaluated again by hand with a figure: the new run is read, and no Job is named (the earlier
    # run's is not carried over).
    second, kept = log_run(mlflow_client, evaluated("1", 0.26, "within the noise", rows=410), "captures/")
    assert kept == ""
    again = read_live_record(client, "toy", "1", "mae", known=record)
    assert again is not None
    assert (again.run_id, again.answers, again.job) == (second, 410, "")
    assert "job" not in again.describe()
    assert again.verdict == "within the noise"
    # Another version's record is never taken for this one's.
    assert read_live_record(client, "toy", "2", "mae", known=again) is None


class Reader:
    """A record per version, as a registry would give it; ``down``: the registry does not answer."""

    def __init__(self) -> None:
        self.records: dict[str, LiveRecord] = {}
        self.down = False
        self.reads: list[str] = []

    def __call__(self, version: str, known: LiveRecord | None) -> LiveRecord | None:
        self.reads.append(version)
        if self.down:
            raise ConnectionError("registry unreachable")
        return self.records.get(version)


def record(version: str, estimate: float, verdict: str = "within the noise", job: str = "") -> LiveRecord:
    return LiveRecord(
        version,
        f"run-{version}",
        "mae",
        Figure(estimate, estimate - 0.1, estimate + 0.1),
        500,
        verdict,
        1.8e9,
        job=job,
    )


@pytest.fixture
def artifact(toy_trained: tuple[ModelArtifact, Split]) -> ModelArtifact:
    return dataclasses.replace(toy_trained[0], version="1", training_metrics=HELD_OUT)


def exported(collector: Collector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }


def live_series(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[Any, float]:
    return {
        key: value
        for key, value in found.items()
        if key[0] != "toy_model_quality" or ("split", "live") in key[1]
    }


def test_the_follower_exports_the_served_versions_figures_and_none_of_another_version(
    artifact: ModelArtifact,
) -> None:
    served = {"version": "1"}

    def source() -> ModelArtifact:
        return dataclasses.replace(artifact, version=served["version"])

    runtime = ModelRuntime(ToyModel, source, ServiceMetrics("toy"))
    reader = Reader()
    follower = LiveQualityFollower(runtime, "mae", reader, interval=60)
    collector = QualityCollector(MetricNames("toy"), follower.figures)
    # Nothing served: no series, and no registry call.
    assert not asyncio.run(follower.check())
    assert exported(collector) == {}
    assert reader.reads == []

    asyncio.run(runtime.load_until_ready())
    assert asyncio.run(follower.check())
    held_out = {
        ("toy_model_quality", (("bound", bound), ("metric", "mae"), ("split", "held_out"))): value
        for bound, value in (("estimate", 0.25), ("ci_low", 0.22), ("ci_high", 0.28))
    }
    # Never evaluated: the held-out figure alone, no live series at all (not zeros).
    assert exported(collector) == held_out
    status = follower.status()
    assert status is not None
    assert (status["latest"], status["every_seconds"], status["error"]) == (None, 60, None)
    assert status["last_check"].endswith("+00:00")

    reader.records["1"] = record("1", 0.4, "worse", job="toy-live-evaluation-29000000")
    asyncio.run(follower.check())
    found = exported(collector)
    assert live_series(found) == {
        ("toy_model_quality", (("bound", "estimate"), ("metric", "mae"), ("split", "live"))): 0.4,
        ("toy_model_quality", (("bound", "ci_low"), ("metric", "mae"), ("split", "live"))): pytest.approx(
            0.3
        ),
        ("toy_model_quality", (("bound", "ci_high"), ("metric", "mae"), ("split", "live"))): 0.5,
        ("toy_model_live_answers", ()): 500,
        # The Job that recorded it, by the name kube-state-metrics gives it: LiveEvaluationFailed
        # matches the two.
        (
            "toy_model_live_evaluation_timestamp_seconds",
            (("job_name", "toy-live-evaluation-29000000"),),
        ): 1.8e9,
        **{("toy_model_live_verdict", (("verdict", v),)): float(v == "worse") for v in LIVE_VERDICTS},
    }
    assert {k: v for k, v in found.items() if k in held_out} == held_out
    status = follower.status()
    assert status is not None
    assert status["latest"]["verdict"] == "worse"
    assert status["latest"]["estimate"] == 0.4

    # The registry goes down: the figures last read still hold, and the failure is shown.
    reader.down = True
    asyncio.run(follower.check())
    assert exported(collector) == found
    assert follower.status()["error"] == "ConnectionError: registry unreachable"
    reader.down = False

    # Evaluated again by hand: no Job named, an empty job_name (which Prometheus stores as none).
    reader.records["1"] = record("1", 0.4, "worse")
    asyncio.run(follower.check())
    assert exported(collector)[("toy_model_live_evaluation_timestamp_seconds", (("job_name", ""),))] == 1.8e9

    # Version 2 is served: version 1's live figures are gone at once, before the next read.
    served["version"] = "2"
    runtime.model = None
    asyncio.run(runtime.load_until_ready())
    assert live_series(exported(collector)) == {}
    assert follower.status()["latest"] is None
    asyncio.run(follower.check())
    assert reader.reads[-1] == "2"
    assert live_series(exported(collector)) == {}  # never evaluated

    # A model served from a run, not a registered version, has nothing to read.
    served["version"] = "unregistered"
    runtime.model = None
    asyncio.run(runtime.load_until_ready())
    reads = len(reader.reads)
    assert asyncio.run(follower.check())
    assert len(reader.reads) == reads


def test_a_served_version_without_a_held_out_interval_exports_its_estimate_alone(
    artifact: ModelArtifact,
) -> None:
    runtime = ModelRuntime(
        ToyModel, lambda: dataclasses.replace(artifact, training_metrics={"mae": 0.2}), ServiceMetrics("toy")
    )
    asyncio.run(runtime.load_until_ready())
    follower = LiveQualityFollower(runtime, "mae", None, interval=60)
    assert exported(QualityCollector(MetricNames("toy"), follower.figures)) == {
        ("toy_model_quality", (("bound", "estimate"), ("metric", "mae"), ("split", "held_out"))): 0.2
    }
    # Not following (no registry to read): GET /model says so with null.
    assert follower.status() is None
    assert not follower.follows


@pytest.fixture
def app_client(artifact: ModelArtifact) -> Iterator[TestClient]:
    settings = load_settings("toy")
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        yield client


def test_every_app_exports_the_held_out_figure_of_what_it_serves(app_client: TestClient) -> None:
    text = app_client.get("/metrics").text
    assert 'toy_model_quality{bound="estimate",metric="mae",split="held_out"} 0.25' in text
    # Described, but without a sample until the served version is evaluated.
    assert "# TYPE toy_model_live_answers gauge" in text
    assert not [line for line in text.splitlines() if line.startswith("toy_model_live")]
    # A model given in code is not in a registry: nothing to follow.
    assert app_client.get("/model").json()["live_evaluation"] is None


def test_the_verdicts_exported_are_the_evaluations_and_none() -> None:
    from typing import get_args

    from servekit.evaluation.verdicts import Verdict

    assert (*get_args(Verdict), "none") == LIVE_VERDICTS


def test_the_groups_a_served_version_is_worse_for_than_held_out_are_read_back_and_exported(
    mlflow_client: Any,
) -> None:
    """``log_run`` counts the groups worse than the same groups held out, ``read_live_record``
    reads the count back, and the pods export it; a run that compared no group exports none."""
    groups = (
        GroupComparison("color", "blue", 400, Interval(0.3, 0.1, 0.5, 0.975), "worse", other_rows=380),
        GroupComparison(
            "color", "red", 412, Interval(0.0, -0.1, 0.1, 0.975), "within the noise", other_rows=390
        ),
    )
    registered(mlflow_client, "servedgroups", 1)
    quality = Quality(
        "servedgroups", "1", "mae", 812, live=Interval(0.4, 0.35, 0.45), held_out=Interval(0.3, 0.25, 0.35),
        difference=Interval(0.1, 0.02, 0.18), verdict="worse", groups=groups,
    )  # fmt: skip
    log_run(mlflow_client, quality, "captures/")
    found = read_live_record(mlflow_client, "servedgroups", "1", "mae")
    assert found is not None
    assert (found.groups_worse, found.describe()["groups_worse"]) == (1, 1)
    figures = QualityFigures("mae", None, groups_worse=found.groups_worse)
    assert exported(QualityCollector(MetricNames("toy"), lambda: figures)) == {
        ("toy_model_live_groups_worse", ()): 1
    }
    log_run(mlflow_client, dataclasses.replace(quality, groups=()), "captures/")
    found = read_live_record(mlflow_client, "servedgroups", "1", "mae")
    assert found is not None
    assert found.groups_worse is None
    figures = QualityFigures("mae", None, groups_worse=found.groups_worse)
    assert exported(QualityCollector(MetricNames("toy"), lambda: figures)) == {}


def test_a_shadows_latest_comparison_is_read_from_its_version_and_exported_against_the_served_one(
    mlflow_client: Any, artifact: ModelArtifact
) -> None:
    """``log_shadow_run`` writes it, ``read_live_record(kind=AS_SHADOW)`` reads it back, and the
    follower of the shadow's runtime exports the paired difference, the answers, the verdict and
    the groups it is worse for."""
    groups = (
        GroupComparison("color", "blue", 400, Interval(0.03, 0.01, 0.05), "worse"),
        GroupComparison("color", "red", 412, Interval(-0.1, -0.13, -0.07), "better"),
    )
    compared = ShadowComparison(
        "toy", "2", "1", "mae", 812, 0.21, 0.25, Interval(-0.04, -0.06, -0.02), "better", groups=groups
    )
    run_id = log_shadow_run(mlflow_client, compared, "captures/")
    found = read_live_record(mlflow_client, "toy", "2", "mae", kind=AS_SHADOW)
    assert found is not None
    assert (found.run_id, found.against, found.answers, found.verdict) == (run_id, "1", 812, "better")
    assert found.groups_worse == 1
    assert found.describe()["groups_worse"] == 1
    assert found.figure == Figure(pytest.approx(-0.04), pytest.approx(-0.06), pytest.approx(-0.02))
    assert found.describe()["against"] == "1"
    assert read_live_record(mlflow_client, "toy", "2", "mae") is None  # its record as served: apart

    shadow = {"version": "2"}
    runtime = ModelRuntime(
        ToyModel, lambda: dataclasses.replace(artifact, version=shadow["version"]), ServiceMetrics("toy")
    )
    reader = Reader()
    follower = LiveQualityFollower(runtime, "mae", reader, interval=60)
    collector = ShadowQualityCollector(MetricNames("toy"), follower.shadow_figures)
    assert exported(collector) == {}  # no shadow loaded
    asyncio.run(runtime.load_until_ready())
    asyncio.run(follower.check())
    assert exported(collector) == {}  # never compared: no series, not zeros
    reader.records["2"] = found
    asyncio.run(follower.check())
    assert exported(collector) == {
        **{
            (
                "toy_shadow_live_difference",
                (("against", "1"), ("bound", bound), ("metric", "mae")),
            ): pytest.approx(value)
            for bound, value in (("estimate", -0.04), ("ci_low", -0.06), ("ci_high", -0.02))
        },
        ("toy_shadow_live_answers", ()): 812,
        **{("toy_shadow_live_verdict", (("verdict", v),)): float(v == "better") for v in LIVE_VERDICTS},
        ("toy_shadow_live_groups_worse", ()): 1,
    }
    # The challenger moves to version 3: version 2's comparison is not shown for it.
    shadow["version"] = "3"
    runtime.model = None
    asyncio.run(runtime.load_until_ready())
    assert exported(collector) == {}
    # A comparison without a figure: the answers and verdict none, no difference.
    reader.records["3"] = dataclasses.replace(
        found, version="3", figure=None, verdict="no comparison: too few", groups_worse=None
    )
    asyncio.run(follower.check())
    assert exported(collector) == {
        ("toy_shadow_live_answers", ()): 812,
        **{("toy_shadow_live_verdict", (("verdict", v),)): float(v == "none") for v in LIVE_VERDICTS},
    }


def test_a_shadows_comparison_against_a_version_no_longer_served_is_dropped(artifact: ModelArtifact) -> None:
    """After ``mlp promote toy 2`` the pod serves v2, but went on exporting shadow v3's comparison
    with v1, and ShadowBetter said "better than the served version 1"."""
    served_version, reader = {"version": "1"}, Reader()
    served = ModelRuntime(
        ToyModel,
        lambda: dataclasses.replace(artifact, version=served_version["version"]),
        ServiceMetrics("toy"),
    )
    shadow = ModelRuntime(ToyModel, lambda: dataclasses.replace(artifact, version="3"), ServiceMetrics("toy"))
    follower = LiveQualityFollower(shadow, "mae", reader, interval=60, served=served)
    collector = ShadowQualityCollector(MetricNames("toy"), follower.shadow_figures)
    asyncio.run(shadow.load_until_ready())
    reader.records["3"] = dataclasses.replace(record("3", 0.05, "better"), against="1")
    asyncio.run(follower.check())
    assert exported(collector) == {}  # the served model not loaded yet: against nothing served
    asyncio.run(served.load_until_ready())
    assert exported(collector)[("toy_shadow_live_verdict", (("verdict", "better"),))] == 1
    assert follower.status()["latest"]["against"] == "1"

    served_version["version"] = "2"  # promoted: at once, before the next read
    served.model = None
    asyncio.run(served.load_until_ready())
    assert exported(collector) == {}
    assert follower.status()["latest"] is None
    asyncio.run(follower.check())  # the registry still holds the comparison with v1
    assert exported(collector) == {}
    # Compared again, against v2 now: shown.
    reader.records["3"] = dataclasses.replace(record("3", -0.01, "within the noise"), against="2")
    asyncio.run(follower.check())
    assert exported(collector)[("toy_shadow_live_verdict", (("verdict", "within the noise"),))] == 1
    assert follower.status()["latest"]["against"] == "2"


def test_the_app_compares_its_shadows_record_with_the_version_it_serves(artifact: ModelArtifact) -> None:
    """The app's shadow follower is given the served runtime: without it, a pod promoted to v2
    went on exporting the shadow's comparison with v1 (the follower alone was tested)."""
    served = ModelRuntime(ToyModel, lambda: dataclasses.replace(artifact, version="2"), ServiceMetrics("toy"))
    shadow_runtime = ModelRuntime(
        ToyModel, lambda: dataclasses.replace(artifact, version="3"), ServiceMetrics("toy")
    )
    metrics = ServiceMetrics("toy")
    shadow = cast(ShadowScorer, SimpleNamespace(runtime=shadow_runtime))
    follower = shadow_comparison(
        TOY, load_settings("toy"), metrics, shadow, from_registry=False, served=served
    )
    assert follower is not None
    asyncio.run(served.load_until_ready())
    asyncio.run(shadow_runtime.load_until_ready())
    follower.record = dataclasses.replace(record("3", 0.05, "better"), against="1")
    assert follower.shadow_figures() is None
    follower.record = dataclasses.replace(record("3", 0.05, "better"), against="2")
    assert follower.shadow_figures() is not None
