"""Input bins fixed at training, counted at serving, and published as metrics."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import model_validator
from toy import TOY, ToyModel, ToyRequest

from servekit import input_drift
from servekit.inference import run_model
from servekit.input_drift import MISSING, OTHER, FeatureBins
from servekit.metrics import ServiceMetrics
from servekit.model import ModelArtifact, Record
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split, to_records


def test_a_continuous_input_gets_ten_bins_of_a_tenth_each() -> None:
    values = np.random.default_rng(0).normal(50, 10, 5000).tolist()
    [binning] = input_drift.fit({"x": values})
    assert binning.numeric
    assert len(binning.edges) == 9
    assert list(binning.edges) == sorted(binning.edges)
    shares = input_drift.shares([binning], {"x": values})["x"]
    assert set(shares) == {f"{i:02d}" for i in range(1, 11)} | {MISSING}
    assert all(shares[f"{i:02d}"] == pytest.approx(0.1, abs=0.002) for i in range(1, 11))
    assert shares[MISSING] == 0


def test_a_value_on_a_cut_point_falls_in_the_lower_bin() -> None:
    binning = FeatureBins("x", edges=(1.0, 2.0))
    assert [binning.bin_of(v) for v in (0.5, 1.0, 1.5, 2.0, 9.0)] == ["01", "01", "02", "02", "03"]


def test_repeated_values_merge_bins() -> None:
    flag = [0] * 300 + [1] * 700
    [binning] = input_drift.fit({"flag": flag})
    assert binning.labels == ("01", "02", MISSING)
    assert input_drift.shares([binning], {"flag": flag})["flag"] == {"01": 0.3, "02": 0.7, MISSING: 0.0}
    # 36% zeros (BankChurn's balances): the zeros are one bin, the rest is cut at deciles.
    balance = [0.0] * 360 + np.linspace(1, 1000, 640).tolist()
    [binning] = input_drift.fit({"balance": balance})
    assert binning.bin_of(0.0) == "01"
    assert input_drift.shares([binning], {"balance": balance})["balance"]["01"] == pytest.approx(0.36)


def test_a_categorical_input_keeps_its_most_frequent_values() -> None:
    values = [f"c{i}" for i in range(15) for _ in range(20 - i)] + [None] * 5
    [binning] = input_drift.fit({"company": values})
    assert not binning.numeric
    assert binning.categories == tuple(sorted(f"c{i}" for i in range(10)))
    assert binning.labels[-2:] == (OTHER, MISSING)
    assert binning.bin_of("c3") == "c3"
    assert binning.bin_of("c14") == OTHER
    assert binning.bin_of("never seen") == OTHER
    assert binning.bin_of(None) == MISSING


def test_missing_values_have_their_own_bin() -> None:
    [binning] = input_drift.fit({"x": [1.0, 2.0, None, math.nan, 3.0]})
    assert binning.bin_of(None) == MISSING
    assert binning.bin_of(math.nan) == MISSING
    assert input_drift.shares([binning], {"x": [1.0, None]})["x"][MISSING] == 0.5


def test_booleans_are_categories_not_numbers() -> None:
    [binning] = input_drift.fit({"flag": [True, False, True]})
    assert not binning.numeric
    assert binning.bin_of(True) == "True"


def test_bins_survive_the_model_metadata() -> None:
    bins = input_drift.fit({"x": list(range(100)), "color": ["red", "blue"] * 50})
    metadata = {"input_bins": [binning.as_json() for binning in bins]}
    assert input_drift.from_metadata(metadata) == tuple(bins)
    assert input_drift.from_metadata({}) == ()


def test_count_ignores_inputs_without_bins() -> None:
    bins = [FeatureBins("x", edges=(1.0,))]
    assert input_drift.count(bins, {"x": [0, 5, 5], "other": [1]}) == {("x", "01"): 1, ("x", "02"): 2}


def test_training_stores_bins_and_shares_the_service_counts_against(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, split = toy_trained
    metadata = artifact.metadata
    features = {b["feature"] for b in metadata["input_bins"]}
    assert {"x", "color"} <= features
    for shares in metadata["input_shares"].values():
        assert sum(shares.values()) == pytest.approx(1.0)
    metrics = ServiceMetrics("toy")
    metrics.set_model("1", "r", {}, {}, metadata["input_shares"])
    registry = metrics.registry
    labels = {"feature": "color", "bin": "red"}
    assert (
        registry.get_sample_value("toy_training_input_share", labels)
        == metadata["input_shares"]["color"]["red"]
    )
    # Every bin is exported at 0 before the first request, so rate() works from the start.
    assert registry.get_sample_value("toy_input_values_total", {"feature": "x", "bin": "01"}) == 0
    # A field the request may leave out has a missing bin; a required one has none.
    assert registry.get_sample_value("toy_input_values_total", {"feature": "note", "bin": MISSING}) == 0
    assert registry.get_sample_value("toy_input_values_total", {"feature": "x", "bin": MISSING}) is None

    model = TOY.model(artifact)
    records = to_records(split.x_test.head(40))
    run_model(model, records, explain=False, metrics=metrics)
    reds = sum(record["color"] == "red" for record in records)
    assert registry.get_sample_value("toy_input_values_total", labels) == reds
    x_total = sum(
        registry.get_sample_value("toy_input_values_total", {"feature": "x", "bin": label}) or 0
        for label in model.input_bins[[b.feature for b in model.input_bins].index("x")].labels
    )
    assert x_total == len(records)


def test_another_version_replaces_the_training_shares() -> None:
    metrics = ServiceMetrics("toy")
    metrics.set_model("1", "r1", {}, {}, {"x": {"01": 0.5, "02": 0.5, MISSING: 0.0}})
    metrics.set_model("2", "r2", {}, {}, {"y": {"01": 1.0, MISSING: 0.0}})
    registry = metrics.registry
    assert registry.get_sample_value("toy_training_input_share", {"feature": "x", "bin": "01"}) is None
    assert registry.get_sample_value("toy_training_input_share", {"feature": "y", "bin": "01"}) == 1.0


def test_another_version_drops_the_bins_it_does_not_have() -> None:
    metrics = ServiceMetrics("toy")
    metrics.set_model("1", "r1", {}, {}, {"g": {"France": 0.5, "Spain": 0.5, MISSING: 0.0}})
    metrics.count_inputs({("g", "France"): 3, ("g", "Spain"): 2})
    metrics.set_model("2", "r2", {}, {}, {"g": {"France": 0.6, "Germany": 0.4, MISSING: 0.0}})
    registry = metrics.registry

    def count(label: str) -> float | None:
        return registry.get_sample_value("toy_input_values_total", {"feature": "g", "bin": label})

    assert count("Spain") is None  # gone, not left at 2 for the pod's life
    assert count("France") == 3  # a counter carries on across versions
    assert count("Germany") == 0


def test_get_model_states_the_bins_and_their_training_shares(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    baselines = TOY.model(artifact).describe()["baselines"]
    assert baselines["input_shares"] == artifact.metadata["input_shares"]
    numeric = next(item for item in baselines["input_bins"] if item["feature"] == "x")
    assert numeric["edges"] == sorted(numeric["edges"])
    assert len(numeric["edges"]) == len(baselines["input_shares"]["x"]) - 1  # bins - 1; x is required


def test_a_failure_to_count_inputs_never_costs_the_prediction(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(ToyModel):
        def monitored_inputs(self, records: Sequence[Record]) -> dict[str, list[Any]]:
            raise RuntimeError("a bug in monitored_inputs")

    artifact, split = toy_trained
    model = Broken(dataclasses.replace(artifact, version="broken-inputs"))
    records = to_records(split.x_test.head(3))
    for _ in range(3):
        predictions = run_model(model, records, explain=False, metrics=ServiceMetrics("toy"))
        assert len(predictions) == 3
    assert caplog.text.count("counting inputs for drift failed (logged once for version broken-inputs)") == 1


def test_watch_inputs_false_exports_no_input_series(
    toy_trained: tuple[ModelArtifact, Split], monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact, split = toy_trained
    monkeypatch.setenv("TOY_WATCH_INPUTS", "false")
    app = create_app(TOY, load_settings("toy"), source=lambda: artifact)
    with TestClient(app) as client:
        wait_ready(client)
        rows = to_records(split.x_test.head(4))
        assert client.post("/predict/batch", json={"instances": rows}).status_code == 200
        text = client.get("/metrics").text
    assert "toy_predictions_total{" in text
    assert "toy_input_values_total{" not in text
    assert "toy_training_input_share{" not in text


TOY_SCHEMA = {
    "properties": {
        "x": {"type": "number"},
        "color": {"enum": ["red", "blue"], "type": "string"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "maybe": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    },
    "required": ["x", "color", "maybe"],
}


def test_only_required_non_nullable_fields_are_never_missing() -> None:
    assert input_drift.required_fields(TOY_SCHEMA) == {"x", "color"}
    assert input_drift.required_fields({}) == frozenset()


def test_a_required_input_has_no_missing_bin_and_shares_over_the_rows_with_a_value() -> None:
    # 30 % of the training rows lack x (ChicagoTaxi's unrecorded miles); no request can.
    values = [None] * 30 + list(range(70))
    [binning] = input_drift.fit({"x": values}, required={"x"})
    assert MISSING not in binning.labels
    shares = input_drift.shares([binning], {"x": values})["x"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["01"] == pytest.approx(0.1, abs=0.02)
    # At serving nothing is counted in a bin the baseline does not have.
    assert input_drift.count([binning], {"x": [None, 1]}) == {("x", "01"): 1}
    [optional] = input_drift.fit({"x": values})
    assert input_drift.shares([optional], {"x": values})["x"][MISSING] == pytest.approx(0.3)


def test_a_model_trained_before_required_inputs_lost_their_missing_bin_is_read_without_it() -> None:
    # As stored before: no "optional" in the bins, a missing share for required x.
    metadata = {
        "feature_schema": TOY_SCHEMA,
        "input_bins": [{"feature": "x", "edges": [1.0]}, {"feature": "note", "categories": ["a"]}],
        "input_shares": {
            "x": {"01": 0.35, "02": 0.35, MISSING: 0.3},
            "note": {"a": 0.5, OTHER: 0.2, MISSING: 0.3},
        },
    }
    x, note = input_drift.from_metadata(metadata)
    assert x.labels == ("01", "02")
    assert note.labels == ("a", OTHER, MISSING)
    shares = input_drift.training_shares(metadata)
    assert shares["x"] == pytest.approx({"01": 0.5, "02": 0.5})
    assert shares["note"] == metadata["input_shares"]["note"]
    # Without a logged schema nothing is known to be required: read as before.
    del metadata["feature_schema"]
    assert input_drift.training_shares(metadata)["x"] == metadata["input_shares"]["x"]
    assert all(binning.optional for binning in input_drift.from_metadata(metadata))


def test_a_model_trained_before_is_served_without_the_missing_bin_of_a_required_input() -> None:
    from types import SimpleNamespace

    from servekit.metrics import ServiceMetrics

    metadata = {
        "feature_schema": TOY_SCHEMA,
        "input_bins": [{"feature": "x", "edges": [1.0]}],
        "input_shares": {"x": {"01": 0.35, "02": 0.35, MISSING: 0.3}},
    }
    metrics = ServiceMetrics("toy")
    artifact = SimpleNamespace(version="1", run_id="r", metadata=metadata)
    served = SimpleNamespace(artifact=artifact, training_ranges=dict)
    metrics.model_served(served, {})  # type: ignore[arg-type]
    share = metrics.registry.get_sample_value
    assert share("toy_training_input_share", {"feature": "x", "bin": MISSING}) is None
    assert share("toy_training_input_share", {"feature": "x", "bin": "01"}) == pytest.approx(0.5)


def test_the_baseline_is_over_the_held_out_rows_a_request_can_be(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    from servekit.training import baselines

    artifact, data = toy_trained
    model = TOY.model(artifact)
    records = to_records(data.x_test)
    # Rows the API refuses (x over 10) that are all red: were they in the baseline, red's share
    # would be more than any request stream of the same kind could give.
    refused = [{"x": 11.0 + i % 5, "color": "red", "note": None} for i in range(len(records))]
    profile = baselines.input_profile(model, records + refused, TOY)
    assert profile["input_baseline"] == {
        "rows": len(records),
        "held_out_rows": 2 * len(records),
        "rows_from": baselines.REQUESTABLE,
    }
    # Shares and cut points alike are those of the accepted rows alone.
    assert profile == {
        **baselines.input_profile(model, records, TOY),
        "input_baseline": profile["input_baseline"],
    }
    reds = sum(record["color"] == "red" for record in records) / len(records)
    assert profile["input_shares"]["color"]["red"] == pytest.approx(reds)
    assert max(binning["edges"][-1] for binning in profile["input_bins"] if binning["feature"] == "x") <= 10


def test_a_baseline_that_no_held_out_row_can_be_requested_for_says_it_is_over_every_row(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    from servekit.training import baselines

    artifact, _ = toy_trained
    model = TOY.model(artifact)
    refused = [{"x": 12.0, "color": "red", "note": None}] * 5
    profile = baselines.input_profile(model, refused, TOY)
    assert profile["input_baseline"]["rows"] == 5
    assert profile["input_baseline"]["rows_from"].startswith("every held-out row: none of the 5 passes toy's")
    assert profile["input_shares"]["color"]["red"] == 1.0
    # A model of no installed service (the toy one): nothing to validate with, every row, said so.
    unknown = baselines.input_profile(model, refused)["input_baseline"]["rows_from"]
    assert "no installed service named 'toy'" in unknown


class BrokenRequest(ToyRequest):
    """A request schema with a bug: its validator raises a KeyError on blue, not a ValueError."""

    @model_validator(mode="after")
    def blue_breaks(self) -> BrokenRequest:
        if self.color == "blue":
            raise KeyError("shade")
        return self


def test_a_row_the_request_schema_breaks_on_is_left_out_and_training_goes_on(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    """The schema's KeyError, or json's TypeError on an odd value, failed `mlp train` with a traceback."""
    from servekit.training import baselines

    artifact, data = toy_trained
    model = TOY.model(artifact)
    records = to_records(data.x_test)
    reds = [record for record in records if record["color"] == "red"]
    odd = [{**reds[0], "note": {1, 2}}]  # a set: json.dumps raises TypeError
    broken = dataclasses.replace(TOY, request=BrokenRequest)
    with caplog.at_level(logging.WARNING, "servekit.training.baselines"):
        profile = baselines.input_profile(model, records + odd, broken)
    assert profile["input_baseline"] == {
        "rows": len(reds),
        "held_out_rows": len(records) + 1,
        "rows_from": baselines.REQUESTABLE,
    }
    assert profile["input_shares"]["color"]["red"] == 1.0
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith(
        f"toy: {len(records) - len(reds) + 1} of {len(records) + 1} held-out rows left out of the "
        "held-out figures and the input drift baseline: validating them raised KeyError: 'shade';"
    )
    # Every row broken: the baseline is over every row, said so, and training still goes on.
    everything = baselines.input_profile(model, [r for r in records if r["color"] == "blue"], broken)
    assert everything["input_baseline"]["rows_from"].startswith("every held-out row: none of the")
