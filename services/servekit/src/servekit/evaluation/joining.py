"""The capture log joined with the truth as it is read: each version's answers, grouped."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from servekit.evaluation.truth import Key, Truth
from servekit.metrics.names import SHADOW
from servekit.replay.capture_objects import Captured, CaptureLineError
from servekit.routing import DRAWN
from servekit.training.recipe import TrainingRecipe


@dataclass
class Answers:
    """One version's captured answers that have a truth row, in the order of their (request id,
    instance)."""

    name: str
    version: str
    outputs: list[Any] = field(default_factory=list)
    truths: list[Any] = field(default_factory=list)
    #: Each answer's group in each of the recipe's dimensions (``TrainingRecipe.segments``).
    groups: list[tuple[str, ...]] = field(default_factory=list)
    #: Which variant gave each answer (``stable``, ``canary``): a version promoted while the log
    #: was written answered as both.
    answered_as: list[str] = field(default_factory=list)
    #: When each answer was given, in seconds since the epoch (None: the capture does not say).
    times: list[float | None] = field(default_factory=list)
    #: How the router chose the variant of each answer (:data:`servekit.routing.ROUTED`; empty:
    #: the capture does not say).
    routed: list[str] = field(default_factory=list)
    #: Whether each answer was the positive decision, as served (``TrainingRecipe.served_decision``;
    #: None: the recipe makes none).
    decisions: list[bool | None] = field(default_factory=list)
    #: Each answer's row (its input and truth) hashed as its training run hashed its training
    #: rows (:mod:`.trained_on`); None when some could not be (or no hasher was given).
    rows: list[int] | None = None

    def drawn(self, index: int) -> bool:
        """Whether the router drew this answer's variant at random (or the capture does not say)."""
        return self.routed[index] in (DRAWN, "")

    def only(self, positions: Sequence[int]) -> Answers:
        """The answers at ``positions``, each with everything known of it: every per-answer list
        is taken alike, one added later too, so that none is left out of step with the others."""
        taken: dict[str, Any] = {
            f.name: [value[i] for i in positions]
            for f in fields(self)
            if isinstance(value := getattr(self, f.name), list)
        }
        return replace(self, **taken)


@dataclass
class ShadowAnswers:
    """A shadow version's answers to requests a served version answered, paired, with their truth,
    in the order of their (request id, instance)."""

    name: str
    version: str
    #: The version whose answers to the same requests were served.
    served: str
    truths: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    served_outputs: list[Any] = field(default_factory=list)
    #: Each answer's groups, found in the served answer's input (the same request's).
    groups: list[tuple[str, ...]] = field(default_factory=list)


@dataclass
class Joined:
    """The captures of one service joined with the truth, and what did not meet."""

    versions: list[Answers]
    #: Captures of the service read, and how many of them have no truth row (yet).
    captured: int
    without_truth: int
    #: Truth rows that meet no capture: requests not sampled, or captured in another file.
    truth_unmatched: int
    #: Answers captured more than once (a request id sent again): left out, as the truth cannot
    #: say which of the answers it is the truth of.
    ambiguous: int
    #: Captures of other services in the file, skipped.
    other_services: int
    #: Each version's first and last answer drawn as the canary (all such captures, with a truth
    #: row or not), for the versions whose captures say when they were answered.
    canary_periods: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: The shadow's answers with their truth paired with the served answers to the same requests,
    #: per shadow and served version; the shadow's captured answers (they are not in ``captured``)
    #: and those with a truth row left unpaired (the served answer missing, or either captured
    #: more than once).
    shadows: list[ShadowAnswers] = field(default_factory=list)
    shadow_captured: int = 0
    shadow_without_truth: int = 0
    shadow_unpaired: int = 0
    #: The service whose captures these are.
    service: str = ""
    #: Captures of the service without a request id (capture objects alone, not log lines).
    without_request_id: int = 0


