"""Input drift: each monitored input counted in bins fixed when the model was trained.

At training, :func:`fit` cuts every numeric input at the deciles of the held-out
rows a request could be (those the request schema accepts, ``training.baselines``;
fewer bins where values repeat: a 0/1 flag gets two) and keeps a categorical input's
most frequent values (the rest count as ``other``); those rows' share of each bin is
the baseline. At serving, :func:`count` puts each request's
values in the same bins, so ``<svc>_input_values_total{feature,bin}`` and
``<svc>_training_input_share{feature,bin}`` compare like with like, and the
population stability index (PSI) of each input is one PromQL expression
(``monitoring/generate.py``).

Bins are numbered (``01`` to ``10``) rather than named by their range, so a new
model version, with new cut points, reuses the same label values and a pod that
follows its alias for months keeps a fixed number of series.

Only values a request can carry are in the baseline. An input the request schema requires
(not nullable) has no ``missing`` bin: training rows may lack it (ChicagoTaxi learns from the
31 % of real trips whose miles were not recorded) but no request can, so a training share there
would be live traffic's 0 for ever, a PSI of about 1.8 on its own. Its other bins' shares are
over the rows that have a value. A model trained before bins said so is read the same way
(:func:`from_metadata`, :func:`training_shares`), without retraining; its other inputs' shares
still include the held-out rows the API refuses (ChicagoTaxi's ``company`` at a PSI of about
0.2 on valid real trips) until it is retrained.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Deciles: enough to see a shift, few enough that an hour of traffic fills every bin.
MAX_BINS = 10
#: The most frequent values of a categorical input that get a bin of their own.
MAX_CATEGORIES = 10
MISSING = "missing"
OTHER = "other"

#: The values of each monitored input for a batch of records, in record order.
Columns = Mapping[str, Sequence[Any]]


@dataclass(frozen=True)
class FeatureBins:
    """How one input's values are binned: numeric cut points, or categorical values."""

    feature: str
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    numeric: bool = True
    #: Whether a request the service accepts can lack this input (no ``missing`` bin if not).
    optional: bool = True
    #: Label of each numeric bin, by ``bisect_left`` position (``01`` for the lowest).
    _numbered: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _named: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Precomputed once: binning runs on every request.
        object.__setattr__(self, "_numbered", tuple(f"{i:02d}" for i in range(1, len(self.edges) + 2)))
        object.__setattr__(self, "_named", frozenset(self.categories))

    @property
    def labels(self) -> tuple[str, ...]:
        """Every bin a value can fall in (``missing`` only for an input a request may lack)."""
        missing = (MISSING,) if self.optional else ()
        if self.numeric:
            return (*self._numbered, *missing)
        return (*self.categories, OTHER, *missing)

    def bin_of(self, value: Any) -> str:
        if value is None:
            return MISSING
        if self.numeric:
            number = float(value)
            if math.isnan(number):
                return MISSING
            # Bin i holds (edges[i-2], edges[i-1]]: a value equal to a cut point stays below it.
            return self._numbered[bisect_left(self.edges, number)]
        text = str(value)
        return text if text in self._named else OTHER

    def as_json(self) -> dict[str, Any]:
        if self.numeric:
            return {"feature": self.feature, "edges": list(self.edges), "optional": self.optional}
        return {"feature": self.feature, "categories": list(self.categories), "optional": self.optional}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], optional: bool = True) -> FeatureBins:
        """``optional``: for bins stored before they said whether the input may be missing."""
        feature, optional = str(data["feature"]), bool(data.get("optional", optional))
        if "categories" in data:
            categories = tuple(map(str, data["categories"]))
            return cls(feature, categories=categories, numeric=False, optional=optional)
        return cls(feature, edges=tuple(float(e) for e in data["edges"]), optional=optional)


def required_fields(schema: Mapping[str, Any]) -> frozenset[str]:
    """The fields every accepted request has a value for, from its JSON schema (``feature_schema``):
    required and not nullable. A required ``X | None`` can still be sent as null."""
    properties = schema.get("properties", {})
    return frozenset(
        name for name in schema.get("required", ()) if name in properties and not _nullable(properties[name])
    )


