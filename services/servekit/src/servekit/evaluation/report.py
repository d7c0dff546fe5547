"""``mlp evaluate``'s report: one line per version, group, canary and shadow, and the verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from servekit.evaluation.canary import CanaryComparison
from servekit.evaluation.groups import ComparedByGroup
from servekit.evaluation.joining import Joined
from servekit.evaluation.quality import ParityChange, Quality
from servekit.evaluation.shadow import ShadowComparison
from servekit.training import parity, segments, uncertainty


def verdict(quality: Quality) -> str:
    """The verdict in a word or two, else why there is none."""
    if quality.live is None:
        return f"no figure: {quality.note}"
    return quality.verdict or f"not compared: {quality.held_out_note}"


def _interval(interval: uncertainty.Interval) -> str:
    return f"95% CI {interval.low:.4f}-{interval.high:.4f}"


def render(
    joined: Joined,
    qualities: Sequence[Quality],
    truth_file: str,
    canaries: Sequence[CanaryComparison] = (),
    shadows: Sequence[ShadowComparison] = (),
) -> str:
    """The report: each version's figure and verdict, its groups, the canaries and shadows, then
    what did not meet."""
    lines = [line for q in qualities for line in _version_lines(q)]
    lines += [
        line for c in canaries for line in [_canary_line(c), *_group_lines(f"{c.name} canary v{c.canary}", c)]
    ]
    lines += [line for s in shadows for line in _shadow_lines(s)]
    return "\n".join(lines + _unmet_lines(joined, truth_file))


def _version_lines(q: Quality) -> list[str]:
    """A version's figure and verdict, then its groups' figures and decisions."""
    head = f"{q.name} v{q.version}"
    answers = f"{q.rows:,} answer with its truth" if q.rows == 1 else f"{q.rows:,} answers with their truth"
    trained = [f"{head}:   training rows: {q.training_rows_note}"] if q.training_rows_note else []
    if q.live is None:
        return [f"{head}: {answers}: no figure: {q.note}", *trained]
    figure = f"{q.metric} {q.live.estimate:.4f} ({_interval(q.live)})"
    if q.held_out is None:
        lines = [f"{head}: {answers}: {figure}; not compared: {q.held_out_note}"]
    else:
        how = "" if q.resampled else " (the two intervals combined: its run kept no held-out answers)"
        lines = [
            f"{head}: {answers}: {figure} against {q.held_out.estimate:.4f} held out "
            f"({_interval(q.held_out)}): {q.difference}, {q.verdict}{how}"
        ]
        if q.held_out_note:  # not the figure its run logged: which rows it is over, and why
            lines.append(f"{head}:   held out: {q.held_out_note}")
    lines += trained
    for dimension, groups in q.segments.items():
        parts = []
        for group, entry in groups.items():
            if q.metric in entry:
                low, high = entry[f"{q.metric}_ci_low"], entry[f"{q.metric}_ci_high"]
                figure = f"{entry[q.metric]:.4f} ({low:.4f}-{high:.4f}, {entry['rows']:,}"
                parts.append(f"{group} {figure}{_calibration(entry)})")
            else:
                parts.append(f"{group} none ({entry['rows']:,}: {entry['note']})")
        lines.append(f"{head}:   {dimension}: {'; '.join(parts)}")
    lines += _group_lines(head, q, " against held out")
    if q.groups_note:
        lines.append(f"{head}:   per group against held out: none: {q.groups_note}")
    lines += [f"{head}:   {dimension} decisions: {_gaps(found)}" for dimension, found in q.parity.items()]
    changes = [c.difference for found in q.parity_changes.values() for c in found]
    if changes:
        level = uncertainty.held_together(len(changes), changes[0].level, "rates")
        lines.append(f"{head}:   decisions against held out, {level}")
    lines += [
        f"{head}:   {dimension} decisions against held out: {_changes(changes)}"
        for dimension, changes in q.parity_changes.items()
    ]
    if q.parity_changes_note:
        lines.append(f"{head}:   decisions against held out: none: {q.parity_changes_note}")
    return lines


def _calibration(entry: Mapping[str, Any]) -> str:
    """A classifier's group: its mean probability against its share positive, and the gap with its
    interval. Its ROC AUC cannot show a group whose every probability is too low."""
    if segments.CALIBRATION_GAP not in entry:
        return ""
    gap = segments.CALIBRATION_GAP
    return (
        f"; predicted {entry['mean_predicted']:.3f} against {entry['positive_share']:.3f} positive, "
        f"{entry[gap]:+.3f} ({entry[f'{gap}_ci_low']:+.3f} to {entry[f'{gap}_ci_high']:+.3f})"
    )


def _unmet_lines(joined: Joined, truth_file: str) -> list[str]:
    """How many captures met their truth, and what did not meet, and why."""
    service = joined.service
    shadows = ""
    if joined.shadow_captured:
        met = joined.shadow_captured - joined.shadow_without_truth
        shadows = f" (and {met:,} of the shadow's {joined.shadow_captured:,})"
    answered = joined.captured - joined.without_truth
    # The figures are over fewer where some are left out (captured twice, below): said here, so
    # this count is not read as the figures'.
    scored = sum(len(answers.truths) for answers in joined.versions)
    unscored = f", {answered - scored:,} of them left out (below)" if answered > scored else ""
    lines = [
        f"{service}: {answered:,} of {joined.captured:,} captured answers{shadows} have a truth row in "
        f"{truth_file}{unscored}"
    ]
    if joined.truth_unmatched:
        lines.append(
            f"{service}: {_rows(joined.truth_unmatched)} without a captured answer (requests refused "
            "with a 4xx, which got no answer to capture; requests the capture did not sample, see "
            f"{service.upper()}_CAPTURE_PERCENT; or answers captured in another file)"
        )
    if joined.ambiguous:
        lines.append(
            f"{service}: {_rows(joined.ambiguous)} left out, for answers captured more than once under "
            "one request id and instance: which answer the truth is of is unknown"
        )
    if joined.shadow_unpaired:
        lines.append(
            f"{service}: {joined.shadow_unpaired:,} shadow answers with a truth row not compared: "
            "the served answer to the same request is not in the log, or either was captured twice"
        )
    if joined.other_services:
        lines.append(f"{service}: {joined.other_services:,} captures of other services skipped")
    return lines


def _gaps(found: Mapping[str, Any]) -> str:
    """Each figure's widest gap between two groups, with its interval, and the impact ratio."""
    parts = []
    for figure, gap in found["gaps"].items():
        part = (
            f"{parity.meaning(figure)} {gap['highest']} - {gap['lowest']} {gap['gap']:+.4f} "
            f"({gap['ci_low']:+.4f} to {gap['ci_high']:+.4f})"
        )
        if "ratio" in gap:
            under = f", under {parity.FOUR_FIFTHS}" if gap["ratio"] < parity.FOUR_FIFTHS else ""
            part += f", ratio {gap['ratio']:.2f}{under}"
        parts.append(part)
    return "; ".join(parts) or "fewer than two groups with a figure"


