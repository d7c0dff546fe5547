"""Train → log → register → challenger → (maybe) champion, for any service."""

from __future__ import annotations

import logging
import re
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.model_selection import train_test_split

from servekit import serialization
from servekit.card import render as render_card
from servekit.datasets import DatasetError
from servekit.errors import ServekitError
from servekit.loading import ModelLoadError, load_artifact, one_line, run_gone, run_gone_problem, use_registry
from servekit.managed.packaging import model_requirements
from servekit.model import ModelArtifact
from servekit.redaction import redact
from servekit.routing import SHARE_TAG
from servekit.settings import ServiceSettings
from servekit.spec import ServiceSpec
from servekit.training import baselines, parity, uncertainty
from servekit.training.fingerprint import SYNTHETIC, fingerprint, is_synthetic, sha256_of_frame
from servekit.training.recipe import TrainingRecipe
from servekit.training.segments import ORDER, as_run_metrics, order_of, segment_metrics
from servekit.training.signature import model_signature
from servekit.training.versions import (
    HELD_OUT_ANSWERS,
    NOT_DECIDED,
    NOT_PROMOTED,
    SERVING_METADATA,
    TOO_FEW_TO_TELL,
    live_evidence,
)

logger = logging.getLogger("servekit.training")

CHAMPION = "champion"
CHALLENGER = "challenger"
#: The alias a canary rollout serves (``<SVC>_CANARY_MODEL_URI=models:/<svc>@canary``).
CANARY = "canary"
#: Training rows the drift baselines are computed on (enough for stable shares).
BASELINE_ROWS = 2000
#: The run artifact holding a hash of each training row (features and target): a later version
#: compares with this one only on held-out rows this one did not train on.
TRAINING_ROWS = "training_rows.npy"


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


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


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records (NaN → None, numpy scalars → Python)."""
    try:
        # Arrow makes Python values of a frame five times as fast as pandas' to_dict: it is most of
        # the cost of reading a chunk of ``mlp score``'s file, beside the model's.
        records: list[dict[str, Any]] = pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
        return records
    except (pa.ArrowException, TypeError, ValueError):
        pass  # a column Arrow cannot type (ints and text in one, as a CSV's gaps can make): pandas
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]


def split(spec: ServiceSpec, frame: pd.DataFrame, seed: int, test_size: float | None = None) -> Split:
    """Training and held-out rows of ``frame``: the same frame, seed and test size give the same
    split (stratified by the target of a classifier), which is how the rows of a champion that
    logged none are found again (:func:`champion_rows`).

    ``test_size``: the recipe's unless given (a champion's own, as its run records it).
    """
    recipe = spec.recipe
    if frame.empty:
        raise DatasetError("no rows to train on (a header and nothing under it?)")
    features, target = recipe.features(frame), frame[recipe.target]
    stratify = target if recipe.task != "regression" else None
    if target.nunique() < 2:
        # A constant target is learnt perfectly and scores perfectly on held-out rows of the same
        # constant: a regressor of it would beat, and replace, any real champion.
        learns = (
            "a regressor learns from a target that varies"
            if stratify is None
            else "a classifier learns from rows of two classes or more"
        )
        raise DatasetError(
            f"column {recipe.target!r}: every one of the {len(frame):,} rows is "
            f"{target.dropna().iloc[0] if target.notna().any() else 'missing'}; {learns}"
        )
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            features,
            target,
            test_size=recipe.test_size if test_size is None else test_size,
            random_state=seed,
            stratify=stratify,
        )
    except ValueError as exc:  # too few rows, or of one class, for a held-out split
        counts = "" if stratify is None else f" ({_class_counts(target)})"
        raise DatasetError(
            f"{len(frame):,} rows{counts} cannot be split into training and held-out rows: {exc}"
        ) from None
    if stratify is not None and min(y_train.nunique(), y_test.nunique()) < 2:
        # A class too rare for the split (2 churners in 200 rows: none held out) leaves a side of
        # one class, which no classifier metric can score.
        raise DatasetError(
            f"{len(frame):,} rows ({_class_counts(target)}) leave {len(y_test):,} held-out rows of "
            f"{y_test.nunique()} class(es) and {len(y_train):,} training rows of {y_train.nunique()}: "
            "too few rows of a class to hold some out; add rows of the rarer class"
        )
    return Split(x_train, x_test, y_train, y_test)


def _class_counts(target: pd.Series) -> str:
    return ", ".join(f"{count:,} of {label}" for label, count in target.value_counts().sort_index().items())


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
    few never moves the champion anyway (:func:`_decide`). The input drift baseline and the input
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
        mlflow.log_text(render_card(spec, spec.model(registered).describe()), "model_card.md")
        client.set_registered_model_alias(spec.name, CHALLENGER, version)
        uncompared: ChampionUnloadableError | None = None
        try:
            promoted, champion_version, decision = _decide(
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
        except ChampionUnloadableError as exc:
            uncompared, promoted, champion_version, decision = exc, False, exc.champion, exc.decision
        mlflow.set_tags({"promotion.decision": decision, "registered.version": version})
        client.set_model_version_tag(spec.name, version, "promotion.decision", decision)
        canary = ""
        if promoted:
            canary = move_champion(client, spec.name, version, champion_version or None)
            champion_version = version
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


def registry_client(tracking_uri: str, *, create: bool = False) -> Any:
    """A client of the MLflow server at ``tracking_uri``, checked to answer before any work.

    ``mlp train`` asks first, so an unreachable server costs no training run. ``create``: a SQLite
    file that does not exist yet may be made (``mlp train``); every other command only reads a
    registry or moves its aliases, and MLflow would make an empty one at a mistyped path, which
    they would then report as holding nothing.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    require_database(tracking_uri, create=create)
    try:
        client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    except MlflowException as exc:  # a scheme MLflow has no store for, or its retired file store
        raise ServekitError(
            400,
            "registry_uri_unusable",
            f"MLflow cannot use the tracking URI {redact(tracking_uri)!r} ({one_line(exc)}); pass "
            "--tracking-uri http://HOST:PORT (an MLflow server) or sqlite:///PATH",
        ) from exc
    try:
        client.search_experiments(max_results=1)
    except MlflowException as exc:
        raise unanswered(tracking_uri, exc) from exc
    return client