def _nullable(prop: Mapping[str, Any]) -> bool:
    kinds = prop.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    return any(_nullable(member) for key in ("anyOf", "oneOf") for member in prop.get(key, ()))


def fit(columns: Columns, required: Collection[str] = ()) -> list[FeatureBins]:
    """Bins of every input, from the training rows' values; ``required`` inputs get no ``missing``
    bin (:func:`required_fields`)."""
    return [_fit_one(feature, values, feature not in required) for feature, values in sorted(columns.items())]


def _fit_one(feature: str, values: Sequence[Any], optional: bool) -> FeatureBins:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if present and all(_is_number(v) for v in present):
        # Observed values as cut points (no interpolation): a 0/1 flag is cut at 0, not at 0.7.
        quantiles = np.quantile(
            np.asarray(present, dtype=float), np.linspace(0, 1, MAX_BINS + 1)[1:-1], method="inverted_cdf"
        )
        # Unique cut points below the maximum: ties (a 0/1 flag, 36% zero balances) merge bins.
        top = max(float(v) for v in present)
        edges = tuple(sorted({float(q) for q in quantiles if q < top}))
        return FeatureBins(feature, edges=edges, optional=optional)
    frequency = Counter(str(v) for v in present)
    kept = tuple(sorted(value for value, _ in frequency.most_common(MAX_CATEGORIES)))
    return FeatureBins(feature, categories=kept, numeric=False, optional=optional)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def count(bins: Iterable[FeatureBins], columns: Columns) -> Counter[tuple[str, str]]:
    """How many values of each input fell in each bin."""
    counted: Counter[tuple[str, str]] = Counter()
    for binning in bins:
        values = columns.get(binning.feature)
        if values is None:
            continue
        for value in values:
            label = binning.bin_of(value)
            if label == MISSING and not binning.optional:
                continue  # no request lacks it; a training row that does is not in the baseline
            counted[binning.feature, label] += 1
    return counted


def shares(bins: Sequence[FeatureBins], columns: Columns) -> dict[str, dict[str, float]]:
    """Each input's share of rows per bin (every bin listed, empty ones at 0); a required input's
    shares are over the rows that have a value."""
    counted = count(bins, columns)
    found: dict[str, dict[str, float]] = {}
    for binning in bins:
        total = sum(counted[binning.feature, label] for label in binning.labels)
        if total:
            found[binning.feature] = {
                label: counted[binning.feature, label] / total for label in binning.labels
            }
    return found


def from_metadata(metadata: Mapping[str, Any]) -> tuple[FeatureBins, ...]:
    """The bins a model was trained with; none for a model trained before they existed.

    Bins stored before they said whether their input may be missing get a ``missing`` bin only
    where the request schema logged with them (``feature_schema``) lets a request lack the input.
    """
    required = required_fields(metadata.get("feature_schema", {}))
    return tuple(
        FeatureBins.from_json(item, optional=str(item["feature"]) not in required)
        for item in metadata.get("input_bins", ())
    )


def training_shares(metadata: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The training shares of each bin of :func:`from_metadata`'s bins, as the service publishes them.

    ``input_shares`` as stored, except for a model trained before required inputs lost their
    ``missing`` bin: that share is dropped and the others scaled back to a sum of 1, as if the
    baseline had been computed over the rows that have a value (which is what a newer model
    stores), so an old model stops raising InputDrift without being retrained.
    """
    stored: Mapping[str, Mapping[str, float]] = metadata.get("input_shares", {})
    bins = {binning.feature: binning for binning in from_metadata(metadata)}
    found: dict[str, dict[str, float]] = {}
    for feature, by_bin in stored.items():
        shares = {label: float(share) for label, share in by_bin.items()}
        binning = bins.get(feature)
        if binning is not None and not binning.optional and MISSING in shares:
            shares.pop(MISSING)
            total = sum(shares.values())
            if total > 0:
                shares = {label: share / total for label, share in shares.items()}
        found[feature] = shares
    return found
