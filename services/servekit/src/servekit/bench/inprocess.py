"""Latency of the model interface itself, one record per call, no HTTP."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from servekit.bench.stats import Latency
from servekit.inference import count_inputs
from servekit.metrics import ServiceMetrics
from servekit.model import Record, ServedModel
from servekit.models.trees import TreeModel


def time_calls(call: Callable[[Sequence[Record]], Any], records: Sequence[Record], seconds: float) -> Latency:
    """Call ``call([record])`` round-robin over ``records`` for ``seconds`` (after a short warm-up)."""
    return Latency.of(time_samples(call, records, seconds))


def time_samples(
    call: Callable[[Sequence[Record]], Any], records: Sequence[Record], seconds: float
) -> list[float]:
    """``time_calls``' seconds per call, each (for figures pooled over several runs)."""
    for record in records[:20]:  # a warm-up call per record, up to 20
        call([record])
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        record = records[i % len(records)]
        start = time.perf_counter()
        call([record])
        samples.append(time.perf_counter() - start)
        i += 1
    return samples


def measure(model: ServedModel, records: Sequence[Record], seconds: float) -> dict[str, Latency]:
    metrics = ServiceMetrics(model.artifact.name)
    measured = {
        "predict": time_calls(model.predict, records, seconds),
        "explain": time_calls(model.explain, records, seconds),
        # What serving adds per request for input drift: bin each watched input, count it.
        "input drift (bin + count)": time_calls(
            lambda batch: count_inputs(model, batch, metrics), records, seconds
        ),
    }
    if isinstance(model, TreeModel):
        # The reference for what every answer pays to list its inputs outside the training range
        # ("predict" includes it): the same model without its ranges, timed in the same run.
        measured["predict, no range check"] = time_calls(without_ranges(model).predict, records, seconds)
    return measured


def without_ranges(model: TreeModel) -> TreeModel:
    """A copy of ``model`` as if trained before ranges were kept: it checks none."""
    pipeline = copy.deepcopy(model.artifact.pipeline)
    encoder = pipeline.steps[0][1]
    del encoder.training_min_, encoder.training_max_
    return type(model)(dataclasses.replace(model.artifact, pipeline=pipeline))
