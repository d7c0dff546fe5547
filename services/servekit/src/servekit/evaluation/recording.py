"""``mlp evaluate --log``: the live figures as an MLflow run, and as tags of the version."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Collection, Iterator
from functools import partial
from typing import Any, NamedTuple

from servekit.evaluation.canary import CanaryComparison
from servekit.evaluation.groups import GroupComparison
from servekit.evaluation.quality import Quality
from servekit.evaluation.report import verdict
from servekit.evaluation.shadow import ShadowComparison
from servekit.evaluation.truth import TruthRecord
from servekit.training import parity
from servekit.training.segments import CALIBRATION_GAP, as_run_metrics, metric_name
from servekit.training.uncertainty import Interval
from servekit.training.versions import (
    AS_SERVED,
    AS_SHADOW,
    CANARY_COMPARISON_TAG,
    CANARY_GROUPS_WORSE_TAG,
    CANARY_RUN_TAG,
    CAPTURES_TAG,
    JOB_TAG,
    LIVE_ANSWERS_TAG,
    LIVE_CI_TAG,
    LIVE_FIGURE_TAG,
    LIVE_GROUPS_WORSE_TAG,
    LIVE_RUN_TAG,
    LIVE_VERDICT_TAG,
    NOT_COMPARED,
    SHADOW_COMPARISON_TAG,
    SHADOW_GROUPS_WORSE_TAG,
    SHADOW_RUN_TAG,
)

#: The tag and run tag that mark what ``mlp evaluate --log`` records in MLflow.
KIND_TAG = "mlp.kind"
KIND = "live-evaluation"
#: The same tag's value on a shadow comparison's run, and on a canary comparison's.
SHADOW_KIND = "shadow-evaluation"
CANARY_KIND = "canary-evaluation"
#: The run tag, and version tag, saying what rows the held-out figure is over where it is not the
#: one the version's training run logged as over requests (recomputed over the rows a request can
#: be, or over every row as too few were: ``evaluation.every_row``).
HELD_OUT_TAG = "live.held_out"


def truth_params(truth: TruthRecord) -> dict[str, str]:
    """The truth file a run was over, as its parameters: a figure is reproducible only from the
    very rows it was over, and a cumulative file a day later is another file."""
    return {
        "evaluation.truth_file": truth.name,
        "evaluation.truth_sha256": truth.sha256,
        "evaluation.truth_rows": str(truth.rows),
    }


#: The metric counting the answers left out of a version's figure as rows it was trained on.
TRAINING_ROWS_LEFT_OUT = "live.training_rows_left_out"


class LoggedRun(NamedTuple):
    """What :func:`log_run` did: the run it logged, and the version's standing figure and verdict
    it left as they were (``roc_auc 0.8569 on 2,856, worse``; empty: the tags were replaced)."""

    run_id: str
    kept: str


def log_run(
    client: Any, quality: Quality, source: str, job: str = "", truth: TruthRecord | None = None
) -> LoggedRun:
    """The live figures as an MLflow run of the service's experiment, and as tags of the version.

    ``source`` names the captures read, ``job`` the Kubernetes Job running the evaluation (empty:
    none), which the pods export with the run's verdict (:data:`JOB_TAG`); ``truth`` the truth
    file read (its name, sha256 and rows, as the run's parameters).

    The run holds ``live.<metric>`` with its interval, the answer count and each group's figure,
    so MLflow keeps a version's live record beside its training runs. The version's tags
    (:func:`version_tags`) hold the latest figure, which ``mlp versions`` shows and the pods turn
    into the verdict LiveQualityWorse fires on. A run without a figure (too few answers with their
    truth: a day the truth came late) leaves the tags of an earlier figure as they were: it says
    nothing of the version's quality, and replacing a standing ``worse`` with ``none`` resolved the
    alert on a regression nobody had fixed (:func:`standing_verdict`).
    """
    figures = run_figures(quality)
    tags = {
        KIND_TAG: KIND,
        "model.version": quality.version,
        **_source_tags(source, job),
        AS_SERVED.verdict_tag: verdict(quality),
        # A held-out figure recomputed over the rows a request can be says so beside the verdict.
        **({HELD_OUT_TAG: held_out_scope(quality)} if held_out_scope(quality) else {}),
    }
    run_id = _logged(
        client, quality.name, f"{quality.name}-v{quality.version}-live", tags, figures, truth=truth
    )
    kept = standing_verdict(client, quality)
    if not kept:
        for tag, value in version_tags(quality, run_id).items():
            client.set_model_version_tag(quality.name, quality.version, tag, value)
    return LoggedRun(run_id, kept)


def standing_verdict(client: Any, quality: Quality) -> str:
    """The live figure and verdict the version's tags hold (``roc_auc 0.8569 on 2,856, worse``)
    that logging ``quality`` leaves as they are, as it has no figure; empty when it replaces them
    (it has a figure, or the tags hold none: never evaluated, or only without a figure)."""
    if quality.live is not None:
        return ""
    tags = dict(client.get_model_version(quality.name, quality.version).tags or {})
    figure = tags.get(LIVE_FIGURE_TAG, "none")
    if figure == "none":
        return ""
    return f"{figure} on {tags.get(LIVE_ANSWERS_TAG, '?')}, {tags.get(LIVE_VERDICT_TAG, '')}"


def run_figures(quality: Quality) -> dict[str, float]:
    """Every figure ``mlp evaluate`` prints of a version, as its run's metrics: the live figure and
    each group's with their intervals, and each difference against held out with its interval, so
    that the run alone says which calls were beyond the noise."""
    key = quality.metric
    figures = {AS_SERVED.rows_key: float(quality.rows)}
    if quality.training_rows_left_out is not None:
        figures[TRAINING_ROWS_LEFT_OUT] = float(quality.training_rows_left_out)
    if quality.live is not None:
        figures.update(_interval_metrics(AS_SERVED.figure(key), quality.live))
    if quality.held_out is not None:  # printed beside the live figure: the run says what it was held against
        figures.update(_interval_metrics(f"live.held_out.{key}", quality.held_out))
    if quality.difference is not None:
        figures.update(_interval_metrics(f"live.{key}_minus_held_out", quality.difference))
    figures.update({f"live.{k}": v for k, v in as_run_metrics(quality.segments, key).items()})
    figures.update(_printed_beside(quality))
    figures.update({f"live.{k}": v for k, v in parity.as_run_metrics(quality.parity).items()})
    for dimension, changes in quality.parity_changes.items():
        for c in changes:
            moved = f"live.parity.{metric_name(dimension)}.{metric_name(c.group)}.{c.figure}"
            figures.update(_interval_metrics(f"{moved}_minus_held_out", c.difference))
            figures[f"{moved}_held_out"] = c.held_out
    levels = {c.difference.level for changes in quality.parity_changes.values() for c in changes}
    if levels:  # each change's level, by which they hold together at 95 %
        figures["live.parity.changes_level"] = levels.pop()
    if quality.groups:
        figures.update(_group_metrics("live.segment", f"{key}_minus_held_out", quality.groups))
        figures[AS_SERVED.groups_worse_key] = float(len(quality.groups_worse))
    return figures


#: How many of a version's latest runs of a kind :func:`logged_by_job` looks through: a Job's retry
#: follows its failure within minutes, not a hundred evaluations later.
RECENT_RUNS = 100
#: How long before an evaluation began :func:`logged_by_job` looks for its Job's runs: the
#: live-evaluation Job's ``activeDeadlineSeconds`` (3600, k8s/components/live-evaluation) bounds
#: all its pods, retries included, so an earlier pod's runs started within the hour before this one
#: began; the second hour is room for the nodes' clocks and a patched deadline. A Job name used
#: again (the runbook's ``<svc>-live-evaluation-now``, created once an incident's cause is fixed)
#: found the runs of an incident weeks before, and its evaluation logged nothing.
JOB_LIFE_SECONDS = 2 * 3600
#: The run tag naming the stable version a canary was compared against.
CANARY_STABLE_TAG = "canary.stable_version"
#: The run tag naming the version a comparison of each kind was against: a shadow compared with two
#: served versions (the champion moved in the period captured) has a run of each.
AGAINST_TAGS = {SHADOW_KIND: AS_SHADOW.against_tag, CANARY_KIND: CANARY_STABLE_TAG}


def logged_by_job(
    client: Any,
    name: str,
    kind: str,
    version: str,
    job: str,
    *,
    against: str = "",
    began: float | None = None,
    ignored: Collection[str] = (),
) -> str | None:
    """The finished run of ``kind`` about ``version`` (compared against the version ``against``,
    for a shadow or a canary) that the Job ``job`` has logged already; None when it has not, or
    without a Job (``--job``) to tell a retry from another evaluation.

    ``mlp evaluate --log`` logs version by version: a registry failing part-way exits 1, which the
    live-evaluation Job retries, and the retry logged the versions logged before again, as a second
    run. A run left FAILED (its figures not in) is no record, and is logged again. Only runs started
    within :data:`JOB_LIFE_SECONDS` before ``began`` (the evaluation's start, in seconds since the
    epoch; now by default) are the Job's own; runs in ``ignored`` (those this evaluation logged
    itself) never are.
    """
    if not job:
        return None
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return None
    since = int(((time.time() if began is None else began) - JOB_LIFE_SECONDS) * 1000)
    # The Job's name is matched here, not in the filter: a name typed by hand may hold quotes.
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{KIND_TAG}` = '{kind}' and tags.`model.version` = '{version}' "
        f"and attributes.status = 'FINISHED' and attributes.start_time >= {since}",
        max_results=RECENT_RUNS,
        order_by=["attributes.start_time DESC"],
    )
    tags = {JOB_TAG: job, **({AGAINST_TAGS[kind]: against} if kind in AGAINST_TAGS else {})}
    return next(
        (
            str(run.info.run_id)
            for run in runs
            if run.info.run_id not in ignored and all(run.data.tags.get(k) == v for k, v in tags.items())
        ),
        None,
    )


def _printed_beside(quality: Quality) -> dict[str, float]:
    """What the report prints beside each group's figure and each widest gap that
    ``as_run_metrics`` leaves out: their intervals, and a group's mean probability against its
    share positive."""
    figures: dict[str, float] = {}
    for dimension, groups in quality.segments.items():
        for group, entry in groups.items():
            prefix = f"live.segment.{metric_name(dimension)}.{metric_name(group)}"
            for name in (
                f"{quality.metric}_ci_low",
                f"{quality.metric}_ci_high",
                f"{CALIBRATION_GAP}_ci_low",
                f"{CALIBRATION_GAP}_ci_high",
                "mean_predicted",
                "positive_share",
            ):
                if name in entry:
                    figures[f"{prefix}.{name}"] = float(entry[name])
    for dimension, found in quality.parity.items():
        for figure, gap in found["gaps"].items():
            prefix = f"live.parity.{metric_name(dimension)}.{figure}.gap"
            figures.update({f"{prefix}_{end}": float(gap[end]) for end in ("ci_low", "ci_high")})
    return figures


def _source_tags(source: str, job: str) -> dict[str, str]:
    """What a run was made from: the captures read, and the Job that read them (if one did)."""
    return {CAPTURES_TAG: source, **({JOB_TAG: job} if job else {})}


def _interval_metrics(key: str, interval: Interval) -> dict[str, float]:
    """A figure and its interval as the run logs them, and ``Figure.logged`` reads them back."""
    return {key: interval.estimate, f"{key}_ci_low": interval.low, f"{key}_ci_high": interval.high}


def _logged(
    client: Any,
    name: str,
    run_name: str,
    tags: dict[str, str],
    figures: dict[str, float],
    *,
    truth: TruthRecord | None = None,
) -> str:
    """A finished run of the service's experiment (made if missing) with these tags and metrics,
    and the truth file's record as its parameters."""
    from mlflow.entities import Metric, Param

    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run_id = str(client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id)
    status = "FAILED"  # unless its figures are in: a SIGTERM or a registry error between the two
    try:
        now = int(time.time() * 1000)
        params = [Param(key, value) for key, value in (truth_params(truth) if truth else {}).items()]
        client.log_batch(
            run_id, metrics=[Metric(key, value, now, 0) for key, value in figures.items()], params=params
        )
        status = "FINISHED"
    finally:
        with run_links_unprinted():
            client.set_terminated(run_id, status=status)
    return run_id


