"""A version whose held-out figures are over every held-out row, those no request can be included:
its figures recomputed over the rows a request can be, or why they cannot be.

Live answers are all answers to requests, so the held-out figure they are held against must be
over the held-out rows a request can be (``trainer.requestable``). A version trained before the
figures left the others out (servekit 2566b58) logged its figures over every row: ChicagoTaxi's
MAE 0.7065 over 2,327 held-out trips, 729 of which the API refuses, is 0.5383 over the 1,598 a
request can be, for the same model, and live answers as good as the second read "better" beyond
the noise against the first. Its ``held_out_answers.json`` keeps each row's truth and output but
not its request fields, so which rows a request can be is told from the training data again: the
file its run names (or the generated data of its seed), read as the recipe reads it now and split
as it was, and used only where it gives back exactly the held-out truths the run kept.

Only a service whose request schema can refuse a row its training data holds is in question: a
recipe whose validation refuses any other file (``TrainingRecipe.rows_all_requestable``,
BankChurn) logged its figures over requests whatever it was trained on, and they are compared as
logged without the file, which the live-evaluation Job never has.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from servekit.training import uncertainty
from servekit.training.baselines import EVERY_ROW, REQUESTABLE
from servekit.training.fingerprint import SYNTHETIC, sha256_of_file, sha256_of_frame
from servekit.training.versions import REFUSED_BY

if TYPE_CHECKING:
    from servekit.evaluation.held_out import HeldOutAnswers
    from servekit.spec import ServiceSpec

#: The run parameter counting the held-out rows the figures are over (``trainer.held_out_rows``): a
#: run ``mlp train`` logged (``data.rows``) without it was trained before the rows were counted.
SCORED_ROWS = "data.held_out_scored_rows"
#: What to do where a version's held-out figure cannot be compared with its live answers.
WHAT_TO_DO = (
    "retrain it (`mlp train` scores the held-out figures over the rows a request can be), or compare "
    "it with another version on the same captured requests (as a shadow or a canary)"
)
#: What to do about a version whose figures are over every held-out row as too few were requests
#: (``trainer.too_few_requests_note``): retrained on the same file, it falls back again.
MORE_REQUESTS = "train on a file with more rows the request schema accepts"


class OverRequests(NamedTuple):
    """A version's held-out figure and answers over the rows a request can be, recomputed."""

    figure: uncertainty.Interval
    rows: HeldOutAnswers
    #: The rows' decision and error rates per group, at the version's threshold; None without its
    #: serving metadata to read the threshold from.
    parity: dict[str, dict[str, Any]] | None
    #: What the figure is over, for the report: "over the 1,598 of its 2,327 held-out rows ...".
    scope: str


def too_few_requests(params: dict[str, str]) -> str:
    """What a version's held-out figures are over where its run, trained since the figures left out
    the rows no request can be, scored them over every held-out row as fewer than 100 were requests
    (``trainer.scored_rows``), as its card shows; "" for any other run.

    Its figure is compared as logged: no recompute reaches the 100 rows the training did not.
    """
    if SCORED_ROWS not in params:
        return ""
    scored = params.get("data.held_out_scored", "")
    if not (scored.startswith(EVERY_ROW) and REFUSED_BY in scored):
        return ""
    return f"over {scored} (as its card shows); {MORE_REQUESTS}"


def every_row(params: dict[str, str], metadata: dict[str, Any] | None) -> str:
    """Why a version's held-out figures may count held-out rows no request can be; "" when they do
    not (its input baseline counts every held-out row a request), or it was trained since they were
    counted (:func:`too_few_requests` for those over every row), or the run was not logged by ``mlp
    train`` (no ``data.rows``) and says nothing of its rows. Whether the service's request schema
    can refuse a row at all is the caller's (``TrainingRecipe.rows_all_requestable``).

    ``params``: its training run's parameters; ``metadata``: its ``serving_metadata.json``.
    """
    if SCORED_ROWS in params or "data.rows" not in params:
        return ""
    # Its input drift baseline was fitted on the rows a request can be, and counts them.
    baseline = (metadata or {}).get("input_baseline") or {}
    rows, held_out = baseline.get("rows"), baseline.get("held_out_rows")
    refused = "how many of them the request schema refuses is not recorded"
    if baseline.get("rows_from") == REQUESTABLE and rows is not None and held_out is not None:
        if rows == held_out:
            return ""
        refused = f"the request schema refuses {int(held_out) - int(rows):,} of its {int(held_out):,}"
    return f"trained before the held-out figures left out the rows no request can be; {refused}"


