"""Readiness: load the model in the background, warm it up, retry with backoff.

Chosen behaviour when the model cannot be loaded (registry down, alias missing,
artifact corrupt): the process stays alive and NOT ready, logs exactly what
failed in one line per attempt, and retries with exponential backoff. On
Kubernetes the readiness probe keeps traffic away while the liveness probe
keeps the pod, so a registry outage heals without a crash loop, and
``<svc>_model_ready`` = 0 lets an alert fire.

Once ready, a service whose model URI names an alias (``models:/bankchurn@champion``)
follows it: every ``refresh_interval`` seconds it asks the registry which version
the alias points at, and when that is another version it loads and warms it up
beside the one it serves, then switches in one assignment. So ``mlp promote`` (or a
retrain that wins) reaches every pod without a restart, and a version that fails
to load leaves the pod serving the previous one, still ready, saying why. A runtime
told to (``end_when_missing``: the canary's and the shadow's) puts its model down when the
alias is deleted, and loads again once it names a version.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from servekit.errors import ServekitError
from servekit.loading import ModelLoadError, one_line
from servekit.metrics.names import REFRESH_ASKING_THE_REGISTRY, REFRESH_LOADING_THE_VERSION
from servekit.model import ModelArtifact, ServedModel

logger = logging.getLogger("servekit.runtime")

ArtifactSource = Callable[[], ModelArtifact]
#: The version the model URI points at now (a registry lookup, no download).
VersionProbe = Callable[[], str]
#: A version that failed to load is retried after the refresh interval, doubling up to this.
REFRESH_RETRY_MAX_SECONDS = 600.0


class RuntimeMetrics(Protocol):
    """What a runtime publishes: the served model's metrics, or a shadow model's."""

    def model_served(self, model: ServedModel, load_seconds: Mapping[str, float]) -> None:
        """``model`` is served from now on; raises, publishing nothing, if it cannot be published.

        ``load_seconds``: how long each of ``LOAD_PHASES`` of its load took.
        """

    def model_refresh(self, failed: str | None) -> None:
        """A check of the alias (and load of the version it names) ended: ``failed`` is None if it
        worked, else the step that failed (``metrics.names.REFRESH_STEPS``)."""


#: The phases of a model load, in order: resolve the URI and download and deserialise the
#: artifact; build the service's model object; one prediction and explanation.
LOAD_PHASES = ("fetch", "build", "warm_up")


@dataclass(frozen=True)
class Loaded:
    """A model loaded and warmed up, and how long each phase took."""

    model: ServedModel
    seconds: dict[str, float]

    def timing(self) -> str:
        """``in 2.41 s (fetch 2.10 s, build 0.20 s, warm_up 0.11 s)``, for the log line."""
        phases = ", ".join(f"{phase} {self.seconds[phase]:.2f} s" for phase in LOAD_PHASES)
        return f"in {sum(self.seconds.values()):.2f} s ({phases})"


@dataclass(frozen=True)
class FailedVersion:
    """A version that would not load, and when to try it again."""

    version: str
    failures: int
    retry_at: float


class ModelRuntime:
    """Holds the served model once it is loaded and warmed up."""

    def __init__(
        self,
        model_class: type[ServedModel],
        source: ArtifactSource,
        metrics: RuntimeMetrics,
        *,
        initial_delay: float = 1.0,
        max_delay: float = 30.0,
        probe: VersionProbe | None = None,
        refresh_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        role: str = "model",
    ) -> None:
        self._model_class = model_class
        self._source = source
        self._metrics = metrics
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._probe = probe
        self._refresh_interval = refresh_interval
        self._clock = clock
        #: How log lines name what this runtime loads ("model", "shadow model").
        self.role = role
        self._failed: FailedVersion | None = None
        #: Wall-clock time of the last check of the alias, and why it failed (None: it did not).
        self.last_check: float | None = None
        self.refresh_error: str | None = None
        self.model: ServedModel | None = None
        #: How long each phase of the served model's load took (``LOAD_PHASES``).
        self.load_seconds: dict[str, float] = {}
        self.last_error: str | None = None
        #: Whether the last failure was the registry answering that what the URI names is not there.
        self._last_failure_missing = False
        self.attempts = 0
        #: Called when the alias names no version any more (None: the served model stays).
        self._on_missing: Callable[[], None] | None = None
        #: Why the model served was put down (its alias is gone); None while it is served, and once
        #: the alias names a version again (loaded or not: one that fails is a refresh failure).
        self.ended: str | None = None
        #: Whether the model was put down and has not been loaded since: refreshes resume.
        self._put_down = False

    def end_when_missing(self, on_end: Callable[[], None]) -> None:
        """Put the served model down when the registry answers that its alias names no version,
        calling ``on_end``; a later check that finds the alias again loads the version it names.

        For a canary: deleting its alias is how a rollout is abandoned, and a pod that kept
        sending the old version its share would run an experiment nobody watches any more. For a
        shadow likewise: the comparison ends with the challenger alias, rather than go on with the
        version it named, warning at every refresh. Not for the served model: a pod without one
        answers nothing.

        Such a model is beside the served one, so the pod is ready without it: its first load's
        failures are exported as failed refreshes too (``RuntimeMetrics.model_refresh``), as
        nothing else would say it never loaded.
        """
        self._on_missing = on_end

    @property
    def _beside_served(self) -> bool:
        """Whether this runtime's model is optional (``end_when_missing``): the pod is ready without it."""
        return self._on_missing is not None

    @property
    def follows(self) -> bool:
        """Whether the served model is replaced when the registry moves the URI's alias."""
        return self._probe is not None and self._refresh_interval > 0

    @property
    def ready(self) -> bool:
        return self.model is not None

    @property
    def not_ready_reason(self) -> str:
        """Why no model is served yet, in words any caller may read (``/readyz`` and the probes
        answer without a key): that loading is under way, or how often it failed and of which
        kind. Not the failure itself (:attr:`last_error`), which names the registry's address and
        quotes its errors: it is in the log, a line per attempt."""
        if self.last_error is None:
            return "the model is still loading"
        kind = (
            "the registry holds no such model, version or alias"
            if self._last_failure_missing
            else "the registry or the model's files could not be read, or the model did not warm up"
        )
        times = "once" if self.attempts == 1 else f"{self.attempts} times"
        return f"loading the {self.role} failed {times} ({kind}); retrying, each failure in the service's log"

    def require(self) -> ServedModel:
        if self.model is None:
            raise ServekitError(503, "model_not_ready", f"model not ready: {self.not_ready_reason}")
        return self.model

    def load_once(self) -> Loaded:
        """Load, build and warm up, timing each phase; raises on any failure."""
        marks = [time.perf_counter()]
        artifact = self._source()
        marks.append(time.perf_counter())
        model = self._model_class(artifact)
        marks.append(time.perf_counter())
        warm_up(model)
        marks.append(time.perf_counter())
        return Loaded(model, {phase: marks[i + 1] - marks[i] for i, phase in enumerate(LOAD_PHASES)})

    def activate(self, loaded: Loaded) -> None:
        self._metrics.model_served(loaded.model, loaded.seconds)
        self.model = loaded.model
        self.load_seconds = loaded.seconds
        self.last_error = None

    async def run(self) -> None:
        """Load (retrying until it works), then follow the alias; a task for the app's lifetime."""
        await self.load_until_ready()
        while self.follows:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.refresh()
            except Exception:  # a bug in one check must not end the following for good
                logger.exception("%s refresh crashed; the served one stays", self.role)

    async def load_until_ready(self) -> None:
        delay = self._initial_delay
        while self.model is None:
            self.attempts += 1
            try:
                loaded = await asyncio.to_thread(self.load_once)
            except Exception as exc:
                self.last_error = one_line(exc)
                self._last_failure_missing = isinstance(exc, ModelLoadError) and exc.missing
                if self._beside_served:
                    # The served model's failing first load is model_ready's (ModelNotReady); a
                    # canary's leaves the pod ready, so without this a pod started while its alias
                    # names a broken version would fall back for good and page nobody.
                    self._metrics.model_refresh(
                        None if self._names_no_version(exc) else REFRESH_LOADING_THE_VERSION
                    )
                logger.error(
                    "%s load failed (attempt %d, retrying in %.1fs): %s",
                    self.role,
                    self.attempts,
                    delay,
                    self.last_error,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay)
                continue
            self.activate(loaded)
            if self._beside_served:
                self._refresh_succeeded()
            model = loaded.model
            logger.info(
                "%s ready: %s version %s (run %s) %s",
                self.role,
                model.artifact.name,
                model.artifact.version,
                model.artifact.run_id or "-",
                loaded.timing(),
            )

    def _names_no_version(self, exc: Exception) -> bool:
        """Whether a load failed because the followed alias names no version: nothing is asked to
        load (as after ``end_when_missing`` put the model down), so it is no failure to refresh."""
        return self._probe is not None and isinstance(exc, ModelLoadError) and exc.missing

    def refresh_status(self) -> dict[str, Any] | None:
        """How the served model follows its alias (``GET /model``); None when it does not."""
        if not self.follows:
            return None
        checked = None
        if self.last_check is not None:
            checked = datetime.fromtimestamp(self.last_check, UTC).isoformat(timespec="seconds")
        return {
            "every_seconds": self._refresh_interval,
            "last_check": checked,
            "error": self.refresh_error,
        }

    async def refresh(self) -> None:
        """Serve the version the URI points at now, if it is another one and it loads."""
        if self.model is None and self._put_down:
            await self._resume()
            return
        serving = self.require()
        self.last_check = time.time()
        try:
            wanted = await asyncio.to_thread(self._probe) if self._probe else serving.artifact.version
        except Exception as exc:
            if self._on_missing is not None and isinstance(exc, ModelLoadError) and exc.missing:
                self._end(serving, exc)
                return
            self._refresh_failed(
                serving, f"next check in {self._refresh_interval:g}s", exc, REFRESH_ASKING_THE_REGISTRY
            )
            return
        if wanted == serving.artifact.version:
            self._refresh_succeeded()
            return
        if self._waiting_to_retry(wanted):
            return
        try:
            loaded = await asyncio.to_thread(self.load_once)
            model = loaded.model
            switched = model.artifact.version != serving.artifact.version
            if switched:  # else the alias moved back while the other version loaded
                self.activate(loaded)  # publishes nothing unless all of it can be published
        except Exception as exc:
            delay = self._retry_later(wanted)
            self._refresh_failed(
                serving, f"retrying version {wanted} in {delay:g}s", exc, REFRESH_LOADING_THE_VERSION
            )
            return
        self._refresh_succeeded()
        if not switched:
            return
        logger.info(
            "%s updated: %s version %s (run %s) replaces version %s: %s points at it now; loaded %s",
            self.role,
            model.artifact.name,
            model.artifact.version,
            model.artifact.run_id or "-",
            serving.artifact.version,
            model.artifact.uri,
            loaded.timing(),
        )

    def _waiting_to_retry(self, wanted: str) -> bool:
        """Whether ``wanted`` failed to load and its next attempt is not due yet."""
        failed = self._failed
        return failed is not None and failed.version == wanted and self._clock() < failed.retry_at

    def _retry_later(self, wanted: str) -> float:
        """Record another failed load of ``wanted``; the seconds until the next attempt (doubling)."""
        failed = self._failed
        failures = failed.failures + 1 if failed and failed.version == wanted else 1
        delay: float = min(self._refresh_interval * 2 ** (failures - 1), REFRESH_RETRY_MAX_SECONDS)
        self._failed = FailedVersion(wanted, failures, self._clock() + delay)
        return delay

    def _end(self, serving: ServedModel, exc: ModelLoadError) -> None:
        """The alias is gone: serve nothing, once, and say so once."""
        self.model = None
        self._put_down = True
        self.ended = f"its alias names no version any more ({one_line(exc)})"
        self._refresh_succeeded()  # not a failure to load: nothing is asked to load
        assert self._on_missing is not None
        self._on_missing()
        logger.warning(
            "%s ended: version %s is no longer served, as %s; checking every %gs for the alias to "
            "name a version again",
            self.role,
            serving.artifact.version,
            self.ended,
            self._refresh_interval,
        )

    async def _resume(self) -> None:
        """After the alias was gone: load the version it names once it names one again."""
        self.last_check = time.time()
        try:
            wanted = await asyncio.to_thread(self._probe) if self._probe else None
        except ModelLoadError as exc:
            if exc.missing:
                # Still gone, or gone again after naming a version that did not load: ended, and
                # no longer failing (nothing is asked to load), so CanaryRefreshFailing stops.
                self._refresh_succeeded()
                self.ended = self.ended or f"its alias names no version any more ({one_line(exc)})"
                return
            self.refresh_error = f"next check in {self._refresh_interval:g}s: {one_line(exc)}"
            return
        except Exception as exc:
            self.refresh_error = f"next check in {self._refresh_interval:g}s: {one_line(exc)}"
            return
        if wanted is None or self._waiting_to_retry(wanted):
            return
        try:
            loaded = await asyncio.to_thread(self.load_once)
            self.activate(loaded)
        except Exception as exc:
            delay = self._retry_later(wanted)
            self._metrics.model_refresh(REFRESH_LOADING_THE_VERSION)
            self.refresh_error = f"retrying version {wanted} in {delay:g}s: {one_line(exc)}"
            # The alias names a version again: not ended, but not ready (its share falls back and
            # is counted so, as on a pod that never loaded a canary), and failing to refresh.
            self.ended = None
            logger.warning("%s load failed (%s)", self.role, self.refresh_error)
            return
        self.ended = None
        self._put_down = False
        self._refresh_succeeded()
        model = loaded.model
        logger.info(
            "%s ready again: %s version %s (run %s), which its alias names again; loaded %s",
            self.role,
            model.artifact.name,
            model.artifact.version,
            model.artifact.run_id or "-",
            loaded.timing(),
        )

    def _refresh_succeeded(self) -> None:
        self._failed = None
        self.refresh_error = None
        self._metrics.model_refresh(None)

    def _refresh_failed(self, serving: ServedModel, next_step: str, exc: Exception, step: str) -> None:
        self._metrics.model_refresh(step)
        cause = one_line(exc)
        self.refresh_error = f"{next_step}: {cause}"
        logger.warning(
            "%s refresh failed (still serving version %s; %s): %s",
            self.role,
            serving.artifact.version,
            next_step,
            cause,
        )


def warm_up(model: ServedModel) -> list[dict[str, Any]]:
    """One prediction and one explanation, so the first user request pays no lazy init."""
    example = model.example()
    if not example:
        raise ValueError("the model has no input example to warm up on")
    predictions = model.predict(example)
    model.explain(example)
    return predictions
