"""A captured answer against today's: which fields differ, and by how much a number may move."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from servekit.model import ServedModel
from servekit.spec import ServiceSpec

#: How far a number may move and still be the same answer: floating-point noise between
#: machines, far below any difference a reader of the answer would see.
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-12


def differences(
    captured: Mapping[str, Any], now: Mapping[str, Any], path: str = "", required: Collection[str] = ()
) -> list[str]:
    """How today's answer differs from the captured one, field by field.

    A field the captured answer lacks differs when it is ``required``: the prediction's own fields
    (:func:`primary_fields`), without which an answer was not the service's, or was edited since.
    Others it lacks (answered since the capture, or only when asked) are not compared.
    """
    found: list[str] = [
        f"{path}{key}: absent in capture, now {now[key]!r}"
        for key in required
        if key in now and key not in captured
    ]
    for key, then in captured.items():
        name = f"{path}{key}"
        if key not in now:
            found.append(f"{name}: captured {then!r}, absent now")
            continue
        value = now[key]
        if isinstance(then, Mapping) and isinstance(value, Mapping):
            found.extend(differences(then, value, f"{name}."))
        elif not _same(then, value):
            found.append(f"{name}: captured {then!r}, now {value!r}")
    return found


class _Reads(Mapping[str, Any]):
    """An answer that notes which of its fields are read."""

    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.answer = answer
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.answer[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.answer)

    def __len__(self) -> int:
        return len(self.answer)


def primary_fields(spec: ServiceSpec, model: ServedModel, answer: Mapping[str, Any]) -> list[str]:
    """The fields that make a prediction: those its outcome and its scores are read from
    (``ServedModel.outcome``, what the service's metrics count, and ``.scores``, what a shadow
    compares: BankChurn's label and churn_probability, NLPInsight's label and probabilities,
    ChicagoTaxi's fare_range and fare). Every version has answered them; a field the response
    gained later (NLPInsight's known_word_share, required since 2026-12-01) is not among them.
    Read from ``answer``, today's; where that fails, every required field of the response."""
    reads = _Reads(answer)
    try:
        model.outcome(reads)
        model.scores(reads)
    except Exception:
        return [name for name, info in spec.response.model_fields.items() if info.is_required()]
    return sorted(reads.read)


def _same(then: Any, now: Any) -> bool:
    numbers = (int, float)
    if isinstance(then, numbers) and isinstance(now, numbers) and not isinstance(then, bool):
        return math.isclose(then, now, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE)
    if isinstance(then, list) and isinstance(now, list):
        return len(then) == len(now) and all(_same(a, b) for a, b in zip(then, now, strict=True))
    return bool(then == now)
