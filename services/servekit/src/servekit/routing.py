"""Canary rollouts: a share of the live traffic is answered by a candidate model.

The shadow (``servekit.shadow``) shows how a challenger *would* answer; a canary lets it
answer, for a small share of requests, before it serves everyone. ``<SVC>_CANARY_MODEL_URI``
(``models:/<svc>@canary``) loads a second model beside the served one and
``<SVC>_CANARY_TRAFFIC_PERCENT`` of the prediction requests go to it, on every transport
(``/predict``, ``/predict/batch``, the Open Inference Protocol over REST and gRPC). The
response names the version that answered; ``<svc>_variant_*{variant}`` set the canary's
failures, latency and answers beside the stable model's.

The split happens in the pod, not in a mesh or an ingress: the percentage is exact at any
replica count, the HorizontalPodAutoscaler scales one Deployment, and a request can choose
its model, as a test before any traffic moves must:

- ``X-Model-Variant: canary`` (or ``stable``) forces the variant;
- ``X-Routing-Key: <customer id>`` makes the choice sticky: one key gets the same variant on
  every pod, and raising the percentage only moves keys from stable to canary, never back;
- a pinned version (``/v2/models/<name>/versions/<v>/infer``) is answered by whichever
  variant serves that version.

A whole request goes to one variant, so a batch's predictions come from one version. Until the
canary is loaded its share goes to the stable model (``<svc>_canary_fallbacks_total``), and
when both are one registry version (after ``mlp promote``) the stable model answers everything.

The share can also come from the registry, so a rollout can ramp it without a restart: the
registered model's tag ``canary.traffic_percent`` (``mlp canary <svc> V --percent P``, ``mlp
rollout --ramp``), read at every model refresh, overrides ``<SVC>_CANARY_TRAFFIC_PERCENT``, and
without the tag the setting holds again. A tag that is not a percentage, or a registry that
cannot be read, leaves the share as it was and says why once.

A canary whose alias is deleted (the rollout abandoned) is put down on each pod at its next
refresh: the stable model answers everything, ``GET /model`` says ``canary.ended`` and why, and
the pod says so once; an alias that names a version again starts the canary again. A version the
alias names that does not load leaves the one loaded before answering the share, and sets
``<svc>_canary_refresh_failing`` (the ``CanaryRefreshFailing`` alert) until it loads.

A canary that fails is stopped by each pod on its own, without waiting for an alert and a
person: once more than ``<SVC>_CANARY_STOP_FAILURE_RATIO`` of its latest
``<SVC>_CANARY_STOP_WINDOW`` requests failed, its share goes back to the stable model (requests
that ask for the canary still reach it, to reproduce the failure). The stop holds for that
version; a new version behind the alias starts afresh.

Each choice also says *how* it was made (:class:`Choice`, ``routed`` in the prediction capture),
because only a drawn answer is part of the experiment: ``mlp evaluate`` compares a canary with
the stable version on the answers the router drew, not on those a request asked for (a smoke
test, a support engineer reproducing a case) or the canary's share answered by the stable model.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from servekit.errors import FieldProblem, ServekitError
from servekit.loading import one_line
from servekit.metrics.canary import CanaryMetrics
from servekit.metrics.names import CANARY, STABLE, VARIANTS
from servekit.model import ServedModel
from servekit.runtime import ModelRuntime

logger = logging.getLogger("servekit.routing")

#: Request headers (and gRPC metadata keys) that choose the model.
VARIANT_HEADER = "x-model-variant"
ROUTING_KEY_HEADER = "x-routing-key"
#: A routing key is an identifier (a customer, a session), not a payload.
MAX_ROUTING_KEY_LENGTH = 256
#: How much of a wrong ``X-Model-Variant`` its 422 quotes: enough to recognise a typo, while the
#: answer and its access log line stay small whatever a client sends (a header can be 64 KiB).
QUOTED_VARIANT_LENGTH = 20
#: The registered model's tag that sets the canary's share on every pod that follows the registry.
SHARE_TAG = "canary.traffic_percent"
#: Where the share in force came from (``GET /model`` -> ``canary.traffic_percent_from``).
FROM_SETTING = "setting"
FROM_REGISTRY = "registry"
#: The canary is judged on no fewer of its latest requests: one failure in five is not a verdict.
MIN_JUDGED_REQUESTS = 20

#: How a request's model was chosen (``Choice.routed``):
#: the router drew it, by the share or the routing key's hash, while both models could answer;
DRAWN = "drawn"
#: the request named the variant (``X-Model-Variant``) or the version (a pinned URL);
ASKED = "asked"
#: the canary's share, answered by the stable model (the canary loading, or stopped here);
FALLBACK = "fallback"
#: no canary could answer: none is served, it is the stable version, or this pod stopped it.
ALONE = "alone"
ROUTED = (DRAWN, ASKED, FALLBACK, ALONE)


class Choice(NamedTuple):
    """The variant that answers a request, its model, and how it was chosen (one of ``ROUTED``)."""

    variant: str
    model: ServedModel
    routed: str


@dataclass(frozen=True)
class Route:
    """What a request says about the model that should answer it; empty: the router decides."""

    variant: str | None = None
    key: str | None = None

    @classmethod
    def from_headers(cls, get: Callable[[str], str | None], *, where: str = "header.") -> Route:
        """Read and check ``x-model-variant`` and ``x-routing-key`` (``where`` prefixes the field)."""
        variant = get(VARIANT_HEADER)
        if variant is not None:
            variant = variant.strip().lower()
            if variant not in VARIANTS:
                raise _bad(
                    where + VARIANT_HEADER, f"must be one of {', '.join(VARIANTS)}; got {_quoted(variant)}"
                )
        key = get(ROUTING_KEY_HEADER)
        if key is not None and not 0 < len(key) <= MAX_ROUTING_KEY_LENGTH:
            raise _bad(where + ROUTING_KEY_HEADER, f"must be 1 to {MAX_ROUTING_KEY_LENGTH} characters long")
        return cls(variant, key)


#: No header: the router decides.
UNROUTED = Route()


def _quoted(value: str) -> str:
    """``value`` as a Python literal (control characters escaped), its start alone if it is long."""
    if len(value) <= QUOTED_VARIANT_LENGTH:
        return repr(value)
    return f"{value[:QUOTED_VARIANT_LENGTH]!r}... ({len(value)} characters)"


def _bad(field: str, problem: str) -> ServekitError:
    return ServekitError(422, "invalid_routing", f"{field}: {problem}", (FieldProblem(field, problem),))


def no_canary(field: str, service: str) -> ServekitError:
    """The 404 of a request for the canary (in ``field``) where none is configured."""
    problem = f"no canary model is served here ({service.upper()}_CANARY_MODEL_URI is not set)"
    return ServekitError(404, "variant_not_served", problem, (FieldProblem(field, problem),))


def parse_share(text: str) -> float:
    """A share of traffic, in percent: a number from 0 to 100 (ValueError saying why otherwise)."""
    try:
        percent = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not (math.isfinite(percent) and 0 <= percent <= 100):
        raise ValueError(f"{text!r} is not a percentage from 0 to 100")
    return percent + 0.0  # "-0" passes the bound, and would be shown as a share of "-0 %"


def percentile_of(key: str) -> float:
    """Where ``key`` falls in [0, 100): the same in every process (Python's ``hash`` is salted)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


class CanaryRouter:
    """Chooses, per request, whether the stable model or the canary answers."""

    def __init__(
        self,
        runtime: ModelRuntime,
        metrics: CanaryMetrics,
        *,
        uri: str,
        traffic_percent: float,
        stop_failure_ratio: float = 1.0,
        stop_window: int = 100,
        draw: Callable[[], float] = random.random,
        share_probe: Callable[[], str | None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.uri = uri
        #: The share in force, and the setting's, which holds while the registry names none.
        self.traffic_percent = self.configured_percent = traffic_percent
        metrics.traffic_percent.set(traffic_percent)
        self.share_from = FROM_SETTING
        #: Reads the registry's ``SHARE_TAG`` (None: no tag); None: the setting always holds.
        self.share_probe = share_probe
        #: Why the registry's share could not be taken at the last check (None: it was).
        self.share_error: str | None = None
        self.stop_failure_ratio = stop_failure_ratio
        self._draw = draw
        #: The canary's latest results (True: failed), of the version in ``_judged_version``.
        self._results: deque[bool] = deque(maxlen=stop_window)
        self._judged_version: str | None = None
        #: Why this pod stopped sending the canary its share; None while it sends it.
        self.stopped: dict[str, Any] | None = None
        runtime.end_when_missing(self._ended)

    def _ended(self) -> None:
        """The canary's alias is gone: no version to publish, and a stop of the last one is moot."""
        self.metrics.model_ended()
        self._judged_version = None
        self._results.clear()
        if self.stopped is not None:
            self.stopped = None
            self.metrics.stopped.set(0)

    def apply_share(self, tag: str | None) -> None:
        """Take the share the registry's tag names; without a tag, the setting's."""
        if tag is None:
            percent, origin = self.configured_percent, FROM_SETTING
        else:
            try:
                percent, origin = parse_share(tag), FROM_REGISTRY
            except ValueError as exc:
                self._share_failed(f"the registry's {SHARE_TAG} tag: {exc}")
                return
        self.share_error = None
        if (percent, origin) != (self.traffic_percent, self.share_from):
            logger.info(
                "canary share is now %g%% (from the %s; was %g%%)", percent, origin, self.traffic_percent
            )
        self.traffic_percent, self.share_from = percent, origin
        self.metrics.traffic_percent.set(percent)

    async def follow_share(self, interval: float) -> None:
        """Check the registry's share once the canary has loaded, then every ``interval`` seconds;
        a task for the app's life."""
        if self.share_probe is None:
            return
        # Not before the canary has loaded: until then its share goes to the stable model anyway.
        while self.runtime.model is None:
            await asyncio.sleep(min(interval, 1.0))
        while True:
            try:
                tag = await asyncio.to_thread(self.share_probe)
            except Exception as exc:  # the registry down: the share stays, as the model does
                self._share_failed(f"reading the registry: {one_line(exc)}")
            else:
                self.apply_share(tag)
            await asyncio.sleep(interval)

    def _share_failed(self, why: str) -> None:
        if why != self.share_error:  # once per cause, not at every check
            logger.warning("canary share stays %g%%: %s", self.traffic_percent, why)
        self.share_error = why

    def choose(self, stable: ServedModel, route: Route = UNROUTED) -> Choice:
        """The variant that answers and its model; 503 if the canary is asked for and not loaded."""
        canary = self.runtime.model
        if route.variant == STABLE:
            return Choice(STABLE, stable, ASKED)
        if route.variant == CANARY:
            if canary is None:
                why = self.runtime.ended or self.runtime.not_ready_reason
                raise ServekitError(503, "canary_not_ready", f"canary model not ready: {why}")
            return Choice(CANARY, canary, ASKED)
        share = percentile_of(route.key) if route.key is not None else self._draw() * 100
        if share >= self.traffic_percent:
            if not self._could_answer(canary, stable):
                return Choice(STABLE, stable, ALONE)
            self._drew(STABLE, route)
            return Choice(STABLE, stable, DRAWN)
        if canary is None:
            if self.runtime.ended is not None:  # no canary any more: nothing falls back
                return Choice(STABLE, stable, ALONE)
            self.metrics.fell_back("not_ready")
            return Choice(STABLE, stable, FALLBACK)
        if canary.artifact.same_version_as(stable.artifact):
            return Choice(STABLE, stable, ALONE)
        if self._stopped_for(canary):
            self.metrics.fell_back("stopped")
            return Choice(STABLE, stable, FALLBACK)
        self._drew(CANARY, route)
        return Choice(CANARY, canary, DRAWN)

    def _drew(self, variant: str, route: Route) -> None:
        """Count a random draw (``<svc>_variant_draws_total``), on which ``mlp rollout`` tells a
        canary gone quiet from chance. A keyed request is drawn too, but not at random: a key's
        variant is its hash's, the same on every request, so an interval in which only stable keys
        happen to send (a canary's customers idle, one busy customer) is no sign the canary stopped,
        whatever the share. Left out, keyed traffic can only make a stopped canary go unnoticed by
        this check, never roll back a healthy one; the pods' canary_model_info still show an ended one.
        """
        if route.key is None:
            self.metrics.drew(variant)

    def _could_answer(self, canary: ServedModel | None, stable: ServedModel) -> bool:
        """Whether the canary would have answered had it been drawn."""
        return (
            canary is not None
            and not canary.artifact.same_version_as(stable.artifact)
            and not self._stopped_for(canary)
        )

    def answered(self, variant: str, model: ServedModel, seconds: float, *, failed: bool) -> None:
        """Count a request's result, and stop the canary's share if it fails too often."""
        self.metrics.answered(variant, seconds, failed=failed)
        if variant != CANARY:
            return
        self._stopped_for(model)  # a new version starts with a clean slate
        self._results.append(failed)
        failures, judged = sum(self._results), len(self._results)
        if self.stopped or judged < MIN_JUDGED_REQUESTS or failures <= self.stop_failure_ratio * judged:
            return
        self.stopped = {
            "version": model.artifact.version,
            "failed": failures,
            "of": judged,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.metrics.stopped.set(1)
        logger.error(
            "canary version %s stopped: %d of its last %d requests failed (over %g%%); the stable "
            "model answers its share until %s names another version (X-Model-Variant: canary "
            "still reaches it)",
            model.artifact.version,
            failures,
            judged,
            self.stop_failure_ratio * 100,
            self.uri,
        )

    def _stopped_for(self, canary: ServedModel) -> bool:
        """Whether this pod stopped ``canary``'s version; forgets a stop once another version loads."""
        version = canary.artifact.version
        if version != self._judged_version:
            self._judged_version = version
            self._results.clear()
            if self.stopped is not None:
                self.stopped = None
                self.metrics.stopped.set(0)
        return self.stopped is not None

    def variant_serving(self, stable: ServedModel, version: str) -> str | None:
        """The variant that serves ``version`` (the stable one if both do); None if neither does."""
        if stable.artifact.version == version:
            return STABLE
        canary = self.runtime.model
        if canary is not None and canary.artifact.version == version:
            return CANARY
        return None

    def status(self, stable: ServedModel | None) -> dict[str, Any]:
        """The canary as ``GET /model`` describes it."""
        canary = self.runtime.model
        same = canary is not None and stable is not None and canary.artifact.same_version_as(stable.artifact)
        if canary is not None:
            self._stopped_for(canary)  # a stop of the version before no longer holds
        return {
            "uri": self.uri,
            "version": canary.artifact.version if canary else None,
            "run_id": canary.artifact.run_id if canary else None,
            "ready": canary is not None,
            "error": None if canary else self.runtime.last_error,
            # Why no canary is served any more (its alias is gone); None while one is, or loads.
            "ended": self.runtime.ended,
            "traffic_percent": self.traffic_percent,
            "traffic_percent_from": self.share_from,
            "traffic_percent_error": self.share_error,
            # The share it answers now: none until it loads, while it is the stable version, or
            # once this pod stopped it.
            "receiving_percent": (
                self.traffic_percent if canary is not None and not same and not self.stopped else 0.0
            ),
            "stopped": self.stopped,
            "refresh": self.runtime.refresh_status(),
        }
