"""``mlp rollout``: a canary that is promoted, or rolled back, on what Prometheus saw.

``mlp canary`` and ``mlp promote`` leave the judgement to a person watching the Canary panels.
``mlp rollout SERVICE VERSION --prometheus URL`` makes it: it points the ``canary`` alias at
VERSION, then every ``--interval`` seconds reads, from the services' own metrics since it began,
the canary's requests, failures and p95 model time beside the stable model's, and whether a pod
stopped the canary; failures and latency are also judged over the last interval alone. It rolls back
(``canary`` -> the champion's version) as soon as the canary is worse by the same measures as
the ``CanaryFailing``, ``CanarySlow`` and ``CanaryStopped`` alerts, and promotes VERSION once
``--steps`` readings passed with at least ``--min-requests`` canary requests. Too little canary
traffic to judge is a roll-back too: nothing is promoted unseen.
With ``--ramp 5,25,50`` the canary answers 5 % of the requests until a reading has judged it
sound on ``--min-requests``, then 25 %, then 50 % (the registry's share, which the pods read at
each refresh), so a bad version meets a small share of the traffic first, as Flagger's
``stepWeights`` do; a reading with too few canary requests to judge holds the share.

The readings start once the pods serve VERSION: until no pod answers the canary's share with
another version (the canary before, which a pod keeps while VERSION does not load), and at least
one answers it with VERSION (``<svc>_canary_model_info{version}``), nothing is counted, since the
answers would be another version's. A VERSION no pod has loaded within ``--load-timeout`` seconds
is rolled back, never judged; and a reading that finds a pod on another canary version (the alias
moved under the rollout), or none serving VERSION any more (the alias deleted: the canary ended),
rolls it back too, as does one whose interval had the router draw the canary for no request while
it drew the stable model often enough that the share could not have missed them all
(``<svc>_variant_draws_total``: requests asked for, pinned or keyed are no draws): the counters since
the start would otherwise stand still, and pass VERSION on answers it gave before it stopped answering.

The champion is read again at every reading and before the promotion (a failed read asked again
once): one moved under the rollout (``mlp promote``, a ``mlp train`` that won) is not overwritten,
and the canary, judged against another version's answers, is ended on it. One moved to VERSION
itself (promoted by hand meanwhile) ends the canary, and the rollout succeeds.

Flagger and Argo Rollouts run the same loop as controllers in the cluster; here it is one
command, run by hand or by a delivery pipeline, against the registry the pods follow.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from servekit import prometheus
from servekit.errors import ServekitError
from servekit.loading import one_line
from servekit.metrics.names import (
    CANARY,
    CANARY_FAILURE_RATIO,
    CANARY_LATENCY_FACTOR,
    STABLE,
    MetricNames,
)
from servekit.spec import ServiceSpec
from servekit.termination import Terminated, silence_output


@dataclass(frozen=True)
class Criteria:
    """When a canary is worse than the stable model, and when there is enough traffic to tell."""

    max_failure_ratio: float = CANARY_FAILURE_RATIO
    latency_factor: float = CANARY_LATENCY_FACTOR
    min_requests: int = 100


#: Seconds ``mlp rollout`` waits for the pods to load the canary before it rolls it back: the pods
#: read the alias every <SVC>_MODEL_REFRESH_SECONDS (30 s by default) and retry a version that
#: would not load after as long, then twice as long, so this is several of their attempts.
LOAD_TIMEOUT_SECONDS = 300.0
#: How often the pods are asked whether they serve the canary yet (at most; ``--interval`` if less).
LOAD_POLL_SECONDS = 5.0
#: How unlikely an interval without one canary request must be, at the share the canary has
#: answered so far, to be taken as the canary no longer answering: a small share on light traffic
#: misses a whole interval by chance (5 % of 20 requests: 36 % of the time).
NO_CANARY_CHANCE = 0.001
#: Seconds before the champion is read once more when the registry did not answer a reading's.
CHAMPION_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class Serving:
    """Which canary versions the pods serve (``<svc>_canary_model_info``), summed over the pods."""

    #: Pods serving the rollout's version, and pods serving another canary version.
    version_pods: float
    other_pods: float
    #: Pods whose canary cannot follow its alias (``<svc>_canary_refresh_failing``).
    failing_pods: float

    @property
    def loaded(self) -> bool:
        """Whether every canary answer now comes from the rollout's version, and some pod gives them."""
        return self.version_pods > 0 and self.other_pods == 0


