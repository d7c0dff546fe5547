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
"""

from __future__ import annotations

import json
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


class OverRequests(NamedTuple):
    """A version's held-out figure and answers over the rows a request can be, recomputed."""

    figure: uncertainty.Interval
    rows: HeldOutAnswers
    #: The rows' decision and error rates per group, at the version's threshold; None without its
    #: serving metadata to read the threshold from.
    parity: dict[str, dict[str, Any]] | None
    #: What the figure is over, for the report: "over the 1,598 of its 2,327 held-out rows ...".
    scope: str


def every_row(params: dict[str, str], metadata: dict[str, Any] | None) -> str:
    """Why a version's held-out figures are over every held-out row though some are no request; ""
    when they are over the rows a request can be, or every held-out row is one, or the run was not
    logged by ``mlp train`` (no ``data.rows``) and says nothing of its rows.

    ``params``: its training run's parameters; ``metadata``: its ``serving_metadata.json``.
    """
    if SCORED_ROWS in params:
        # Trained since, but over every row as too few were requests (``trainer.scored_rows``).
        scored = params.get("data.held_out_scored", "")
        over_every_row = scored.startswith(EVERY_ROW) and REFUSED_BY in scored
        return scored.removeprefix(f"{EVERY_ROW} ") if over_every_row else ""
    if "data.rows" not in params:
        return ""
    # Its input drift baseline was fitted on the rows a request can be, and counts them.
    baseline = (metadata or {}).get("input_baseline") or {}
    rows, held_out = baseline.get("rows"), baseline.get("held_out_rows")
    if baseline.get("rows_from") == REQUESTABLE and rows is not None and rows == held_out:
        return ""
    counted = (
        f"{int(held_out) - int(rows):,} of its {int(held_out):,} no request can be"
        if baseline.get("rows_from") == REQUESTABLE and rows is not None and held_out is not None
        else "how many of them a request can be not recorded"
    )
    return f"trained before the held-out figures left out the rows no request can be ({counted})"


def over_requests(
    spec: ServiceSpec,
    params: dict[str, str],
    answers: HeldOutAnswers | None,
    metadata: dict[str, Any] | None,
    logged: float,
) -> OverRequests | str:
    """The version's held-out figure recomputed over the rows a request can be, from the answers
    its run kept (``answers``) and its training data found again; else why it cannot be.

    ``logged``: the figure its run logged over every held-out row, which the report names.
    """
    from servekit.evaluation.held_out import read_held_out_answers
    from servekit.training import baselines, parity
    from servekit.training.trainer import (
        MIN_JUDGED_ROWS,
        held_out_record,
        split,
        to_records,
    )

    if answers is None:
        return "its training run kept no held-out answers to recompute it from"
    recipe = spec.recipe
    source, seed = params.get("data.source", ""), params.get("seed", "")
    if not seed.isdigit():
        return "its training run recorded no split seed to find its held-out rows with"
    path = None if source.startswith(SYNTHETIC) else Path(source)
    if path is not None and not path.is_file():
        named = source or "(not recorded)"
        return f"its training file {named} is not here to tell which held-out rows a request can be"
    if path is not None and sha256_of_file(path) != params.get("data.sha256"):
        return f"its training file {source} has changed since it was trained"
    frame, _ = recipe.load(path, int(seed))
    # The frame as the recipe reads it now (its cleaning may have changed), and the same split.
    if params.get("data.frame_sha256", sha256_of_frame(frame)) != sha256_of_frame(frame):
        read = "its training data" if path is None else f"its training file {source}"
        return f"{read} reads otherwise now (the recipe's cleaning changed since)"
    if float(params.get("test_size", recipe.test_size)) != recipe.test_size:
        held = params["test_size"]
        return f"it held out {held} of its rows, and {spec.name} holds out {recipe.test_size:g}"
    data = split(spec, frame, int(seed))
    truths = data.y_test.to_numpy()
    # The rows its answers are of, in their order: else a mask of these rows would pick other answers.
    if truths.shape != answers.target.shape or not np.array_equal(
        truths.astype(str), answers.target.astype(str)
    ):
        return "its held-out rows split again are not the ones its run kept answers of"
    asked = baselines.requestable(to_records(data.x_test), spec)
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
