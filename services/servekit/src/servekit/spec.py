"""How a model service plugs into servekit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from servekit.model import ServedModel

if TYPE_CHECKING:
    from servekit.training.recipe import TrainingRecipe


#: An intended use must be longer than this: a sentence or two saying what the model is for and
#: for whom, not a title (``"Churn prediction."``) a reviewer cannot hold a figure against.
INTENDED_USE_MIN_CHARS = 80


def intended_use_problems(intended_use: str, not_for: tuple[str, ...]) -> list[str]:
    """What is wrong with a service's statement of its use, each naming the field and its rule."""
    problems = []
    if len(intended_use.strip()) <= INTENDED_USE_MIN_CHARS:
        problems.append(
            f"intended_use must say in a sentence or two what the model is for and for whom "
            f"(more than {INTENDED_USE_MIN_CHARS} characters; {len(intended_use.strip())} given)"
        )
    if not not_for:
        problems.append("not_for must name at least one use the model must not be put to, and why")
    elif not all(isinstance(use, str) and use.strip() for use in not_for):
        problems.append("not_for must hold no blank use")
    return problems


@dataclass(frozen=True)
class ServiceSpec:
    """Everything servekit needs to know about one model service.

    A service package exposes one of these as the ``servekit.services`` entry point.
    """

    name: str
    title: str
    description: str
    #: One instance of a prediction request; field names are the data set's columns.
    request: type[BaseModel]
    #: One prediction, for the OpenAPI document.
    response: type[BaseModel]
    model: type[ServedModel]
    recipe: TrainingRecipe
    #: Port of ``make up`` on 127.0.0.1 (containers always use 8080).
    local_port: int
    #: What the model is for, and whom it serves: a model card opens with it (Mitchell et al.,
    #: 2019; SageMaker's ``intended_uses``), and a reviewer holds every figure against it.
    #: Required, and a sentence or two (more than :data:`INTENDED_USE_MIN_CHARS` characters).
    intended_use: str
    #: Uses the model must not be put to, each with why; listed under the intended use. At least one.
    not_for: tuple[str, ...]
    #: Default of ``<SVC>_MAX_CONCURRENT_REQUESTS``. Past capacity each request in flight shares
    #: the CPU with the others, so an answer takes about this many times one request's time: a
    #: model whose large explained batches are slow needs fewer (README, "Overload").
    max_concurrent_requests: int = 16
    #: Default of ``<SVC>_MAX_CONCURRENT_INSTANCES``: the instances of large batches predicted at
    #: once. It bounds the work in flight where the request count cannot: 16 explained batches
    #: of 256 rows take four times as long as 16 of 64 (README, "Overload").
    max_concurrent_instances: int = 1024

    def __post_init__(self) -> None:
        # Refused here, where the service is declared, rather than by the contract test alone: a new
        # service with a card that says nothing of its use failed only in the root suite, late.
        problems = intended_use_problems(self.intended_use, self.not_for)
        if problems:
            raise ValueError(f"service {self.name!r}: {'; '.join(problems)}")

    def accepted_requests(
        self, records: Iterable[Mapping[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[Exception]]:
        """The ``records`` the request schema accepts as JSON, what a client may send; and what
        validating the others raised besides a validation error (a validator's KeyError, a value
        ``json`` cannot write): a bug of the schema's, whose row is no request either way."""
        accepted: list[dict[str, Any]] = []
        broken: list[Exception] = []
        for record in records:
            try:
                self.request.model_validate_json(json.dumps(record))
            except ValidationError:
                continue
            except Exception as exc:  # whatever a service's validator raises
                broken.append(exc)
                continue
            accepted.append(dict(record))
        return accepted, broken