def log_shadow_run(client: Any, comparison: ShadowComparison, source: str, job: str = "") -> str:
    """A shadow comparison as an MLflow run of the service's experiment, and as tags of the shadow
    version (:func:`shadow_tags`), which ``mlp versions`` shows before a promotion. Returns the run id.

    The run holds ``shadow.<metric>``, ``shadow.served.<metric>`` and ``shadow.<metric>_minus_served``
    with its paired interval, the answers compared, and each group's difference
    (``shadow.<dimension>.<group>.<metric>_minus_served``, its interval and rows) with the count of
    those worse beyond the noise (``shadow.groups_worse``), which the pods export. The live tags
    (``live.*``) are left alone: they are the version's record as served, which the pods export.
    """
    name, key, d = comparison.name, comparison.metric, comparison.difference
    figures = {AS_SHADOW.rows_key: float(comparison.rows)}
    if d is not None and comparison.shadow_figure is not None and comparison.served_figure is not None:
        figures.update(
            {f"shadow.{key}": comparison.shadow_figure, f"shadow.served.{key}": comparison.served_figure}
        )
        figures.update(_interval_metrics(AS_SHADOW.figure(key), d))
    if d is not None:
        figures[AS_SHADOW.groups_worse_key] = float(len(comparison.groups_worse))
    figures.update(_group_metrics("shadow", f"{key}_minus_served", comparison.groups))
    tags = {
        AS_SHADOW.against_tag: comparison.served,
        AS_SHADOW.verdict_tag: comparison.verdict or f"no comparison: {comparison.note}",
        **_source_tags(source, job),
    }
    run_name = f"{name}-v{comparison.shadow}-shadow-of-v{comparison.served}"
    return _on_version(
        client,
        name,
        comparison.shadow,
        kind=SHADOW_KIND,
        run=(run_name, tags, figures),
        version_tags=partial(shadow_tags, comparison),
    )


