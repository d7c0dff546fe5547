"""The served version's latest live evaluation, read from the registry while the pod serves it.

``mlp evaluate --log`` (by hand, or the ``live-evaluation`` CronJob every night) scores the
answers a version gave against the truth that came later, logs the figures as an MLflow run and
tags the version with that run (``live.run``). Every pod reads the tag of the version it serves
(one registry call each ``<SVC>_LIVE_EVALUATION_REFRESH_SECONDS``; the run only when the tag
names another one) and exports the figures beside the held-out ones (``servekit.metrics.quality``)
and in ``GET /model``. So a dashboard draws a version's live quality against what it promised,
on the platform's own Prometheus, and the figure follows the served version through a promotion
or a rollback.

A shadow model's version is read the same way, for its latest comparison with the served answers
to the same requests (``shadow.run``; ``servekit.evaluation.shadow``): the dashboard's Shadow row
then says which of the two was right, not only how often they disagree.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from servekit.loading import one_line, unchecked_client
from servekit.metrics.names import LIVE_VERDICTS
from servekit.metrics.quality import Figure, QualityFigures, ShadowFigures
from servekit.runtime import ModelRuntime
from servekit.training.versions import AS_SERVED, JOB_TAG, RecordKind

logger = logging.getLogger("servekit.live_quality")

#: Checked this often until the served model is loaded; no registry call is made meanwhile.
NOT_LOADED_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class LiveRecord:
    """One version's latest live evaluation, as its MLflow run holds it."""

    version: str
    run_id: str
    metric: str
    figure: Figure | None
    answers: int
    #: The run's verdict: "worse", "within the noise", "better", or why there is none.
    verdict: str
    #: When the run ended (Unix seconds).
    evaluated_at: float
    #: The version it was compared against, for a shadow's record (empty for one as served).
    against: str = ""
    #: The groups the version is worse for beyond the noise: a shadow's against the served answers,
    #: a served version's against the same groups held out (None: the run counted none: it has no
    #: comparison, or was logged before groups were compared).
    groups_worse: int | None = None
    #: The Kubernetes Job whose ``mlp evaluate --log --job`` made the run (empty: made by hand).
    job: str = ""

    @property
    def verdict_label(self) -> str:
        """The verdict as ``model_live_verdict`` labels it (``LIVE_VERDICTS``)."""
        return self.verdict if self.verdict in LIVE_VERDICTS else "none"

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` shows of it."""
        figure = self.figure
        return {
            "run_id": self.run_id,
            "metric": self.metric,
            "estimate": figure.estimate if figure else None,
            "ci_low": figure.low if figure else None,
            "ci_high": figure.high if figure else None,
            "answers": self.answers,
            "verdict": self.verdict,
            "evaluated_at": _iso(self.evaluated_at),
            **({"against": self.against} if self.against else {}),
            **({"groups_worse": self.groups_worse} if self.groups_worse is not None else {}),
            **({"job": self.job} if self.job else {}),
        }


#: Reads ``(version, the record already held)``: the version's latest record, None without one.
RecordReader = Callable[[str, "LiveRecord | None"], "LiveRecord | None"]


def read_live_record(
    client: Any,
    name: str,
    version: str,
    metric: str,
    known: LiveRecord | None = None,
    *,
    kind: RecordKind = AS_SERVED,
) -> LiveRecord | None:
    """The latest record of ``name`` version ``version`` (None: never evaluated with ``--log``).

    ``known`` is returned as it is when the version's tag still names its run, so a pod polling a
    version nobody evaluates anew makes one registry call, not two.
    """
    tags = client.get_model_version(name, version).tags or {}
    run_id = tags.get(kind.run_tag)
    if not run_id:
        return None
    if known is not None and known.version == version and known.run_id == run_id:
        return known
    run = client.get_run(run_id)
    metrics: Mapping[str, float] = run.data.metrics
    # The run's own tags, not the version's: a later evaluation rewrites the version's verdict
    # before it rewrites the run tag, and a record must not mix two evaluations.
    ended = run.info.end_time or run.info.start_time
    return LiveRecord(
        version=version,
        run_id=run_id,
        metric=metric,
        figure=Figure.logged(metrics, kind.figure(metric)),
        answers=int(metrics.get(kind.rows_key, 0)),
        verdict=run.data.tags.get(kind.verdict_tag, "none"),
        evaluated_at=ended / 1000,
        against=run.data.tags.get(kind.against_tag, "") if kind.against_tag else "",
        groups_worse=_count(metrics, kind.groups_worse_key),
        job=run.data.tags.get(JOB_TAG, ""),
    )


def _count(metrics: Mapping[str, float], key: str) -> int | None:
    return int(metrics[key]) if key and key in metrics else None


def registry_reader(name: str, metric: str, tracking_uri: str, kind: RecordKind = AS_SERVED) -> RecordReader:
    """A :data:`RecordReader` of ``name``'s versions' ``kind`` of record at ``tracking_uri``."""

    def read(version: str, known: LiveRecord | None) -> LiveRecord | None:
        return read_live_record(unchecked_client(tracking_uri), name, version, metric, known, kind=kind)

    return read


class LiveQualityFollower:
    """Keeps the latest live record of the version ``runtime`` serves (the served model's, or a
    shadow's), read every ``interval`` seconds.

    ``served``: for a shadow's, the runtime of the model it is compared with. Its record is held only
    while it was compared against the version that runtime serves: after a promotion the
    comparison with the version served before says nothing of the one served now (ShadowBetter
    would say "better than v1" while v2 answers), as the served version's own record is dropped
    when it is replaced.
    """

    def __init__(
        self,
        runtime: ModelRuntime,
        metric: str,
        reader: RecordReader | None,
        interval: float,
        *,
        served: ModelRuntime | None = None,
    ) -> None:
        self._runtime = runtime
        self._served = served
        self.metric = metric
        self._reader = reader
        self.interval = interval
        self.record: LiveRecord | None = None
        #: Wall-clock time of the last read, and why it failed (None: it did not).
        self.last_check: float | None = None
        self.error: str | None = None

    @property
    def follows(self) -> bool:
        return self._reader is not None and self.interval > 0

    async def run(self) -> None:
        """Read the served version's record until cancelled; a task for the app's lifetime."""
        while self.follows:
            read = await self.check()
            await asyncio.sleep(self.interval if read else NOT_LOADED_POLL_SECONDS)

    async def check(self) -> bool:
        """Read the record of the version served now; False: no model is served yet."""
        model = self._runtime.model
        if model is None or self._reader is None:
            return False
        version = model.artifact.version
        if not version.isdigit():  # served from a runs:/ or artifact URI: no version to read
            return True
        self.last_check = time.time()
        try:
            record = await asyncio.to_thread(self._reader, version, self.record)
        except Exception as exc:  # the registry's outage: the figures it gave last still hold
            self.error = one_line(exc)
            logger.warning(
                "live evaluation of version %s not read (next read in %gs): %s",
                version,
                self.interval,
                self.error,
            )
            return True
        self.error = None
        self.record = record
        return True

    def figures(self) -> QualityFigures | None:
        """The served version's figures for its metrics; None before a model is served."""
        model = self._runtime.model
        if model is None:
            return None
        # The primary metric its training run logged on the held-out rows, with its interval.
        held_out = Figure.logged(model.artifact.training_metrics, self.metric)
        record = self.current()
        if record is None:
            return QualityFigures(self.metric, held_out)
        return QualityFigures(
            self.metric,
            held_out,
            live=record.figure,
            answers=record.answers,
            evaluated_at=record.evaluated_at,
            evaluated_by_job=record.job,
            verdict=record.verdict_label,
            groups_worse=record.groups_worse,
        )

    def status(self) -> dict[str, Any] | None:
        """``GET /model``'s ``live_evaluation``: the served version's latest record, and the reading."""
        if not self.follows:
            return None
        record = self.current()
        return {
            "latest": record.describe() if record else None,
            "every_seconds": self.interval,
            "last_check": _iso(self.last_check) if self.last_check is not None else None,
            "error": self.error,
        }

    def shadow_figures(self) -> ShadowFigures | None:
        """A shadow's figures against the served answers; None before it is loaded or compared."""
        record = self.current()
        if record is None:
            return None
        return ShadowFigures(
            self.metric,
            record.figure,
            record.against,
            record.answers,
            record.verdict_label,
            record.groups_worse,
        )

    def current(self) -> LiveRecord | None:
        """The record held, if it is of the version served (and, for a shadow's, compared against
        the version served beside it): None after a switch of either until a newer record says
        otherwise, or for a version never evaluated."""
        model, record = self._runtime.model, self.record
        if model is None or record is None or record.version != model.artifact.version:
            return None
        if self._served is not None:
            served = self._served.model
            if served is None or record.against != served.artifact.version:
                return None
        return record


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