def sqlite_database(tracking_uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI (relative to the working directory unless ``PATH``
    starts with ``/``); None for a server, or an in-memory database."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return Path(database)


def require_database(tracking_uri: str, *, create: bool) -> None:
    """Refuse a SQLite registry that is not there, before MLflow makes it: a new database file,
    and the directories above it, wherever a mistyped ``--tracking-uri`` points."""
    database = sqlite_database(tracking_uri)
    if database is None or database.is_file():
        return
    where = redact(tracking_uri)  # a SQLite URI's query may hold a token as well as a server's
    if database.is_dir():
        raise ServekitError(
            400, "registry_not_a_file", f"{where}: {database} is a directory, not a SQLite file"
        )
    if not create:
        raise ServekitError(
            404,
            "registry_not_found",
            f"no registry at {where}: {database.absolute()} does not exist (a typo?); pass the "
            "--tracking-uri of an existing registry, or `mlp train SERVICE --tracking-uri "
            f"{where}` creates one there",
        )
    # Made for ``mlp train``, as asked, but only in a directory that exists: MLflow would make any
    # directories missing, and a typo in them would put the registry where nothing looks for it.
    if not database.resolve().parent.is_dir():
        raise ServekitError(
            400,
            "registry_directory_missing",
            f"{where}: no directory {database.parent} to create the registry in (a typo?); "
            f"`mkdir -p {database.parent}` first if that is where it belongs",
        )


#: What an MLflow server (``--allowed-hosts``) answers, with 403, a request whose Host header it
#: does not know: behind an Ingress, the public host name the client asked for.
INVALID_HOST = "Invalid Host header"


def unanswered(tracking_uri: str, exc: Exception) -> ServekitError:
    """Why ``tracking_uri`` gave no answer to a first request: nothing answers there (worth retrying
    later), or a server answered with an error, which retrying does not change unless it is a 5xx."""
    where = redact(tracking_uri)
    status, body = answered_status(exc)
    if status is None:
        if not tracking_uri.startswith(("http://", "https://")):
            return ServekitError(
                503, "registry_unavailable", f"MLflow cannot read the registry at {where} ({one_line(exc)})"
            )
        proxy = failed_proxy(exc)
        if proxy is not None:  # HTTP(S)_PROXY named one that failed: the server was never asked
            return ServekitError(
                503,
                "registry_proxy_unavailable",
                f"{the_proxy(proxy)} for {where} could not be reached ({unreachable_because(exc)}): check "
                "HTTPS_PROXY/HTTP_PROXY/NO_PROXY (the tracking server itself was not reached)",
            )
        return ServekitError(
            503,
            "registry_unavailable",
            f"no MLflow tracking server answers at {where} ({unreachable_because(exc)}); "
            "`make up` starts one, or pass --tracking-uri or set MLFLOW_TRACKING_URI",
        )
    said = f"{status} ({body})" if body else str(status)
    if status == 403 and INVALID_HOST in body:
        host = urlsplit(tracking_uri).netloc.rpartition("@")[2]
        return ServekitError(
            403,
            "registry_host_not_allowed",
            f"the MLflow server at {where} answered {said}: it answers only the Host names of its "
            f"--allowed-hosts (MLFLOW_SERVER_ALLOWED_HOSTS), and {host} is not among them; add {host} "
            "to the server's --allowed-hosts",
        )
    if status in (401, 403):
        return ServekitError(
            status,
            "registry_refused",
            f"the MLflow server at {where} answered {said}: it wants credentials mlp did not send, or "
            "refused the ones it sent; set MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD) to ones it accepts",
        )
    if status >= 500:
        return ServekitError(
            503,
            "registry_failing",
            f"a server answers at {where}, with {said}: the MLflow server, or a proxy in front of it, "
            "is failing; its logs say why",
        )
    return ServekitError(
        400,
        "registry_not_mlflow",
        f"the server at {where} answered MLflow's API with {said}: is it an MLflow tracking server, "
        "and the URL its root? pass --tracking-uri http://HOST:PORT of one",
    )


def unreachable_because(exc: BaseException) -> str:
    """Why nothing answered, in the words a user acts on: ``connection refused`` (nothing listens
    there), ``host name not resolved`` (a typo, or a host of another network), ``timed out``, or
    the system's words for another socket error (``network is unreachable``); else the whole
    error on one line. MLflow's message nests urllib3's, which repeats itself, the cause last."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    links = list(causes(exc))
    if any(isinstance(link, socket.gaierror | NameResolutionError) for link in links):
        return "host name not resolved"
    # urllib3's failed connection is a timeout by descent, whatever failed; its cause says what.
    if any(
        isinstance(link, TimeoutError | Urllib3Timeout) and not isinstance(link, NewConnectionError)
        for link in links
    ):
        return "timed out"
    for link in links:
        if isinstance(link, OSError) and isinstance(link.strerror, str) and link.strerror:
            return link.strerror[0].lower() + link.strerror[1:]  # "Connection refused"
    return one_line(exc)


def failed_proxy(exc: BaseException) -> str | None:
    """None unless a proxy failed the request (unreachable, or refusing to connect onward): then the
    proxy's URL, redacted (a proxy URL carries its credentials); "" if none is known."""
    from requests.exceptions import ProxyError as RequestsProxyError
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
    from urllib3.exceptions import ProxyError as Urllib3ProxyError

    links = list(causes(exc))
    # A connection urllib3 failed to open was one to the proxy, if it had one: a retry's warning
    # holds that error alone, the ProxyError around it is made for the last try's exception.
    failed = [link for link in links if isinstance(link, ConnectTimeoutError)]
    opened = [getattr(link, "conn", None) or next(iter(link.args), None) for link in failed]
    proxies = [str(getattr(conn, "proxy", None)) for conn in opened if getattr(conn, "proxy", None)]
    if not proxies and not any(isinstance(link, Urllib3ProxyError | RequestsProxyError) for link in links):
        return None
    pools = [link.pool for link in links if isinstance(link, MaxRetryError)]
    proxies += [str(getattr(pool, "proxy", None)) for pool in pools if getattr(pool, "proxy", None)]
    return redact(proxies[0]) if proxies else ""


def the_proxy(proxy: str) -> str:
    return f"the proxy {proxy}" if proxy else "the proxy"


def retrying(tracking_uri: str, error: BaseException | None) -> str:
    """What a command says when urllib3 first retries a request to ``tracking_uri`` that ``error``
    failed: a sign of life during a wait that may last minutes (a hung server times out each try),
    why, and that it goes on."""
    where = redact(tracking_uri)
    because = "no answer" if error is None else unreachable_because(error)
    proxy = None if error is None else failed_proxy(error)
    if proxy is not None:
        return f"{the_proxy(proxy)} for {where} could not be reached yet ({because}); retrying"
    return f"no answer yet from the MLflow tracking server at {where} ({because}); retrying"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every error behind it: chained, or held as requests and urllib3 hold theirs (an
    argument; ``MaxRetryError.reason``)."""
    pending, seen = [exc], set[int]()
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        behind = [link.__cause__, link.__context__, getattr(link, "reason", None), *link.args]
        pending += [error for error in behind if isinstance(error, BaseException)]


#: How MLflow's REST client words a server's answer other than 200: its status (with the body, a
#: text answer), or a 5xx it retried until it gave up.
_STATUS = re.compile(
    r"error code (\d{3}) != 200(?:\. Response body: '(.*)')?|too many (\d{3}) error responses"
)


def answered_status(exc: Exception) -> tuple[int | None, str]:
    """The HTTP status and body a server answered with, or (None, "") when none answered (refused,
    timed out, no such host)."""
    from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, RestException

    if isinstance(exc, RestException):  # a JSON error: an MLflow server, or one speaking its API
        status = int(ERROR_CODE_TO_HTTP_STATUS.get(exc.error_code, 500))
        return status, str(exc.json.get("message", ""))[:200]
    found = _STATUS.search(" ".join(str(exc).split()))
    if found is None:
        return None, ""
    code = found.group(1) or found.group(3)
    return int(code), (found.group(2) or "")[:200]


def current_champion(client: Any, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


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


def move_champion(client: Any, name: str, version: str, previous: str | None) -> str:
    """Point ``champion`` at ``version``, taking an ended canary with it; what became of the canary.

    A canary ended by ``mlp canary --end`` is the ``canary`` alias left on the champion's version,
    which the pods then serve for every request. Left on the old champion, it would be a canary
    again: the demoted version answering the canary's share of the requests. A canary of a third
    version is running: it stays, with its share. One on ``version`` ends with its promotion.
    """
    found = client.get_registered_model(name).aliases.get(CANARY)
    canary = None if found is None else str(found)
    prefix = name.upper()
    if canary is not None and canary == previous and canary != version:
        # The canary first: a pod reading the registry between the two moves sends the canary's
        # share to the new champion a moment early, never to the version being demoted.
        client.set_registered_model_alias(name, CANARY, version)
        moved = (
            f"{name}: {CANARY} (ended on v{previous}) moves with it to v{version}: services with "
            f"{prefix}_CANARY_MODEL_URI answer every request with the {CHAMPION}"
        )
    else:
        moved = ""
    client.set_registered_model_alias(name, CHAMPION, version)
    if canary is not None and canary not in (previous, version):
        return (
            f"{name}: {CANARY} v{canary} still answers its share of the requests of services with "
            f"{prefix}_CANARY_MODEL_URI; `mlp canary {name} --end` ends it on v{version}"
        )
    # No canary runs now: the next starts at the pods' own share.
    write_canary_share(client, name, None)
    return moved


def compare(spec: ServiceSpec, new_outputs: Any, old_outputs: Any, data: Split) -> str:
    """The paired-bootstrap difference of the primary metric, and whether it exceeds the noise.

    Promotion still follows the point estimate (a retrain on more data should not
    wait for a significant win), but the operator reading the decision sees
    whether the win is real on this split; on too few rows to tell, it waits for the operator
    (``_decide``).
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


def _decide(
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


def rebuilt_training_rows(
    spec: ServiceSpec, theirs: dict[str, Any], recorded: dict[str, Any], frame: pd.DataFrame | None
) -> tuple[np.ndarray | None, str, list[str]]:
    """The hashes of a champion's training rows found again from its run's record, how, and (None)
    what of its record keeps them from being found.

    ``theirs``: its run's parameters (``seed``, ``test_size``, ``data.*``); ``recorded`` and
    ``frame``: this version's ``data`` record and the rows it was split from. :func:`split` is
    deterministic given the frame, the seed and the test size (a classifier's stratified by its
    target, as the service's recipe always has), so those of its record give its very split.
    """
    differs = []
    rows, of = _their_frame(spec, theirs, recorded, frame)
    if rows is None:
        differs.append(of)
    seed, test_size = theirs.get("seed"), theirs.get("test_size")
    if seed is None:
        differs.append("recorded no split seed")
    if test_size is None:
        differs.append("recorded no test size")
    if differs or rows is None:
        return None, "", differs
    try:
        held = float(str(test_size))
        learnt = split(spec, rows, int(str(seed)), held)
    except (DatasetError, ValueError) as exc:  # a seed or test size this split cannot take
        message = exc.message if isinstance(exc, ServekitError) else one_line(exc)
        return (
            None,
            "",
            [f"was split with seed {seed} and test size {test_size}, which cannot be made again ({message})"],
        )
    if of.startswith(SAME_DATA) and str(seed) == str(recorded.get("seed")) and held == spec.recipe.test_size:
        how = f"{SAME_DATA}, split seed and test size, so on the training rows of this version"
    else:
        how = f"{of}, which its split seed {seed} and test size {held:g} split into its training rows"
    return row_hashes(learnt.x_train, learnt.y_train), how, []


#: What :func:`_their_frame` says of a champion trained on the very rows this version was.
SAME_DATA = "was trained on the same data"
_GENERATED = re.compile(re.escape(SYNTHETIC) + r"rows=(\d+), seed=(-?\d+)\)")


def _their_frame(
    spec: ServiceSpec, theirs: dict[str, Any], recorded: dict[str, Any], frame: pd.DataFrame | None
) -> tuple[pd.DataFrame | None, str]:
    """The rows a champion's run split, and how they are had (:data:`SAME_DATA`, or generated
    again); None, and how its data differs, when they cannot be."""
    field = "frame_sha256" if theirs.get("data.frame_sha256") else "sha256"
    their_data, their_rows = theirs.get(f"data.{field}"), theirs.get("data.rows")
    if not their_data:
        return None, "recorded no hash of its data"
    if frame is not None and (str(their_data), str(their_rows)) == (
        str(recorded.get(field)),
        str(recorded.get("rows")),
    ):
        return frame, SAME_DATA if field == "sha256" else f"{SAME_DATA} ({field} {str(their_data)[:12]})"
    source = str(theirs.get("data.source", ""))
    differs = (
        f"was trained on other data ({field} {str(their_data)[:12]}, {_rows(their_rows)}; "
        f"this version's {str(recorded.get(field))[:12]}, {_rows(recorded.get('rows'))})"
    )
    generator = _GENERATED.fullmatch(source)
    if generator is None:
        return None, differs
    # Generated data is its generator seed's: the same seed gives the same rows, another seed other
    # rows, though a small vocabulary repeats some. Generated again, and checked against its hash
    # (generated data's sha256 is its frame's), they are the rows it split, whatever this version's.
    generated = spec.recipe.generate(int(generator[1]), int(generator[2]))
    if sha256_of_frame(generated) != str(their_data):
        return None, f"{differs}, which its generator, run again, no longer gives"
    return generated, f"was trained on {source}, generated again ({field} {str(their_data)[:12]} as recorded)"


def _rows(rows: Any) -> str:
    try:
        return f"{int(float(rows)):,} rows"
    except (TypeError, ValueError):
        return "rows not recorded"


def row_hashes(features: pd.DataFrame, target: pd.Series) -> np.ndarray:
    """One 64-bit hash per row of features and target, as read (the index left out)."""
    rows = pd.concat([features.reset_index(drop=True), target.reset_index(drop=True)], axis=1)
    return pd.util.hash_pandas_object(rows, index=False).to_numpy()


class TrainingRowsUnreadableError(Exception):
    """A run logged its training rows' hashes, and the store cannot give them."""


def logged_training_rows(
    client: Any, run_id: str, tracking_uri: str, record: dict[str, Any]
) -> np.ndarray | None:
    """The training-row hashes a run logged; None for a run of a release before they were.

    ``record``: the run's parameters. A run that lists no ``training_rows.npy`` logged none, unless
    it records ``data.held_out_copies``, which every run logging them has: theirs are gone from the
    store. Raises :class:`TrainingRowsUnreadableError` for those, and for a store that cannot list
    or give them: a comparison told "trained before mlp train logged them" of the current champion
    would send its operator after a release, not after the store.
    """
    import mlflow

    if not run_id:
        return None
    try:
        listed = {artifact.path for artifact in client.list_artifacts(run_id)}
    except Exception as exc:  # the store, not the run's age
        raise TrainingRowsUnreadableError(f"its run's artifacts cannot be listed: {one_line(exc)}") from exc
    if TRAINING_ROWS not in listed:
        if "data.held_out_copies" in record:  # logged with the hashes, since the first release of them
            raise TrainingRowsUnreadableError(
                f"its run logged them, and {TRAINING_ROWS} is no longer among its artifacts"
            )
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="servekit-rows-") as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=TRAINING_ROWS, dst_path=tmp, tracking_uri=tracking_uri
            )
            hashes: np.ndarray = np.load(path, allow_pickle=False)
    except Exception as exc:  # unreadable storage, a truncated or foreign file
        raise TrainingRowsUnreadableError(f"{TRAINING_ROWS}: {one_line(exc)}") from exc
    return hashes