def log_canary_run(client: Any, comparison: CanaryComparison, source: str, job: str = "") -> str:
    """A canary comparison as an MLflow run of the service's experiment, and as tags of the canary
    version (:func:`canary_tags`), which ``mlp promote`` prints. Returns the run id.

    The run holds ``canary.<metric>_minus_stable`` with its two-sample interval, the answers on
    each side (``canary.rows``, ``canary.stable_rows``), and each group's difference
    (``canary.<dimension>.<group>.<metric>_minus_stable``, its interval and rows) with the count
    of those worse beyond the noise (``canary.groups_worse``). A canary compared with no stable
    version (none, or two, in its period) is not logged: there is nothing to say it against.
    """
    name, key, d = comparison.name, comparison.metric, comparison.difference
    figures = {
        "canary.rows": float(comparison.canary_rows),
        "canary.stable_rows": float(comparison.stable_rows),
    }
    if d is not None:
        figures.update(_interval_metrics(f"canary.{key}_minus_stable", d))
        figures["canary.groups_worse"] = float(len(comparison.groups_worse))
    figures.update(_group_metrics("canary", f"{key}_minus_stable", comparison.groups))
    tags = {
        CANARY_STABLE_TAG: comparison.stable,
        "canary.verdict": comparison.verdict or f"no comparison: {comparison.note}",
        **_source_tags(source, job),
    }
    run_name = f"{name}-v{comparison.canary}-canary-against-v{comparison.stable}"
    return _on_version(
        client,
        name,
        comparison.canary,
        kind=CANARY_KIND,
        run=(run_name, tags, figures),
        version_tags=partial(canary_tags, comparison),
    )


