"""Canary rollouts: a share of the requests answered by a second model, chosen per request."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import logging
import math
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from toy import FAILING_X, TOY, FailingToy, ToyModel

from servekit.errors import ServekitError
from servekit.loading import ModelLoadError
from servekit.local import free_port
from servekit.metrics import MetricNames
from servekit.metrics.canary import CanaryMetrics
from servekit.model import INLINE_BATCH_LIMIT, ModelArtifact
from servekit.rest import create_app
from servekit.routing import (
    ALONE,
    ASKED,
    DRAWN,
    FALLBACK,
    MAX_ROUTING_KEY_LENGTH,
    MIN_JUDGED_REQUESTS,
    UNROUTED,
    CanaryRouter,
    Route,
    parse_share,
    percentile_of,
)
from servekit.rpc import open_inference_pb2 as pb
from servekit.rpc.server import SERVICE
from servekit.runtime import ModelRuntime
from servekit.settings import load_settings
from servekit.testing import metric_sample as sample
from servekit.testing import request_rows, train_in_memory, wait_loaded, wait_ready
from servekit.training.splitting import Split

NAMES = MetricNames("toy")


@pytest.fixture(scope="module")
def candidate() -> ModelArtifact:
    """Another toy model (other rows and seed), so its answers differ from the stable one's."""
    artifact, _ = train_in_memory(TOY, rows=300, seed=7)
    return dataclasses.replace(artifact, version="2", run_id="run-2")


def canary_app(stable: ModelArtifact, canary: Any, **settings: Any) -> TestClient:
    source = canary if callable(canary) else (lambda: canary)
    app = create_app(
        TOY,
        load_settings("toy", max_batch_size=64, **settings),
        source=lambda: stable,
        canary_source=source,
    )
    return TestClient(app)