class Grouper:
    """Each answer's groups, found a chunk of inputs at a time so that only the labels are kept.

    A capture's input is the largest part of it (a text, or ten fields), where its groups are a
    few short labels: held until the end, the inputs would grow with every answer that has its
    truth.
    """

    def __init__(self, recipe: TrainingRecipe) -> None:
        self.recipe = recipe
        #: The recipe's dimensions, each with its groups' order when it declares one (age bands
        #: low to high), else None (sorted).
        self.dimensions: dict[str, list[str] | None] = {}
        # An answer's labels are one of a few combinations (BankChurn: 18), so each is kept once
        # and every answer refers to it: a tuple and its strings per answer were about 220 bytes.
        self._combinations: dict[tuple[str, ...], tuple[str, ...]] = {}

    def labels(self, inputs: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
        found = self.recipe.segments(pd.DataFrame.from_records(list(inputs)))
        for dimension, labels in found.items():
            declared = isinstance(labels.dtype, pd.CategoricalDtype)
            self.dimensions[dimension] = [str(c) for c in labels.cat.categories] if declared else None
        columns = [np.asarray(labels.astype(str), dtype=object) for labels in found.values()]
        if not columns:
            return [() for _ in inputs]
        return [self._combinations.setdefault(labels, labels) for labels in zip(*columns, strict=True)]

    def series(self, answers: Answers) -> dict[str, pd.Series]:
        """The answers' groups per dimension, categorical where the recipe declared an order."""
        return self.series_of(answers.groups)

    def series_of(self, groups: Sequence[tuple[str, ...]]) -> dict[str, pd.Series]:
        """Answers' groups (one tuple each) per dimension, categorical where the recipe declared
        an order."""
        found: dict[str, pd.Series] = {}
        for position, (dimension, order) in enumerate(self.dimensions.items()):
            values = [labels[position] for labels in groups]
            found[dimension] = pd.Series(pd.Categorical(values, categories=order) if order else values)
        return found


def version_order(version: str) -> tuple[int, int, str]:
    """Registered versions by number (2 before 10), then the others (``unregistered``) by name."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


#: Inputs turned into their groups at once.
GROUPING_CHUNK = 8192


#: Each answer's row hash from its input and truth (``TrainingTypes.hashes``); None: cannot be.
Hasher = Callable[[Sequence[Mapping[str, Any]], Sequence[Any]], np.ndarray | None]


def join(
    captures: Iterable[Captured],
    service: str,
    grouper: Grouper,
    truth: Mapping[Key, Any],
    hasher: Hasher | None = None,
) -> Joined:
    """Each capture of ``service`` with its truth row, grouped by the version that answered; with
    ``hasher``, each answer's row hash too, found while its input is at hand."""
    recipe = grouper.recipe
    # key -> [version, scored output, the input until its groups are found then the groups,
    # variant, time, how it was routed, the decision]
    met: dict[Key, list[Any]] = {}
    canary_periods: dict[str, tuple[float, float]] = {}
    pending: list[Key] = []
    lines: dict[Key, int] = {}  # the pending answers' lines, to name one whose input cannot be grouped
    ambiguous: set[Key] = set()
    captured = without = others = no_request_id = 0
    shadowed = _Shadowed(service, recipe, truth)
    hashes: dict[Key, int] | None = {} if hasher is not None else None

    def group_pending() -> None:
        nonlocal hashes
        inputs = [met[k][2] for k in pending]
        if hasher is not None and hashes is not None:
            found = hasher(inputs, [truth[k] for k in pending])
            if found is None:
                hashes = None  # some cannot be checked: none is, rather than a figure half-checked
            else:
                hashes.update(zip(pending, (int(h) for h in found), strict=True))
        try:
            labels = grouper.labels(inputs)
        except (KeyError, TypeError, ValueError):
            raise _ungroupable(inputs, grouper, [lines[k] for k in pending], service) from None
        for key, groups in zip(pending, labels, strict=True):
            met[key][2] = groups
        pending.clear()
        lines.clear()

    for c in captures:
        if c.name != service:
            others += 1
            continue
        if c.variant == SHADOW:  # an answer nobody saw, kept apart from the served ones
            shadowed.add(c)
            continue
        captured += 1
        if c.variant == "canary" and c.routed in (DRAWN, "") and c.answered_at is not None:
            first, last = canary_periods.get(c.version, (c.answered_at, c.answered_at))
            canary_periods[c.version] = (min(first, c.answered_at), max(last, c.answered_at))
        no_request_id += not c.request_id
        key = (c.request_id, c.instance)
        # Only keys of the truth are remembered: memory follows the truth file, not the log.
        if key not in truth:
            without += 1
            continue
        if key in met:
            ambiguous.add(key)
            continue
        output = _read_output(recipe, c, service)
        decision = _read(recipe.served_decision, c, service)
        met[key] = [c.version, output, c.input, c.variant, c.answered_at, c.routed, decision]
        pending.append(key)
        lines[key] = c.line
        if len(pending) >= GROUPING_CHUNK:
            group_pending()
    if pending:
        group_pending()
    # Rows of answers not captured were not kept (:func:`read_truth` given the captures' keys).
    truth_unmatched = sum(key not in met for key in truth) + (
        truth.record.uncaptured if isinstance(truth, Truth) else 0
    )
    for key in ambiguous:
        del met[key]
    # The shadow's answers are paired with the served ones below; without any, each served
    # answer's record is let go as it is copied, so they are not all held twice at the peak.
    keep = bool(shadowed.kept)
    versions: dict[str, Answers] = {}
    # In the order of their keys, not as read: the bootstrap draws answers by position, so the same
    # answers read in another order (a store's objects listed otherwise, a log merged from pods)
    # give the same figures and the same intervals.
    for key in sorted(met):
        version, output, groups, variant, answered_at, routed, decision = met[key] if keep else met.pop(key)
        answers = versions.setdefault(
            version, Answers(service, version, rows=[] if hashes is not None else None)
        )
        if answers.rows is not None and hashes is not None:
            answers.rows.append(hashes.pop(key))
        answers.outputs.append(output)
        answers.truths.append(truth[key])
        answers.groups.append(groups)
        answers.answered_as.append(variant)
        answers.times.append(answered_at)
        answers.routed.append(routed)
        answers.decisions.append(decision)
    shadows = shadowed.paired(met)
    return Joined(
        versions=[versions[v] for v in sorted(versions, key=version_order)],
        captured=captured,
        without_truth=without,
        truth_unmatched=truth_unmatched,
        ambiguous=len(ambiguous),
        other_services=others,
        canary_periods=canary_periods,
        shadows=shadows,
        shadow_captured=shadowed.captured,
        shadow_without_truth=shadowed.without_truth,
        shadow_unpaired=len(shadowed.kept) - sum(len(pair.truths) for pair in shadows),
        service=service,
        without_request_id=no_request_id,
    )


class _Shadowed:
    """The shadow's captured answers that have a truth row, to pair with the served ones."""

    def __init__(self, service: str, recipe: TrainingRecipe, truth: Mapping[Key, Any]) -> None:
        self.service, self.recipe, self.truth = service, recipe, truth
        #: key -> (shadow version, scored output); a key captured twice is left out of both.
        self.kept: dict[Key, tuple[str, Any]] = {}
        self.twice: set[Key] = set()
        self.captured = self.without_truth = 0

    def add(self, c: Captured) -> None:
        self.captured += 1
        key = (c.request_id, c.instance)
        if key not in self.truth:
            self.without_truth += 1
            return
        if key in self.twice:
            return
        if key in self.kept:
            self.twice.add(key)
            del self.kept[key]
        else:
            self.kept[key] = (c.version, _read_output(self.recipe, c, self.service))

    def paired(self, served: Mapping[Key, Sequence[Any]]) -> list[ShadowAnswers]:
        """Each shadow version's answers beside the served ones (``key -> (version, output,
        groups, ...)``) to the same requests, per served version, in the order of their keys."""
        pairs: dict[tuple[str, str], ShadowAnswers] = {}
        for key in sorted(self.kept.keys() & served.keys()):
            (version, output), (served_version, served_output, groups) = self.kept[key], served[key][:3]
            pair = pairs.setdefault(
                (version, served_version), ShadowAnswers(self.service, version, served_version)
            )
            pair.truths.append(self.truth[key])
            pair.outputs.append(output)
            pair.served_outputs.append(served_output)
            pair.groups.append(groups)
        return [pairs[k] for k in sorted(pairs, key=lambda k: (version_order(k[0]), version_order(k[1])))]


def _read_output(recipe: TrainingRecipe, capture: Captured, service: str) -> Any:
    """The answer's scored output, a finite number where the task scores numbers: a null or a
    text in an edited line would otherwise end the figures in a traceback, or pass for a number."""
    output = _read(recipe.served_output, capture, service)
    if recipe.task in ("binary", "regression") and (
        isinstance(output, bool) or not isinstance(output, int | float) or not math.isfinite(output)
    ):
        raise CaptureLineError(
            f"line {capture.line}: a {service} answer whose output {output!r} is not a number"
        )
    return output


def _ungroupable(
    inputs: Sequence[Mapping[str, Any]], grouper: Grouper, lines: Sequence[int], service: str
) -> CaptureLineError:
    """The first of a chunk's inputs that cannot be grouped, named by its line."""
    for line, one in zip(lines, inputs, strict=True):
        try:
            grouper.labels([one])
        except (KeyError, TypeError, ValueError) as exc:
            return CaptureLineError(
                f"line {line}: a {service} input that cannot be grouped ({type(exc).__name__}: {exc}); "
                "the service captures only inputs it validated, so the line was changed since"
            )
    return CaptureLineError(
        f"the {service} inputs of lines {lines[0]} to {lines[-1]} cannot be grouped together"
    )


def _read(field: Callable[[Mapping[str, Any]], Any], capture: Captured, service: str) -> Any:
    """What the recipe reads in a captured answer (``served_output``, ``served_decision``); an
    answer without it is an error naming its line."""
    try:
        return field(capture.prediction)
    except (KeyError, TypeError) as exc:
        raise CaptureLineError(f"line {capture.line}: a {service} answer without {exc}") from None
