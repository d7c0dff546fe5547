"""The primary metric per group of held-out rows: does the model serve every group alike?

A single held-out ROC AUC can hide a model that ranks one country's customers well and another's
barely better than chance. A recipe names its groups (``TrainingRecipe.segments``: BankChurn's
customers by country, gender and age band, say); each group's metric gets its own bootstrap
interval from the same held-out outputs, so a reviewer sees which gaps are beyond the noise of a
few hundred rows. A group with too few rows (or, for ROC AUC, one class only) is listed with
its size and why it has no figure, rather than left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from servekit.training import uncertainty

if TYPE_CHECKING:
    from servekit.training.recipe import TrainingRecipe

#: Held-out rows a group needs for a figure: below it, the interval is wider than any gap it shows.
MIN_SEGMENT_ROWS = 100
#: A binary model's calibration in the large, per group: its mean predicted probability minus the
#: share whose truth is positive. A ranking figure (ROC AUC) says nothing of it: a model can rank a
#: group's customers well and still under-state every one's probability (the real file's under-35s:
#: 0.08 predicted, 0.11 observed), which a probability read as a risk then under-states.
CALIBRATION_GAP = "calibration_gap"


def _calibration_gap(target: NDArray[Any], output: NDArray[Any]) -> float:
    return float(np.mean(output) - np.mean(target))


def _drawn_calibration_gap(target: NDArray[Any], output: NDArray[Any]) -> uncertainty.DrawnScore:
    difference = np.asarray(output, dtype=float) - np.asarray(target, dtype=float)
    return lambda counts: float(counts @ difference / counts.sum())


CALIBRATION = uncertainty.PrimaryMetric("positive_probability", _calibration_gap, _drawn_calibration_gap)


def segment_metrics(
    recipe: TrainingRecipe, features: pd.DataFrame, target: Any, outputs: Any, *, seed: int = 0
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{dimension: {group: {rows, <metric>, <metric>_ci_low, <metric>_ci_high} or {rows, note}}}``."""
    return group_metrics(recipe, recipe.segments(features), target, outputs, seed=seed)


def group_metrics(
    recipe: TrainingRecipe,
    groups: Mapping[str, pd.Series],
    target: Any,
    outputs: Any,
    *,
    seed: int = 0,
    min_rows: int = MIN_SEGMENT_ROWS,
    rows_are: str = "held-out rows",
) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`segment_metrics` of rows whose groups are known (a group label per row, per dimension).

    ``rows_are`` names the rows in a group's note: held-out rows at training, live answers later.
    """
    primary, key = recipe.primary(), recipe.primary_metric
    target, outputs = np.asarray(target), np.asarray(outputs)
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for dimension, labels in groups.items():
        figures: dict[str, dict[str, Any]] = {}
        for group, mask in each_group(labels):
            rows = int(mask.sum())
            entry: dict[str, Any] = {"rows": rows}
            if rows < min_rows:
                entry["note"] = fewer_than(min_rows, rows_are)
            elif primary.output == "positive_probability" and len(np.unique(target[mask])) < 2:
                entry["note"] = f"one class only among its {rows_are}"
            else:
                interval = uncertainty.interval(primary, target[mask], outputs[mask], seed=seed)
                entry.update(
                    {key: interval.estimate, f"{key}_ci_low": interval.low, f"{key}_ci_high": interval.high}
                )
                if primary.output == "positive_probability":
                    entry.update(calibration(target[mask], outputs[mask], seed))
            figures[group] = entry
        found[dimension] = figures
    return found


def calibration(target: NDArray[Any], probability: NDArray[Any], seed: int) -> dict[str, float]:
    """A group's mean predicted probability, its share positive in truth, and the gap between them
    (:data:`CALIBRATION_GAP`) with its bootstrap interval."""
    gap = uncertainty.interval(CALIBRATION, target, probability, seed=seed)
    return {
        "mean_predicted": float(np.mean(probability)),
        "positive_share": float(np.mean(target)),
        CALIBRATION_GAP: gap.estimate,
        f"{CALIBRATION_GAP}_ci_low": gap.low,
        f"{CALIBRATION_GAP}_ci_high": gap.high,
    }


def each_group(labels: pd.Series) -> Iterator[tuple[str, NDArray[np.bool_]]]:
    """Each group of one dimension, in :func:`group_order`, with the mask of its rows."""
    values = np.asarray(labels.astype(str), dtype=object)
    for group in group_order(labels):
        yield group, values == group


def fewer_than(min_rows: int, rows_are: str) -> str:
    """The note of a group too small for a figure."""
    return f"fewer than {min_rows} {rows_are}"


def group_order(labels: pd.Series) -> list[str]:
    """A categorical's groups in their declared order (age bands low to high), else sorted."""
    present = set(labels.astype(str).unique())  # not a set of every row: 400,000 live answers
    if isinstance(labels.dtype, pd.CategoricalDtype):
        return [str(c) for c in labels.cat.categories if str(c) in present]
    return sorted(present)


