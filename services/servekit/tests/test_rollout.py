"""``mlp rollout``'s judgement: when a canary is worse, and when there is enough traffic to tell."""

from __future__ import annotations

import dataclasses
import time
import types
from collections.abc import Callable
from typing import Any

import pytest
from toy import TOY

from servekit import prometheus
from servekit.errors import ServekitError
from servekit.rollout.criteria import Criteria, problem, starved, verdict
from servekit.rollout.readings import PrometheusReader, Reading, Serving
from servekit.rollout.run import rollout
from servekit.termination import Terminated

CRITERIA = Criteria(max_failure_ratio=0.01, latency_factor=1.5, min_requests=100)


def reading(
    canary: tuple[float, float, float | None] = (200, 0, 0.001),
    stable: tuple[float, float, float | None] = (1800, 0, 0.001),
    *,
    stopped: float = 0,
    not_ready: float = 0,
    draws: tuple[float, float] | None = None,
) -> Reading:
    """(requests, failures, p95 seconds) of each variant; ``draws`` (canary, stable): the requests
    drawn at random, by default all of them."""
    canary_draws, stable_draws = draws or (canary[0], stable[0])
    return Reading(
        requests={"canary": canary[0], "stable": stable[0]},
        failures={"canary": canary[1], "stable": stable[1]},
        p95_seconds={"canary": canary[2], "stable": stable[2]},
        stopped_pods=stopped,
        not_ready_fallbacks=not_ready,
        draws={"canary": canary_draws, "stable": stable_draws},
    )


def test_a_canary_as_good_as_the_stable_model_may_be_promoted() -> None:
    good = reading(canary=(200, 1, 0.0012), stable=(1800, 9, 0.001))  # 0.5 % failed, 1.2x slower
    assert problem(good, CRITERIA) is None
    assert verdict(good, CRITERIA) is None


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            reading(canary=(200, 6, 0.001)),
            "3.00% of the canary's requests failed (limit 1.00%; stable 0.00%)",
        ),
        (
            reading(canary=(200, 0, 0.004)),
            "the canary's p95 model time 4.00 ms is over 1.5x the stable model's 1.00 ms",
        ),
        (reading(stopped=2), "2 pod(s) stopped the canary after too many failures"),
    ],
    ids=["failures", "latency", "stopped"],
)
def test_a_worse_canary_is_rolled_back_at_once(case: Reading, expected: str) -> None:
    assert problem(case, CRITERIA) == expected
    assert verdict(case, CRITERIA) == expected


def test_failures_the_stable_model_shares_are_not_the_canarys() -> None:
    # 3 % each: a shared cause (the inputs, the registry) that the SLO alerts cover.
    assert problem(reading(canary=(200, 6, 0.001), stable=(1800, 54, 0.001)), CRITERIA) is None


def test_too_little_traffic_is_not_judged_until_the_end_and_then_not_promoted() -> None:
    few = reading(canary=(50, 5, 0.01))  # 10 % failed and 10x slower, but 50 requests
    assert problem(few, CRITERIA) is None
    assert verdict(few, CRITERIA) == "the canary answered 50 requests, fewer than the 100 needed to judge it"
    never = reading(canary=(0, 0, None), not_ready=340)
    assert verdict(never, CRITERIA) == (
        "the canary answered 0 requests, fewer than the 100 needed to judge it; 340 requests routed "
        "to it were answered by the stable model because it did not load"
    )


def test_a_reading_says_both_variants_in_one_line() -> None:
    line = reading(canary=(200, 1, 0.0012), stable=(1800, 0, None)).line()
    assert line == (
        "canary 200 requests, 0.50% failed, p95 1.20 ms; stable 1,800 requests, 0.00% failed, p95 -"
    )


#: The pods serve the rollout's version, and no other, as their canary.
SERVED = Serving(version_pods=2, other_pods=0, failing_pods=0)


class Readings:
    """A reader whose readings are given in advance; an exception in the list is raised instead.

    ``serving``: what the pods serve at each ask, in order, the last holding (default: the version).
    """

    def __init__(self, *readings: Reading | BaseException, serving: list[Serving] | None = None) -> None:
        self.readings = list(readings)
        self.served = list(serving or [SERVED])
        self.windows: list[int] = []

    def serving(self, version: str) -> Serving:
        return self.served.pop(0) if len(self.served) > 1 else self.served[0]

    def query(self, expr: str) -> float:
        return 1.0

    def check(self) -> None:
        pass

    def read(self, window: int, recent: int | None = None) -> Reading:
        self.windows.append(window)
        found = self.readings.pop(0)
        if isinstance(found, BaseException):
            raise found
        return found


