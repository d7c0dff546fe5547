"""What each version scored when it was trained, read from its run in the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from servekit.errors import ServekitError
from servekit.evaluation import every_row
from servekit.loading import one_line
from servekit.training import uncertainty
from servekit.training.versions import (
    HELD_OUT_ANSWERS,
    SERVING_METADATA,
)

#: The status of a file a training run logged that does not read: a 4xx (``mlp`` exits 2, "cannot
#: run; retrying changes nothing"), as a version whose model does not read is refused (409
#: ``model_unreadable``), not a 5xx (1, "worth retrying"), which the live-evaluation Job retried:
#: the same file fails the same way every time, and the registry that served it is not failing.
UNREADABLE = 409


class VersionNotRegisteredError(LookupError):
    """A captured version the registry does not hold (deleted since, or another registry's)."""


class HeldOutAnswers(NamedTuple):
    """The held-out rows' truth and primary-metric outputs, as a version's training run logged them."""

    target: np.ndarray
    output: np.ndarray
    #: Each row's group of each dimension; None for a run trained before they were kept.
    groups: dict[str, list[str]] | None = None


class HeldOut(NamedTuple):
    """A version's held-out figure from its training run (None: why, in ``note``), and its
    held-out rows' truth and outputs when the run kept them."""

    figure: uncertainty.Interval | None
    #: Why there is no figure; with one, what rows it is over where that is not what its run
    #: logged (recomputed over the rows a request can be, :mod:`.every_row`), else empty.
    note: str = ""
    rows: HeldOutAnswers | None = None
    #: The decision and error rates per group its training run reported (``serving_metadata.json``).
    parity: dict[str, dict[str, Any]] | None = None


def registered_run_id(client: Any, name: str, version: str) -> str:
    """The training run of the registered ``version`` ("" when it names none).

    Raises :class:`VersionNotRegisteredError` for a version served from a run or an artifact URI,
    or one the registry does not hold (deleted since, or another registry's).
    """
    from mlflow.exceptions import MlflowException

    if not version.isdigit():  # "unregistered": served from a runs:/ or artifact URI
        raise VersionNotRegisteredError(
            f"version {version}: served from a run or artifact URI, not the registry"
        )
    try:
        return str(client.get_model_version(name, version).run_id or "")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise _registry_failed(exc) from exc
        raise VersionNotRegisteredError(f"version {version} is not in the registry") from None


def held_out_figure(client: Any, name: str, version: str, metric: str) -> HeldOut:
    """The version's held-out figure and interval from its training run, or why there is none,
    with the held-out rows' answers (:func:`held_out_answers`).

    The figure is over the held-out rows a request can be, as live answers are all answers to
    requests. A version whose run's figures are over every held-out row (trained before the rows
    no request can be were left out) has them recomputed over the others (:mod:`.every_row`), said
    in ``note``, where its service's request schema can refuse a row its training data holds and
    does refuse some of its held-out rows; where they cannot be, it has no figure, and why. One
    whose figures are over every row as too few were requests (its card says so) is compared with
    them, said in ``note``.

    Raises :class:`VersionNotRegisteredError` for a version the registry lacks.
    """
    from mlflow.exceptions import MlflowException

    run_id = registered_run_id(client, name, version)
    try:
        data = client.get_run(run_id).data if run_id else None
    except MlflowException as exc:
        raise _registry_failed(exc) from exc
    metrics: dict[str, float] = dict(data.metrics) if data is not None else {}
    params: dict[str, str] = dict(data.params) if data is not None else {}
    if metric not in metrics:
        return HeldOut(None, f"its training run logged no {metric}")
    estimate = metrics[metric]
    low, high = metrics.get(f"{metric}_ci_low", estimate), metrics.get(f"{metric}_ci_high", estimate)
    logged = uncertainty.Interval(estimate, low, high)
    rows = held_out_answers(client, run_id, version)
    rates = held_out_parity(client, run_id, version)
    few = every_row.too_few_requests(params)
    if few:
        return HeldOut(logged, few, rows, rates)
    metadata = every_row.serving_metadata(run_artifact_text(client, run_id, SERVING_METADATA))
    why = every_row.every_row(params, metadata)
    spec = _spec(name) if why else None
    if spec is None or spec.recipe.rows_all_requestable:
        return HeldOut(logged, rows=rows, parity=rates)
    # Its figures may count rows no request can be: against live answers, all of requests, they
    # compare a model of other rows (ChicagoTaxi: 0.7065 over every row, 0.5383 over requests).
    found = every_row.over_requests(spec, params, rows, metadata, estimate)
    if found is None:  # the request schema refuses none of its held-out rows
        return HeldOut(logged, rows=rows, parity=rates)
    if isinstance(found, str):
        return HeldOut(
            None,
            f"its held-out {metric} {estimate:.4f} is over every held-out row, and {name}'s request "
            f"schema can refuse rows its training data holds ({why}); it cannot be recomputed over "
            f"the rows a request can be: {found}; {every_row.WHAT_TO_DO}",
        )
    return HeldOut(found.figure, found.scope, found.rows, found.parity)


def _spec(name: str) -> Any:
    from servekit import registry

    return registry.get_service(name)


def held_out_parity(client: Any, run_id: str, version: str) -> dict[str, dict[str, Any]] | None:
    """The rates per group the version's training run reported on its held-out rows; None for a run
    that logged none (trained before they were reported)."""
    import json

    text = run_artifact_text(client, run_id, SERVING_METADATA)
    if text is None:
        return None
    try:
        found = json.loads(text).get("parity", {})
        if not isinstance(found, dict):
            raise ValueError(f"'parity' is a {type(found).__name__}, not a mapping")
    except (ValueError, AttributeError) as exc:
        # servekit wrote it: a file that does not read is damaged, not a run without figures.
        why = " ".join(str(exc).split())
        problem = f"version {version}'s run {run_id}: {SERVING_METADATA} does not read: {why}"
        raise ServekitError(UNREADABLE, "serving_metadata_unreadable", problem) from exc
    return found or None


def run_artifact_text(client: Any, run_id: str, path: str) -> str | None:
    """A file a training run logged, as text; None when the run has no such file."""
    import tempfile

    from mlflow.exceptions import MlflowException

    try:
        if path not in {a.path for a in client.list_artifacts(run_id)}:
            return None
        with tempfile.TemporaryDirectory() as folder:
            return Path(client.download_artifacts(run_id, path, folder)).read_text(encoding="utf-8")
    except MlflowException as exc:
        raise _registry_failed(exc) from exc


def held_out_answers(client: Any, run_id: str, version: str) -> HeldOutAnswers | None:
    """The truth and primary-metric outputs of the held-out rows, and their groups, as the
    version's training run logged them; None for a run trained before they were kept."""
    import json

    text = run_artifact_text(client, run_id, HELD_OUT_ANSWERS)
    if text is None:
        return None
    try:
        return read_held_out_answers(json.loads(text))
    except KeyError as exc:
        problem = f"no {exc.args[0]!r} list"
    except (ValueError, TypeError, AttributeError) as exc:
        problem = " ".join(str(exc).split())
    # servekit wrote it: a file that does not read is damaged, and a verdict must not rest on it.
    problem = f"version {version}'s run {run_id}: {HELD_OUT_ANSWERS} does not read: {problem}"
    raise ServekitError(UNREADABLE, "held_out_answers_unreadable", problem)


def read_held_out_answers(answers: dict[str, Any]) -> HeldOutAnswers:
    """``held_out_answers.json`` as read (``servekit.training.trainer.held_out_record`` wrote it).

    Raises KeyError, ValueError or TypeError for a file that does not hold what it should."""
    target, output = np.asarray(answers["target"]), np.asarray(answers["output"])
    if target.ndim != 1 or target.shape != output.shape:
        raise ValueError(f"{target.size} truths and {output.size} outputs")
    groups = answers.get("groups")
    if groups is not None:
        if not isinstance(groups, dict):
            raise TypeError(f"'groups' is a {type(groups).__name__}, not a mapping")
        for dimension, labels in groups.items():
            if not isinstance(labels, list) or len(labels) != target.size:
                size = len(labels) if isinstance(labels, list) else type(labels).__name__
                raise ValueError(f"{target.size} truths and {size} groups of {dimension}")
        groups = {str(d): [str(label) for label in labels] for d, labels in groups.items()}
    return HeldOutAnswers(target, output, groups)


def _registry_failed(exc: Exception) -> ServekitError:
    return ServekitError(503, "registry_unavailable", f"the registry failed: {one_line(exc)}")
