"""``rollout``: the canary started, watched, then promoted or rolled back, whatever stops the watch."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from servekit.errors import ServekitError
from servekit.loading import one_line
from servekit.rollout.champion import PromotedMeanwhile, champion_moved
from servekit.rollout.criteria import Criteria
from servekit.rollout.pods import LOAD_TIMEOUT_SECONDS
from servekit.rollout.readings import PrometheusReader
from servekit.rollout.watching import watch
from servekit.spec import ServiceSpec
from servekit.termination import Terminated, silence_output


def rollout(
    spec: ServiceSpec,
    tracking_uri: str,
    version: str,
    reader: PrometheusReader,
    *,
    criteria: Criteria,
    interval: float,
    steps: int,
    ramp: list[float] | None = None,
    load_timeout: float = LOAD_TIMEOUT_SECONDS,
    say: Callable[[str], Any] = print,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Start VERSION as the canary, watch it, and promote or roll it back; True if promoted.

    ``ramp``: the canary's shares, in order: each reading that judged it sound raises it to the
    next, the last holds; None: the pods' own share throughout. ``load_timeout``: seconds the pods
    have to serve VERSION before it is rolled back unjudged.
    """
    from servekit.mlflow_registry import registry_client
    from servekit.training.aliases import current_champion, promote, set_canary

    ramp = ramp or []
    if len(ramp) > steps:
        raise ServekitError(
            400, "ramp_too_long", f"a ramp of {len(ramp)} shares needs as many readings; --steps is {steps}"
        )
    reader.check()  # an unreachable Prometheus, or one without the service's series, moves nothing
    champion = current_champion(registry_client(tracking_uri), spec.name)
    if champion is None:  # a rollback ends the canary on the champion: none, and it could not
        raise ServekitError(
            409,
            "no_champion",
            f"{spec.name} has no champion to roll a canary back to; `mlp promote {spec.name} VERSION` "
            "sets one",
        )
    if champion == version:
        raise ServekitError(409, "already_champion", f"{spec.name} v{version} is the champion already")
    started = False
    try:
        # Inside the try: an interrupt while the registry is being told must end what it was told.
        set_to = set_canary(spec, tracking_uri, version, ramp[0] if ramp else None)
        started = True
        say(set_to)  # an output gone (a closed terminal, tee killed) stops the watch: rolled back
        why = watch(
            spec,
            tracking_uri,
            version,
            reader,
            champion=champion,
            criteria=criteria,
            interval=interval,
            steps=steps,
            ramp=ramp,
            load_timeout=load_timeout,
            say=say,
            sleep=sleep,
            clock=clock,
        )
        if why is None:
            # The last moment it can be seen: promote() would replace whatever champion it finds.
            why = champion_moved(spec, tracking_uri, version, champion, sleep)
        if why is None:
            say(f"{spec.name}: v{version} passed {steps} readings; promoting it")
            promoted = promote(
                spec, tracking_uri, version, decision=f"promoted by mlp rollout: {steps} sound readings"
            )
            _say_quietly(say, promoted)  # promoted: nothing is left to undo if it cannot be said
            return True
    except PromotedMeanwhile:
        # `mlp promote` of this very version while it was watched: done, by hand. The canary alias
        # still names it beside the champion; ending it leaves the pods one model, as a promotion does.
        ended = set_canary(spec, tracking_uri, None)
        _say_quietly(
            say, f"{spec.name}: v{version} was promoted meanwhile (it is the champion now); the rollout ends"
        )
        _say_quietly(say, ended)
        return True
    except (KeyboardInterrupt, Terminated):  # Ctrl-C, kill, a cancelled pipeline: nobody watches
        why = "interrupted before the last reading"
    except Exception as exc:  # whatever stopped the watch, the canary must not stay unwatched
        if started:  # else the registry refused the canary: there is nothing to roll back
            _roll_back(spec, tracking_uri, version, f"stopped by {one_line(exc)}", say)
        raise
    return _roll_back(spec, tracking_uri, version, why, say)


def _roll_back(
    spec: ServiceSpec, tracking_uri: str, version: str, why: str, say: Callable[[str], Any]
) -> bool:
    """End the canary on the champion, then say why. The registry first: a rollback follows an
    interrupt, often the terminal closed or the pipe's reader (``tee``) killed with it, and a
    message that could not be written stopped the rollback that was to come after it."""
    from servekit.training.aliases import set_canary

    try:
        ended = set_canary(spec, tracking_uri, None)
    except Exception as exc:
        _say_quietly(say, f"{spec.name}: rolling back v{version}: {why}")
        # Whoever reads this must know the canary still answers its share, and how to end it.
        cause = exc.message if isinstance(exc, ServekitError) else one_line(exc)
        raise ServekitError(
            503,
            "rollback_failed",
            f"{spec.name}: v{version} is still the canary, answering its share of the requests: "
            f"rolling it back failed ({cause}); end it with `mlp canary {spec.name} --end` "
            "once the registry answers",
        ) from exc
    _say_quietly(say, f"{spec.name}: rolling back v{version}: {why}")
    _say_quietly(say, ended)
    return False


def _say_quietly(say: Callable[[str], Any], message: str) -> None:
    """``say(message)``, unless the output is gone: what the registry was told stands either way.

    With ``print``, an output that failed is pointed at /dev/null (stderr too, where it is the same
    terminal or pipe): otherwise the rest of the exit, ``mlp``'s own last message and Python's
    flush of what the failed write left buffered, raises on it again, and ends in a traceback and
    exit status 120 instead of the rollout's.
    """
    try:
        say(message)
        if say is print:
            sys.stdout.flush()  # a pipe's buffer fails here, not in the flush at exit
    except OSError:
        if say is print:
            silence_output()
