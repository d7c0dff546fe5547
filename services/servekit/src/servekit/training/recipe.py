"""What a service tells servekit about training its model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from servekit.datasets import binary_column, number_column
from servekit.training.fingerprint import SYNTHETIC
from servekit.training.uncertainty import PRIMARY_METRICS, PrimaryMetric

Task = Literal["binary", "multiclass", "regression"]


class TrainingRecipe(ABC):
    """Data, pipeline and evaluation of one service; servekit does the rest.

    The pipeline a recipe builds is exactly what is served: its first steps are
    the preprocessing, so training and serving cannot drift apart.
    """

    target: str
    task: Task
    #: The held-out metric that decides promotion to ``champion``.
    primary_metric: str
    greater_is_better: bool = True
    test_size: float = 0.2
    #: Rows of the synthetic default data set.
    synthetic_rows: int = 10_000
    #: What :meth:`truth` returns as NaN, a value training would have dropped, as ``mlp evaluate``
    #: names the rows it leaves out for it (ChicagoTaxi: a fare under the flag fall).
    truth_left_out: str = "values training leaves out"
    #: Whether every row :meth:`load` returns is one the request schema accepts, its validation
    #: refusing a file that holds any other (BankChurn: the schema's bounds and categories are the
    #: file's). Then a version's held-out figures are over rows a request can be whatever file it
    #: was trained on, and ``mlp evaluate`` holds its live answers against the figure its run
    #: logged without the file (``servekit.evaluation.every_row``). False where the cleaning keeps
    #: rows the schema refuses (ChicagoTaxi's trips without miles), kept them in a release a
    #: version may have been trained by (NLPInsight's texts over 5,000 characters or with no
    #: visible character, until its loader asked ``nlpinsight.text``), or cannot tell.
    rows_all_requestable: bool = False
    #: How a binary recipe's :meth:`tune` chooses the decision threshold, and what the threshold does
    #: not set, in a sentence or two the model card adds under "Decision threshold" (BankChurn's:
    #: the F1-maximising rule, and risk bands that are fixed). Empty: the card says only that the
    #: threshold was chosen on out-of-fold training predictions.
    threshold_rule: str = ""

    @abstractmethod
    def load_csv(self, path: Path) -> pd.DataFrame:
        """The real data set at ``path``, validated: feature columns and the target."""

    @abstractmethod
    def generate(self, n_rows: int, seed: int) -> pd.DataFrame:
        """Synthetic data in the real file's schema (loaded through the same validation)."""

    @abstractmethod
    def build_pipeline(self, seed: int) -> Any:
        """An unfitted sklearn Pipeline: preprocessing steps, then the estimator."""

    @abstractmethod
    def evaluate(
        self,
        pipeline: Any,
        features: pd.DataFrame,
        target: pd.Series,
        metadata: Mapping[str, Any],
    ) -> dict[str, float]:
        """Held-out metrics, must include :attr:`primary_metric`; ``metadata`` is what :meth:`tune` chose."""

    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        """Groups of rows the primary metric is also reported on: dimension -> a group label per row.

        None by default. ``mlp train`` reports each group's held-out figure with its interval
        (``servekit.training.segments``), logs it and stores it for ``GET /model``.
        """
        return {}

    def loaded(self, pipeline: Any) -> None:  # noqa: B027 (optional: most services settle nothing)
        """Settle a pipeline just read from a model file, before anything uses it; nothing by default.

        servekit's loader calls it on every model it deserialises: served, shadow and canary
        models, ``mlp score`` and ``mlp replay``, the trainer's champion, managed endpoints. For
        what a file cannot say by itself (NLPInsight: which text normalisation a model file older
        than the recorded versions was fitted with), so that each of them reads it alike.
        """

    def fit(self, pipeline: Any, features: pd.DataFrame, target: pd.Series) -> Any:
        """Fit the pipeline; override to pass fit parameters (e.g. categorical columns)."""
        return pipeline.fit(features, target)

    def tune(self, pipeline: Any, features: pd.DataFrame, target: pd.Series) -> dict[str, Any]:
        """Serving metadata chosen on training data only (e.g. a decision threshold)."""
        return {}

    def describe_data(self, frame: pd.DataFrame) -> dict[str, float]:
        """Figures of the data that go into its fingerprint (e.g. the positive rate)."""
        return {}

    def params(self, pipeline: Any) -> dict[str, Any]:
        """Hyper-parameters worth logging (the estimator's by default)."""
        estimator = pipeline.steps[-1][1]
        return {f"model.{k}": v for k, v in estimator.get_params().items() if v is not None}

    def primary(self) -> PrimaryMetric:
        """:attr:`primary_metric` as a function of per-row outputs, for its bootstrap interval.

        Override to promote on a metric servekit does not know.
        """
        try:
            return PRIMARY_METRICS[self.primary_metric]
        except KeyError:
            known = ", ".join(sorted(PRIMARY_METRICS))
            raise NotImplementedError(
                f"{type(self).__name__}.primary_metric {self.primary_metric!r} is not one of {known}; "
                "override primary() to describe it"
            ) from None

    def served_output(self, prediction: Mapping[str, Any]) -> Any:
        """What :meth:`primary` scores in one served answer, as the service returned it.

        The positive class's probability, the predicted label or the predicted number: the
        counterpart, in the answer's own terms, of ``primary().outputs`` at training. ``mlp
        evaluate`` scores captured answers against the truth that came later with it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not say which field of its answers {self.primary_metric} "
            "scores; override served_output()"
        )

    def served_decision(self, prediction: Mapping[str, Any]) -> bool | None:
        """Whether one served answer is the positive decision, as the service labelled it.

        A binary recipe says which label is positive (BankChurn: ``churn``), so that ``mlp
        evaluate`` reports the decisions per group as they were served, at whatever threshold
        the version had. None: the recipe makes no such decision (and has no decision rates).
        """
        return None

    def truth(self, values: pd.Series) -> Any:
        """A truth file's :attr:`target` column (cells as written) as :meth:`served_output` is compared with.

        0 or 1 for a binary task, a finite number for a regression; a multiclass recipe says how
        its labels are written. A bad value raises ``DatasetError`` naming its lines; a value
        training would have dropped may be NaN instead (:attr:`truth_left_out`), left out.
        """
        if self.task == "binary":
            return binary_column(self.target, values)
        if self.task == "regression":
            return number_column(self.target, values)
        raise NotImplementedError(
            f"{type(self).__name__} does not say how its {self.target!r} labels are written; override truth()"
        )

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=[self.target])

    def load(self, path: Path | None, seed: int) -> tuple[pd.DataFrame, str]:
        """The training frame and a description of where it came from."""
        if path is None:
            rows = self.synthetic_rows
            return self.generate(rows, seed), f"{SYNTHETIC}rows={rows}, seed={seed})"
        return self.load_csv(path), str(path)
