"""Whether a new version becomes ``champion``: its primary metric against the champion's on the
same held-out rows, with the paired bootstrap's verdict on the difference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from servekit.errors import ServekitError
from servekit.loading import ModelLoadError, load_artifact, one_line
from servekit.model import ModelArtifact
from servekit.spec import ServiceSpec
from servekit.training import baselines, uncertainty
from servekit.training.aliases import CHALLENGER, CHAMPION, current_champion
from servekit.training.fingerprint import is_synthetic
from servekit.training.splitting import Split
from servekit.training.training_rows import (
    TrainingRowsUnreadableError,
    logged_training_rows,
    rebuilt_training_rows,
    row_hashes,
)
from servekit.training.versions import NOT_DECIDED, NOT_PROMOTED, TOO_FEW_TO_TELL


class ChampionUnloadableError(Exception):
    """The champion's model cannot be loaded (its files deleted, its run collected, another
    service's model), so a new version cannot be compared with it and is not promoted."""

    def __init__(self, name: str, champion: str, why: str) -> None:
        super().__init__(why)
        self.name, self.champion = name, champion
        self.decision = f"not compared: {CHAMPION} v{champion} cannot be loaded ({why})"

    def registered(self, version: str) -> ServekitError:
        """The error ``mlp train`` ends with, once ``version`` is registered as challenger."""
        # A 4xx (mlp exits 2), not a 5xx (1, "try again later"): training again would register
        # another version and meet the same champion; a person has to choose what is champion.
        return ServekitError(
            409,
            "champion_not_loadable",
            f"{self.name}: registered v{version} as {CHALLENGER}, not compared: {CHAMPION} "
            f"v{self.champion} cannot be loaded ({self}), so it stays {CHAMPION}; "
            f"`mlp promote {self.name} {version}` makes v{version} {CHAMPION} by hand",
        )


def compare(spec: ServiceSpec, new_outputs: Any, old_outputs: Any, data: Split) -> str:
    """The paired-bootstrap difference of the primary metric, and whether it exceeds the noise.

    Promotion still follows the point estimate (a retrain on more data should not
    wait for a significant win), but the operator reading the decision sees
    whether the win is real on this split; on too few rows to tell, it waits for the operator
    (``decide``).
    """
    difference = uncertainty.paired_difference(
        spec.recipe.primary(), data.y_test.to_numpy(), new_outputs, old_outputs
    )
    too_few = too_few_to_judge(data.y_test, classes=spec.recipe.task != "regression")
    if too_few:
        return f"difference {difference}, on {too_few}: {TOO_FEW_TO_TELL}"
    verdict = "within" if difference.contains(0.0) else "beyond"
    return f"difference {difference}, {verdict} the noise of this split"


#: The fewest held-out rows, and rows of each class, whose bootstrap says anything: one row
#: resampled is one row, and its interval a point ("+0.97 to +0.97, beyond the noise").
MIN_JUDGED_ROWS = 100
MIN_JUDGED_PER_CLASS = 10


def too_few_to_judge(y_test: pd.Series, *, classes: bool) -> str | None:
    """``"40 held-out rows"`` (or ``"3 held-out rows of class 1"``) when too few to judge, else None."""
    if len(y_test) < MIN_JUDGED_ROWS:
        return f"{len(y_test):,} held-out rows"
    if classes:
        label, count = min(y_test.value_counts().items(), key=lambda item: item[1])
        if count < MIN_JUDGED_PER_CLASS:
            return f"{count:,} held-out rows of class {label}"
    return None


def scope_of(asked: baselines.Requestable) -> str:
    """What a comparison on the held-out rows a request can be says of them; empty when they are
    every held-out row."""
    if not asked.left_out:
        return ""
    return f" (the {int(asked.mask.sum()):,} of its {len(asked.mask):,} rows a request can be)"


