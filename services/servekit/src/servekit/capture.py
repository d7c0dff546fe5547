"""Prediction capture: a sampled share of the requests, inputs and answers, one log line per instance.

When a regulator or a customer asks why a decision was made, the metrics cannot say and the
access log, on purpose, holds no field's value. ``<SVC>_CAPTURE_PERCENT`` (0, off, by default;
SageMaker's Data Capture and Vertex AI's request-response logging are the same idea) writes,
for that share of the prediction requests, one line per instance to the ``servekit.capture``
logger: the request id, the model's name, version and run, which variant answered and how it was
chosen (``routed``, :data:`servekit.routing.ROUTED`), when, the instance's fields as validated and
the prediction as returned (with its explanation when the request asked for one). With the
version and the inputs, the answer can be reproduced from the registry at any later time; the
line is the record that it was given.

Why log lines and not a store of our own: the platforms already ship pod logs to a store with
retention and access control (Cloud Logging, CloudWatch Logs), and route them by a field to
long-term storage (a Cloud Logging sink to BigQuery or Cloud Storage; a CloudWatch
subscription through Firehose to S3). ``logger`` = ``servekit.capture`` is that field.

* The sample is drawn per request, so a batch is captured whole or not at all.
* One line per instance keeps a line small: Cloud Logging and CloudWatch cap an entry at
  256 KiB, which one explained 256-row batch would exceed.
* Capture lines are written whatever ``<SVC>_LOG_LEVEL`` says (an audit trail with holes
  is none) and are never rate limited; the percentage is what bounds their cost.
* The time of the answer is in the capture itself (``answered_at``, UTC), not only on the log
  line around it: log stores move or rewrite a line's own time field when they ingest it, and the
  record must still say when the decision was made once exported.
* A capture that fails is logged once, counted per instance (``<svc>_capture_failures_total``,
  alert ``CaptureFailing``), and never costs the request its answer.
* With a shadow model, a captured request's shadow answers are captured too, under the same request
  id and instance with ``variant`` ``shadow`` (:meth:`PredictionCapture.shadowed`), written by the
  shadow's worker once it has scored them: ``mlp evaluate`` holds the challenger against the
  answers actually served, request for request, once the truth is known.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from servekit import logs
from servekit.inference import encode_json
from servekit.logs import LogFormat, rfc3339
from servekit.metrics.names import CAPTURE_LOGGER, SHADOW
from servekit.model import Record, ServedModel

logger = logging.getLogger(CAPTURE_LOGGER)
# Written at INFO whatever the root logger's level: an operator quieting the log for cost must
# not silently end the capture they asked for.
logger.setLevel(logging.INFO)

MESSAGE = "prediction captured"


class PredictionCapture:
    """Writes ``percent`` of the requests' instances and predictions to the ``servekit.capture`` log."""

    def __init__(
        self,
        percent: float,
        *,
        log_format: LogFormat,
        on_captured: Callable[[int], None],
        on_failed: Callable[[int], None] = lambda _: None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.percent = percent
        self.log_format = log_format
        self.on_captured = on_captured
        self.on_failed = on_failed
        self._draw = draw
        self._failed_once = False

    def status(self) -> dict[str, Any]:
        """Capture as ``GET /model`` describes it: an auditor can check a pod records its answers."""
        return {"percent": self.percent, "logger": logger.name, "format": self.log_format}

    def __call__(
        self,
        model: ServedModel,
        variant: str,
        routed: str,
        records: Sequence[Record],
        predictions: Sequence[Mapping[str, Any]],
    ) -> int:
        """Capture the request if it is drawn; how many instances were written."""
        if self._draw() * 100 >= self.percent:
            return 0
        return self._captured(model, variant, routed, records, predictions)

    def shadowed(
        self,
        model: ServedModel,
        routed: str,
        request_id: str,
        records: Sequence[Record],
        predictions: Sequence[Mapping[str, Any]],
    ) -> int:
        """Capture the shadow model's answers to a captured request, off its path (the shadow's
        worker thread), under the request's id; how many instances were written."""
        token = logs.request_id.set(request_id)
        try:
            return self._captured(model, SHADOW, routed, records, predictions)
        finally:
            logs.request_id.reset(token)

    def _captured(
        self,
        model: ServedModel,
        variant: str,
        routed: str,
        records: Sequence[Record],
        predictions: Sequence[Mapping[str, Any]],
    ) -> int:
        try:
            unwritten = self._write(model, variant, routed, records, predictions)
        except Exception:
            self._failed(len(records), exc_info=True)
            return 0
        if unwritten:
            # The log stream refused them (a full disk, a closed pipe): the record has lost them.
            self._failed(unwritten, exc_info=False)
        if written := len(records) - unwritten:
            self.on_captured(written)
        return written

    def _failed(self, instances: int, exc_info: bool) -> None:
        self.on_failed(instances)
        if not self._failed_once:
            self._failed_once = True
            logger.error(
                "prediction capture failed%s (logged once; capture_failures_total counts every "
                "instance left out); predictions go on",
                "" if exc_info else ": the log stream refused its lines",
                exc_info=exc_info,
            )

    def _write(
        self,
        model: ServedModel,
        variant: str,
        routed: str,
        records: Sequence[Record],
        predictions: Sequence[Mapping[str, Any]],
    ) -> int:
        """Write a line per instance; how many of them the log stream could not take."""
        artifact = model.artifact
        ref = {"name": artifact.name, "version": artifact.version, "run_id": artifact.run_id}
        count = len(records)
        answered_at = rfc3339(time.time())
        # Every line is encoded before the first is written: a request is captured whole or not
        # at all. Encoded as the responses are, then read back: numpy scalars become plain JSON
        # numbers before the log formatter (which would turn them into strings) sees them.
        lines = [
            encode_json(
                {
                    "model": ref,
                    "variant": variant,
                    "routed": routed,
                    "answered_at": answered_at,
                    "instance": index,
                    "instances": count,
                    "input": record,
                    "prediction": prediction,
                }
            )
            for index, (record, prediction) in enumerate(zip(records, predictions, strict=True))
        ]
        unwritten_before = logs.unwritten_lines()
        for line in lines:
            if self.log_format == "json":
                logger.info(MESSAGE, extra={"json_fields": {"capture": orjson.loads(line)}})
            else:
                logger.info(logs.JsonBody(MESSAGE, line.decode()))
        return logs.unwritten_lines() - unwritten_before