class ChampionRegistry:
    """An MLflow client whose champion is ``aliases.current_champion``'s (None: no alias, as
    MLflow says it), so the tests set it in one place whichever way the rollout reads it."""

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from servekit.training import aliases

        version = aliases.current_champion(self, name)
        if version is None:
            raise MlflowException(f"Registered model alias {alias} not found.", INVALID_PARAMETER_VALUE)
        return types.SimpleNamespace(version=version)


@pytest.fixture
def registry_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The registry calls a rollout makes, recorded (the real ones: tests/integration/test_rollout.py)."""
    from servekit import mlflow_registry
    from servekit.training import aliases

    calls: list[str] = []
    monkeypatch.setattr(mlflow_registry, "registry_client", lambda uri: ChampionRegistry())
    monkeypatch.setattr(aliases, "current_champion", lambda client, name: "1")
    monkeypatch.setattr(
        aliases,
        "set_canary",
        lambda spec, uri, version, percent=None: (
            calls.append(f"canary {version}" + ("" if percent is None else f" at {percent:g}%")) or ""
        ),
    )
    monkeypatch.setattr(
        aliases, "set_canary_share", lambda spec, uri, percent: calls.append(f"share {percent:g}%") or ""
    )
    monkeypatch.setattr(
        aliases, "promote", lambda spec, uri, version, decision: calls.append(f"promote {version}") or ""
    )
    return calls


def run(
    reader: Readings | PrometheusReader,
    steps: int = 2,
    ramp: list[float] | None = None,
    sleep: Callable[[float], object] = lambda _: None,
    said: list[str] | None = None,
) -> tuple[bool, list[str]]:
    said = [] if said is None else said
    promoted = rollout(
        TOY, "http://registry", "2", reader, criteria=CRITERIA, interval=0, steps=steps, ramp=ramp,
        say=said.append, sleep=sleep,
    )  # fmt: skip
    return promoted, said


@pytest.mark.parametrize(
    ("failure", "why"),
    [
        (ServekitError(502, "prometheus_unreachable", "Prometheus at x: refused"), "cannot read the metrics"),
        (KeyboardInterrupt(), "interrupted before the last reading"),
        (Terminated(), "interrupted before the last reading"),
    ],
    ids=["metrics", "interrupted", "terminated"],
)
def test_an_unwatched_canary_is_rolled_back(
    registry_calls: list[str], failure: BaseException, why: str
) -> None:
    promoted, said = run(Readings(reading(), failure))
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]  # started, then ended on the champion
    assert f"toy: rolling back v2: {why}" in said[-2]


def test_sound_readings_promote_and_a_bad_one_rolls_back_at_once(registry_calls: list[str]) -> None:
    assert run(Readings(reading(), reading()))[0] is True
    assert registry_calls == ["canary 2", "promote 2"]
    registry_calls.clear()
    promoted, said = run(Readings(reading(canary=(200, 9, 0.001)), reading()), steps=2)
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]
    assert sum("reading" in line for line in said) == 1  # no second reading


def test_a_reading_evaluates_every_query_at_one_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure ratio divides two queries: evaluated a second apart, ``increase()`` would
    extrapolate each to a different end and tilt it."""
    asked: list[tuple[str, float | None]] = []

    def answer(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> float:
        asked.append((expr, at))
        return 1.0

    monkeypatch.setattr(prometheus, "query", answer)
    reader = PrometheusReader("http://prometheus:9090", "toy", match='namespace="ml"')
    first = reader.read(60)
    instants = {at for _, at in asked}
    # Each variant's requests, failures, p95 and random draws; stopped pods; fallbacks.
    assert len(asked) == 10
    assert 'sum(increase(toy_variant_draws_total{namespace="ml",variant="canary"}[60s]))' in dict(asked)
    assert len(instants) == 1
    assert None not in instants
    assert all("[60s]" in expr and 'namespace="ml"' in expr for expr, _ in asked if "increase" in expr)
    assert abs(instants.pop() - time.time()) < 60  # now: the window ends at the reading
    assert first.failure_ratio("canary") == 1.0


def test_a_ramp_raises_the_share_after_each_passed_reading_and_the_last_holds(
    registry_calls: list[str],
) -> None:
    assert run(Readings(*[reading()] * 4), steps=4, ramp=[5, 25, 25, 50])[0] is True
    # 25 twice: one reading more at 25 %, and nothing to set between them.
    assert registry_calls == ["canary 2 at 5%", "share 25%", "share 50%", "promote 2"]
    registry_calls.clear()
    assert run(Readings(*[reading()] * 3), steps=3, ramp=[10, 50])[0] is True
    assert registry_calls == ["canary 2 at 10%", "share 50%", "promote 2"]  # 50 % for the last two


def test_a_ramp_holds_its_share_until_a_reading_could_judge_the_canary(registry_calls: list[str]) -> None:
    few = reading(canary=(40, 0, 0.001))  # under CRITERIA.min_requests
    promoted, said = run(Readings(few, reading(), reading()), steps=3, ramp=[5, 25, 50])
    assert promoted is True
    # Held at 5 % after the first reading, raised after the second; the third was the last.
    assert registry_calls == ["canary 2 at 5%", "share 25%", "promote 2"]
    assert "toy: the canary's share stays 5 % until it has answered 100 requests" in said


def test_a_ramp_stops_where_the_canary_is_found_worse(registry_calls: list[str]) -> None:
    bad = reading(canary=(200, 9, 0.001))
    assert run(Readings(reading(), bad, reading()), steps=3, ramp=[5, 25, 50])[0] is False
    # Rolled back at 25 %: never sent 50 %; ending the canary also clears its share.
    assert registry_calls == ["canary 2 at 5%", "share 25%", "canary None"]


def test_a_ramp_longer_than_the_readings_is_refused_before_anything_moves(registry_calls: list[str]) -> None:
    with pytest.raises(ServekitError, match="a ramp of 3 shares needs as many readings; --steps is 2"):
        run(Readings(reading(), reading()), steps=2, ramp=[5, 25, 50])
    assert registry_calls == []


def test_a_ramp_that_cannot_be_raised_is_rolled_back(
    registry_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from servekit.training import aliases

    def refused(spec: object, uri: str, percent: float) -> str:
        raise RuntimeError("registry refused the tag")

    monkeypatch.setattr(aliases, "set_canary_share", refused)
    promoted, said = run(Readings(reading(), reading()), steps=2, ramp=[5, 50])
    assert promoted is False
    assert registry_calls == ["canary 2 at 5%", "canary None"]
    assert (
        "rolling back v2: cannot raise its share to 50 %: RuntimeError: registry refused the tag" in said[-2]
    )


def test_failures_that_begin_late_are_judged_on_the_last_interval(registry_calls: list[str]) -> None:
    """Since the start, 5 failures in 1,200 requests are 0.42 %, under the limit; they all came in
    the last 200, where they are 2.5 %."""
    sound, late = reading(canary=(1000, 0, 0.001)), reading(canary=(1200, 5, 0.001))
    assert problem(late, CRITERIA) is None
    promoted, said = run(Readings(sound, late, late), steps=3)
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]
    assert (
        "toy: rolling back v2: since the last reading, 2.50% of the canary's requests failed "
        "(limit 1.00%; stable 0.00%)"
    ) in said


def test_an_interval_is_judged_only_on_enough_of_its_own_requests(registry_calls: list[str]) -> None:
    # 2 failures in the last 20 requests: 10 %, but 20 requests are too few to tell.
    sound, then = reading(canary=(1000, 0, 0.001)), reading(canary=(1020, 2, 0.001))
    assert run(Readings(sound, then), steps=2)[0] is True
    assert sound.since(sound).requests == {"canary": 0.0, "stable": 0.0}
    assert then.since(sound).p95_seconds == {"canary": None, "stable": None}  # no quantile of a difference


def test_latency_that_begins_late_is_judged_on_the_last_interval(registry_calls: list[str]) -> None:
    """Since the start the canary's p95 is 1.2 ms against 1 ms; over the last interval, 3 ms."""
    sound = reading(canary=(1000, 0, 0.0012))
    slow = dataclasses.replace(
        reading(canary=(1200, 0, 0.0012)), recent_p95_seconds={"canary": 0.003, "stable": 0.001}
    )
    assert problem(slow, CRITERIA) is None
    promoted, said = run(Readings(sound, slow), steps=2)
    assert promoted is False
    assert (
        "toy: rolling back v2: since the last reading, the canary's p95 model time 3.00 ms is over "
        "1.5x the stable model's 1.00 ms"
    ) in said


def test_a_reading_after_the_first_also_reads_the_p95_of_its_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def answer(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> float:
        asked.append(expr)
        return 0.002

    monkeypatch.setattr(prometheus, "query", answer)
    reader = PrometheusReader("http://prometheus:9090", "toy")
    assert reader.read(120).recent_p95_seconds is None
    assert len(asked) == 10
    asked.clear()
    latest = reader.read(120, 61)
    assert latest.recent_p95_seconds == {"stable": 0.002, "canary": 0.002}
    over_interval = [expr for expr in asked if "[61s]" in expr]
    assert len(over_interval) == 2
    assert all(expr.startswith("histogram_quantile(0.95") for expr in over_interval)


def test_an_error_after_the_canary_was_set_rolls_it_back_and_is_raised(registry_calls: list[str]) -> None:
    """Not only Prometheus's failures and interrupts: a reading that raised anything else left the
    canary answering real traffic with nobody watching it."""
    said: list[str] = []
    with pytest.raises(ValueError, match="no reading"):
        run(Readings(reading(), ValueError("no reading")), said=said)
    assert registry_calls == ["canary 2", "canary None"]
    assert "toy: rolling back v2: stopped by ValueError: no reading" in said


def test_a_sleep_that_raises_rolls_the_canary_back(registry_calls: list[str]) -> None:
    def sleep(seconds: float) -> None:
        raise ValueError("sleep length must be non-negative")

    with pytest.raises(ValueError, match="non-negative"):
        run(Readings(reading()), sleep=sleep)
    assert registry_calls == ["canary 2", "canary None"]


def test_a_promotion_that_fails_rolls_the_canary_back(
    registry_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from servekit.training import aliases

    def refused(spec: object, uri: str, version: str, decision: str) -> str:
        raise ServekitError(503, "registry_unavailable", "no MLflow tracking server answers")

    monkeypatch.setattr(aliases, "promote", refused)
    with pytest.raises(ServekitError, match="no MLflow tracking server answers"):
        run(Readings(reading(), reading()))
    assert registry_calls == ["canary 2", "canary None"]


def test_a_malformed_answer_after_the_first_rolls_the_canary_back(
    registry_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first query was answered soundly, a later one without its value: that was a KeyError,
    printed as ``mlp: 'value'`` with the canary left set."""
    answers = [[{"metric": {}, "value": [1, "1"]}]]

    def samples(
        url: str, expr: str, timeout: float = 10.0, at: float | None = None
    ) -> list[dict[str, object]]:
        return answers.pop(0) if answers else [{"metric": {}}]

    monkeypatch.setattr(prometheus, "samples", samples)
    promoted, said = run(PrometheusReader("http://prometheus:9090", "toy"))
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]
    assert said[-2] == (
        "toy: rolling back v2: cannot read the metrics: Prometheus at http://prometheus:9090: "
        "a sample without a value"
    )


def test_a_service_without_a_champion_is_refused_before_anything_moves(
    registry_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollback ends the canary on the champion: without one the canary could only stay."""
    from servekit.training import aliases

    monkeypatch.setattr(aliases, "current_champion", lambda client, name: None)
    with pytest.raises(ServekitError) as error:
        run(Readings(reading(), reading()))
    assert error.value.status_code == 409
    assert error.value.message == (
        "toy has no champion to roll a canary back to; `mlp promote toy VERSION` sets one"
    )
    assert registry_calls == []


@pytest.mark.parametrize("match", ["", 'namespace="ml"'])
def test_a_prometheus_without_the_services_series_is_refused_before_anything_moves(
    registry_calls: list[str], monkeypatch: pytest.MonkeyPatch, match: str
) -> None:
    """``vector(1)`` proved Prometheus answers, not that it sees the service: with a --match that
    selects nothing the canary kept real traffic for every reading, judged on 0 requests."""
    asked: list[str] = []

    def nothing(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> None:
        asked.append(expr)

    monkeypatch.setattr(prometheus, "query", nothing)
    with pytest.raises(ServekitError) as error:
        run(PrometheusReader("http://prometheus:9090", "toy", match=match))
    assert error.value.status_code == 400
    counter = f"toy_variant_requests_total{{{match}}}"
    assert asked == [f"count({counter})"]
    assert error.value.message.startswith(f"Prometheus at http://prometheus:9090 has no series {counter}")
    assert ('(--match namespace="ml")' in error.value.message) == bool(match)
    assert "TOY_CANARY_MODEL_URI" in error.value.message
    assert registry_calls == []


@pytest.mark.parametrize(
    "failure", [ServekitError(502, "prometheus_unreachable", "refused"), KeyboardInterrupt()]
)
def test_a_rollback_that_fails_says_the_canary_is_still_set_and_how_to_end_it(
    registry_calls: list[str], monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    from servekit.training import aliases

    def set_canary(spec: object, uri: str, version: str | None, percent: float | None = None) -> str:
        if version is None:
            raise ServekitError(503, "registry_unavailable", "no MLflow tracking server answers")
        registry_calls.append(f"canary {version}")
        return ""

    monkeypatch.setattr(aliases, "set_canary", set_canary)
    with pytest.raises(ServekitError) as raised:
        run(Readings(reading(), failure))
    assert raised.value.status_code == 503  # mlp exits 1: the registry may answer again
    assert raised.value.message == (
        "toy: v2 is still the canary, answering its share of the requests: rolling it back failed "
        "(no MLflow tracking server answers); end it with `mlp canary toy --end` once "
        "the registry answers"
    )
    assert registry_calls == ["canary 2"]


class Clock:
    """A monotonic clock that only a sleep moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run_timed(
    reader: Readings, *, steps: int = 2, interval: float = 10, load_timeout: float = 60
) -> tuple[bool, list[str], Clock]:
    clock, said = Clock(), []
    promoted = rollout(
        TOY, "http://registry", "2", reader, criteria=CRITERIA, interval=interval, steps=steps,
        load_timeout=load_timeout, say=said.append, sleep=clock.sleep, clock=clock,
    )  # fmt: skip
    return promoted, said, clock


def test_readings_count_only_once_the_pods_serve_the_version_and_no_other(registry_calls: list[str]) -> None:
    """A pod keeps its canary while the new version does not load: answers counted then were the
    earlier canary's, and promoted a version no pod had loaded."""
    still_old = Serving(version_pods=0, other_pods=2, failing_pods=0)
    half = Serving(version_pods=1, other_pods=1, failing_pods=0)
    reader = Readings(reading(), reading(), serving=[still_old, still_old, half, SERVED])
    promoted, said, _ = run_timed(reader)
    assert promoted is True
    assert registry_calls == ["canary 2", "promote 2"]
    assert "toy: 2 pod(s) serve v2 as the canary; its answers count from now" in said
    # Three 5-s waits for the pods, then each window starts when they served it, not at the alias.
    assert reader.windows == [10, 20]


def test_a_version_the_pods_cannot_load_is_rolled_back_unjudged(registry_calls: list[str]) -> None:
    """The pods answer the canary's share with the version they had, and say their refresh fails."""
    stuck = Serving(version_pods=0, other_pods=3, failing_pods=3)
    reader = Readings(reading(), reading(), serving=[stuck])
    promoted, said, clock = run_timed(reader, load_timeout=60)
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]
    assert reader.windows == []  # never read: nothing of v2's to judge
    assert clock.now == 1060  # waited load_timeout, polling every 5 s
    assert said[-2] == (
        "toy: rolling back v2: the pods could not load it within 60 s (3 pod(s) still answer the "
        "canary's share with the version they had, 3 report that their canary cannot follow its "
        "alias); `GET /model` on a pod says why (canary.refresh.error, or canary.error where no "
        "canary loaded), and so does its log ('canary model refresh failed' or 'canary model load "
        "failed')"
    )
    registry_calls.clear()
    fresh = Readings(reading(), serving=[Serving(version_pods=0, other_pods=0, failing_pods=0)])
    promoted, said, _ = run_timed(fresh, load_timeout=12)
    assert promoted is False
    assert "the pods could not load it within 12 s (no pod serves a canary); `GET /model`" in said[-2]


def test_a_reading_that_finds_another_canary_version_rolls_back(registry_calls: list[str]) -> None:
    moved = Serving(version_pods=1, other_pods=1, failing_pods=0)
    reader = Readings(reading(), reading(), serving=[SERVED, SERVED, moved])
    promoted, said, _ = run_timed(reader)
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]
    assert said[-2] == (
        "toy: rolling back v2: 1 pod(s) answer the canary's share with another version than v2 (was "
        "the canary alias moved during the rollout?): its readings are not v2's alone"
    )


def test_the_pods_serving_the_version_are_read_from_the_canary_model_info(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, float | None]] = []
    answers = {
        'count(toy_canary_model_info{namespace="ml",version="4"})': 1.0,
        'count(toy_canary_model_info{namespace="ml",version!="4"})': 2.0,
        'sum(toy_canary_refresh_failing{namespace="ml"})': 2.0,
    }

    def answer(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> float | None:
        asked.append((expr, at))
        return answers.get(expr)

    monkeypatch.setattr(prometheus, "query", answer)
    serving = PrometheusReader("http://prometheus:9090", "toy", match='namespace="ml"').serving("4")
    assert serving == Serving(version_pods=1, other_pods=2, failing_pods=2)
    assert not serving.loaded
    assert {expr for expr, _ in asked} == set(answers)
    assert len({at for _, at in asked}) == 1  # one instant


class GoneOutput:
    """A ``say`` whose output goes away after ``lines`` lines: the terminal closed, ``tee`` killed."""

    def __init__(self, lines: int, error: OSError) -> None:
        self.lines, self.error = lines, error
        self.said: list[str] = []

    def __call__(self, line: str) -> None:
        if len(self.said) >= self.lines:
            raise self.error
        self.said.append(line)


@pytest.mark.parametrize(
    "error", [BrokenPipeError(32, "Broken pipe"), OSError(5, "Input/output error")], ids=["pipe", "tty"]
)
@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), Terminated()], ids=["ctrl-c", "signal"])
def test_an_interrupted_rollout_whose_output_is_gone_still_rolls_back(
    registry_calls: list[str], error: OSError, interrupt: BaseException
) -> None:
    """The message came first and raised: the canary kept its share, and mlp ended in a traceback."""
    say = GoneOutput(3, error)  # started, pods serve it, one reading; interrupted at the second
    promoted = rollout(
        TOY, "http://registry", "2", Readings(reading(), interrupt), criteria=CRITERIA, interval=0,
        steps=2, say=say, sleep=lambda _: None,
    )  # fmt: skip
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]