def decide(
    spec: ServiceSpec,
    client: Any,
    tracking_uri: str,
    data: Split,
    *,
    new_outputs: Any,
    metrics: dict[str, float],
    source: str,
    scope: str = "",
    version: str = "",
    unjudged: str = "",
    recorded: dict[str, Any] | None = None,
    frame: pd.DataFrame | None = None,
) -> tuple[bool, str, str]:
    """Compare with the champion on THIS held-out split; returns (promote, champion, why).

    ``data``: the split with the held-out rows a request can be (:func:`requestable`), which both
    versions are scored on, the champion however its own figures were counted; ``scope`` says so.

    ``version``: the new version, which the decision names for a promotion by hand. A comparison
    on fewer rows than :func:`too_few_to_judge` allows, or over every held-out row as too few are
    requests (``unjudged``: why, from :func:`scored_rows`), never moves the champion: a version
    trained on ChicagoTaxi's file with miles on 8 trips would have replaced it on 1 row, or on
    trips without miles, which no request is.

    ``source``: the new version's ``data.source``. A version of synthetic data is not compared
    with a champion of real data: its held-out rows are synthetic too, where a model of them scores
    far better than one of the real, noisier, rows ever can, and it would replace the champion that
    serves real traffic with one that has never seen any. The other way round is compared: the
    held-out rows are real, and a synthetic champion is judged on them as the new version is.

    ``recorded``: the new version's ``data`` record (hashes, rows, seed), which tells whether a
    champion that logged no training rows was trained on this very split (:func:`champion_rows`).
    When that cannot be told, its figure may count rows it learnt: a lead of the new version stands
    (those rows can only have favoured the champion), a loss does not decide, and a person does.
    ``frame``: the rows this version was split from, which split as the champion's record says give
    its training rows when it was trained on the same rows.
    """
    recipe = spec.recipe
    key = recipe.primary_metric
    champion = current_champion(client, spec.name)
    if champion is None:
        return True, "", f"promoted to {CHAMPION}: no {CHAMPION} yet ({key}={metrics[key]:.4f})"
    try:
        old = load_artifact(spec.name, f"models:/{spec.name}/{champion}", tracking_uri)
    except ModelLoadError as exc:
        raise ChampionUnloadableError(spec.name, champion, one_line(exc)) from exc
    trained_on = str((old.metadata.get("data") or {}).get("source", ""))
    if is_synthetic(source) and trained_on and not is_synthetic(trained_on):
        return (
            False,
            champion,
            (
                f"kept {CHAMPION} v{champion}: this version was trained on synthetic data and v{champion} "
                f"on {trained_on}, and synthetic data never replaces real (its held-out rows are "
                f"synthetic too); `mlp train {spec.name} --data FILE` trains on real data"
            ),
        )
    # The champion's held-out outputs are predicted once and serve both its point
    # value and the paired bootstrap; both values come from the same scoring function.
    primary = recipe.primary()
    old_outputs = primary.outputs(old.pipeline, data.x_test)
    # Only rows the champion did not train on: a retrain on a grown file holds out rows the
    # champion learnt, where it scores as on its training rows, and it was kept over a better model.
    judged, where = data, f"on the same held-out split{scope}"
    seen, known, doubt = champion_rows(
        spec, client, old, champion, data, recorded=recorded or {}, tracking_uri=tracking_uri, frame=frame
    )
    if doubt:  # it may have learnt some of these rows: said so below, and its lead decides nothing
        where = f"on this version's {len(data.y_test):,} held-out rows{scope}"
    elif seen is not None:
        unseen = ~np.isin(row_hashes(data.x_test, data.y_test), seen)
        if not unseen.any():
            where += f" (every row of it among v{champion}'s training rows, which favours it)"
        elif not unseen.all():
            where = (
                f"on the {unseen.sum():,} held-out rows v{champion} did not train on "
                f"({(~unseen).sum():,} of the {len(unseen):,} were among its training rows){scope}"
            )
            judged = Split(data.x_train, data.x_test[unseen], data.y_train, data.y_test[unseen])
            new_outputs, old_outputs = np.asarray(new_outputs)[unseen], np.asarray(old_outputs)[unseen]
        if known:
            where += f" ({known})"
    truth = judged.y_test.to_numpy()
    new_value, old_value = primary.score(truth, new_outputs), primary.score(truth, old_outputs)
    better = new_value > old_value if recipe.greater_is_better else new_value < old_value
    comparison = (
        f"{key} {new_value:.4f} vs {CHAMPION} v{champion} {old_value:.4f} {where}"
        f"; {compare(spec, new_outputs, old_outputs, judged)}"
    )
    too_few = too_few_to_judge(judged.y_test, classes=recipe.task != "regression")
    by_hand = f"`mlp promote {spec.name} {version or 'VERSION'}` makes it {CHAMPION} by hand"
    if better and (unjudged or too_few):
        # Compared, and said, but a person decides: the point estimate of so few rows is luck.
        why = unjudged or f"too few held-out rows ({too_few}) to move the {CHAMPION}"
        doubted = f"; {doubt}, which may have inflated its {key}" if doubt else ""
        return (
            False,
            champion,
            f"kept {CHAMPION} v{champion}: {comparison}{doubted}; {NOT_PROMOTED}: {why}; {by_hand}",
        )
    if better:
        # Rows the champion learnt can only have raised its figure: a lead over it stands.
        doubted = f"; {doubt}, which can only have raised its {key}: the lead stands" if doubt else ""
        return True, champion, f"promoted to {CHAMPION}: {comparison}{doubted}"
    if doubt:
        # Kept, as the champion stays unless something moves it, but not on this comparison's word:
        # v1 of a grown file had been kept "beyond the noise" on rows it had learnt.
        return (
            False,
            champion,
            f"kept {CHAMPION} v{champion}: {comparison}; {NOT_DECIDED}: {doubt}, "
            f"which would inflate its {key}; {by_hand} if it is the better model",
        )
    return False, champion, f"kept {CHAMPION} v{champion}: {comparison}"


