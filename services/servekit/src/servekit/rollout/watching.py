"""The readings of a canary, one an interval from when the pods serve it, each judged as it comes:
a bad one rolls it back at once, a sound one raises the ramp's share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from servekit.errors import ServekitError
from servekit.loading import one_line
from servekit.metrics.names import CANARY
from servekit.rollout.champion import champion_moved
from servekit.rollout.criteria import Criteria, problem, starved, verdict
from servekit.rollout.pods import LOAD_POLL_SECONDS, wait_for_pods
from servekit.rollout.readings import PrometheusReader, Reading
from servekit.spec import ServiceSpec


def watch(
    spec: ServiceSpec,
    tracking_uri: str,
    version: str,
    reader: PrometheusReader,
    *,
    champion: str,
    criteria: Criteria,
    interval: float,
    steps: int,
    ramp: list[float],
    load_timeout: float,
    say: Callable[[str], Any],
    sleep: Callable[[float], Any],
    clock: Callable[[], float],
) -> str | None:
    """The readings of a canary set at ``ramp[0]``: why it must be rolled back, or None to promote it."""
    from servekit.training.aliases import set_canary_share

    not_loaded = wait_for_pods(
        spec,
        version,
        reader,
        timeout=load_timeout,
        poll=min(interval, LOAD_POLL_SECONDS),
        say=say,
        sleep=sleep,
        clock=clock,
    )
    if not_loaded:
        return not_loaded
    started = clock()
    reading: Reading | None = None
    previous: Reading | None = None
    previous_at = started
    stage = 0  # the ramp's share in force
    for step in range(1, steps + 1):
        sleep(interval)
        # Since the pods served it, not before: an earlier canary's answers are not this one's.
        now = clock()
        window = math.ceil(now - started)
        interval_seconds = math.ceil(now - previous_at) if previous is not None else None
        try:
            reading = reader.read(window, interval_seconds)
            serving = reader.serving(version)
        except ServekitError as exc:
            return f"cannot read the metrics: {exc.message}"
        say(f"{spec.name}: rollout of v{version}, reading {step}/{steps}: {reading.line()}")
        moved = champion_moved(spec, tracking_uri, version, champion, sleep)
        if moved:
            return moved
        if serving.other_pods:
            return (
                f"{serving.other_pods:.0f} pod(s) answer the canary's share with another version than "
                f"v{version} (was the canary alias moved during the rollout?): its readings are not "
                f"v{version}'s alone"
            )
        if not serving.version_pods:
            # The canary ended (its alias deleted, every pod's canary put down): the totals since
            # the start stand still, and would pass it on the answers it gave before.
            return (
                f"no pod serves v{version} as the canary any more (was the canary alias deleted? the "
                "pods then log 'canary model ended'): it answers nothing more to judge, and is not "
                "promoted on what it answered before"
            )
        found = problem(reading, criteria)
        if not found and previous is not None:
            # Failures or latency that begin late (a leak, a traffic pattern, a larger share)
            # are diluted in the figures since the start; the last interval's show them at once.
            lately = problem(reading.since(previous), criteria) or starved(reading.since(previous), reading)
            found = f"since the last reading, {lately}" if lately else None
        if found:
            return found
        previous, previous_at = reading, now
        if stage + 1 >= len(ramp) or step == steps:  # at its last share, or judged for the last time
            continue
        if reading.requests[CANARY] < criteria.min_requests:  # not judged: not trusted with more
            say(
                f"{spec.name}: the canary's share stays {ramp[stage]:g} % until it has answered "
                f"{criteria.min_requests} requests"
            )
            continue
        stage += 1
        if ramp[stage] == ramp[stage - 1]:
            continue
        try:
            raised = set_canary_share(spec, tracking_uri, ramp[stage])
        except Exception as exc:  # a ramp stuck part-way is not the rollout asked for
            return f"cannot raise its share to {ramp[stage]:g} %: {one_line(exc)}"
        say(raised)
    assert reading is not None  # steps >= 1
    return verdict(reading, criteria)