def test_an_output_gone_at_the_start_rolls_back_and_is_raised(registry_calls: list[str]) -> None:
    """The first line, after the canary was set, raised outside the watch: nothing rolled it back."""
    with pytest.raises(BrokenPipeError):
        rollout(
            TOY, "http://registry", "2", Readings(reading(), reading()), criteria=CRITERIA,
            interval=0, steps=2, say=GoneOutput(0, BrokenPipeError(32, "Broken pipe")),
            sleep=lambda _: None,
        )  # fmt: skip
    assert registry_calls == ["canary 2", "canary None"]


def test_an_output_gone_after_the_promotion_does_not_roll_it_back(registry_calls: list[str]) -> None:
    """The promotion is done: a rollback then said 'rolling back' over a champion."""
    say = GoneOutput(4, BrokenPipeError(32, "Broken pipe"))  # ... one reading, "promoting it"
    promoted = rollout(
        TOY, "http://registry", "2", Readings(reading()), criteria=CRITERIA, interval=0, steps=1,
        say=say, sleep=lambda _: None,
    )  # fmt: skip
    assert say.said[-1].startswith("toy: v2 passed 1 readings; promoting it")
    assert promoted is True
    assert registry_calls == ["canary 2", "promote 2"]


def test_a_share_raised_but_not_said_is_rolled_back_as_an_output_gone(
    registry_calls: list[str],
) -> None:
    say = GoneOutput(3, BrokenPipeError(32, "Broken pipe"))  # started, pods serve it, one reading
    with pytest.raises(BrokenPipeError):
        rollout(
            TOY, "http://registry", "2", Readings(reading(), reading()), criteria=CRITERIA,
            interval=0, steps=2, ramp=[5, 50], say=say, sleep=lambda _: None,
        )  # fmt: skip
    assert registry_calls == ["canary 2 at 5%", "share 50%", "canary None"]


