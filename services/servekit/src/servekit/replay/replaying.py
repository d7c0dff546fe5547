"""Captures answered again by the versions that gave them, a chunk at a time, and compared."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from servekit.errors import rejection
from servekit.inference import encode_json, run_model
from servekit.model import EXPLANATION_FIELD, ServedModel
from servekit.reasons import REASONS_FIELD
from servekit.replay.capture_objects import Captured
from servekit.replay.comparison import differences, primary_fields
from servekit.replay.report import MAX_LISTED, VersionReport
from servekit.spec import ServiceSpec

#: Captures of one version answered in one model call: big enough for the model's vectorised
#: speed, small enough that memory does not grow with the log.
CHUNK = 1024


def answer_again(
    spec: ServiceSpec, model: ServedModel, captured: Sequence[Captured]
) -> list[dict[str, Any] | str]:
    """The model's answer to each captured input, validated as the service validates a request.

    An input the service would refuse now (its schema has moved since the capture) gets, in
    place of an answer, the fields and problems, as the 422 would name them.
    """
    answers: list[dict[str, Any] | str] = [{} for _ in captured]
    records: dict[int, dict[str, Any]] = {}
    for i, c in enumerate(captured):
        try:
            records[i] = spec.request.model_validate_json(encode_json(c.input)).model_dump()
        except ValidationError as exc:
            answers[i] = rejection(exc)
    # Explained, and with as many reasons, where the captured answer was: run_model either way.
    # A captured answer's reasons are as many as asked, or all the model's inputs if fewer, so
    # asking for as many as it lists gives the same list.
    asked: dict[tuple[bool, int], list[int]] = {}
    for i in records:
        prediction = captured[i].prediction
        key = (EXPLANATION_FIELD in prediction, len(prediction.get(REASONS_FIELD, ())))
        asked.setdefault(key, []).append(i)
    for (explain, reasons), positions in asked.items():
        again = run_model(model, [records[i] for i in positions], explain, reasons=reasons)
        for i, answer in zip(positions, again, strict=True):
            answers[i] = orjson.loads(encode_json(answer))
    return answers


def replay(
    captured: Iterable[Captured],
    load: Callable[[str, str], tuple[ServiceSpec, ServedModel]],
    chunk: int = CHUNK,
    listed: int = MAX_LISTED,
) -> list[VersionReport]:
    """Each version's captures answered again by that version, as ``load(name, version)`` gives it.

    Captures are read as they come and answered ``chunk`` at a time per version, so memory holds
    a chunk and the first ``listed`` differences (0: all) per version, whatever the length of the
    log. Each version is loaded once, when its first capture is read; the reports are in that order.
    """
    reports: dict[tuple[str, str], VersionReport] = {}
    models: dict[tuple[str, str], tuple[ServiceSpec, ServedModel]] = {}
    pending: dict[tuple[str, str], list[Captured]] = {}
    for c in captured:
        key = (c.name, c.version)
        report = reports.get(key)
        if report is None:
            report = reports[key] = VersionReport(c.name, c.version, listed=listed)
            try:
                models[key] = load(c.name, c.version)
            except Exception as exc:  # every cause (no such service, version, registry) is reported
                report.not_loaded = f"{type(exc).__name__}: {exc}"
                # servekit.loading.ModelLoadError's missing, or registry.get_service's LookupError (no
                # such service); not a KeyError, which is a fault.
                report.missing = type(exc) is LookupError or getattr(exc, "missing", False) is True
        report.checked += 1
        if report.not_loaded is not None:
            continue
        group = pending.setdefault(key, [])
        group.append(c)
        if len(group) >= chunk:
            _check(report, *models[key], pending.pop(key))
    for key, group in pending.items():
        report = reports[key]
        if report.not_loaded is None:
            _check(report, *models[key], group)
    return list(reports.values())


def _check(report: VersionReport, spec: ServiceSpec, model: ServedModel, group: Sequence[Captured]) -> None:
    try:
        answers = answer_again(spec, model, group)
    except Exception as exc:
        report.not_loaded = f"answering the captured inputs failed: {type(exc).__name__}: {exc}"
        return
    run_id = model.artifact.run_id
    required = [name for name, info in spec.response.model_fields.items() if info.is_required()]
    primary: list[str] | None = None
    for c, now in zip(group, answers, strict=True):
        if isinstance(now, str):
            problems = [f"input refused now: {now}"]
        else:
            if primary is None:
                primary = primary_fields(spec, model, now)
            problems = differences(c.prediction, now, required=primary)
            for name in required:
                if name not in primary and name in now and name not in c.prediction:
                    report.answered_since[name] = report.answered_since.get(name, 0) + 1
        if c.run_id and run_id and c.run_id != run_id:
            current = f"version {report.version} is run {run_id} now"
            problems.insert(0, f"captured from run {c.run_id}, but {current}")
        if problems:
            report.differs(c, problems)