def training_rows_of(run_id: str, tracking_uri: str) -> np.ndarray | None:
    """The training-row hashes a run logged; None for a run before they were, or unreadable (the
    load test's payloads fall back then; the trainer says which: :func:`logged_training_rows`)."""
    import mlflow

    try:
        client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
        params = dict(client.get_run(run_id).data.params) if run_id else {}
        return logged_training_rows(client, run_id, tracking_uri, params)
    except Exception:  # any registry problem is a reason to fall back
        return None


def promote(spec: ServiceSpec, tracking_uri: str, version: str, decision: str = "promoted by hand") -> str:
    """Point ``champion`` at ``version``; returns what changed.

    ``decision``: the reason recorded on the version (``mlp versions`` shows it), by hand unless
    the caller (``mlp rollout``) says otherwise.
    """
    client = registry_client(tracking_uri)
    promoted = _require_version(client, spec.name, version)
    previous = current_champion(client, spec.name)
    if previous == version:
        # Nothing to do, and nothing to undo: a running canary keeps its share, and the version
        # keeps the reason it was made champion for.
        return f"{spec.name}: v{version} is already {CHAMPION}; nothing changed"
    _require_servable(spec, client, tracking_uri, promoted)
    canary = move_champion(client, spec.name, version, previous)
    client.set_model_version_tag(spec.name, version, "promotion.decision", decision)
    was = f"v{previous}" if previous else "none"
    return "\n".join(
        [
            f"{spec.name}: {CHAMPION} is now v{version} (was {was}); services serving "
            f"models:/{spec.name}@{CHAMPION} switch to it within {_refresh_wait(spec)}",
            *([canary] if canary else []),
            f"{spec.name}: {live_evidence(version, dict(promoted.tags or {}))}",
        ]
    )