def test_a_canary_no_pod_serves_any_more_is_not_promoted_on_its_earlier_answers(
    registry_calls: list[str],
) -> None:
    """Its alias deleted after the first reading (how a canary is abandoned): the pods put it down,
    and the totals since the start, read again and again unchanged, passed it."""
    ended = Serving(version_pods=0, other_pods=0, failing_pods=0)
    # The pods serve it when the readings begin and at the first; none does at the second.
    reader = Readings(*[reading()] * 5, serving=[SERVED, SERVED, ended])
    promoted, said, _ = run_timed(reader, steps=5)
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]
    assert sum("reading" in line for line in said) == 2
    assert said[-2] == (
        "toy: rolling back v2: no pod serves v2 as the canary any more (was the canary alias deleted? "
        "the pods then log 'canary model ended'): it answers nothing more to judge, and is not "
        "promoted on what it answered before"
    )


def test_an_interval_without_a_canary_request_while_the_stable_model_answers_is_a_problem(
    registry_calls: list[str],
) -> None:
    """The canary answered 10 % so far; 600 stable requests since, and none of its own, is no
    chance (0.9^600), whatever kept its share from it."""
    first, still = reading(canary=(200, 0, 0.001)), reading(canary=(200, 0, 0.001), stable=(2400, 0, 0.001))
    promoted, said = run(Readings(first, still, still), steps=3)
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]
    assert said[-2] == (
        "toy: rolling back v2: since the last reading, the router drew the canary for no request and "
        "the stable model for 600; at the 7.7% share it was drawn until then, about 50 would have "
        "been its own: it no longer answers its share (was its alias deleted, or its share set to 0?)"
    )