def _on_version(
    client: Any,
    name: str,
    version: str,
    *,
    kind: str,
    run: tuple[str, dict[str, str], dict[str, float]],
    version_tags: Callable[[str], dict[str, str]],
) -> str:
    """A comparison's run (its name, tags and metrics) of ``kind``, about ``version``, and the
    version's tags of it (``version_tags`` of the run id). Returns the run id."""
    run_name, tags, figures = run
    run_id = _logged(client, name, run_name, {KIND_TAG: kind, "model.version": version, **tags}, figures)
    for tag, value in version_tags(run_id).items():
        client.set_model_version_tag(name, version, tag, value)
    return run_id


def _group_metrics(prefix: str, figure: str, groups: tuple[GroupComparison, ...]) -> dict[str, float]:
    """Each group's difference as run metrics: ``<prefix>.<dimension>.<group>.<figure>``, its
    interval and rows (and the other side's, where the two sides differ); and the level of each
    group's interval (``<prefix>.groups_level``), by which they hold together at 95 %."""
    figures: dict[str, float] = {}
    levels = {g.difference.level for g in groups if g.difference is not None}
    if levels:
        figures[f"{prefix}.groups_level"] = levels.pop()
    for g in groups:
        group = f"{prefix}.{metric_name(g.dimension)}.{metric_name(g.group)}"
        figures[f"{group}.rows"] = float(g.rows)
        if g.other_rows is not None:
            figures[f"{group}.other_rows"] = float(g.other_rows)
        if g.difference is not None:
            figures.update(_interval_metrics(f"{group}.{figure}", g.difference))
    return figures