def _changes(changes: Sequence[ParityChange]) -> str:
    """The groups' rates that moved beyond the noise since the held-out rows, else the largest move."""

    def moved(c: ParityChange) -> str:
        d = c.difference
        return (
            f"{parity.meaning(c.figure)} {c.group} {c.live:.4f} against {c.held_out:.4f} held out: "
            f"{d.estimate:+.4f} ({d.low:+.4f} to {d.high:+.4f})"
        )

    beyond = [c for c in changes if c.beyond_the_noise]
    if not beyond:
        largest = max(changes, key=lambda c: abs(c.difference.estimate))
        return f"all {len(changes)} within the noise; the largest move: {moved(largest)}"
    others = len(changes) - len(beyond)
    return f"{'; '.join(moved(c) for c in beyond)}, beyond the noise; the other {others} within it"


def _canary_line(c: CanaryComparison) -> str:
    head = f"{c.name} canary v{c.canary}"
    if not c.canary_rows:
        return f"{head}: no comparison: {c.note}"
    if c.stable:
        head += f" against stable v{c.stable} on the same traffic"
    if c.period is None:
        when = "the whole log (its captures do not say when they were answered)"
    else:
        first, last = (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S") for t in c.period)
        when = f"{first} to {last} UTC"
        if c.stable:
            used = [f"{c.stable_rows:,} of v{c.stable}'s {c.stable_answers:,} answers with their truth"]
            if c.canary_asked:
                used.append(f"v{c.canary}'s {c.canary_asked:,} answers asked for by their requests left out")
            if c.routing_unknown:
                used.append("some captures do not say how they were routed: answers asked for may be in")
            when += f" ({'; '.join(used)})"
    if c.difference is None:
        return f"{head}, {when}: no comparison: {c.note}"
    return f"{head}, {when}: {c.metric} {c.difference}, {c.verdict}"


def _shadow_lines(s: ShadowComparison) -> list[str]:
    """A shadow's comparison with the served version, then the same per group of each dimension."""
    head = f"{s.name} shadow v{s.shadow} against served v{s.served} on the same {s.rows:,} answers"
    if s.difference is None:
        return [f"{head}: no comparison: {s.note}"]
    lines = [
        f"{head}: {s.metric} {s.shadow_figure:.4f} against {s.served_figure:.4f}: paired difference "
        f"{s.difference}, {s.verdict}"
    ]
    return lines + _group_lines(f"{s.name} shadow v{s.shadow}", s)


def _group_lines(head: str, comparison: ComparedByGroup, against: str = "") -> list[str]:
    """The level of the groups' intervals, then one line per dimension: each group's difference,
    or why it has none (``against`` what, where the line needs saying)."""
    dimensions: dict[str, list[str]] = {}
    for g in comparison.groups:
        dimensions.setdefault(g.dimension, []).append(g.describe())
    level = [f"{head}:   per group{against}, {comparison.groups_level}"] if comparison.groups_level else []
    return level + [
        f"{head}:   {dimension}{against}: {'; '.join(parts)}" for dimension, parts in dimensions.items()
    ]


def _rows(count: int) -> str:
    return f"{count:,} truth row{'' if count == 1 else 's'}"
