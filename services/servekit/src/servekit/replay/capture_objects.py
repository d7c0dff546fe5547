"""What a capture says, read from the JSON object the service logs for it.

Every way a capture reaches ``mlp replay`` and ``mlp evaluate`` (a JSON line, a text line, a log
store's export, a capture object alone) ends here, so a capture is checked against the shape the
service writes in one place, whatever carried it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class CaptureLineError(ValueError):
    """A line that is a capture but cannot be read as one."""


@dataclass(frozen=True)
class Captured:
    """One captured instance and the answer it got."""

    line: int
    request_id: str
    name: str
    version: str
    run_id: str
    instance: int
    input: Mapping[str, Any]
    prediction: Mapping[str, Any]
    #: Which of the service's models answered: ``stable`` or ``canary`` (empty in older lines).
    variant: str = ""
    #: How it was chosen (:data:`servekit.routing.ROUTED`; empty in older lines).
    routed: str = ""
    #: When, in seconds since the epoch (None in lines written before captures held the time).
    answered_at: float | None = None

    @property
    def where(self) -> str:
        request = f"request {self.request_id}, " if self.request_id else ""
        return f"line {self.line} ({request}instance {self.instance})"


def captured(body: Any, request_id: Any, number: int) -> Captured | None:
    """The capture a logged object holds (``body``, logged for ``request_id`` on line ``number``);
    None for an object that is not a capture."""
    if not isinstance(body, dict) or not {"model", "input", "prediction"} <= body.keys():
        return None
    problem = _shape_problem(body, request_id)
    if problem is not None:
        raise CaptureLineError(f"line {number}: a capture {problem}")
    model = body["model"]
    return Captured(
        line=number,
        request_id=request_id or "",
        name=model["name"],
        version=model["version"],
        run_id=str(model.get("run_id", "")),
        instance=body.get("instance", 0),
        input=body["input"],
        prediction=body["prediction"],
        # Interned: a few distinct words, kept per answer by ``mlp evaluate`` over a whole log.
        variant=sys.intern(str(body.get("variant", ""))),
        routed=sys.intern(str(body.get("routed", ""))),
        answered_at=_seconds(body.get("answered_at"), number),
    )


def _shape_problem(body: Mapping[str, Any], request_id: Any) -> str | None:
    """What is not as the service writes it in a capture (an edited or foreign line), or None.

    Read as it came, such a capture ends a command later in a traceback far from its line, or
    worse is read as something else (a null request id as the id ``None``).
    """
    for name in ("model", "input", "prediction"):
        if not isinstance(body[name], dict):
            return f"whose {name} is {_short(body[name])}, not an object"
    model = body["model"]
    for name in ("name", "version"):
        if name not in model:
            return f"without '{name}' in its model"
        if not isinstance(model[name], str) or not model[name]:
            return f"whose model {name} is {_short(model[name])}, not a name"
    if request_id is not None and not isinstance(request_id, str):
        return f"whose request_id is {_short(request_id)}, not a string"
    instance = body.get("instance", 0)
    if isinstance(instance, bool) or not isinstance(instance, int) or instance < 0:
        return f"whose instance is {_short(instance)}, not a whole number"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _seconds(answered_at: Any, number: int) -> float | None:
    if answered_at is None:
        return None
    try:
        moment = datetime.fromisoformat(str(answered_at))
    except ValueError:
        raise CaptureLineError(
            f"line {number}: a capture whose answered_at {answered_at!r} is not an RFC 3339 time"
        ) from None
    if moment.tzinfo is None:  # servekit writes UTC; a time without a zone is read as UTC too
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