def test_stable_requests_that_were_not_drawn_do_not_starve_the_canary(registry_calls: list[str]) -> None:
    """A quiet interval in which only a prober sent requests (``X-Model-Variant: stable``, a URL
    pinned to the champion's version, keys that hash to stable): 600 stable answers, none drawn.
    They stopped a healthy rollout; the draws alone are the share's."""
    first = reading(canary=(200, 0, 0.001), draws=(200, 1800))
    quiet = reading(canary=(200, 0, 0.001), stable=(2400, 0, 0.001), draws=(200, 1800))
    assert starved(quiet.since(first), quiet) is None
    promoted, _ = run(Readings(first, quiet, quiet), steps=3)
    assert promoted is True
    assert registry_calls == ["canary 2", "promote 2"]
    # The same interval with those 600 drawn is the canary gone.
    drawn = reading(canary=(200, 0, 0.001), stable=(2400, 0, 0.001), draws=(200, 2400))
    assert starved(drawn.since(first), drawn) is not None


def test_an_interval_without_a_canary_request_by_chance_is_not_a_problem(registry_calls: list[str]) -> None:
    """A 4 % share on light traffic misses 20 requests 44 % of the time; and an interval with no
    traffic at all, or a canary that answered nothing yet (its share unknown), says nothing."""
    from servekit.rollout.criteria import starved

    light, quiet = (
        reading(canary=(5, 0, 0.001), stable=(95, 0, 0.001)),
        reading(canary=(5, 0, 0.001), stable=(115, 0, 0.001)),
    )
    assert starved(quiet.since(light), quiet) is None
    assert starved(light.since(light), light) is None
    never = reading(canary=(0, 0, None), stable=(5000, 0, 0.001))
    assert starved(never.since(reading(canary=(0, 0, None))), never) is None
    # A fraction of a request is increase()'s extrapolation over two windows, not a request.
    drift = reading(canary=(200.4, 0, 0.001), stable=(2400, 0, 0.001))
    assert starved(drift.since(reading()), drift) is not None
    assert run(Readings(*[light, quiet, quiet]), steps=3)[0] is False  # judged at the end: too few
    assert registry_calls == ["canary 2", "canary None"]