def champion_rows(
    spec: ServiceSpec,
    client: Any,
    old: ModelArtifact,
    champion: str,
    data: Split,
    *,
    recorded: dict[str, Any],
    tracking_uri: str,
    frame: pd.DataFrame | None = None,
) -> tuple[np.ndarray | None, str, str]:
    """The hashes of the rows the champion trained on, how they are known when its run did not log
    them ("" when it did), and why they cannot be known ("" when they can).

    A release before 2026-12-05 logged no ``training_rows.npy``. Its run's record tells which rows
    it trained on when the rows it split can be had again: the same rows read (``frame_sha256``, or
    the file's sha256 and row count for a record without it) are this version's ``frame``, and
    synthetic rows are generated again from the generator seed its ``data.source`` names (checked
    against its hash); split with its own seed and test size, they give its training rows exactly.
    A synthetic champion whose rows cannot be generated again learnt no row of a file. Anything else
    (a grown file, a file unlike this one) may have put rows it learnt among these held-out ones: the
    bankchurn v1 of 6,000 rows was kept "beyond the noise" (0.8649 vs 0.8558) on a split of 354 rows
    it had learnt, over a version better by 0.0009 on the 1,246 it had not.

    Rows it logged that the store cannot give are said as such, not as a release that logged none.
    """
    theirs: dict[str, Any] = dict(old.metadata.get("data") or {})
    unread_run = ""
    try:
        params = dict(client.get_run(old.run_id).data.params) if old.run_id else {}
    except Exception as exc:  # a run gone or unreadable: its record is the model's metadata alone
        params, unread_run = {}, one_line(exc)
    record = {**params, **{f"data.{k}": v for k, v in theirs.items()}}
    try:
        logged = logged_training_rows(client, old.run_id, tracking_uri, record)
    except TrainingRowsUnreadableError as exc:
        lacking, joined = f"v{champion}'s training rows could not be read ({exc})", f", and v{champion}"
    else:
        if logged is not None:
            return logged, "", ""
        lacking, joined = f"v{champion} logged no training rows", ""
    hashes, how, differs = rebuilt_training_rows(spec, record, recorded, frame)
    if hashes is not None:
        return hashes, f"{lacking}, but {f'v{champion} ' if joined else ''}{how}", ""
    trained_on, source = str(theirs.get("source", "")), str(recorded.get("source", ""))
    if is_synthetic(trained_on) and source and not is_synthetic(source):
        return np.array([], dtype=np.uint64), f"{lacking}, but learnt synthetic rows only", ""
    said = lacking if joined else f"{lacking} (trained before mlp train logged them)"
    if unread_run:
        return None, "", f"{said}, and its run cannot be read ({unread_run}) to tell"
    listed = ", ".join(differs[:-1]) + (" and " if len(differs) > 1 else "") + differs[-1]
    return (
        None,
        "",
        f"{said}{joined or ' and'} {listed}, so some of these held-out rows may be rows it learnt",
    )
