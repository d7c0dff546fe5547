"""Capture logs, truth and recipes for the ``mlp evaluate`` tests (``test_evaluation_*``)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from toy import TOY, ToyRecipe

from servekit import evaluation
from servekit.evaluation import (
    Grouper,
    assess,
    join,
    render,
)
from servekit.replay.capture_lines import read_lines
from servekit.routing import ALONE, DRAWN
from servekit.training import parity
from servekit.training.uncertainty import Interval


def capture_line(
    request_id: str,
    instance: int,
    row: dict[str, Any],
    answer: dict[str, Any],
    variant: str = "stable",
    *,
    answered_at: str | None = None,
    routed: str | None = None,
    **model: str,
) -> str:
    """A capture as the service logs it in JSON (``model``: version, and name when not toy's);
    without ``answered_at`` or ``routed`` as the lines written before captures held them."""
    capture = (
        {
            "model": {"name": "toy", "version": "1"} | model,
            "variant": variant,
            "instance": instance,
            "input": row,
            "prediction": answer,
        }
        | ({"answered_at": answered_at} if answered_at else {})
        | ({"routed": routed} if routed else {})
    )
    return json.dumps({"logger": "servekit.capture", "request_id": request_id, "capture": capture})


START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def at(second: int) -> str:
    return (START + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")


def canary_log(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], *, timed: bool = True
) -> list[str]:
    """v1 for 100 requests, a dollar off (another season's fares, say; drawn beside an earlier
    canary), then v2 as the canary of every other request, both answering alike; then v2,
    promoted, alone. Without ``timed``, as the lines written before captures held their time
    and routing."""
    rows, answers, _ = served
    lines = []
    drawn = DRAWN if timed else None
    for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        when = at(i) if timed else None
        if i < 100:
            off = {"value": answer["value"] + 1.0}
            lines.append(
                capture_line(f"r{i}", 0, row, off, "stable", answered_at=when, routed=drawn, version="1")
            )
        else:
            variant, version = ("canary", "2") if i % 2 else ("stable", "1")
            lines.append(
                capture_line(
                    f"r{i}", 0, row, answer, variant, answered_at=when, routed=drawn, version=version
                )
            )
    for i, (row, answer) in enumerate(zip(rows[:100], answers[:100], strict=True)):
        when = at(400 + i) if timed else None
        alone = ALONE if timed else None
        lines.append(
            capture_line(f"later-{i}", 0, row, answer, "stable", answered_at=when, routed=alone, version="2")
        )
    return lines


def judged(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    lines: list[str],
    *,
    later_truth: bool = False,
    min_rows: int = 50,
    extra_truth: dict[tuple[str, int], Any] | None = None,
) -> tuple[list[evaluation.CanaryComparison], str]:
    """The canaries compared, and the report; ``later_truth``: the promoted v2's truth is known."""
    grouper = Grouper(TOY.recipe)
    truth = {(f"r{i}", 0): y for i, y in enumerate(served[2])} | (extra_truth or {})
    if later_truth:
        truth |= {(f"later-{i}", 0): y for i, y in enumerate(served[2][:100])}
    joined = join(read_lines(lines), "toy", grouper, truth)
    qualities = [assess(a, grouper, None) for a in joined.versions]
    found = evaluation.compare_canaries(joined, grouper, min_rows=min_rows)
    return found, render(joined, qualities, "truth.csv", found)


class KeptRun:
    """The registry calls ``held_out_answers`` makes, answered from one run's artifact folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def list_artifacts(self, run_id: str) -> list[Any]:
        return [SimpleNamespace(path=p.name) for p in self.folder.iterdir()]

    def download_artifacts(self, run_id: str, path: str, destination: str) -> str:
        return shutil.copy(self.folder / path, destination)


class Offered(ToyRecipe):
    """A binary recipe whose answers carry a probability and the label the service gave."""

    task = "binary"
    primary_metric = "roc_auc"
    greater_is_better = True

    def served_output(self, prediction: dict[str, Any]) -> Any:
        return prediction["p"]

    def served_decision(self, prediction: dict[str, Any]) -> bool:
        return bool(prediction["label"] == "offer")

    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        return {"color": features["color"]}


def offered_log(rows: int = 600) -> tuple[list[str], dict[tuple[str, int], int], pd.DataFrame]:
    """Red customers offered at a lower probability (0.3) than blue ones (0.6), and their truth."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.uniform(0, 10, rows), "color": rng.choice(["red", "blue"], rows)})
    frame["truth"] = (rng.random(rows) < 0.3).astype(int)
    frame["p"] = np.clip(0.35 * frame["truth"] + rng.random(rows) * 0.65, 0, 1)
    frame["offered"] = frame["p"] >= np.where(frame["color"] == "red", 0.3, 0.6)
    lines = [
        capture_line(
            f"c{i}",
            0,
            {"x": row.x, "color": row.color},
            {"p": row.p, "label": "offer" if row.offered else "none"},
        )
        for i, row in enumerate(frame.itertuples())
    ]
    return lines, {(f"c{i}", 0): int(y) for i, y in enumerate(frame["truth"])}, frame


def held_out_rates(frame: pd.DataFrame, offered: pd.Series) -> dict[str, dict[str, Any]]:
    """The rates per colour ``mlp train`` would have reported for these rows and decisions."""
    return parity.group_parity(
        "binary", {"color": frame["color"]}, frame["truth"], offered.astype(float), threshold=0.5
    )


def shadowed_log(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], shadow_values: Any
) -> tuple[list[str], dict[tuple[str, int], Any]]:
    """Each row answered by v1 and, as its shadow, by v2 with ``shadow_values``, in one log."""
    rows, answers, truth = served
    lines = []
    for i, (row, answer, value) in enumerate(zip(rows, answers, shadow_values, strict=True)):
        lines.append(capture_line(f"r{i:04d}", 0, row, answer, routed="alone"))
        shadow = {"value": float(value)}
        lines.append(capture_line(f"r{i:04d}", 0, row, shadow, "shadow", routed="alone", version="2"))
    return lines, {(f"r{i:04d}", 0): y for i, y in enumerate(truth)}


class ByColour(ToyRecipe):
    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        return {"color": features["color"]}


class NormalSides:
    """Two versions whose difference for each group is ``estimate`` with a standard error of one,
    over the groups ``labels`` names; the group ``few`` has too few answers."""

    def __init__(
        self, estimate: float, few: str = "", labels: tuple[str, ...] = ("blue", "green", "red") * 2
    ):
        self.estimate, self.few = estimate, few
        self.labels = np.array(labels)
        self.levels: list[float] = []

    def rows(self, mask: np.ndarray) -> tuple[int, int | None]:
        return int(mask.sum()), None

    def why_none(self, mask: np.ndarray) -> str:
        return "too few" if self.few in set(self.labels[mask]) else ""

    def difference(self, mask: np.ndarray, level: float) -> Interval:
        self.levels.append(level)
        z = float(norm.ppf(1 - (1 - level) / 2))
        return Interval(self.estimate, self.estimate - z, self.estimate + z, level)
