"""The in-process figures of ``make bench``: what each call costs, and its reference."""

from __future__ import annotations

from toy import ToyModel

from servekit.bench import inprocess
from servekit.model import ModelArtifact
from servekit.training.splitting import Split, to_records


def test_a_tree_model_is_timed_against_itself_without_the_range_check(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, split = toy_trained
    model = ToyModel(artifact)
    records = to_records(split.x_test.head(5))
    measured = inprocess.measure(model, records, seconds=0.05)
    assert set(measured) == {"predict", "explain", "input drift (bin + count)", "predict, no range check"}
    assert all(latency.p50_ms > 0 for latency in measured.values())
    # The reference answers alike, without the list; the served model is left as it was.
    bare = inprocess.without_ranges(model)
    assert [{**p, "outside_training": []} for p in bare.predict(records)] == model.predict(records)
    assert model.trees.encoder.training_ranges() is not None