@pytest.fixture
def champions(monkeypatch: pytest.MonkeyPatch, registry_calls: list[str]) -> list[str | None]:
    """The champion the registry names at each ask, in order, the last holding."""
    from servekit.training import aliases

    answers: list[str | None] = ["1"]
    monkeypatch.setattr(
        aliases, "current_champion", lambda client, name: answers.pop(0) if len(answers) > 1 else answers[0]
    )
    return answers


def test_a_champion_moved_during_the_rollout_stops_it_without_promoting(
    registry_calls: list[str], champions: list[str | None]
) -> None:
    """``mlp promote toy 3`` while v2 was judged against v1: it was promoted over v3, silently."""
    champions[:] = ["1", "1", "3"]  # at the start, the first reading, then the second
    promoted, said = run(Readings(*[reading()] * 3), steps=3)
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]  # ended on the new champion by set_canary
    assert said[-2] == (
        "toy: rolling back v2: the champion was v1 when the rollout began and is now v3: v2 was judged "
        "against v1's answers, and promoting it would replace the champion chosen since; "
        "`mlp rollout toy 2` judges it against the champion anew"
    )
    assert sum("reading" in line for line in said) == 2


@pytest.mark.parametrize("then", ["3", None], ids=["promoted", "alias-deleted"])
def test_a_champion_moved_after_the_last_reading_is_not_replaced(
    registry_calls: list[str], champions: list[str | None], then: str | None
) -> None:
    champions[:] = ["1", "1", "1", then]  # at the start, both readings; then just before promoting
    promoted, said = run(Readings(reading(), reading()), steps=2)
    assert promoted is False
    assert "promote 2" not in registry_calls
    became = (
        "the champion was v1 when the rollout began and is now v3"
        if then
        else "the champion's alias was deleted (it was v1 when the rollout began)"
    )
    assert said[-2].startswith(f"toy: rolling back v2: {became}")