def metric_name(part: str) -> str:
    """``part`` with every character MLflow refuses in a metric name replaced by ``_``."""
    return re.sub(r"[^\w\-. :/]", "_", part)


def as_run_metrics(segments: dict[str, dict[str, dict[str, Any]]], key: str) -> dict[str, float]:
    """The figures as MLflow metrics: ``segment.<dimension>.<group>.<metric>`` (and the row counts)."""
    metrics: dict[str, float] = {}
    for dimension, groups in segments.items():
        for group, entry in groups.items():
            prefix = f"segment.{metric_name(dimension)}.{metric_name(group)}"
            metrics[f"{prefix}.rows"] = float(entry["rows"])
            for figure in (key, CALIBRATION_GAP):
                if figure in entry:
                    metrics[f"{prefix}.{figure}"] = float(entry[figure])
    return metrics


#: The serving metadata's record of the order training reported its groups in: the recipe's
#: dimensions, each with its groups in :func:`group_order` (age bands low to high). The MLmodel
#: file MLflow keeps the metadata in sorts every mapping's keys, and lists keep their order.
ORDER = "group_order"


def order_of(segments: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What :data:`ORDER` holds of ``segments`` (of :func:`segment_metrics`)."""
    return [{"dimension": dimension, "groups": list(groups)} for dimension, groups in segments.items()]


def in_recipe_order(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` with its ``segments`` and ``parity`` groups in the order :data:`ORDER` records;
    as given for a model trained before it was recorded (or without groups).

    A dimension or group the record does not name keeps its place after those it does.
    """
    recorded = metadata.get(ORDER)
    if not isinstance(recorded, list) or not recorded:
        return metadata
    order = {str(entry["dimension"]): [str(group) for group in entry["groups"]] for entry in recorded}
    restored = dict(metadata)
    segments = metadata.get("segments")
    if isinstance(segments, Mapping):
        restored["segments"] = {
            dimension: _ordered(segments[dimension], order.get(dimension, []))
            for dimension in _ordered_keys(segments, list(order))
        }
    parity = metadata.get("parity")
    if isinstance(parity, Mapping):
        restored["parity"] = {
            dimension: _parity_in_order(parity[dimension], order.get(dimension, []))
            for dimension in _ordered_keys(parity, list(order))
        }
    return restored


def _parity_in_order(found: Any, groups: list[str]) -> Any:
    """One dimension's decision rates (``parity.group_parity``), groups and gaps in their order."""
    from servekit.training.parity import figures_of  # parity imports this module

    if not isinstance(found, Mapping) or not isinstance(found.get("groups"), Mapping):
        return found
    restored = {**found, "groups": _ordered(found["groups"], groups)}
    if isinstance(found.get("gaps"), Mapping):
        restored["gaps"] = _ordered(found["gaps"], figures_of(found))
    return restored


def _ordered_keys(mapping: Mapping[str, Any], order: list[str]) -> list[str]:
    return [key for key in order if key in mapping] + [key for key in mapping if key not in order]


def _ordered(mapping: Any, order: list[str]) -> Any:
    if not isinstance(mapping, Mapping):
        return mapping
    return {key: mapping[key] for key in _ordered_keys(mapping, order)}