def set_canary(
    spec: ServiceSpec, tracking_uri: str, version: str | None, percent: float | None = None
) -> str:
    """Point ``canary`` at ``version``, or (None) at the champion's, which ends the canary.

    ``percent``: the share of requests the pods send it (the registered model's ``SHARE_TAG``,
    which they read at every refresh); None removes the tag, so each pod's
    ``<SVC>_CANARY_TRAFFIC_PERCENT`` holds.
    """
    client = registry_client(tracking_uri)
    champion = current_champion(client, spec.name)
    if version is None:
        if champion is None:
            raise ServekitError(404, "no_champion", f"{spec.name} has no champion to end the canary on")
        version = champion
    else:
        candidate = _require_version(client, spec.name, version)
        if version != champion:
            # As mlp promote does: pods told to send a share to a version they cannot load keep
            # sending it to the canary they have, which this command would have said it replaced.
            _require_servable(spec, client, tracking_uri, candidate)
    if version == champion and percent is not None:
        # A canary on the champion's version answers as the stable model does: a share of it
        # would be set and then never used, as if it had been.
        raise ServekitError(
            409,
            "canary_is_champion",
            f"{spec.name} v{version} is the {CHAMPION}: as the canary it gets no share of its own, "
            f"so --percent {percent:g} would do nothing; name another version, or drop --percent",
        )
    # The share before the alias: a pod that loads the new version at once reads its share then.
    write_canary_share(client, spec.name, None if version == champion else percent)
    client.set_registered_model_alias(spec.name, CANARY, version)
    prefix = spec.name.upper()
    uri = f"models:/{spec.name}@{CANARY}"
    if version == champion:
        return (
            f"{spec.name}: {CANARY} is now v{version}, the champion: services with "
            f"{prefix}_CANARY_MODEL_URI={uri} answer every request with v{version} within "
            f"{_refresh_wait(spec)}"
        )
    share = f"{percent:g} %" if percent is not None else f"{prefix}_CANARY_TRAFFIC_PERCENT"
    return (
        f"{spec.name}: {CANARY} is now v{version} (champion v{champion or '-'}); services with "
        f"{prefix}_CANARY_MODEL_URI={uri} send {share} of their requests "
        f"to it within {_refresh_wait(spec)}; `mlp promote {spec.name} {version}` completes the "
        f"rollout, `mlp canary {spec.name} --end` rolls it back"
    )