@pytest.fixture
def rolled(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    artifact, data = toy_trained
    with canary_app(artifact, candidate, canary_traffic_percent=25) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        yield client, request_rows(data, 200)


def test_a_routing_key_falls_at_the_same_place_in_every_process() -> None:
    # Independently of servekit: the first 8 bytes of BLAKE2b, big-endian, as a share of 2**64.
    digest = hashlib.blake2b(b"customer-15634602", digest_size=8).digest()
    assert percentile_of("customer-15634602") == int.from_bytes(digest, "big") * 100 / 2**64
    keys = [f"customer-{i}" for i in range(4000)]
    at_10 = {k for k in keys if percentile_of(k) < 10}
    at_20 = {k for k in keys if percentile_of(k) < 20}
    # Raising the share only moves keys to the canary, never back.
    assert at_10 < at_20
    # Uniform: 10 % and 20 % of the keys, within 4 binomial standard deviations.
    for got, share in ((len(at_10), 0.1), (len(at_20), 0.2)):
        assert abs(got - 4000 * share) < 4 * math.sqrt(4000 * share * (1 - share))


def test_keyed_requests_go_where_their_key_falls_and_answer_with_that_model(
    rolled: tuple[TestClient, list[dict[str, Any]]],
    toy_trained: tuple[ModelArtifact, Split],
    candidate: ModelArtifact,
) -> None:
    client, rows = rolled
    stable, canary = ToyModel(toy_trained[0]), ToyModel(candidate)
    versions: Counter[str] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    for i, row in enumerate(rows):
        key = f"customer-{i}"
        response = client.post("/predict", json=row, headers={"X-Routing-Key": key})
        assert response.status_code == 200
        expected = "2" if percentile_of(key) < 25 else toy_trained[0].version
        body = response.json()
        assert body["model"]["version"] == expected
        model = canary if expected == "2" else stable
        assert body["value"] == pytest.approx(model.predict([row])[0]["value"], rel=1e-12)
        variant = "canary" if expected == "2" else "stable"
        versions[variant] += 1
        outcomes[variant, model.outcome(body)] += 1
        # The same key again: the same model.
        again = client.post("/predict", json=row, headers={"X-Routing-Key": key})
        assert again.json()["model"]["version"] == expected
        versions[variant] += 1
        outcomes[variant, model.outcome(body)] += 1
    assert 0 < versions["canary"] < versions["stable"]
    for variant in ("stable", "canary"):
        assert sample(client, NAMES.variant_requests_total, variant=variant, result="ok") == versions[variant]
        assert sample(client, NAMES.variant_requests_total, variant=variant, result="failed") == 0
        assert sample(client, f"{NAMES.variant_latency_seconds}_count", variant=variant) == versions[variant]
    for (variant, outcome), count in outcomes.items():
        assert sample(client, NAMES.variant_predictions_total, variant=variant, outcome=outcome) == count
    assert sample(client, NAMES.canary_model_info, version="2", run_id="run-2") == 1
    assert sample(client, NAMES.canary_fallbacks_total, reason="not_ready") == 0
    # Keyed: the same variant for a key on every request, no random draw (mlp rollout's starved()).
    assert sample(client, NAMES.variant_draws_total, variant="stable") == 0
    assert sample(client, NAMES.variant_draws_total, variant="canary") == 0
    assert sample(client, NAMES.canary_fallbacks_total, reason="stopped") == 0


def test_unkeyed_requests_are_split_at_the_share_and_a_batch_goes_whole(
    rolled: tuple[TestClient, list[dict[str, Any]]],
    toy_trained: tuple[ModelArtifact, Split],
    candidate: ModelArtifact,
) -> None:
    client, rows = rolled
    answered = Counter(client.post("/predict", json=row).json()["model"]["version"] for row in rows * 2)
    # Each request a draw at 25 %: within 4 binomial standard deviations of a quarter. (The toy
    # split holds 160 held-out rows, not the 200 asked for: count the draws, do not assume them.)
    draws = sum(answered.values())
    assert draws == 2 * len(rows)
    assert abs(answered["2"] - draws * 0.25) < 4 * math.sqrt(draws * 0.25 * 0.75)
    models = {toy_trained[0].version: ToyModel(toy_trained[0]), "2": ToyModel(candidate)}
    seen = set()
    for _ in range(40):  # 0.75**40: the canary is missed with probability 1e-5
        batch = client.post("/predict/batch", json={"instances": rows[:10]}).json()
        version = batch["model"]["version"]
        seen.add(version)
        expected = [p["value"] for p in models[version].predict(rows[:10])]
        assert [p["value"] for p in batch["predictions"]] == pytest.approx(expected, rel=1e-12)
    assert seen == set(models)


def test_a_header_forces_the_variant_and_a_bad_one_is_named(
    rolled: tuple[TestClient, list[dict[str, Any]]], toy_trained: tuple[ModelArtifact, Split]
) -> None:
    client, rows = rolled
    for _ in range(10):
        forced = client.post("/predict", json=rows[0], headers={"X-Model-Variant": "canary"})
        assert forced.json()["model"]["version"] == "2"
        kept = client.post(
            "/predict/batch", json={"instances": rows[:3]}, headers={"X-Model-Variant": "Stable"}
        )
        assert kept.json()["model"]["version"] == toy_trained[0].version
    bad = client.post("/predict", json=rows[0], headers={"X-Model-Variant": "blue"})
    assert bad.status_code == 422
    assert bad.json()["fields"] == [
        {"field": "header.x-model-variant", "problem": "must be one of stable, canary; got 'blue'"}
    ]
    # The answer to a 100 kB header is not twice that (the message and the field both quote it).
    huge = client.post("/predict", json=rows[0], headers={"X-Model-Variant": "b" * 100_000})
    assert huge.status_code == 422
    assert len(huge.content) < 1024
    long_key = client.post(
        "/predict", json=rows[0], headers={"X-Routing-Key": "k" * (MAX_ROUTING_KEY_LENGTH + 1)}
    )
    assert long_key.status_code == 422
    assert long_key.json()["fields"][0]["field"] == "header.x-routing-key"


def test_a_pinned_version_is_answered_by_the_variant_serving_it(
    rolled: tuple[TestClient, list[dict[str, Any]]], toy_trained: tuple[ModelArtifact, Split]
) -> None:
    client, rows = rolled
    stable_version = toy_trained[0].version
    infer = {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [1], "data": [rows[0]["x"]]},
            {"name": "color", "datatype": "BYTES", "shape": [1], "data": [rows[0]["color"]]},
            {"name": "note", "datatype": "BYTES", "shape": [1], "data": [""]},
        ]
    }
    for _ in range(10):
        canary = client.post("/v2/models/toy/versions/2/infer", json=infer)
        assert canary.status_code == 200, canary.text
        assert canary.json()["model_version"] == "2"
        stable = client.post(f"/v2/models/toy/versions/{stable_version}/infer", json=infer)
        assert stable.json()["model_version"] == stable_version
    assert client.get("/v2/models/toy/versions/2").json()["versions"] == ["2"]
    missing = client.post("/v2/models/toy/versions/9/infer", json=infer)
    assert missing.status_code == 404
    assert f"version {stable_version} is" in missing.json()["error"]
    assert "and version 2 as a canary" in missing.json()["error"]


def test_grpc_metadata_routes_like_the_headers(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> None:
    artifact, data = toy_trained
    row = request_rows(data, 1)[0]
    request = pb.ModelInferRequest(model_name="toy")
    request.inputs.add(name="x", datatype="FP64", shape=[1]).contents.fp64_contents.append(row["x"])
    request.inputs.add(name="color", datatype="BYTES", shape=[1]).contents.bytes_contents.append(
        row["color"].encode()
    )
    with canary_app(artifact, candidate, canary_traffic_percent=0, grpc_port=free_port()) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        port = client.app.state.grpc_port  # type: ignore[attr-defined]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            infer = channel.unary_unary(
                f"/{SERVICE}/ModelInfer",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=pb.ModelInferResponse.FromString,
            )
            assert infer(request).model_version == artifact.version  # 0 %: stable
            assert infer(request, metadata=(("x-model-variant", "canary"),)).model_version == "2"
            pinned = pb.ModelInferRequest()
            pinned.CopyFrom(request)
            pinned.model_version = "2"
            assert infer(pinned).model_version == "2"
            with pytest.raises(grpc.RpcError) as error:
                infer(request, metadata=(("x-model-variant", "green"),))
            # Read before the tensors, as REST reads the header before the body.
            broken = pb.ModelInferRequest()
            broken.CopyFrom(request)
            broken.inputs[0].datatype = "BOOL"
            with pytest.raises(grpc.RpcError) as first:
                infer(broken, metadata=(("x-model-variant", "green"),))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata.x-model-variant: must be one of stable, canary" in str(error.value.details())
    assert first.value.details() == error.value.details()


