"""A model card: what a reviewer reads before trusting a model version.

It is rendered from exactly what ``GET /model`` returns, so the two cannot disagree: the data the
version was trained on, its held-out figures with their intervals, overall and per group of rows,
how its predictions are explained, what it weighs most, and the baselines its drift is measured
against. ``GET /model/card`` serves the card of the version being served, as Markdown, and
``mlp train`` logs the same card with the run (``model_card.md``) beside the model it describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from servekit.redaction import redact
from servekit.training.baselines import EVERY_ROW, REQUESTABLE
from servekit.training.parity import FOUR_FIFTHS, figures_of, meaning
from servekit.training.segments import CALIBRATION_GAP, MIN_SEGMENT_ROWS

if TYPE_CHECKING:
    from servekit.spec import ServiceSpec

#: The features listed under "What the model weighs most".
TOP_FEATURES = 10


def render(spec: ServiceSpec, described: Mapping[str, Any]) -> str:
    """The Markdown card of the model ``described`` (``ServedModel.describe()``)."""
    primary = spec.recipe.primary_metric
    metrics: Mapping[str, float] = described.get("training_metrics", {})
    lines = [
        f"# Model card: {described['name']} version {described['version']}",
        "",
        spec.description,
        "",
        "## Identity",
        "",
        "| | |",
        "|---|---|",
        f"| model | {described['name']} version {described['version']} |",
        # The URI the service loaded the model from, and the MLflow server it read it from; GET
        # /model masks both, and a card rendered from elsewhere is masked here too.
        f"| model URI | `{redact(described.get('uri') or '') or '-'}` |",
        f"| tracking server | `{redact(described.get('registry_uri') or '') or '-'}` |",
        f"| training run | `{described.get('run_id') or '-'}` |",
        f"| trained with code | {_code(described.get('code'))} |",
        f"| task | {spec.recipe.task}; promoted on held-out `{primary}` "
        f"({'higher' if spec.recipe.greater_is_better else 'lower'} is better) |",
        "",
    ]
    lines += _intended_use(spec)
    data = described.get("data", {})
    lines += _data(data)
    baselines = described.get("baselines", {})
    input_baseline = baselines.get("input_baseline", {})
    lines += _held_out(metrics, primary, data, input_baseline)
    lines += _segments(described.get("segments", {}), primary)
    lines += _parity(described.get("parity", {}), described.get("threshold"))
    lines += [
        "## How a prediction is explained",
        "",
        f"- **Scale:** {described.get('explanation_scale', '-')}.",
        f"- **Method:** {described.get('explanation_method', '-')}.",
        "",
    ]
    lines += _weighs_most(baselines.get("attribution_means", {}))
    threshold = described.get("threshold", metrics.get(THRESHOLD))
    if threshold is not None:
        lines += [
            "## Decision threshold",
            "",
            f"A prediction is labelled positive from a probability of {_number(threshold)}, "
            "chosen on out-of-fold predictions of the training rows, never on the held-out rows."
            + (f" {spec.recipe.threshold_rule}" if spec.recipe.threshold_rule else ""),
            "",
        ]
    lines += _outcomes(baselines.get("outcome_shares", {}))
    lines += _training_ranges(baselines.get("training_ranges", {}))
    lines += [
        "## Limits",
        "",
        f"- Every figure above comes from one held-out split ({_split_rows(data, input_baseline)}); "
        "the intervals (95 %, 1,000 bootstrap resamples) say how far another split of the same size "
        "could move it.",
        f"- A group with fewer than {MIN_SEGMENT_ROWS} held-out rows, or one class only, has no figure; "
        "its size is given.",
        "- Live traffic is compared with the baselines above: outcome, attribution and input drift "
        "alerts fire when it departs from them (`monitoring/runbooks.md`).",
        "",
    ]
    return "\n".join(lines)


def _code(code: Mapping[str, Any] | None) -> str:
    """The commit and packages that trained the version (``servekit.provenance``), as one cell."""
    if not code:
        return "not recorded (a version older than the record of its code)"
    revision = f"commit `{code['revision']}`" if code.get("revision") else "no git commit known"
    if code.get("modified"):
        revision += " with changes not committed"
    packages = ", ".join(f"{name} {version}" for name, version in code.get("packages", {}).items())
    return f"{revision}; {packages}" if packages else revision


def _training_ranges(ranges: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not ranges:
        return []
    lines = [
        "## Range of the training rows",
        "",
        "Beyond these the trees answer as at the nearest edge of what they saw; each answer lists its "
        "inputs outside them (`outside_training`).",
        "",
        "| model column | request field | min | max |",
        "|---|---|---|---|",
    ]
    for column, entry in ranges.items():
        # As stored, not rounded: an edge is what a value is held against (a balance, a year).
        low, high = f"{float(entry['min']):.10g}", f"{float(entry['max']):.10g}"
        lines.append(f"| {column} | {entry['field']} | {low} | {high} |")
    return [*lines, ""]


def _intended_use(spec: ServiceSpec) -> list[str]:
    """What the service states it is for and not for (``ServiceSpec`` requires both)."""
    return [
        "## Intended use",
        "",
        spec.intended_use,
        "",
        "Not for:",
        "",
        *(f"- {use}" for use in spec.not_for),
        "",
    ]


#: How the rows of the data are counted (``trainer.held_out_rows``), shown first under these names.
ROW_COUNTS = {
    "rows": "rows loaded (after the recipe's cleaning, if any)",
    "training_rows": "rows trained on",
    "held_out_rows": "rows held out",
    "held_out_scored_rows": "held-out rows scored",
}
#: Why held-out rows were left out of the figures, and which rows they are over, said in words.
LEFT_OUT, SCORED = "held_out_left_out", "held_out_scored"


def _data(data: Mapping[str, Any]) -> list[str]:
    if not data:
        return []
    lines = ["## Training data", "", "| | |", "|---|---|"]
    lines += [f"| {label} | {_value(data[key])} |" for key, label in ROW_COUNTS.items() if key in data]
    left = _left_out(data)
    if left:
        why = _value(data.get(LEFT_OUT, "-"))
        lines.append(f"| held-out rows left out | {left:,}: {why} |")
    # The rest by name, as the MLmodel file keeps them: the card logged at training reads as served.
    shown = {*ROW_COUNTS, LEFT_OUT, SCORED}
    lines += [f"| {key} | {_value(data[key])} |" for key in sorted(data) if key not in shown]
    return [*lines, ""]


def _split_rows(data: Mapping[str, Any], input_baseline: Mapping[str, Any]) -> str:
    """Which rows of the held-out split the figures are over, for the card's limits.

    Only a version whose data does not count the rows scored was trained before they were left
    out: a version trained since that leaves some out has an input baseline of fewer rows than
    held out too (ChicagoTaxi: 1,884 of 2,000), and its card said it was trained before.
    """
    if "held_out_scored_rows" not in data:
        if _every_row_then(data, input_baseline):
            return f"every row of it: {BEFORE_COUNTED}"
    elif _every_row_since(data):
        return str(data[SCORED])
    return "its rows a request can be, where the data has others"


def _every_row_since(data: Mapping[str, Any]) -> bool:
    """Whether the figures of a version trained since the rows were counted are over every held-out
    row, as too few (or none) of them are requests (``trainer.scored_rows``)."""
    return str(data.get(SCORED, "")).startswith(EVERY_ROW)


def _left_out(data: Mapping[str, Any]) -> int:
    """How many held-out rows the figures leave out; 0 for a model trained before they were counted."""
    if "held_out_scored_rows" not in data or "held_out_rows" not in data:
        return 0
    return int(data["held_out_rows"]) - int(data["held_out_scored_rows"])


def _scored_rows(data: Mapping[str, Any], input_baseline: Mapping[str, Any]) -> list[str]:
    """Which held-out rows the figures are over: those a request can be, and why the others are
    not; for a model trained before they were counted, see :func:`_every_row_then`."""
    if "held_out_scored_rows" not in data:
        return _every_row_then(data, input_baseline)
    scored, held_out = int(data["held_out_scored_rows"]), int(data.get("held_out_rows", 0))
    left = _left_out(data)
    if left:
        said = (
            f"Over the {scored:,} held-out rows a request can be. The other {left:,} of the "
            f"{held_out:,} held out are left out: {data.get(LEFT_OUT, '-')}."
        )
    elif _every_row_since(data):
        said = f"Over {data[SCORED]}."
    else:
        said = f"Over the {scored:,} held-out rows, each of which a request can be."
    return [said, ""]


#: What the card says of the figures of a model trained before they were over the rows a request
#: can be (servekit 2566b58): over every held-out row, those the request schema refuses included.
BEFORE_COUNTED = "trained before held-out figures left out the rows no request can be"


def _every_row_then(data: Mapping[str, Any], input_baseline: Mapping[str, Any]) -> list[str]:
    """What the figures of a model trained before they were counted are over: every held-out row.

    ChicagoTaxi's MAE was 0.7065 over every held-out trip, 0.5383 over those a request can be, for
    the same model: a version trained since reads 24 % better for no change. Its input drift
    baseline, fitted on the rows a request can be then too (``input_baseline``), tells how many
    the figures count that no request can be; nothing is said where that is none of them.
    """
    if not data:
        return []
    rows, held_out = input_baseline.get("rows"), input_baseline.get("held_out_rows")
    if input_baseline.get("rows_from") != REQUESTABLE or rows is None or held_out is None:
        said = (
            f"Over every held-out row ({BEFORE_COUNTED}; how many of them a request can be was not "
            "recorded): a version trained since scores only those a request can be."
        )
    elif int(rows) == int(held_out):
        return []
    else:
        said = (
            f"Over every held-out row, the {int(held_out) - int(rows):,} of the {int(held_out):,} no "
            f"request can be included ({BEFORE_COUNTED}): not comparable with the figures of a "
            "version trained since, which leave them out."
        )
    return [said, ""]


#: Run metrics of groups of rows (``segments.as_run_metrics``, ``parity.as_run_metrics``): each
#: group's figures are the sections after the headline table, not rows of it, where dozens of them
#: (a group's row count, a gap per label) would bury the figures a reviewer reads first.
PER_GROUP_PREFIXES = ("segment.", "parity.")


#: A setting a recipe logs beside its metrics (BankChurn's decision threshold) though it is chosen
#: on the training rows: the card states it under its own heading, not as a held-out figure.
THRESHOLD = "threshold"


def _held_out(
    metrics: Mapping[str, float],
    primary: str,
    data: Mapping[str, Any],
    input_baseline: Mapping[str, Any] | None = None,
) -> list[str]:
    headline = {
        key: value
        for key, value in metrics.items()
        if not key.startswith(PER_GROUP_PREFIXES) and key != THRESHOLD
    }
    if not headline:
        return []
    lines = [
        "## Held-out performance",
        "",
        *_scored_rows(data, input_baseline or {}),
        "| metric | value |",
        "|---|---|",
    ]
    for key, value in headline.items():
        if key.endswith(("_ci_low", "_ci_high")):
            continue
        shown = _number(value)
        low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
        if low is not None and high is not None:
            shown += f" (95 % CI {_number(low)} to {_number(high)})"
        name = f"**{key}**" if key == primary else key
        lines.append(f"| {name} | {shown} |")
    return [*lines, ""]


def _segments(segments: Mapping[str, Mapping[str, Mapping[str, Any]]], primary: str) -> list[str]:
    if not segments:
        return []
    lines = [f"## Held-out `{primary}` per group of rows", ""]
    calibrated = any(CALIBRATION_GAP in entry for groups in segments.values() for entry in groups.values())
    if calibrated:
        lines += [
            "With each group's calibration: its mean predicted probability, the share of its rows "
            "whose truth is positive, and the gap between them (predicted minus observed; below zero "
            "the model under-states the group's probability).",
            "",
        ]
    for dimension, groups in segments.items():
        head, rule = f"| group | rows | {primary} (95 % CI) |", "|---|---|---|"
        if calibrated:
            head, rule = head + " mean predicted | positive | gap (95 % CI) |", rule + "---|---|---|"
        lines += [f"**{dimension}**", "", head, rule]
        for group, entry in groups.items():
            if primary in entry:
                shown = _with_interval(entry, primary)
                if CALIBRATION_GAP in entry:
                    shown += (
                        f" | {_number(entry['mean_predicted'])} | {_number(entry['positive_share'])} | "
                        f"{_with_interval(entry, CALIBRATION_GAP)}"
                    )
            else:
                shown = f"no figure: {entry.get('note', '-')}"
            lines.append(f"| {group} | {entry['rows']:,} | {shown} |")
        lines.append("")
    return lines


def _with_interval(entry: Mapping[str, Any], figure: str) -> str:
    low, high = entry[f"{figure}_ci_low"], entry[f"{figure}_ci_high"]
    return f"{_number(entry[figure])} ({_number(low)} to {_number(high)})"


def _parity(parity: Mapping[str, Mapping[str, Any]], threshold: Any) -> list[str]:
    if not parity:
        return []
    lines = ["## Decisions and errors per group of held-out rows", ""]
    # Said by the figures present, not by whether a threshold is known: a binary model without
    # one is flagged from 0.5.
    present = {f for found in parity.values() for entry in found["groups"].values() for f in entry}
    if "flagged_share" in present:
        at = f" ({_number(threshold)})" if threshold is not None else ""
        lines += [
            f"At the decision threshold{at}: the share of each group whose truth is "
            "positive, the share flagged (labelled positive), and the share flagged among its rows "
            "whose truth is positive (true-positive rate) and among those whose truth is negative "
            "(false-positive rate). Groups whose truth differs ought to be flagged at different "
            "rates; the two error rates compare like with like.",
            "",
        ]
    elif any(f.startswith("share_labelled.") for f in present):
        lines += [
            "For each label: the share of each group given it, and its recall (among the group's "
            "rows whose truth is that label, the share given it), beside the group's labels in "
            "truth. Groups whose truth differs ought to be given each label at different rates; "
            "the recalls compare like with like.",
            "",
        ]
    elif "mean_error" in present:
        lines += [
            "The mean signed error (prediction minus truth) of each group: above 0 the model "
            "over-estimates the group's rows, below 0 it under-estimates them.",
            "",
        ]
    for dimension, found in parity.items():
        lines += [f"**{dimension}**", "", *_rates(found), ""]
        lines += [f"- {_gap(figure, gap)}" for figure, gap in found["gaps"].items()]
        lines.append("")
    return lines


def _rates(found: Mapping[str, Any]) -> list[str]:
    """One row a group: its truth's positive share (binary) or labels (multiclass), each figure with
    its interval, why none."""
    groups: Mapping[str, Mapping[str, Any]] = found["groups"]
    figures = [f for f in figures_of(found) if any(f in entry for entry in groups.values())]
    labels = found.get("labels", [])
    truth = labels or any("positive_share" in entry for entry in groups.values())
    noted = any("note" in entry for entry in groups.values())
    heads = ([f"{'labels' if labels else 'positive'} in truth"] if truth else []) + [
        f"{meaning(f)} (95 % CI)" for f in figures
    ]
    heads += ["why no figure"] if noted else []
    lines = ["| group | rows | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for group, entry in groups.items():
        cells = [_in_truth(entry, labels)] if truth else []
        cells += [_with_interval(entry, f) if f in entry else "-" for f in figures]
        cells += [entry.get("note", "")] if noted else []
        lines.append(f"| {group} | {entry['rows']:,} | " + " | ".join(cells) + " |")
    return lines


def _in_truth(entry: Mapping[str, Any], labels: list[str]) -> str:
    """A group's share of positive rows in truth, or of each label's (the rows its recalls are of)."""
    if not labels:
        return _number(entry["positive_share"]) if "positive_share" in entry else "-"
    counted = {label: entry.get(f"recall.{label}_rows") for label in labels}
    if None in counted.values():  # a group too small for figures counts none
        return "-"
    return ", ".join(f"{label} {_number(rows / entry['rows'])}" for label, rows in counted.items())


def _gap(figure: str, gap: Mapping[str, Any]) -> str:
    text = (
        f"{meaning(figure)}: {gap['highest']} minus {gap['lowest']}, {_signed(gap['gap'])} "
        f"(95 % CI {_signed(gap['ci_low'])} to {_signed(gap['ci_high'])})"
    )
    if "ratio" in gap:
        text += f"; {gap['lowest']}'s share is {_number(gap['ratio'])} of {gap['highest']}'s"
        if gap["ratio"] < FOUR_FIFTHS:
            text += f", under the four-fifths rule's {FOUR_FIFTHS}"
    return text


def _weighs_most(means: Mapping[str, float]) -> list[str]:
    if not means:
        return []
    ranked = sorted(means.items(), key=lambda item: (-item[1], item[0]))[:TOP_FEATURES]
    lines = [
        "## What the model weighs most",
        "",
        "Mean |contribution| per input on training rows, on the explanation's scale:",
        "",
        "| input | mean \\|contribution\\| |",
        "|---|---|",
    ]
    lines += [f"| {feature} | {_number(mean)} |" for feature, mean in ranked]
    return [*lines, ""]


def _outcomes(shares: Mapping[str, float]) -> list[str]:
    if not shares:
        return []
    lines = ["## Outcomes on the training rows", "", "| outcome | share |", "|---|---|"]
    lines += [f"| {outcome} | {share:.1%} |" for outcome, share in shares.items()]
    return [*lines, ""]


def _number(value: Any) -> str:
    return f"{float(value):.4g}"


def _signed(value: Any) -> str:
    return f"{float(value):+.3g}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")