def set_canary_share(spec: ServiceSpec, tracking_uri: str, percent: float) -> str:
    """Set the share of requests the pods send the canary they serve now."""
    write_canary_share(registry_client(tracking_uri), spec.name, percent)
    return (
        f"{spec.name}: the canary's share is now {percent:g} %; services following the registry "
        f"send it that share within {_refresh_wait(spec)}"
    )


def write_canary_share(client: Any, name: str, percent: float | None) -> None:
    """Set the registry's canary share, or (None) remove it, so each pod's own setting holds."""
    if percent is not None:
        client.set_registered_model_tag(name, SHARE_TAG, f"{percent:g}")
    elif SHARE_TAG in (client.get_registered_model(name).tags or {}):
        client.delete_registered_model_tag(name, SHARE_TAG)


def _require_servable(spec: ServiceSpec, client: Any, tracking_uri: str, version: Any) -> None:
    """Refuse a version the service's pods could not load: its run gone (they read its figures from
    it), its model file unreadable, or a model of another service's requests.

    From the run and the MLmodel file alone: the model itself can be large to download.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    which = f"{spec.name} v{version.version}"
    if version.run_id:
        try:
            client.get_run(version.run_id)
        except MlflowException as exc:
            if not run_gone(exc):
                raise
            raise ServekitError(
                409,
                "run_missing",
                f"{which}: {run_gone_problem(version.run_id)}, and "
                "services read the version's figures from it: they could not load it",
            ) from exc
    use_registry(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="servekit-mlmodel-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{spec.name}/{version.version}/MLmodel",
                dst_path=tmp,
                tracking_uri=tracking_uri,
            )
            schema = (Model.load(path).metadata or {}).get("feature_schema") or {}
        except Exception as exc:  # deleted files, a source that is not an MLflow model, ...
            raise ServekitError(
                409,
                "model_unreadable",
                f"{which}: its model cannot be read ({one_line(exc)}); services could not load it",
            ) from exc
    # The request schema's title, not the whole schema: a field added since keeps older versions
    # promotable, while another service's model names other requests.
    expected, trained_for = spec.request.model_json_schema().get("title"), schema.get("title")
    if trained_for is not None and trained_for != expected:
        raise ServekitError(
            409,
            "another_services_model",
            f"{which} holds a model of {trained_for!r} requests, not of {spec.name}'s {expected!r} "
            f"(another service's model?): {spec.name}'s services could not serve it",
        )


def _require_version(client: Any, name: str, version: str) -> Any:
    """The registry's ``version`` of ``name``; a 404 error naming it when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ServekitError(404, "version_not_found", f"{name} has no version {version!r}") from exc


def _refresh_wait(spec: ServiceSpec) -> str:
    refresh = ServiceSettings.model_fields["model_refresh_seconds"].default
    return f"{spec.name.upper()}_MODEL_REFRESH_SECONDS ({refresh:g} s unless set)"