def shadow_tags(comparison: ShadowComparison, run_id: str) -> dict[str, str]:
    """The shadow version's tags of this comparison: ``roc_auc +0.0121 (+0.0040 to +0.0203)
    against v4 on 812, better``, or why there is none; and the groups it is worse for beyond the
    noise (``Geography Germany -0.0312 (-0.0580 to -0.0047, 412) worse``, or ``none``)."""
    against = f"against v{comparison.served} on {comparison.rows:,}"
    return {
        SHADOW_COMPARISON_TAG: _compared_text(comparison, against),
        SHADOW_GROUPS_WORSE_TAG: _worse_text(comparison),
        SHADOW_RUN_TAG: run_id,
    }


def canary_tags(comparison: CanaryComparison, run_id: str) -> dict[str, str]:
    """The canary version's tags of this comparison: ``roc_auc +0.0125 (-0.0462 to +0.0663)
    against v1 on 613 and 586, within the noise``, or why there is none; and the groups it is
    worse for beyond the noise, or ``none``."""
    against = f"against v{comparison.stable} on {comparison.canary_rows:,} and {comparison.stable_rows:,}"
    return {
        CANARY_COMPARISON_TAG: _compared_text(comparison, against),
        CANARY_GROUPS_WORSE_TAG: _worse_text(comparison),
        CANARY_RUN_TAG: run_id,
    }


def _compared_text(comparison: CanaryComparison | ShadowComparison, against: str) -> str:
    d = comparison.difference
    if d is None:
        return f"none {against}: {comparison.note}"
    figure = f"{comparison.metric} {d.estimate:+.4f} ({d.low:+.4f} to {d.high:+.4f})"
    return f"{figure} {against}, {comparison.verdict}"


def _not_compared(note: str) -> str:
    return f"{NOT_COMPARED}{note}" if note else ""


def _worse_text(comparison: CanaryComparison | ShadowComparison | Quality) -> str:
    """The groups worse beyond the noise, ``none``, or empty without a comparison at all."""
    worse = "; ".join(f"{g.dimension} {g.describe()}" for g in comparison.groups_worse)
    if worse:
        return f"{worse}; {comparison.groups_level}"
    return "none" if comparison.difference is not None else ""


#: MLflow writes "View run ... at: <url>" to stdout as a run ends, unless this is set.
SUPPRESS_RUN_LINKS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@contextlib.contextmanager
def run_links_unprinted() -> Iterator[None]:
    """MLflow's run links left out of stdout while the block runs: between the report's lines they
    read as part of it, and ``mlp evaluate`` names each run it logs on a line of its own."""
    before = os.environ.get(SUPPRESS_RUN_LINKS)
    os.environ[SUPPRESS_RUN_LINKS] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ[SUPPRESS_RUN_LINKS]
        else:
            os.environ[SUPPRESS_RUN_LINKS] = before


def version_tags(quality: Quality, run_id: str) -> dict[str, str]:
    """The version's tags of this evaluation, which ``mlp versions`` reads back."""
    live = quality.live
    return {
        LIVE_FIGURE_TAG: f"{quality.metric} {live.estimate:.4f}" if live is not None else "none",
        LIVE_CI_TAG: f"{live.low:.4f}-{live.high:.4f}" if live is not None else "",
        LIVE_ANSWERS_TAG: str(quality.rows),
        LIVE_VERDICT_TAG: verdict(quality),
        LIVE_GROUPS_WORSE_TAG: _worse_text(quality) if quality.groups else _not_compared(quality.groups_note),
        LIVE_RUN_TAG: run_id,
        # Beside the verdict on the version too, where ``mlp versions`` and ``mlp promote`` read it:
        # emptied by an evaluation against the figure its run logged, as the other tags are replaced.
        HELD_OUT_TAG: held_out_scope(quality),
    }


def held_out_scope(quality: Quality) -> str:
    """What rows the held-out figure the live one was held against is over, where it is not what
    the version's training run logged as over requests (recomputed, or over every row as too few
    were requests); empty otherwise, and without a held-out figure (the verdict says why)."""
    return quality.held_out_note if quality.held_out is not None else ""
