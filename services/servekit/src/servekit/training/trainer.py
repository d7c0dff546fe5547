"""Train → log → register → challenger → (maybe) champion, for any service: the training run.

The held-out split is :mod:`~servekit.training.splitting`'s, the comparison that decides whether
the new version becomes champion :mod:`~servekit.training.champion`'s (on rows neither version
trained on: :mod:`~servekit.training.training_rows`), and the aliases it moves
:mod:`~servekit.training.aliases`'.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servekit import serialization
from servekit.card import render as render_card
from servekit.loading import use_registry
from servekit.managed.packaging import model_requirements
from servekit.mlflow_registry import sqlite_database
from servekit.model import ModelArtifact
from servekit.provenance import code_version, run_tags
from servekit.spec import ServiceSpec
from servekit.training import baselines, parity, uncertainty
from servekit.training.aliases import CHALLENGER, CHAMPION, current_champion, move_champion
from servekit.training.champion import MIN_JUDGED_ROWS, ChampionUnloadableError, decide, scope_of
from servekit.training.fingerprint import fingerprint, is_synthetic
from servekit.training.recipe import TrainingRecipe
from servekit.training.segments import ORDER, as_run_metrics, order_of, segment_metrics
from servekit.training.signature import model_signature
from servekit.training.splitting import Split, split, to_records
from servekit.training.training_rows import TRAINING_ROWS, row_hashes
from servekit.training.versions import HELD_OUT_ANSWERS, SERVING_METADATA

logger = logging.getLogger("servekit.training")

#: Training rows the drift baselines are computed on (enough for stable shares).
BASELINE_ROWS = 2000


@dataclass(frozen=True)
class TrainResult:
    name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    champion_version: str
    promoted: bool
    decision: str
    #: What a promotion did to the canary (``move_champion``); empty when there is none to tell.
    canary: str = ""
    #: Where the service's new experiment keeps its artifacts, when this run created it beside a
    #: SQLite store (``local_artifacts``); empty otherwise.
    artifacts: str = ""
    #: What is wrong with the held-out rows as a measure (too few of them requests, copies of
    #: training rows); empty if nothing.
    held_out_note: str = ""


def fit(
    spec: ServiceSpec, data: Split, seed: int, asked: baselines.Requestable | None = None
) -> tuple[Any, dict[str, Any]]:
    """The fitted pipeline and its serving metadata, from training rows only.

    ``asked``: which held-out rows a request can be (:func:`requestable`), found here when not given.
    """
    recipe = spec.recipe
    pipeline = recipe.fit(recipe.build_pipeline(seed), data.x_train, data.y_train)
    held_out = to_records(data.x_test)
    if asked is None:
        asked = baselines.requestable(held_out, spec)
    metadata: dict[str, Any] = {
        **recipe.tune(pipeline, data.x_train, data.y_train),
        "feature_schema": spec.request.model_json_schema(),
        # Rows a request can be: the service warms up on them.
        "input_example": asked.of(held_out)[:3],
    }
    served = spec.model(ModelArtifact(spec.name, pipeline, metadata))
    sample = to_records(data.x_train.head(BASELINE_ROWS))
    metadata["outcome_shares"] = baselines.outcome_shares(served, sample)
    metadata["attribution_means"] = baselines.attribution_means(served, sample)
    # Held-out rows, which the model did not learn from, as it will not have learnt from live
    # traffic: on its own training rows NLPInsight knows every word, so a known-word share
    # binned there would have one bin and never drift.
    metadata.update(baselines.input_profile(served, held_out, spec, asked))
    return pipeline, metadata


def requestable(spec: ServiceSpec, data: Split) -> tuple[Split, baselines.Requestable]:
    """The held-out rows a request can be, as a split, and which they are of all held out.

    The held-out figures (the metrics logged, the card, ``GET /model``), the rows ``mlp evaluate``
    holds live answers against, and the champion comparison are over these rows: a row the
    request schema refuses is never answered, so a figure counting it measures a model nobody is
    served (a third of ChicagoTaxi's real held-out trips have no miles, and their fares are the
    hardest: MAE 0.71 over every row, 0.54 over the trips a request can be). The input drift
    baseline is fitted over the same rows (``baselines.input_profile``).
    """
    asked = baselines.requestable(to_records(data.x_test), spec)
    if asked.mask.all():
        return data, asked
    return Split(data.x_train, data.x_test[asked.mask], data.y_train, data.y_test[asked.mask]), asked


def scored_rows(
    name: str, data: Split, requests: Split, asked: baselines.Requestable
) -> tuple[Split, baselines.Requestable, str]:
    """The held-out rows the figures and the champion comparison are over, which of all held out
    they are, and why they are every held-out row though some are not requests ("" when they are
    not, or when every row is one).

    ``requests`` and ``asked``: what :func:`requestable` found. Those rows, unless fewer than
    :data:`MIN_JUDGED_ROWS` of them (but some) of a split of at least as many: then every held-out
    row, as when none passes. ChicagoTaxi's real file with miles on 8 trips scored its figures on
    the one held-out trip a request could be (MAE 8.69, CI 8.69 to 8.69, r2 nan) and was promoted
    on it: a figure over every row measures a model of rows no request can be, one over a single
    row measures nothing, and only the first says so. A split under :data:`MIN_JUDGED_ROWS` keeps
    the rows a request can be: every row would be too few as well (55 of 60 requests scored over
    all 60, with advice to train on more rows the request schema accepts), and a comparison on so
    few never moves the champion anyway (:func:`decide`). The input drift baseline and the input
    example stay on the rows a request can be.
    """
    kept = int(asked.mask.sum())
    if asked.mask.all() or kept >= MIN_JUDGED_ROWS or len(asked.mask) < MIN_JUDGED_ROWS:
        return requests, asked, ""
    every = np.ones(len(asked.mask), dtype=bool)
    few = (
        f"only {kept:,} of the {len(every):,} held-out rows pass {name}'s request schema, fewer than "
        f"the {MIN_JUDGED_ROWS} a held-out figure needs"
    )
    rows_from = f"{baselines.EVERY_ROW} {few}; the {asked.left_out:,} no request can be may skew the figures"
    logger.warning("%s: held-out figures and the champion comparison over %s", name, rows_from)
    return data, baselines.Requestable(every, rows_from), few


def too_few_requests_note(few: str, asked: baselines.Requestable) -> str:
    """What ``mlp train`` prints when the figures are over every held-out row though some are
    requests (:func:`scored_rows`); empty when they are not."""
    if not few:
        return ""
    fields = ", ".join(f"{field}: {rows:,}" for field, rows in asked.refused.items())
    return (
        f"{few}: the held-out figures and the champion comparison are over every held-out row, the "
        f"{asked.left_out:,} the request schema refuses included ({fields or 'refused'}), so they do "
        "not measure the model on the requests it will answer, and no comparison moves the champion; "
        "train on a file with more rows the request schema accepts"
    )


def held_out_rows(data: Split, asked: baselines.Requestable) -> dict[str, Any]:
    """How many rows the model learnt from, how many were held out, and how many of those the
    held-out figures are over and why (``data`` of the serving metadata, and the card)."""
    rows: dict[str, Any] = {
        "training_rows": len(data.y_train),
        "held_out_rows": len(data.y_test),
        "held_out_scored_rows": int(asked.mask.sum()),
        "held_out_scored": asked.rows_from,
    }
    if asked.left_out:
        rows["held_out_left_out"] = asked.why_left_out()
    return rows


def train(
    spec: ServiceSpec,
    tracking_uri: str,
    data_path: Path | None = None,
    seed: int = 42,
) -> TrainResult:
    """Train on ``data_path`` (synthetic data when None), register, and promote if better."""
    import mlflow
    import mlflow.sklearn

    recipe = spec.recipe
    frame, source = recipe.load(data_path, seed)
    data = split(spec, frame, seed)
    requests, asked = requestable(spec, data)
    scored, counted, few = scored_rows(spec.name, data, requests, asked)
    pipeline, metadata = fit(spec, data, seed, asked)
    metrics, held_out = evaluate(spec, pipeline, scored, metadata, seed)
    metadata["data"] = fingerprint(frame, data_path, recipe.describe_data(frame))
    metadata["data"]["source"] = source
    # With the file's hash, what a load test needs to send the rows this version held out.
    metadata["data"]["seed"] = seed
    metadata["data"].update(held_out_rows(data, counted))
    metadata["code"] = code_version(("servekit", spec.name))

    use_registry(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    artifacts = local_artifacts(tracking_uri)
    if artifacts is not None and client.get_experiment_by_name(spec.name) is None:
        client.create_experiment(spec.name, artifact_location=artifacts.as_uri())
    else:
        artifacts = None  # an experiment's artifacts stay where it was created with them
    mlflow.set_experiment(spec.name)
    with mlflow.start_run(run_name=f"{spec.name}-{'real' if data_path else 'synthetic'}") as run:
        mlflow.log_params({"seed": seed, "test_size": recipe.test_size, **recipe.params(pipeline)})
        mlflow.log_params({f"data.{k}": v for k, v in metadata["data"].items()})
        mlflow.set_tags(run_tags(metadata["code"]))
        mlflow.log_dict(metadata, SERVING_METADATA)
        # The rows the figures are over: mlp evaluate holds live answers, all of requests, against them.
        mlflow.log_dict(held_out_record(recipe, scored.x_test, scored.y_test, held_out), HELD_OUT_ANSWERS)
        learnt = row_hashes(data.x_train, data.y_train)
        with tempfile.TemporaryDirectory(prefix="servekit-rows-") as tmp:
            np.save(Path(tmp) / TRAINING_ROWS, learnt)
            mlflow.log_artifact(str(Path(tmp) / TRAINING_ROWS))
        copies = int(np.isin(row_hashes(scored.x_test, scored.y_test), learnt).sum())
        mlflow.log_param("data.held_out_copies", copies)
        example = requests.x_test.head(3)
        sample = requests.x_test.head(100)
        signature = model_signature(spec.request, sample, pipeline.predict(sample))
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=example,
            metadata=metadata,
            serialization_format="skops",
            skops_trusted_types=serialization.types_of(pipeline, packages=(spec.name,)),
            pip_requirements=model_requirements(spec.name),
        )
        # After the model, tied to it in one call: log_model links the metrics already on the
        # run by reading each one's history, a request per metric (61, 0.65 s of an 11 s training).
        figures = {
            **metrics,
            **as_run_metrics(metadata["segments"], recipe.primary_metric),
            **parity.as_run_metrics(metadata["parity"]),
        }
        mlflow.log_metrics(figures, model_id=info.model_id)
        version = str(mlflow.register_model(info.model_uri, spec.name).version)
        # The card of this version, beside the model it describes: what GET /model/card will serve.
        registered = ModelArtifact(
            spec.name,
            pipeline,
            metadata,
            version=version,
            run_id=run.info.run_id,
            uri=f"models:/{spec.name}/{version}",
            registry_uri=tracking_uri,
            training_metrics=metrics,
        )
        with tagged_if_interrupted(client, spec.name, version):
            mlflow.log_text(render_card(spec, spec.model(registered).describe()), "model_card.md")
            client.set_registered_model_alias(spec.name, CHALLENGER, version)

            def judge() -> tuple[bool, str, str]:
                return decide(
                    spec,
                    client,
                    tracking_uri,
                    scored,
                    new_outputs=held_out,
                    metrics=metrics,
                    source=source,
                    scope=scope_of(counted),
                    version=version,
                    unjudged=few,
                    recorded=metadata["data"],
                    frame=frame,
                )

            settled = settle_champion(client, spec.name, version, judge)
            promoted, champion_version, decision, canary, uncompared = settled
            mlflow.set_tags({"promotion.decision": decision, "registered.version": version})
            client.set_model_version_tag(spec.name, version, "promotion.decision", decision)
    logger.info("%s version %s: %s", spec.name, version, decision)
    if uncompared is not None:  # raised after the run's end: a finished run, not a failed one
        raise uncompared.registered(version)
    return TrainResult(
        spec.name,
        version,
        run.info.run_id,
        metrics,
        champion_version,
        promoted,
        decision,
        canary,
        str(artifacts) if artifacts else "",
        "; ".join(
            note
            for note in (
                too_few_requests_note(few, asked),
                held_out_note(copies, len(scored.y_test), synthetic=is_synthetic(source)),
            )
            if note
        ),
    )


#: How many times a training compares its version with a champion that another training or an
#: ``mlp promote`` moved meanwhile, before it leaves the decision to a person.
MAX_COMPARISONS = 3


def settle_champion(
    client: Any, name: str, version: str, judge: Callable[[], tuple[bool, str, str]]
) -> tuple[bool, str, str, str, ChampionUnloadableError | None]:
    """Decide (``judge``: promote?, the champion compared with, why) and move ``champion`` to
    ``version`` only if it still is the version compared with; else compare with the new one.

    Two trainings at once both compared with the same champion, and the one that finished last
    took the alias though it had lost to the other's version (0.8401 against 0.8426). MLflow sets
    an alias unconditionally, so the check is made just before the move: what is left is the
    moment of one registry call, where it was the whole comparison (seconds).

    Returns (promoted, the champion after, decision, what became of a canary, the champion that
    could not be loaded to compare with, if so)."""
    for _ in range(MAX_COMPARISONS):
        try:
            promoted, compared, decision = judge()
        except ChampionUnloadableError as exc:
            return False, exc.champion, exc.decision, "", exc
        if not promoted:
            return False, compared, decision, "", None
        now = current_champion(client, name) or ""
        if now == compared:
            return True, version, decision, move_champion(client, name, version, compared or None), None
        logger.warning(
            "%s: %s moved from %s to v%s while v%s was compared with it: comparing with v%s",
            name,
            CHAMPION,
            f"v{compared}" if compared else "none",
            now,
            version,
            now,
        )
    return (
        False,
        now,
        f"kept {CHAMPION} v{now}: it moved {MAX_COMPARISONS} times while v{version} was compared with "
        f"it (other trainings or promotions at once); `mlp promote {name} {version}` makes it "
        f"{CHAMPION} by hand",
        "",
        None,
    )


@contextmanager
def tagged_if_interrupted(client: Any, name: str, version: str) -> Iterator[None]:
    """Tag ``version`` and say so if the training stops between registering it and deciding on it.

    Interrupted there (Ctrl-C, SIGTERM, an error), a version was left with no alias, no decision
    and a failed run, and nothing said it existed: `mlp promote` would then make a version never
    compared with the champion serve every request."""
    try:
        yield
    except BaseException:
        why = f"interrupted before it was compared with the {CHAMPION}: train again"
        # The registry gone too: the warning still names the version.
        with suppress(Exception):
            if current_champion(client, name) == version:  # stopped between the move and its record
                why = f"made {CHAMPION}; interrupted before the comparison was recorded"
            client.set_model_version_tag(name, version, "promotion.decision", why)
        logger.warning("%s version %s was registered, then the training stopped: %s", name, version, why)
        raise


def held_out_note(copies: int, rows: int, *, synthetic: bool = False) -> str:
    """What a file that repeats rows does to the held-out figures: each held-out copy of a training
    row is scored as the model scores rows it learnt. Empty when no held-out row is such a copy.

    ``synthetic``: the rows were generated (no file given), where "drop the repeated rows" is advice
    no one can follow: a generator drawing from a small vocabulary repeats some (NLPInsight's: 96 of
    the 1,200 held-out headlines at seed 42), and changing it would change every synthetic figure.
    """
    if not copies:
        return ""
    if synthetic:
        return (
            f"{copies:,} of the {rows:,} held-out rows are copies of training rows: the synthetic "
            "generator repeats some rows, so the held-out figures overstate how it does on rows it "
            "has not seen; nothing to do (a file given with --data is checked for its own)"
        )
    return (
        f"{copies:,} of the {rows:,} held-out rows are copies of training rows (the file repeats "
        "rows): the held-out figures overstate how it does on rows it has not seen; drop the "
        "repeated rows to measure that"
    )


def local_artifacts(tracking_uri: str) -> Path | None:
    """Where a new experiment of a SQLite store keeps its artifacts: ``artifacts`` beside the
    database, as ``make up``'s server keeps ``.mlp/artifacts`` beside ``.mlp/mlflow.db``.

    MLflow's own default is ``./mlruns`` of whatever directory the first run was started in, so
    ``mlp train --tracking-uri sqlite:////abs/mlflow.db`` from a checkout would scatter a registry's
    models over the working directories it was run from. None for a server (it decides) or an
    in-memory database.
    """
    database = sqlite_database(tracking_uri)
    return None if database is None else database.resolve().parent / "artifacts"


def evaluate(
    spec: ServiceSpec, pipeline: Any, data: Split, metadata: dict[str, Any], seed: int
) -> tuple[dict[str, float], Any]:
    """The held-out metrics ``mlp train`` logs, with the primary metric's bootstrap interval
    (``<metric>_ci_low``, ``<metric>_ci_high``), and the primary metric's per-row outputs.

    The outputs are predicted once: the interval and the champion comparison both resample them.
    """
    recipe = spec.recipe
    metrics = recipe.evaluate(pipeline, data.x_test, data.y_test, metadata)
    primary = recipe.primary()
    outputs = primary.outputs(pipeline, data.x_test)
    key = recipe.primary_metric
    found = uncertainty.interval(primary, data.y_test.to_numpy(), outputs, seed=seed)
    metrics.update({f"{key}_ci_low": found.low, f"{key}_ci_high": found.high})
    metadata["segments"] = segment_metrics(recipe, data.x_test, data.y_test, outputs, seed=seed)
    # The recipe's order of its groups, which the MLmodel file's sorted keys lose (ChicagoTaxi's
    # trip bands were served as "1-5, 15 or more, 5-15, under 1").
    metadata[ORDER] = order_of(metadata["segments"])
    metadata["parity"] = parity.decision_parity(
        recipe, data.x_test, data.y_test, outputs, metadata, seed=seed
    )
    return metrics, outputs


def held_out_record(
    recipe: TrainingRecipe, features: pd.DataFrame, target: pd.Series, outputs: Any
) -> dict[str, Any]:
    """What ``held_out_answers.json`` holds: the held-out rows' truth and primary-metric outputs,
    and each row's group of each of the recipe's dimensions. ``mlp evaluate`` resamples them
    against a version's live answers, whole and per group, where the two intervals combined would
    be a normal approximation."""
    return {
        "target": target.tolist(),
        "output": np.asarray(outputs).tolist(),
        "groups": {
            dimension: labels.astype(str).tolist() for dimension, labels in recipe.segments(features).items()
        },
    }
