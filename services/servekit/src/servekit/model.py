"""The one model interface every service implements (after KServe's ``Model``).

The transport (REST, SageMaker, Vertex AI) only ever calls :meth:`ServedModel.predict`
and :meth:`ServedModel.explain` on validated records, so every transport returns
the same numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from servekit import input_drift
from servekit.provenance import code_version
from servekit.redaction import redact

Record = Mapping[str, Any]
#: The key of an answer listing its inputs outside the range of the training rows
#: (``servekit.features.OutsideTraining.as_json``), from a model that keeps the ranges.
OUTSIDE_TRAINING = "outside_training"
#: The key of an answer's explanation (``Explanation.as_json``), when asked.
EXPLANATION_FIELD = "explanation"


@dataclass(frozen=True)
class ModelArtifact:
    """A trained pipeline plus what the registry knows about it."""

    name: str
    pipeline: Any
    metadata: Mapping[str, Any]
    version: str = "local"
    run_id: str = ""
    uri: str = ""
    registry_uri: str = ""
    training_metrics: Mapping[str, float] = field(default_factory=dict)

    def same_version_as(self, other: ModelArtifact) -> bool:
        """One registry version: after a winning retrain, champion == challenger, say."""
        return self.name == other.name and self.version == other.version and self.run_id == other.run_id


@dataclass(frozen=True)
class Explanation:
    """SHAP values of one prediction: ``base_value + sum(contributions) == output_value``."""

    scale: str
    base_value: float
    output_value: float
    contributions: Mapping[str, float]
    #: Per-feature attribution for the drift metrics (consumers take |value|); bounded label set.
    attributions: Mapping[str, float]
    #: Extra detail for the response, e.g. per-token spans of a text explanation.
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "scale": self.scale,
            "base_value": self.base_value,
            "output_value": self.output_value,
            "contributions": dict(self.contributions),
        }
        body.update(self.detail)
        return body


#: Batches up to this size are quick by default (:meth:`ServedModel.quick`).
INLINE_BATCH_LIMIT = 16


class ServedModel(ABC):
    """A loaded model that predicts and explains batches of validated records."""

    #: What the explanation's numbers are (e.g. ``log-odds``, ``USD``), stated in every response.
    explanation_scale: str = ""
    #: How the explanation's numbers are computed, in words an auditor can hold against the code
    #: (``GET /model``): which algorithm, exact or approximate, and against what baseline.
    explanation_method: str = ""
    #: Whether :meth:`predict` lists each answer's inputs outside the training range under
    #: :data:`OUTSIDE_TRAINING`: the response schema and the Open Inference metadata promise that
    #: output only where it comes.
    keeps_training_ranges: ClassVar[bool] = False
    #: Whether the explanation's contributions are keyed by request fields (a tree model's) or by
    #: something else (a text model's words): a reason shows the request's value of its field only
    #: in the first case, or the word "text" would be given the whole request text as its value.
    contributions_are_fields: ClassVar[bool] = True

    def __init__(self, artifact: ModelArtifact) -> None:
        self.artifact = artifact
        #: Bins of the monitored inputs, fixed at training (``servekit.input_drift``).
        self.input_bins = input_drift.from_metadata(artifact.metadata)

    @abstractmethod
    def predict(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        """One JSON-ready prediction per record, in order."""

    @abstractmethod
    def explain(self, records: Sequence[Record]) -> list[Explanation]:
        """One explanation per record, in order."""

    @abstractmethod
    def outcome(self, prediction: Mapping[str, Any]) -> str:
        """The bounded label under which a prediction is counted in ``<svc>_predictions_total``."""

    def reasons_toward(self, prediction: Mapping[str, Any]) -> int:
        """The sign of the contributions that argued for ``prediction``'s answer on the explanation's
        scale (+1 or -1), which alone are its principal reasons (``servekit.reasons``); 0 for an
        answer with no direction, whose reasons are the largest contributions either way: a
        regressor's number is the sum of them all, with none for or against it."""
        return 0

    def quick(self, records: Sequence[Record]) -> bool:
        """Whether ``records`` are answered (and explained) in about a millisecond or less.

        Quick work runs on the event loop, where a hop to a worker thread would cost more than
        the work itself; anything longer runs in a worker thread, so probes and other requests
        are not kept waiting behind it (``servekit.rest.predictor``). Up to
        :data:`INLINE_BATCH_LIMIT` records by default; a model whose time grows with what a
        record holds (a text's length) bounds that too.
        """
        return len(records) <= INLINE_BATCH_LIMIT

    def training_ranges(self) -> dict[str, dict[str, Any]]:
        """The range of each ranged model column over the training rows (``GET /model``).

        Empty by default: a model that is not a function of ranged numbers (a text classifier,
        which says how much of a text it knows instead) has none.
        """
        return {}

    def scores(self, prediction: Mapping[str, Any]) -> Mapping[str, float]:
        """The numbers of a prediction that a shadow model's are compared with (``servekit.shadow``).

        Probabilities, or a regressor's prediction; not settings that ride along (a threshold).
        None by default, and then only the outcomes are compared.
        """
        return {}

    def monitored_inputs(self, records: Sequence[Record]) -> dict[str, list[Any]]:
        """The values whose distribution is watched for drift, per input, in record order.

        The request's fields by default. Called on the training rows for the baseline and
        on every request, so both sides are the same function; override it to watch what
        a raw field means to the model (an hour rather than a timestamp) or to leave out
        what cannot be binned (free text).
        """
        if not records:
            return {}
        return {name: [record.get(name) for record in records] for name in records[0]}

    def example(self) -> list[dict[str, Any]]:
        """Records to warm up on (the input example logged at training)."""
        return [dict(r) for r in self.artifact.metadata.get("input_example", [])]

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` returns."""
        meta = self.artifact.metadata
        return {
            "name": self.artifact.name,
            "version": self.artifact.version,
            # Shown to any caller: a password or token in the URIs stays with the operator.
            "uri": redact(self.artifact.uri),
            "registry_uri": redact(self.artifact.registry_uri),
            "run_id": self.artifact.run_id,
            "training_metrics": dict(self.artifact.training_metrics),
            "explanation_scale": self.explanation_scale,
            "explanation_method": self.explanation_method,
            "feature_schema": meta.get("feature_schema", {}),
            "data": meta.get("data", {}),
            # The code that trained it (servekit.provenance); none for a model trained before.
            "code": meta.get("code"),
            # The code this replica serves it with.
            "serving_code": code_version(("servekit", self.artifact.name)),
            # The primary held-out metric per group of rows (servekit.training.segments).
            "segments": meta.get("segments", {}),
            # Decision and error rates per group, and their gaps (servekit.training.parity).
            "parity": meta.get("parity", {}),
            "baselines": {
                "outcome_shares": meta.get("outcome_shares", {}),
                "attribution_means": meta.get("attribution_means", {}),
                "input_shares": input_drift.training_shares(meta),
                # Which rows the input shares are over (held-out rows a request can be).
                "input_baseline": meta.get("input_baseline", {}),
                # Cut points of the numbered bins: bin 01 holds values <= edges[0], and so on.
                "input_bins": meta.get("input_bins", []),
                # Beyond these a tree answers as at the nearest edge (``outside_training``).
                "training_ranges": self.training_ranges(),
            },
            **{k: v for k, v in meta.items() if k in ("threshold", "classes")},
        }
