"""``mlp versions``: a service's registered versions, their aliases and held-out figures.

What an operator looks at before ``mlp promote`` or a rollback: which version each alias
points at, how each scored with its bootstrap interval, what data it saw and why the
trainer did or did not promote it, without opening the MLflow UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from servekit.metrics.names import CANARY
from servekit.redaction import redact
from servekit.routing import SHARE_TAG
from servekit.spec import ServiceSpec
from servekit.training.baselines import EVERY_ROW
from servekit.training.fingerprint import is_synthetic

DECISION_TAG = "promotion.decision"
#: A version's tags of its latest live evaluation, which ``mlp evaluate --log`` sets
#: (``servekit.evaluation.version_tags``): the figure, its interval, the answers, the verdict, the run.
LIVE_FIGURE_TAG = "live.figure"
LIVE_CI_TAG = "live.ci"
LIVE_ANSWERS_TAG = "live.answers"
LIVE_VERDICT_TAG = "live.verdict"
LIVE_RUN_TAG = "live.run"
#: The groups whose live figure is worse than the same group's held out beyond the noise, ``none``,
#: or why the groups were not compared (after NOT_COMPARED).
LIVE_GROUPS_WORSE_TAG = "live.groups_worse"
NOT_COMPARED = "not compared: "
#: A version's tags of its latest comparison as a shadow (``servekit.evaluation.shadow_tags``):
#: against the version it shadowed, on the same answers; the groups it is worse for beyond the
#: noise; and the run that holds it.
SHADOW_COMPARISON_TAG = "shadow.comparison"
SHADOW_GROUPS_WORSE_TAG = "shadow.groups_worse"
SHADOW_RUN_TAG = "shadow.run"
#: The same of its latest comparison as a canary (``servekit.evaluation.canary_tags``), against the
#: stable version's answers of the canary's period.
CANARY_COMPARISON_TAG = "canary.comparison"
CANARY_GROUPS_WORSE_TAG = "canary.groups_worse"
CANARY_RUN_TAG = "canary.run"
#: The tag of every run ``mlp evaluate --log`` makes naming the captures it read, and the one
#: naming the Kubernetes Job that made it (``--job``; absent by hand): LiveEvaluationFailed stays
#: quiet for a Job's failure only when the worse verdict the pods hold is that Job's own.
CAPTURES_TAG = "evaluation.captures"
JOB_TAG = "evaluation.job"


@dataclass(frozen=True)
class RecordKind:
    """How ``mlp evaluate --log`` keeps one kind of a version's record, which the pods read back:
    the version tag naming its run, and the run's keys."""

    run_tag: str
    #: The figure's metric key, of the primary metric's name (its interval: ``<key>_ci_low``, ...).
    figure_key: str
    rows_key: str
    verdict_tag: str
    #: The run tag naming the version compared against (a shadow's served version).
    against_tag: str = ""
    #: The run metric counting the groups the version is worse for beyond the noise.
    groups_worse_key: str = ""

    def figure(self, metric: str) -> str:
        return self.figure_key.format(metric=metric)


#: A version's latest live evaluation as served (``live.*``).
AS_SERVED = RecordKind(
    LIVE_RUN_TAG, "live.{metric}", "live.rows", LIVE_VERDICT_TAG, groups_worse_key="live.groups_worse"
)
#: A version's latest comparison as a shadow with the served answers to the same requests.
AS_SHADOW = RecordKind(
    SHADOW_RUN_TAG,
    "shadow.{metric}_minus_served",
    "shadow.rows",
    "shadow.verdict",
    "shadow.served_version",
    "shadow.groups_worse",
)
#: The held-out rows' truth and primary-metric outputs, logged with each training run: ``mlp
#: evaluate`` resamples them against the live answers instead of combining the two intervals.
HELD_OUT_ANSWERS = "held_out_answers.json"
#: What a served model reads about itself (threshold, baselines, groups' figures), logged with each
#: training run too: ``mlp evaluate`` reads the held-out rates per group from it.
SERVING_METADATA = "serving_metadata.json"


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: tuple[str, ...]
    registered: datetime
    metric: float | None
    ci_low: float | None
    ci_high: float | None
    data: str
    decision: str
    #: The latest ``mlp evaluate --log``: the figure on live answers, their count and the verdict,
    #: and as a shadow, against the version it shadowed.
    live: str = ""
    shadow: str = ""
    #: Held-out rows its figures leave out, as no request can be them (``data.held_out_scored_rows``
    #: of its run); None for a version trained before they were left out, whose figures count every
    #: held-out row (or one whose run is gone).
    left_out: int | None = None
    #: What its figures are over where that is every held-out row though some are no request, as
    #: too few (or none) were (``data.held_out_scored`` of its run, ``trainer.scored_rows``); empty
    #: otherwise.
    every_row: str = ""
    #: Why the trainer's comparison did not decide (:func:`undecided_why`); empty when it did.
    undecided: str = ""


