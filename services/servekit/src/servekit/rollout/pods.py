"""Waiting for the pods to serve the canary's version: its answers count only from then."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from servekit.errors import ServekitError
from servekit.rollout.readings import PrometheusReader
from servekit.spec import ServiceSpec

#: Seconds ``mlp rollout`` waits for the pods to load the canary before it rolls it back: the pods
#: read the alias every <SVC>_MODEL_REFRESH_SECONDS (30 s by default) and retry a version that
#: would not load after as long, then twice as long, so this is several of their attempts.
LOAD_TIMEOUT_SECONDS = 300.0
#: How often the pods are asked whether they serve the canary yet (at most; ``--interval`` if less).
LOAD_POLL_SECONDS = 5.0


def wait_for_pods(
    spec: ServiceSpec,
    version: str,
    reader: PrometheusReader,
    *,
    timeout: float,
    poll: float,
    say: Callable[[str], Any],
    sleep: Callable[[float], Any],
    clock: Callable[[], float],
) -> str | None:
    """Wait until the pods serve VERSION as the canary, and no other version; why not, after ``timeout``."""
    deadline = clock() + timeout
    while True:
        try:
            serving = reader.serving(version)
        except ServekitError as exc:
            return f"cannot read the metrics: {exc.message}"
        if serving.loaded:
            say(
                f"{spec.name}: {serving.version_pods:.0f} pod(s) serve v{version} as the canary; "
                "its answers count from now"
            )
            return None
        if clock() >= deadline:
            break
        sleep(poll)
    where = (
        f"{serving.other_pods:.0f} pod(s) still answer the canary's share with the version they had"
        if serving.other_pods
        else "no pod serves a canary"
    )
    loaded = f", {serving.version_pods:.0f} serve it" if serving.version_pods else ""
    failing = (
        f", {serving.failing_pods:.0f} report that their canary cannot follow its alias"
        if serving.failing_pods
        else ""
    )
    return (
        f"the pods could not load it within {timeout:g} s ({where}{loaded}{failing}); `GET /model` "
        "on a pod says why (canary.refresh.error, or canary.error where no canary loaded), and so "
        "does its log ('canary model refresh failed' or 'canary model load failed')"
    )