def over_requests(
    spec: ServiceSpec,
    params: dict[str, str],
    answers: HeldOutAnswers | None,
    metadata: dict[str, Any] | None,
    logged: float,
) -> OverRequests | str | None:
    """The version's held-out figure recomputed over the rows a request can be, from the answers
    its run kept (``answers``) and its training data found again; None when the request schema
    refuses none of its held-out rows (the figure its run logged is over requests); else why it
    cannot be recomputed.

    ``logged``: the figure its run logged over every held-out row, which the report names.
    """
    from servekit.evaluation.held_out import read_held_out_answers
    from servekit.training import baselines, parity
    from servekit.training.champion import MIN_JUDGED_ROWS
    from servekit.training.splitting import split, to_records
    from servekit.training.trainer import held_out_record

    if answers is None:
        return "its training run kept no held-out answers to recompute it from"
    recipe = spec.recipe
    source, seed = params.get("data.source", ""), params.get("seed", "")
    if not seed.isdigit():
        return "its training run recorded no split seed to find its held-out rows with"
    path = None if source.startswith(SYNTHETIC) else Path(source)
    read = "its training data" if path is None else f"its training file {source}"
    if path is not None and not path.is_file():
        named = source or "(not recorded)"
        return (
            f"its training file {named} is not here to tell which held-out rows a request can be (run "
            "`mlp evaluate` where that path finds it)"
        )
    if float(params.get("test_size", recipe.test_size)) != recipe.test_size:
        held = params["test_size"]
        return f"it held out {held} of its rows, and {spec.name} holds out {recipe.test_size:g}"
    try:
        if path is not None and sha256_of_file(path) != params.get("data.sha256"):
            return f"its training file {source} has changed since it was trained"
        with _quiet(recipe):
            frame, _ = recipe.load(path, int(seed))
        # The frame as the recipe reads it now (its cleaning may have changed), and the same split.
        if params.get("data.frame_sha256", sha256_of_frame(frame)) != sha256_of_frame(frame):
            return f"{read} reads otherwise now (the recipe's cleaning changed since)"
        data = split(spec, frame, int(seed))
    except (OSError, ValueError) as exc:  # DatasetError is a ValueError, as pandas' parse errors are
        # One version's file that does not read is its own verdict, not a failed evaluation: the
        # Job retries a traceback (exit 1), and the other versions were never judged.
        return f"{read} does not read now: {type(exc).__name__}: {' '.join(str(exc).split())}"
    truths = data.y_test.to_numpy()
    # The rows its answers are of, in their order: else a mask of these rows would pick other answers.
    if truths.shape != answers.target.shape or not np.array_equal(
        truths.astype(str), answers.target.astype(str)
    ):
        return "its held-out rows split again are not the ones its run kept answers of"
    asked = baselines.requestable(to_records(data.x_test), spec)
    if asked.rows_from == REQUESTABLE and not asked.left_out:
        return None
    kept = int(asked.mask.sum())
    if asked.rows_from != REQUESTABLE or kept < MIN_JUDGED_ROWS:
        return (
            f"only {kept:,} of its {len(truths):,} held-out rows pass {spec.name}'s request schema, "
            f"fewer than the {MIN_JUDGED_ROWS} a held-out figure needs"
        )
    features, target = data.x_test[asked.mask], data.y_test[asked.mask]
    output = answers.output[asked.mask]
    figure = uncertainty.interval(recipe.primary(), target.to_numpy(), output, seed=int(seed))
    rows = read_held_out_answers(held_out_record(recipe, features, target, output))
    rates = (
        parity.decision_parity(recipe, features, target, output, metadata, seed=int(seed))
        if metadata is not None
        else None
    )
    scope = (
        f"recomputed over the {kept:,} of its {len(truths):,} held-out rows a request can be; its run's "
        f"{recipe.primary_metric} {logged:.4f} over every held-out row, counts the "
        f"{asked.left_out:,} the request schema refuses"
    )
    return OverRequests(figure, rows, rates or None, scope)


@contextlib.contextmanager
def _quiet(recipe: Any) -> Iterator[None]:
    """The recipe's package's INFO lines left out while its data is read again: ChicagoTaxi's
    cleaning reports each rule (15 lines) on ``mlp evaluate``'s stderr, of a training long done.
    Its warnings stay."""
    found = logging.getLogger(type(recipe).__module__.split(".")[0])
    before = found.level
    if found.getEffectiveLevel() < logging.WARNING:
        found.setLevel(logging.WARNING)
    try:
        yield
    finally:
        found.setLevel(before)


def serving_metadata(text: str | None) -> dict[str, Any] | None:
    """``serving_metadata.json`` as read; None for a run without one, or one that does not read
    (``held_out_parity`` refuses it)."""
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