def list_versions(spec: ServiceSpec, client: Any, limit: int) -> list[VersionRow]:
    """The ``limit`` newest versions of ``spec``'s model, newest first."""
    found = client.search_model_versions(f"name='{spec.name}'")
    if not found:
        return []
    newest = sorted(found, key=lambda mv: int(mv.version), reverse=True)[:limit]
    # A search does not return aliases; the registered model holds them all, and the canary's
    # share when the registry sets it (``canary@25%``; without it, each pod's setting holds).
    model = client.get_registered_model(spec.name)
    share = (model.tags or {}).get(SHARE_TAG)
    aliases: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        shown = f"{alias}@{share}%" if alias == CANARY and share is not None else alias
        aliases.setdefault(str(version), []).append(shown)
    return [_row(spec, client, mv, aliases.get(str(mv.version), [])) for mv in newest]


def _row(spec: ServiceSpec, client: Any, mv: Any, aliases: list[str]) -> VersionRow:
    from mlflow.exceptions import MlflowException

    key = spec.recipe.primary_metric
    metrics: dict[str, float] = {}
    data = ""
    left_out: int | None = None
    every_row = ""
    decision = (mv.tags or {}).get(DECISION_TAG, "")
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
        except MlflowException as exc:
            # A version outlives its run once the run is deleted and collected (``mlflow gc``): it
            # is listed without figures, which is how the operator learns of it.
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            data = f"run {mv.run_id} missing"
        else:
            params = dict(run.data.params)
            metrics, data, left_out = dict(run.data.metrics), _data(params), _left_out(params)
            every_row = _every_row(params)
    return VersionRow(
        version=str(mv.version),
        aliases=tuple(sorted(aliases)),
        registered=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
        metric=metrics.get(key),
        ci_low=metrics.get(f"{key}_ci_low"),
        ci_high=metrics.get(f"{key}_ci_high"),
        data=data,
        decision=decision_summary(decision),
        undecided=undecided_why(decision),
        live=_live(mv.tags or {}),
        shadow=(mv.tags or {}).get(SHADOW_COMPARISON_TAG, ""),
        left_out=left_out,
        every_row=every_row,
    )


#: What a trainer's decision says after its comparison when the comparison did not decide it:
#: the new version led but too few rows, or rows that are no request, cannot move the champion;
#: or the champion may have learnt some of the held-out rows, so its lead decides nothing.
NOT_PROMOTED = "not promoted"
NOT_DECIDED = "not decided by this comparison"
#: What ``champion.compare`` says of a comparison on too few rows to tell a difference from noise.
TOO_FEW_TO_TELL = "too few to tell a difference from noise"


def decision_summary(decision: str) -> str:
    """The decision column: the trainer's reason up to its figures ("kept champion v3"), marked
    when the comparison did not decide it, which a decided keep would otherwise read as.

    A keep on a comparison that decided nothing (``kept champion v1: ...; not decided by this
    comparison: v1 may have learnt ...``) showed as ``kept champion v1``, as one kept beyond the
    noise does: an operator would leave a better version challenger on it.
    """
    head = decision.split(":", maxsplit=1)[0]
    if not head.startswith("kept"):
        return head
    if f"; {NOT_PROMOTED}: " in decision:  # better on the point estimate: a person decides
        return f"{head} (better, not promoted)"
    if f"; {NOT_DECIDED}: " in decision:
        return f"{head} (not decided)"
    if TOO_FEW_TO_TELL in decision:
        return f"{head} (too few rows to tell)"
    return head


def undecided_why(decision: str) -> str:
    """Why the comparison did not decide, and the ``mlp promote`` that would (the decision after
    its marker); empty for a decision it did decide."""
    for marker in (NOT_PROMOTED, NOT_DECIDED):
        _, found, why = decision.partition(f"; {marker}: ")
        if found and decision.startswith("kept"):
            return why
    return ""


def _left_out(params: dict[str, str]) -> int | None:
    """The held-out rows a run's figures leave out (``trainer.held_out_rows``); None before they did."""
    try:
        return int(params["data.held_out_rows"]) - int(params["data.held_out_scored_rows"])
    except (KeyError, ValueError):
        return None


#: What ``data.held_out_scored`` (over every held-out row: ``baselines.EVERY_ROW``) says when it
#: is because the request schema refuses some of them (not for want of a service to validate them).
REFUSED_BY = "request schema"


def _every_row(params: dict[str, str]) -> str:
    """What a run's figures are over where that is every held-out row though some are no request."""
    scored = params.get("data.held_out_scored", "")
    return scored if scored.startswith(EVERY_ROW) and REFUSED_BY in scored else ""