class FlakyRegistry:
    """An MLflow client whose champion reads fail as ``failures`` says, in order (then v1)."""

    def __init__(self, *failures: bool) -> None:
        self.failures = list(failures)
        self.asked = 0

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

        self.asked += 1
        if self.failures and self.failures.pop(0):
            raise MlflowException("API request to the tracking server failed: 503", TEMPORARILY_UNAVAILABLE)
        return types.SimpleNamespace(version="1")


def test_a_champion_that_cannot_be_read_at_a_reading_stops_the_rollout(
    registry_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twice in a row: the registry is down, not the alias deleted (it was said to be)."""
    from servekit import mlflow_registry
    from servekit.training import aliases

    registry = FlakyRegistry(False, True, True)  # the first reading's, the second's and its retry
    monkeypatch.setattr(mlflow_registry, "registry_client", lambda uri: registry)
    monkeypatch.setattr(aliases, "current_champion", lambda client, name: "1")  # the start's
    promoted, said = run(Readings(reading(), reading()), steps=2)
    assert promoted is False
    assert registry_calls == ["canary 2", "canary None"]
    assert said[-2] == (
        "toy: rolling back v2: cannot read the champion (asked twice): MlflowException: API request "
        "to the tracking server failed: 503"
    )


def test_one_failed_read_of_the_champion_is_asked_again(
    registry_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One registry blip rolled back a sound rollout, as 'alias was deleted'."""
    from servekit import mlflow_registry

    registry = FlakyRegistry(True)
    monkeypatch.setattr(mlflow_registry, "registry_client", lambda uri: registry)
    promoted, _ = run(Readings(reading(), reading()), steps=2)
    assert promoted is True
    assert registry_calls == ["canary 2", "promote 2"]
    assert registry.asked == 4  # the first reading's twice, the second's, before promoting


@pytest.mark.parametrize("when", ["at a reading", "before promoting"])
def test_a_rollout_whose_version_was_promoted_meanwhile_ends_the_canary_and_succeeds(
    registry_calls: list[str], champions: list[str | None], when: str
) -> None:
    """``mlp promote toy 2`` during the rollout, as set_canary's message invites: it rolled back,
    with advice (``mlp rollout toy 2``) that is refused, v2 being the champion."""
    champions[:] = ["1", "2"] if when == "at a reading" else ["1", "1", "1", "2"]
    promoted, said = run(Readings(reading(), reading()), steps=2)
    assert promoted is True
    assert registry_calls == ["canary 2", "canary None"]
    assert "toy: v2 was promoted meanwhile (it is the champion now); the rollout ends" in said
    assert not any("rolling back" in line for line in said)


def test_mlp_rollout_does_not_log_every_prometheus_query(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx's INFO line per query, 150 of them at the defaults, buried the readings in the log."""
    import logging

    import servekit.rollout.run
    from servekit.cli import main

    def queried(*args: object, **kwargs: object) -> bool:
        logging.getLogger("httpx").info('HTTP Request: GET http://prometheus/api/v1/query "HTTP/1.1 200 OK"')
        logging.getLogger("httpx").warning("a failure still shows")
        return True

    # Where cmd_rollout looks it up when it runs.
    monkeypatch.setattr(servekit.rollout.run, "rollout", queried)
    caplog.set_level(logging.INFO)
    try:
        assert (
            main(
                [
                    "rollout",
                    "bankchurn",
                    "2",
                    "--prometheus",
                    "http://prometheus",
                    "--tracking-uri",
                    "sqlite:///x",
                ]
            )
            == 0
        )
    finally:
        logging.getLogger("httpx").setLevel(logging.NOTSET)
    assert [record.getMessage() for record in caplog.records if record.name == "httpx"] == [
        "a failure still shows"
    ]