@dataclass(frozen=True)
class Reading:
    """The two variants since the rollout began, summed over the pods."""

    requests: dict[str, float]
    failures: dict[str, float]
    p95_seconds: dict[str, float | None]
    stopped_pods: float
    not_ready_fallbacks: float
    #: The p95 over the interval since the previous reading, when it was read with this one (a
    #: quantile cannot be subtracted from another, so it is queried over that interval).
    recent_p95_seconds: dict[str, float | None] | None = None
    #: The requests the router drew at random for each variant (``<svc>_variant_draws_total``):
    #: ``requests`` also holds those asked for, pinned or keyed, which are no sign of the share.
    draws: dict[str, float] | None = None

    def since(self, earlier: Reading) -> Reading:
        """The interval between ``earlier`` and this reading (both since the start): the requests
        and failures in it, their p95 if it was read, and the stopped pods of this reading."""

        def minus(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
            return {variant: max(now[variant] - before.get(variant, 0.0), 0.0) for variant in now}

        return Reading(
            requests=minus(self.requests, earlier.requests),
            failures=minus(self.failures, earlier.failures),
            p95_seconds=self.recent_p95_seconds or dict.fromkeys(self.p95_seconds),
            stopped_pods=self.stopped_pods,
            not_ready_fallbacks=max(self.not_ready_fallbacks - earlier.not_ready_fallbacks, 0.0),
            draws=minus(self.draws, earlier.draws or {}) if self.draws is not None else None,
        )

    def failure_ratio(self, variant: str) -> float:
        requests = self.requests[variant]
        return self.failures[variant] / requests if requests else 0.0

    def line(self) -> str:
        def ms(variant: str) -> str:
            p95 = self.p95_seconds[variant]
            return "-" if p95 is None else f"{p95 * 1000:.2f} ms"

        return (
            f"canary {self.requests[CANARY]:,.0f} requests, {self.failure_ratio(CANARY):.2%} failed, "
            f"p95 {ms(CANARY)}; stable {self.requests[STABLE]:,.0f} requests, "
            f"{self.failure_ratio(STABLE):.2%} failed, p95 {ms(STABLE)}"
        )


def problem(reading: Reading, criteria: Criteria) -> str | None:
    """Why the canary must be rolled back now; None while it is not worse."""
    if reading.stopped_pods > 0:
        return f"{reading.stopped_pods:.0f} pod(s) stopped the canary after too many failures"
    if reading.requests[CANARY] < criteria.min_requests:
        return None  # too few to tell a bad model from bad luck
    canary, stable = reading.failure_ratio(CANARY), reading.failure_ratio(STABLE)
    if canary > criteria.max_failure_ratio and canary > 2 * stable:
        return (
            f"{canary:.2%} of the canary's requests failed (limit {criteria.max_failure_ratio:.2%}; "
            f"stable {stable:.2%})"
        )
    canary_p95, stable_p95 = reading.p95_seconds[CANARY], reading.p95_seconds[STABLE]
    if canary_p95 is not None and stable_p95 and canary_p95 > criteria.latency_factor * stable_p95:
        return (
            f"the canary's p95 model time {canary_p95 * 1000:.2f} ms is over {criteria.latency_factor:g}x "
            f"the stable model's {stable_p95 * 1000:.2f} ms"
        )
    return None


def verdict(reading: Reading, criteria: Criteria) -> str | None:
    """After the last reading: why it may not be promoted (None: it may)."""
    found = problem(reading, criteria)
    if found:
        return found
    if reading.requests[CANARY] < criteria.min_requests:
        never = (
            f"; {reading.not_ready_fallbacks:,.0f} requests routed to it were answered by the stable "
            "model because it did not load"
            if reading.not_ready_fallbacks
            else ""
        )
        return (
            f"the canary answered {reading.requests[CANARY]:,.0f} requests, fewer than the "
            f"{criteria.min_requests} needed to judge it{never}"
        )
    return None


def starved(interval: Reading, total: Reading) -> str | None:
    """Why ``interval`` (since the previous reading) shows the canary no longer answering: the
    router drew the stable model for requests, the canary for none, and at the share the canary
    was drawn until then (``total``, since the start) that is too unlikely to be chance. None
    otherwise, and while the canary was never drawn (its share is unknown; the verdict judges that).

    On random draws alone (``Reading.draws``): a prober sending ``X-Model-Variant: stable``, a
    client pinned to the champion's version or keyed traffic whose keys hash to stable all reach
    the stable model whatever the canary's share, and would stop a healthy rollout in a quiet
    interval."""
    if interval.draws is None or total.draws is None:
        return None
    canary, stable = interval.draws[CANARY], interval.draws[STABLE]
    # Under 1: increase() extrapolates each window to its ends, so a counter that stood still
    # can read a fraction of a request over one window more than over the other.
    if canary >= 1 or stable < 1:
        return None
    drawn = total.draws[CANARY] + total.draws[STABLE]
    share = total.draws[CANARY] / drawn if drawn else 0.0
    if share <= 0 or share >= 1 or stable * math.log1p(-share) > math.log(NO_CANARY_CHANCE):
        return None
    return (
        f"the router drew the canary for no request and the stable model for {stable:,.0f}; at the "
        f"{share:.1%} share it was drawn until then, about "
        f"{stable * share / (1 - share):,.0f} would have been its own: it no longer answers its share "
        "(was its alias deleted, or its share set to 0?)"
    )


class PrometheusReader:
    """Reads a service's variant metrics over the last ``window`` seconds from Prometheus's HTTP API."""

    def __init__(self, url: str, service: str, *, match: str = "", timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.names = MetricNames(service)
        self.match = match
        self.timeout = timeout

    def _selector(self, **labels: str) -> str:
        """``{labels}``; a value that starts with ``!`` is matched with ``!=``."""
        matchers = [self.match] if self.match else []
        matchers += [
            f'{key}!="{value[1:]}"' if value.startswith("!") else f'{key}="{value}"'
            for key, value in labels.items()
        ]
        return "{" + ",".join(matchers) + "}"

    def query(self, expr: str, at: float | None = None) -> float | None:
        return prometheus.query(self.url, expr, self.timeout, at)

    def check(self) -> None:
        """Refuses a Prometheus that holds no series of the service's canary counter: a rollout
        would read 0 requests of each variant, and keep the canary on real traffic for every step."""
        counter = self.names.variant_requests_total + self._selector()
        if self.query(f"count({counter})") is not None:
            return
        matching = f" (--match {self.match})" if self.match else ""
        raise ServekitError(
            400,
            "no_canary_series",
            f"Prometheus at {self.url} has no series {counter}{matching}: check --match, that it "
            f"scrapes the {self.names.service} pods, and that they run with "
            f"{self.names.service.upper()}_CANARY_MODEL_URI (without it they count no canary)",
        )

    def serving(self, version: str) -> Serving:
        """How many pods serve ``version`` as their canary, how many another version, and how many
        cannot follow the canary's alias, at one instant."""
        n, at = self.names, time.time()

        def count(expr: str) -> float:
            return self.query(f"count({expr})", at) or 0.0

        return Serving(
            version_pods=count(n.canary_model_info + self._selector(version=version)),
            other_pods=count(n.canary_model_info + self._selector(version=f"!{version}")),
            failing_pods=self.query(f"sum({n.canary_refresh_failing}{self._selector()})", at) or 0.0,
        )

    def read(self, window: int, recent: int | None = None) -> Reading:
        """The last ``window`` seconds; with ``recent``, the p95 over its last ``recent`` too."""
        n, w = self.names, f"[{window}s]"
        # Every query at one instant: a failure ratio divides one query by another, and
        # ``increase()`` extrapolates each to its own evaluation time, so a second between the two
        # would tilt it (the same fix as servekit.bench.observed's).
        at = time.time()

        def total(expr: str) -> float:
            return self.query(f"sum(increase({expr}{w}))", at) or 0.0

        def p95_over(variant: str, seconds: int) -> float | None:
            buckets = f"{n.variant_latency_seconds}_bucket{self._selector(variant=variant)}[{seconds}s]"
            return self.query(f"histogram_quantile(0.95, sum by (le) (increase({buckets})))", at)

        requests, failures, p95 = {}, {}, {}
        for variant in (STABLE, CANARY):
            requests[variant] = total(n.variant_requests_total + self._selector(variant=variant))
            failures[variant] = total(
                n.variant_requests_total + self._selector(variant=variant, result="failed")
            )
            p95[variant] = p95_over(variant, window)
        return Reading(
            requests=requests,
            failures=failures,
            p95_seconds=p95,
            recent_p95_seconds=(
                {variant: p95_over(variant, recent) for variant in (STABLE, CANARY)} if recent else None
            ),
            stopped_pods=self.query(f"sum({n.canary_stopped}{self._selector()})", at) or 0.0,
            not_ready_fallbacks=total(n.canary_fallbacks_total + self._selector(reason="not_ready")),
            draws={
                variant: total(n.variant_draws_total + self._selector(variant=variant))
                for variant in (STABLE, CANARY)
            },
        )


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
        why = _watch(
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
            why = _champion_moved(spec, tracking_uri, version, champion, sleep)
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


def _watch(
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

    not_loaded = _wait_for_pods(
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
        moved = _champion_moved(spec, tracking_uri, version, champion, sleep)
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


def _wait_for_pods(
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


class PromotedMeanwhile(Exception):  # noqa: N818 -- an outcome, not an error
    """The champion became the rollout's own version (``mlp promote``, as ``set_canary`` invites,
    while the rollout watched): there is nothing left to judge, and nothing to roll back."""


def _champion_now(tracking_uri: str, name: str) -> str | None:
    """The champion's version; None if ``name`` has no champion alias. Raises when the registry
    cannot be read: unlike ``aliases.current_champion``, a failed read is not a deleted alias."""
    from mlflow.exceptions import MlflowException

    from servekit.loading import NOT_IN_THE_REGISTRY
    from servekit.mlflow_registry import registry_client
    from servekit.training.aliases import CHAMPION

    try:
        return str(registry_client(tracking_uri).get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if exc.error_code in NOT_IN_THE_REGISTRY:
            return None
        raise


def _champion_moved(
    spec: ServiceSpec,
    tracking_uri: str,
    version: str,
    champion: str,
    sleep: Callable[[float], Any] = time.sleep,
) -> str | None:
    """Why the rollout must stop because the champion is no longer ``champion`` (None: it is).

    Moved by ``mlp promote`` or a ``mlp train`` that won: the stable answers the readings weighed
    VERSION against were another version's, and promoting VERSION would replace the champion
    someone chose meanwhile without a word. The rollback then ends the canary on the new one.
    Moved to VERSION itself: ``PromotedMeanwhile``. A registry that cannot be read is asked again
    once, ``CHAMPION_RETRY_SECONDS`` later: one failed request does not end a sound rollout.
    """
    for attempt in range(2):
        try:
            now = _champion_now(tracking_uri, spec.name)
            break
        except Exception as exc:
            if attempt:
                cause = exc.message if isinstance(exc, ServekitError) else one_line(exc)
                return f"cannot read the champion (asked twice): {cause}"
            sleep(CHAMPION_RETRY_SECONDS)
    if now == champion:
        return None
    if now == version:
        raise PromotedMeanwhile
    if now is None:
        return (
            f"the champion's alias was deleted (it was v{champion} when the rollout began): v{version} "
            f"has no champion to be judged against or rolled back to; `mlp promote {spec.name} VERSION` "
            f"sets one, then `mlp rollout {spec.name} {version}` judges it anew"
        )
    return (
        f"the champion was v{champion} when the rollout began and is now v{now}: v{version} was judged "
        f"against v{champion}'s answers, and promoting it would replace the champion chosen since; "
        f"`mlp rollout {spec.name} {version}` judges it against the champion anew"
    )


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