def live_evidence(version: str, tags: dict[str, str]) -> str:
    """What the version's tags say of it on live traffic, as served, as a shadow and as a canary;
    what ``mlp promote`` prints before an operator's choice takes effect."""
    found = [f"as served: {_of_held_out(_live(tags))}"] if LIVE_FIGURE_TAG in tags else []
    if _named_groups(tags.get(LIVE_GROUPS_WORSE_TAG, "")):
        found.append(f"as served, worse than held out beyond the noise for: {tags[LIVE_GROUPS_WORSE_TAG]}")
    for role, comparison, worse in (
        ("a shadow", SHADOW_COMPARISON_TAG, SHADOW_GROUPS_WORSE_TAG),
        ("a canary", CANARY_COMPARISON_TAG, CANARY_GROUPS_WORSE_TAG),
    ):
        if comparison in tags:
            found.append(f"as {role}: {tags[comparison]}")
            if _named_groups(tags.get(worse, "")):
                found.append(f"as {role}, worse beyond the noise for: {tags[worse]}")
    if not found:
        return f"v{version} on live traffic: no record (mlp evaluate --log records one)"
    return f"v{version} on live traffic: {'; '.join(found)}"


def _of_held_out(live: str) -> str:
    """The verdict said to be of the version's own held-out figure: read during a rollback, a bare
    "better" was taken for better than the champion being replaced."""
    for verdict, said in (
        ("better", "better than its own held-out figure"),
        ("worse", "worse than its own held-out figure"),
        ("within the noise", "within the noise of its own held-out figure"),
    ):
        if live.endswith(f", {verdict}"):
            return f"{live.removesuffix(verdict)}{said}"
    return live


def _named_groups(worse: str) -> bool:
    """Whether a ``*.groups_worse`` tag names groups, rather than ``none`` or why none were compared."""
    return worse not in ("none", "") and not worse.startswith(NOT_COMPARED)


def _live(tags: dict[str, str]) -> str:
    """``roc_auc 0.8189 on 803, within the noise``, from the tags ``mlp evaluate --log`` sets."""
    if LIVE_FIGURE_TAG not in tags:
        return ""
    return f"{tags[LIVE_FIGURE_TAG]} on {tags.get(LIVE_ANSWERS_TAG, '?')}, {tags.get(LIVE_VERDICT_TAG, '')}"


def _data(params: dict[str, str]) -> str:
    if "data.rows" not in params:
        return ""
    source = params.get("data.source", "")
    where = "synthetic" if is_synthetic(source) else source.rsplit("/", 1)[-1]
    return f"{where}, {int(params['data.rows']):,} rows, sha256 {params.get('data.sha256', '')[:12]}"


#: After the figure of a version whose figures count held-out rows no request can be.
EVERY_ROW_MARK = "*"


def render(spec: ServiceSpec, rows: list[VersionRow], tracking_uri: str) -> str:
    where = redact(tracking_uri)  # the terminal's scrollback and CI logs keep what is printed
    if not rows:
        return f"{spec.name}: no versions registered at {where}; `mlp train {spec.name}` registers one"
    key = spec.recipe.primary_metric

    def figure(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    # A version trained before the figures left out the rows no request can be counts them: beside
    # one trained since that leaves some out (ChicagoTaxi: MAE 0.7065 then, 0.5383 since, for the
    # same model), its figures are marked, not compared as if alike.
    since = next((row for row in rows if row.left_out), None)
    before = {row.version for row in rows if since and row.left_out is None and row.metric is not None}
    # And one whose figures are over every held-out row as too few were requests: 0 left out, but
    # not a figure of the requests it answers, beside any version's.
    every_row = [row for row in rows if row.every_row and row.metric is not None]
    marked = before | {row.version for row in every_row}

    heads = ("version", "aliases", "registered (UTC)", key, "95% CI", "data", "decision", "live", "as shadow")
    table = [heads]
    for row in rows:
        interval = "-" if row.ci_low is None else f"{figure(row.ci_low)}-{figure(row.ci_high)}"
        table.append(
            (
                row.version,
                ",".join(row.aliases) or "-",
                row.registered.strftime("%Y-%m-%d %H:%M"),
                figure(row.metric) + (EVERY_ROW_MARK if row.version in marked else ""),
                interval,
                row.data or "-",
                row.decision or "-",
                row.live or "-",
                row.shadow or "-",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    header = f"{spec.name} at {where} ({key} on each version's own held-out split)"
    if since is not None and before:
        lines.append(
            f"{EVERY_ROW_MARK} over every held-out row, those no request can be included (trained "
            "before they were left out): not comparable with the versions' since, which leave them "
            f"out (v{since.version}: {since.left_out:,} rows)"
        )
    lines += [f"{EVERY_ROW_MARK} v{row.version}: over {row.every_row}" for row in every_row]
    # The column shows the marker; what a person is to decide, and how, is said once under it.
    lines += [
        f"v{row.version} {row.decision.partition(' (')[2].removesuffix(')')}: {row.undecided}"
        for row in rows
        if row.undecided
    ]
    return "\n".join([header, *lines])