def test_model_describes_the_canary(rolled: tuple[TestClient, list[dict[str, Any]]]) -> None:
    client, _ = rolled
    canary = client.get("/model").json()["canary"]
    assert canary["version"] == "2"
    assert canary["run_id"] == "run-2"
    assert canary["ready"] is True
    assert canary["traffic_percent"] == 25
    assert canary["traffic_percent_from"] == "setting"  # served from code: no registry to follow
    assert canary["traffic_percent_error"] is None
    assert canary["receiving_percent"] == 25


def test_until_the_canary_loads_the_stable_model_answers_its_share(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, data = toy_trained

    def broken() -> ModelArtifact:
        raise OSError("artifact store unreachable")

    rows = request_rows(data, 20)
    with canary_app(artifact, broken, canary_traffic_percent=100, load_retry_initial_seconds=60) as client:
        wait_ready(client)
        answers = [client.post("/predict", json=row) for row in rows]
        assert {r.json()["model"]["version"] for r in answers} == {artifact.version}
        assert sample(client, NAMES.canary_fallbacks_total, reason="not_ready") == len(rows)
        assert sample(client, NAMES.variant_requests_total, variant="stable", result="ok") == len(rows)
        forced = client.post("/predict", json=rows[0], headers={"X-Model-Variant": "canary"})
        assert forced.status_code == 503
        assert "canary model not ready" in forced.json()["message"]
        # The kind of failure to a caller; the failure itself in the log and in GET /model.
        assert "loading the canary model failed" in forced.json()["message"]
        assert "artifact store unreachable" not in forced.json()["message"]
        status = client.get("/model").json()["canary"]
        assert status["ready"] is False
        assert status["receiving_percent"] == 0
        assert "artifact store unreachable" in status["error"]
        assert client.get("/readyz").status_code == 200


def test_only_requests_drawn_at_random_count_as_draws(
    rolled: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    """A prober's X-Model-Variant: stable reaches the stable model whatever the share: counted as
    its request, not as a draw, so a quiet interval of probes does not read as a canary gone."""
    client, rows = rolled
    for row in rows[:40]:
        assert client.post("/predict", json=row).status_code == 200
        assert client.post("/predict", json=row, headers={"X-Model-Variant": "stable"}).status_code == 200
    drawn = {v: sample(client, NAMES.variant_draws_total, variant=v) for v in ("stable", "canary")}
    answered = {v: sample(client, NAMES.variant_requests_total, variant=v, result="ok") for v in drawn}
    assert drawn["stable"] + drawn["canary"] == 40
    assert answered == {"stable": drawn["stable"] + 40, "canary": drawn["canary"]}


def test_a_canary_of_the_stable_version_gets_no_traffic(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    with canary_app(artifact, artifact, canary_traffic_percent=100) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        for row in request_rows(data, 10):
            assert client.post("/predict", json=row).status_code == 200
        assert sample(client, NAMES.variant_requests_total, variant="stable", result="ok") == 10
        assert sample(client, NAMES.variant_requests_total, variant="canary", result="ok") == 0
        assert client.get("/model").json()["canary"]["receiving_percent"] == 0


def test_a_failing_canary_is_counted_as_the_canarys_failure(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> None:
    artifact, data = toy_trained
    row = {**request_rows(data, 1)[0], "x": FAILING_X}
    app = create_app(
        dataclasses.replace(TOY, model=FailingToy),
        load_settings("toy", canary_traffic_percent=0),
        source=lambda: artifact,
        canary_source=lambda: candidate,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        failed = client.post("/predict", json=row, headers={"X-Model-Variant": "canary"})
        assert failed.status_code == 500
        assert sample(client, NAMES.variant_requests_total, variant="canary", result="failed") == 1
        assert sample(client, NAMES.variant_requests_total, variant="stable", result="failed") == 0
        assert sample(client, f"{NAMES.variant_latency_seconds}_count", variant="canary") == 1


def test_a_canary_failing_too_often_loses_its_share_until_another_version_loads(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    artifact, data = toy_trained
    rows = request_rows(data, 30)
    failing = {**rows[0], "x": FAILING_X}
    app = create_app(
        dataclasses.replace(TOY, model=FailingToy),
        load_settings(
            "toy", canary_traffic_percent=100, canary_stop_failure_ratio=0.1, canary_stop_window=40
        ),
        source=lambda: artifact,
        canary_source=lambda: candidate,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        # 2 failures in 20 requests is 10 %: not over the ratio, so the canary keeps its share.
        answers = [client.post("/predict", json=failing if i < 2 else row) for i, row in enumerate(rows[:20])]
        assert [r.status_code for r in answers] == [500] * 2 + [200] * 18
        assert {r.json()["model"]["version"] for r in answers[2:]} == {"2"}
        assert sample(client, NAMES.canary_stopped) == 0
        # A third failure in 21 is over 10 %: this pod stops sending the canary its share.
        with caplog.at_level(logging.ERROR, logger="servekit.routing"):
            assert client.post("/predict", json=failing).status_code == 500
            after = [client.post("/predict", json=row).json()["model"]["version"] for row in rows[20:]]
        assert set(after) == {artifact.version}
        assert sample(client, NAMES.canary_fallbacks_total, reason="stopped") == len(after)
        assert sample(client, NAMES.canary_stopped) == 1
        stopped = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
        assert len(stopped) == 1, stopped
        assert "canary version 2 stopped: 3 of its last 21 requests failed (over 10%)" in stopped[0]
        status = client.get("/model").json()["canary"]
        assert status["stopped"]["version"] == "2"
        assert (status["stopped"]["failed"], status["stopped"]["of"]) == (3, 21)
        assert status["receiving_percent"] == 0
        # Asking for the canary still reaches it, to reproduce the failure.
        forced = client.post("/predict", json=rows[0], headers={"X-Model-Variant": "canary"})
        assert forced.json()["model"]["version"] == "2"

        # Another version behind the alias starts with a clean slate and gets its share back.
        runtime = client.app.state.canary.runtime  # type: ignore[attr-defined]
        runtime.model = FailingToy(dataclasses.replace(candidate, version="3", run_id="run-3"))
        assert client.post("/predict", json=rows[1]).json()["model"]["version"] == "3"
        assert sample(client, NAMES.canary_stopped) == 0
        assert client.get("/model").json()["canary"]["stopped"] is None


def test_a_batch_refused_by_the_instance_limit_is_not_the_canary_s_failure(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> None:
    artifact, data = toy_trained
    batch = {"instances": request_rows(data, INLINE_BATCH_LIMIT + 1)}
    settings = {"canary_traffic_percent": 100, "canary_stop_failure_ratio": 0.01, "canary_stop_window": 20}
    with canary_app(
        artifact, candidate, max_concurrent_instances=INLINE_BATCH_LIMIT + 1, **settings
    ) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        admission = client.app.state.admission  # type: ignore[attr-defined]
        with admission.instances_admitted(1):  # as by a batch already running
            refused = [client.post("/predict/batch", json=batch) for _ in range(25)]
        assert {r.status_code for r in refused} == {503}
        assert sample(client, NAMES.prediction_requests_shed_total, limit="instances") == 25
        # No failure counted against the canary, which a single one would stop at this ratio.
        assert sample(client, NAMES.variant_requests_total, variant="canary", result="failed") == 0
        assert sample(client, NAMES.canary_stopped) == 0
        answered = client.post("/predict/batch", json=batch)
        assert answered.json()["model"]["version"] == candidate.version


def test_inputs_are_counted_in_the_stable_models_bins_whoever_answers(
    rolled: tuple[TestClient, list[dict[str, Any]]], toy_trained: tuple[ModelArtifact, Split]
) -> None:
    client, rows = rolled
    for row in rows[:50]:
        client.post("/predict", json=row, headers={"X-Model-Variant": "canary"})
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    baseline = {(s.labels["feature"], s.labels["bin"]) for s in families[NAMES.training_input_share].samples}
    counted: Counter[str] = Counter()
    for s in families[NAMES.input_values_total.removesuffix("_total")].samples:
        assert (s.labels["feature"], s.labels["bin"]) in baseline
        counted[s.labels["feature"]] += int(s.value)
    assert counted
    assert set(counted.values()) == {50}


def test_the_services_outcomes_and_attributions_are_the_stable_models_and_each_variant_has_its_own(
    rolled: tuple[TestClient, list[dict[str, Any]]], toy_trained: tuple[ModelArtifact, Split]
) -> None:
    # model_info names the stable version, and the drift rules join these series on it and set
    # them against its training baseline: a canary's answers there would be another model's.
    client, rows = rolled
    stable = Counter[str]()
    attributions = {"stable": Counter[str](), "canary": Counter[str]()}
    for i, row in enumerate(rows[:50]):
        variant = "canary" if i % 5 < 3 else "stable"
        body = client.post("/predict?explain=true", json=row, headers={"X-Model-Variant": variant}).json()
        assert body["model"]["version"] == ("2" if variant == "canary" else toy_trained[0].version)
        if variant == "stable":
            stable[ToyModel(toy_trained[0]).outcome(body)] += 1
        for feature, value in body["explanation"]["contributions"].items():
            attributions[variant][feature] += abs(value)
    assert stable.total() == 20
    assert len(stable) == 2, stable  # both outcomes are checked with counts above 0
    for outcome in ("high", "low"):
        assert sample(client, NAMES.predictions_total, outcome=outcome) == stable[outcome]
        variant_count = sample(client, NAMES.variant_predictions_total, variant="stable", outcome=outcome)
        assert variant_count == stable[outcome]
    canary = sum(
        sample(client, NAMES.variant_predictions_total, variant="canary", outcome=outcome)
        for outcome in ("high", "low")
    )
    assert canary == 30
    assert sample(client, NAMES.explanations_total) == 20
    assert sample(client, f"{NAMES.explanation_latency_seconds}_count") == 50  # the time is the service's
    for feature, total in attributions["stable"].items():
        assert sample(client, NAMES.attribution_abs_sum_total, feature=feature) == pytest.approx(total)
    # The variant series hold both, so what each model weighs can be set side by side.
    assert attributions["stable"] != attributions["canary"]
    for variant, count in (("stable", 20), ("canary", 30)):
        assert sample(client, NAMES.variant_explanations_total, variant=variant) == count
        for feature, total in attributions[variant].items():
            got = sample(client, NAMES.variant_attribution_abs_sum_total, variant=variant, feature=feature)
            assert got == pytest.approx(total)


def test_each_variant_counts_its_own_inputs_outside_and_the_service_the_stable_models_alone(
    rolled: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, rows = rolled
    # At zero from the canary's load, for both variants: rate() sees the first answer outside.
    for variant in ("stable", "canary"):
        assert sample(client, NAMES.variant_inputs_outside_training_total, variant=variant, feature="x") == 0
    outside = Counter[str]()
    for i, row in enumerate(rows[:40]):
        variant = "canary" if i % 2 else "stable"
        # Every third request at the request schema's edge, past both models' training rows.
        sent = {**row, "x": 10.0} if i % 3 == 0 else row
        body = client.post("/predict", json=sent, headers={"X-Model-Variant": variant}).json()
        outside[variant] += any(item["field"] == "x" for item in body["outside_training"])
    assert outside["stable"] > 0
    assert outside["canary"] > 0
    for variant in ("stable", "canary"):
        got = sample(client, NAMES.variant_inputs_outside_training_total, variant=variant, feature="x")
        assert got == outside[variant]
    # The service's series is the stable model's, whose ranges the alert reads.
    assert sample(client, NAMES.inputs_outside_training_total, feature="x") == outside["stable"]


def test_without_a_canary_there_are_no_variant_series_and_asking_for_one_is_404(
    toy_client: TestClient, toy_trained: tuple[ModelArtifact, Split]
) -> None:
    row = request_rows(toy_trained[1], 1)[0]
    assert toy_client.post("/predict", json=row, headers={"X-Model-Variant": "stable"}).status_code == 200
    asked = toy_client.post("/predict", json=row, headers={"X-Model-Variant": "canary"})
    assert asked.status_code == 404
    assert asked.json()["fields"][0]["field"] == "header.x-model-variant"
    exposition = toy_client.get("/metrics").text
    assert "variant_" not in exposition
    assert "canary_" not in exposition
    assert toy_client.get("/model").json()["canary"] is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, Route()),
        ({"x-model-variant": " CANARY "}, Route("canary")),
        ({"x-routing-key": "c-1"}, Route(None, "c-1")),
    ],
)
def test_route_from_headers(headers: dict[str, str], expected: Route) -> None:
    assert Route.from_headers(headers.get) == expected


def test_a_long_wrong_variant_is_quoted_by_its_start_alone() -> None:
    variant = "b" * 100_000 + "\x1b[2J"
    with pytest.raises(ServekitError) as wrong:
        Route.from_headers({"x-model-variant": variant}.get, where="metadata.")
    problem = f"must be one of stable, canary; got {'b' * 20!r}... (100004 characters)"
    assert wrong.value.message == f"metadata.x-model-variant: {problem}"
    assert [field.problem for field in wrong.value.fields] == [problem]


class LoadedCanary:
    """The canary's runtime as the router sees it: the model loaded, or None."""

    def __init__(self, model: ToyModel | None) -> None:
        self.model = model
        self.ended: str | None = None

    def end_when_missing(self, on_end: Any) -> None:
        pass


def test_each_choice_says_how_it_was_made(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> None:
    """Only a drawn answer is part of the experiment ``mlp evaluate`` scores: the router says
    which answers were drawn, asked for, or the canary's share answered by the stable model."""
    stable, canary = ToyModel(toy_trained[0]), ToyModel(candidate)
    runtime = LoadedCanary(canary)
    draws = iter([0.10, 0.60] * 4)  # at 50 %: the canary's share, then the stable one
    router = CanaryRouter(
        runtime,  # type: ignore[arg-type]
        CanaryMetrics(NAMES, CollectorRegistry()),
        uri="models:/toy@canary",
        traffic_percent=50,
        stop_failure_ratio=0.0,  # any failure, once enough are judged, stops it
        draw=lambda: next(draws),
    )

    def chosen(route: Route = UNROUTED) -> tuple[str, str, str]:
        choice = router.choose(stable, route)
        return choice.variant, choice.model.artifact.version, choice.routed

    stable_version = stable.artifact.version
    # Both models can answer: drawn, by the share or by the key's place.
    assert [chosen(), chosen()] == [("canary", "2", DRAWN), ("stable", stable_version, DRAWN)]
    low = next(f"k{i}" for i in range(100) if percentile_of(f"k{i}") < 50)
    assert chosen(Route(key=low)) == ("canary", "2", DRAWN)
    # Asked for by the request, whatever the share.
    assert chosen(Route("canary")) == ("canary", "2", ASKED)
    assert chosen(Route("stable")) == ("stable", stable_version, ASKED)
    # The canary loading: its share falls back to the stable model; the stable share is alone.
    runtime.model = None
    assert [chosen(), chosen()] == [("stable", stable_version, FALLBACK), ("stable", stable_version, ALONE)]
    # Stopped on this pod: the same.
    runtime.model = canary
    for _ in range(MIN_JUDGED_REQUESTS):
        router.answered("canary", canary, 0.01, failed=True)
    assert router.stopped is not None
    assert [chosen(), chosen()] == [("stable", stable_version, FALLBACK), ("stable", stable_version, ALONE)]
    # The canary is the stable version (promoted): one model answers everything.
    runtime.model = stable
    assert [chosen(), chosen()] == [("stable", stable_version, ALONE), ("stable", stable_version, ALONE)]


def test_each_captured_answer_says_how_its_model_was_chosen(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    artifact, data = toy_trained
    rows = request_rows(data, 40)
    infer = {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [1], "data": [rows[0]["x"]]},
            {"name": "color", "datatype": "BYTES", "shape": [1], "data": [rows[0]["color"]]},
        ]
    }
    with (
        canary_app(
            artifact, candidate, canary_traffic_percent=50, capture_percent=100, log_format="json"
        ) as client,
        caplog.at_level(logging.INFO, logger="servekit.capture"),
    ):
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        for i, row in enumerate(rows):
            assert (
                client.post("/predict", json=row, headers={"X-Routing-Key": f"customer-{i}"}).status_code
                == 200
            )
        assert client.post("/predict", json=rows[0], headers={"X-Model-Variant": "canary"}).status_code == 200
        assert client.post("/v2/models/toy/versions/2/infer", json=infer).status_code == 200
    captures = [r.json_fields["capture"] for r in caplog.records if r.name == "servekit.capture"]  # type: ignore[attr-defined]
    assert len(captures) == len(rows) + 2
    keyed = captures[: len(rows)]
    assert {c["routed"] for c in keyed} == {DRAWN}
    assert [c["variant"] for c in keyed] == [
        "canary" if percentile_of(f"customer-{i}") < 50 else "stable" for i in range(len(rows))
    ]
    assert [(c["variant"], c["routed"]) for c in captures[len(rows) :]] == [("canary", ASKED)] * 2


@pytest.mark.parametrize("text", ["abc", "-1", "100.5", "nan", "inf", ""])
def test_a_share_is_a_percentage(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_share(text)
    assert parse_share("12.5") == 12.5


def test_the_registrys_share_overrides_the_setting_and_a_bad_one_changes_nothing(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    """``mlp canary --percent`` and ``mlp rollout --ramp`` move the share through the registry:
    each pod takes it at its next check, without a restart."""
    stable, canary = ToyModel(toy_trained[0]), ToyModel(candidate)
    draws = itertools.cycle([i / 100 + 0.005 for i in range(100)])  # a request at each percentile
    registry = CollectorRegistry()
    router = CanaryRouter(
        LoadedCanary(canary),  # type: ignore[arg-type]
        CanaryMetrics(NAMES, registry),
        uri="models:/toy@canary",
        traffic_percent=10,
        draw=lambda: next(draws),
        share_probe=lambda: None,
    )

    def canary_share() -> int:
        """Of 100 requests, one at each percentile, how many the canary answers."""
        return sum(router.choose(stable).variant == "canary" for _ in range(100))

    assert canary_share() == 10
    caplog.set_level(logging.INFO, logger="servekit.routing")
    router.apply_share("40")
    router.apply_share("40")  # the same share again: nothing to say
    assert (router.traffic_percent, router.share_from, canary_share()) == (40, "registry", 40)
    assert registry.get_sample_value(NAMES.canary_traffic_percent) == 40  # the dashboard's "set"
    assert [r.message for r in caplog.records] == ["canary share is now 40% (from the registry; was 10%)"]
    # A tag that is no percentage: the share stays, and the reason is said once and shown.
    router.apply_share("lots")
    router.apply_share("lots")
    assert (router.traffic_percent, canary_share()) == (40, 40)
    assert router.share_error == "the registry's canary.traffic_percent tag: 'lots' is not a number"
    assert sum("canary share stays 40%" in r.message for r in caplog.records) == 1
    # No tag any more (the rollout ended): the pod's own setting again.
    router.apply_share(None)
    assert (router.traffic_percent, router.share_from, router.share_error) == (10, "setting", None)
    assert registry.get_sample_value(NAMES.canary_traffic_percent) == 10


def test_following_the_share_survives_a_registry_that_cannot_be_read(
    candidate: ModelArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[str | Exception] = [RuntimeError("connection refused"), "30"]

    def probe() -> str:
        answer = answers.pop(0) if answers else "30"  # the registry back, with the tag set
        if isinstance(answer, Exception):
            raise answer
        return answer

    router = CanaryRouter(
        LoadedCanary(ToyModel(candidate)),  # type: ignore[arg-type]
        CanaryMetrics(NAMES, CollectorRegistry()),
        uri="models:/toy@canary",
        traffic_percent=10,
        share_probe=probe,
    )

    async def follow_twice() -> None:
        task = asyncio.create_task(router.follow_share(0.01))
        while answers:
            await asyncio.sleep(0.005)
            if router.share_error:
                assert router.traffic_percent == 10  # the share stays while the registry is down
        await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(follow_twice())
    assert (router.traffic_percent, router.share_from, router.share_error) == (30, "registry", None)
    assert any(
        "stays 10%: reading the registry: RuntimeError: connection refused" in r.message
        for r in caplog.records
    )


class CanaryAlias:
    """The registry as a canary's runtime sees it: the version its alias names (None: deleted)."""

    def __init__(self, artifact: ModelArtifact) -> None:
        self.artifact = artifact
        self.alias: str | None = "2"
        self.broken: set[str] = set()

    def probe(self) -> str:
        if self.alias is None:
            raise ModelLoadError("resolving models:/toy@canary: alias canary not found", missing=True)
        return self.alias

    def source(self) -> ModelArtifact:
        version = self.probe()
        if version in self.broken:
            raise ValueError(f"version {version}: BadZipFile: File is not a zip file")
        return dataclasses.replace(self.artifact, version=version, run_id=f"run-{version}")


def following_router(alias: CanaryAlias, registry: CollectorRegistry) -> CanaryRouter:
    runtime = ModelRuntime(
        ToyModel, alias.source, CanaryMetrics(NAMES, registry), probe=alias.probe, refresh_interval=10,
        role="canary model",
    )  # fmt: skip
    router = CanaryRouter(
        runtime,
        runtime._metrics,
        uri="models:/toy@canary",
        traffic_percent=100,  # type: ignore[arg-type]
    )
    asyncio.run(runtime.load_until_ready())
    return router


def test_a_canary_version_that_does_not_load_is_exported_and_the_previous_one_answers(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> None:
    """Until then the pod kept answering the share with the old canary, and nothing said so."""
    alias, registry = CanaryAlias(candidate), CollectorRegistry()
    router = following_router(alias, registry)
    stable = ToyModel(toy_trained[0])
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 0
    alias.alias, alias.broken = "4", {"4"}
    asyncio.run(router.runtime.refresh())
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 1
    assert registry.get_sample_value(NAMES.model_refresh_failing) is None  # the served model's own
    assert router.choose(stable).model.artifact.version == "2"
    assert router.status(stable)["refresh"]["error"].startswith("retrying version 4 in 10s: ValueError")
    alias.broken = set()
    router.runtime._failed = None  # the retry is due
    asyncio.run(router.runtime.refresh())
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 0
    assert router.choose(stable).model.artifact.version == "4"


def test_a_canary_whose_alias_is_deleted_gets_no_share_until_it_names_a_version_again(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    alias, registry = CanaryAlias(candidate), CollectorRegistry()
    router = following_router(alias, registry)
    stable = ToyModel(toy_trained[0])
    assert router.choose(stable).variant == "canary"  # 100 %
    alias.alias = None
    # The refreshes' lines only: the canary's load above says it is ready at INFO when an earlier
    # test on this worker left servekit's loggers at INFO.
    before = len(caplog.records)
    with caplog.at_level(logging.INFO, logger="servekit.runtime"):
        for _ in range(3):
            asyncio.run(router.runtime.refresh())
    refreshes = caplog.records[before:]
    assert [router.choose(stable).routed for _ in range(5)] == [ALONE] * 5
    assert registry.get_sample_value(NAMES.canary_fallbacks_total, {"reason": "not_ready"}) == 0
    assert registry.get_sample_value(NAMES.canary_model_info, {"version": "2", "run_id": "run-2"}) is None
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 0  # ended, not failing
    status = router.status(stable)
    assert (status["version"], status["receiving_percent"]) == (None, 0.0)
    assert status["ended"].startswith("its alias names no version any more (ModelLoadError: resolving")
    with pytest.raises(ServekitError, match="canary model not ready: its alias names no version any more"):
        router.choose(stable, Route("canary"))
    # Only this thread's lines (the refreshes above run on it): an earlier test's app, still
    # stopping on threads of its own, could add one (seen once under -n 2, not reproduced).
    said = [r.message for r in refreshes if r.thread == threading.get_ident() and "canary model" in r.message]
    assert len(said) == 1, said  # once, not at every check
    assert said[0].startswith("canary model ended: version 2 is no longer served")
    alias.alias = "3"  # a new canary: it loads and gets its share again
    asyncio.run(router.runtime.refresh())
    assert router.choose(stable).model.artifact.version == "3"
    assert router.status(stable)["ended"] is None


def test_a_deleted_canary_alias_set_again_to_a_version_that_will_not_load_is_a_failing_canary(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> None:
    """Not "ended": the alias names a version again. Its share falls back as not ready, counted,
    and the refresh failure is exported, so CanaryRefreshFailing (which needs no version) fires."""
    alias, registry = CanaryAlias(candidate), CollectorRegistry()
    router = following_router(alias, registry)
    stable = ToyModel(toy_trained[0])
    alias.alias = None
    asyncio.run(router.runtime.refresh())
    alias.alias, alias.broken = "5", {"5"}
    for _ in range(3):
        router.runtime._failed = None  # each retry is due
        asyncio.run(router.runtime.refresh())
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 1
    assert [router.choose(stable).routed for _ in range(3)] == [FALLBACK] * 3
    assert registry.get_sample_value(NAMES.canary_fallbacks_total, {"reason": "not_ready"}) == 3
    status = router.status(stable)
    assert status["ended"] is None
    assert "retrying version 5" in status["refresh"]["error"]
    alias.alias, alias.broken = None, set()  # deleted again: ended again, and no longer failing
    asyncio.run(router.runtime.refresh())
    assert router.status(stable)["ended"].startswith("its alias names no version any more")
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 0
    alias.alias = "3"
    router.runtime._failed = None
    asyncio.run(router.runtime.refresh())
    assert router.choose(stable).model.artifact.version == "3"
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 0


def starting_router(alias: CanaryAlias, registry: CollectorRegistry, before_each_load: Any) -> CanaryRouter:
    """A canary's router on a pod just started, calling ``before_each_load(attempt)`` before each
    load (its first-load retries without a wait)."""
    attempts = itertools.count(1)

    def source() -> ModelArtifact:
        before_each_load(next(attempts))
        return alias.source()

    metrics = CanaryMetrics(NAMES, registry)
    runtime = ModelRuntime(
        ToyModel, source, metrics, probe=alias.probe, refresh_interval=10, initial_delay=0,
        role="canary model",
    )  # fmt: skip
    return CanaryRouter(runtime, metrics, uri="models:/toy@canary", traffic_percent=100)


def test_a_canary_that_fails_its_first_loads_is_a_failing_canary_until_it_loads(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> None:
    """A pod started (or restarted) while the canary alias named a broken version exported 0:
    the stable model answered the share for good, and a restart resolved CanaryRefreshFailing."""
    alias, registry = CanaryAlias(candidate), CollectorRegistry()
    alias.broken = {"2"}
    stable = ToyModel(toy_trained[0])
    seen: list[tuple[float | None, str]] = []

    def before_each_load(attempt: int) -> None:
        seen.append((registry.get_sample_value(NAMES.canary_refresh_failing), router.choose(stable).routed))
        if attempt == 3:
            alias.broken = set()  # mended: the third attempt loads

    router = starting_router(alias, registry, before_each_load)
    asyncio.run(router.runtime.load_until_ready())
    assert seen == [(0, FALLBACK), (1, FALLBACK), (1, FALLBACK)]
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 0
    assert registry.get_sample_value(NAMES.model_refresh_failing) is None  # the served model's own
    assert router.choose(stable).model.artifact.version == "2"


def test_a_canary_alias_that_names_no_version_at_start_is_not_a_failing_canary(
    toy_trained: tuple[ModelArtifact, Split], candidate: ModelArtifact
) -> None:
    """As once the alias is deleted: nothing is asked to load. Once it names a broken version, it is."""
    alias, registry = CanaryAlias(candidate), CollectorRegistry()
    alias.broken = {"5"}
    seen: list[float | None] = []

    def before_each_load(attempt: int) -> None:
        seen.append(registry.get_sample_value(NAMES.canary_refresh_failing))
        alias.alias = {1: None, 2: "5"}.get(attempt, "3")

    router = starting_router(alias, registry, before_each_load)
    asyncio.run(router.runtime.load_until_ready())
    assert seen == [0, 0, 1]  # not failing while the alias was gone; failing once v5 did not load
    assert registry.get_sample_value(NAMES.canary_refresh_failing) == 0
    assert router.runtime.require().artifact.version == "3"


def test_asking_for_a_canary_where_none_is_served_names_the_variable_that_would_set_one(
    toy_client: TestClient,
) -> None:
    row = {"x": 1.0, "color": "red"}
    for response in (
        toy_client.post("/predict", json=row, headers={"X-Model-Variant": "canary"}),
        toy_client.get("/model/card", params={"variant": "canary"}),
    ):
        assert response.status_code == 404, response.text
        assert (
            response.json()["message"] == "no canary model is served here (TOY_CANARY_MODEL_URI is not set)"
        )
