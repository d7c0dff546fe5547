"""The admission limit itself: places taken and given back, the refusal and what it tells the client."""

from __future__ import annotations

import asyncio
import threading

import pytest

from servekit.admission import INSTANCES, REQUESTS, RETRY_AFTER_SECONDS, AdmissionLimit, in_worker_thread
from servekit.errors import ServekitError


def test_a_request_beyond_the_limit_is_refused_and_a_freed_place_is_taken_again() -> None:
    counts: list[int] = []
    refused: list[str] = []
    limit = AdmissionLimit("toy", 2, on_refused=refused.append)
    limit.enter()
    counts.append(limit.in_flight)
    limit.enter()
    counts.append(limit.in_flight)
    with pytest.raises(ServekitError) as raised:
        limit.enter()
    assert limit.in_flight == 2
    limit.leave()
    counts.append(limit.in_flight)
    limit.enter()
    counts.append(limit.in_flight)
    assert counts == [1, 2, 1, 2]
    assert refused == [REQUESTS]
    error = raised.value
    assert (error.status_code, error.error) == (503, "overloaded")
    assert error.retry_after_seconds == RETRY_AFTER_SECONDS
    assert "answering 2 prediction requests" in error.message
    assert "TOY_MAX_CONCURRENT_REQUESTS" in error.message


def test_a_place_is_given_back_when_the_request_fails() -> None:
    limit = AdmissionLimit("toy", 1)
    with pytest.raises(RuntimeError), limit.admitted():
        raise RuntimeError("the model failed")
    with limit.admitted():
        assert limit.in_flight == 1
    assert limit.status() == {
        "limit": 1,
        "in_flight": 0,
        "instance_limit": 0,
        "instances_in_flight": 0,
        "client_limit": 0,
        "clients_in_flight": 0,
        "max_loop_lag_seconds": 0.0,
    }


def test_zero_means_no_limit() -> None:
    limit = AdmissionLimit("toy", 0)
    for _ in range(10_000):
        limit.enter()
    assert limit.in_flight == 10_000


def test_a_batch_that_would_pass_the_instance_limit_is_refused_and_its_instances_are_given_back() -> None:
    refused: list[str] = []
    limit = AdmissionLimit("toy", 0, instance_limit=512, on_refused=refused.append)
    with limit.instances_admitted(256), limit.instances_admitted(256):
        assert limit.instances_in_flight == 512
        with pytest.raises(ServekitError) as raised, limit.instances_admitted(17):
            pass
        assert limit.instances_in_flight == 512
    assert limit.instances_in_flight == 0
    assert refused == [INSTANCES]
    error = raised.value
    assert (error.status_code, error.error) == (503, "overloaded")
    assert error.retry_after_seconds == RETRY_AFTER_SECONDS
    assert "predicting 512 instances in batches; 17 more would pass its limit of 512" in error.message
    assert "TOY_MAX_CONCURRENT_INSTANCES" in error.message


def test_instances_are_given_back_when_the_batch_fails() -> None:
    limit = AdmissionLimit("toy", 0, instance_limit=100)
    with pytest.raises(RuntimeError), limit.instances_admitted(100):
        raise RuntimeError("the model failed")
    with limit.instances_admitted(100):
        assert limit.instances_in_flight == 100


def test_a_batch_larger_than_the_instance_limit_is_answered_alone_and_refused_beside_another() -> None:
    limit = AdmissionLimit("toy", 0, instance_limit=100)
    with limit.instances_admitted(300):
        assert limit.instances_in_flight == 300
    with limit.instances_admitted(1), pytest.raises(ServekitError), limit.instances_admitted(300):
        pass


def test_zero_instances_means_no_instance_limit() -> None:
    limit = AdmissionLimit("toy", 1)
    with limit.instances_admitted(10_000), limit.instances_admitted(10_000):
        assert limit.instances_in_flight == 20_000


def test_a_client_at_its_limit_gets_a_429_while_others_are_answered() -> None:
    limit = AdmissionLimit("toy", 4, client_limit=2)
    limit.enter("risk")
    limit.enter("risk")
    with pytest.raises(ServekitError) as refused:
        limit.enter("risk")
    error = refused.value
    assert (error.status_code, error.error, error.retry_after_seconds) == (429, "too_many_requests", 1)
    assert "client risk has 2 prediction requests in flight" in error.message
    assert "TOY_MAX_CONCURRENT_REQUESTS_PER_CLIENT" in error.message
    limit.enter("ops")
    limit.enter("")  # a request with no client (keys off) is only counted
    assert limit.status()["clients_in_flight"] == 2
    # The replica full: 503 to a client under its share, 429 still to one at it.
    with pytest.raises(ServekitError) as full:
        limit.enter("ops")
    assert full.value.status_code == 503
    with pytest.raises(ServekitError) as at_its_share:
        limit.enter("risk")
    assert at_its_share.value.status_code == 429
    limit.leave("risk")
    limit.leave("")
    limit.enter("risk")
    for client in ("risk", "risk", "ops"):
        limit.leave(client)
    assert (limit.in_flight, limit.status()["clients_in_flight"]) == (0, 0)  # no client left behind


def test_a_client_refused_for_its_share_is_not_counted_as_shed() -> None:
    shed: list[str] = []
    limit = AdmissionLimit("toy", 4, client_limit=1, on_refused=shed.append)
    with limit.admitted("risk"), pytest.raises(ServekitError):
        limit.enter("risk")
    assert shed == []  # the replica is not overloaded: PredictionsShed must not fire for it


def test_a_place_given_back_by_its_request_is_held_until_its_worker_thread_is_done() -> None:
    limit = AdmissionLimit("svc", 1, instance_limit=10)
    with limit.admitted() as place:
        release = limit.hold(10)
    assert place.taken  # the request is over; its thread is not
    assert (limit.in_flight, limit.instances_in_flight) == (1, 10)
    with pytest.raises(ServekitError):
        limit.enter()
    release()
    assert (limit.in_flight, limit.instances_in_flight) == (0, 0)
    assert not place.taken


def test_a_cancelled_caller_leaves_the_places_held_until_the_thread_ends() -> None:
    limit = AdmissionLimit("svc", 1, instance_limit=10)
    started, gate = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        assert gate.wait(30), "the test never opened the gate"
        return "done"

    async def answer() -> str:
        with limit.admitted():
            return await in_worker_thread(work, limit.hold(10))

    async def cancel_while_computing() -> tuple[int, int]:
        caller = asyncio.create_task(answer())
        assert await asyncio.to_thread(started.wait, 30)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        held = (limit.in_flight, limit.instances_in_flight)
        gate.set()
        while limit.in_flight or limit.instances_in_flight:  # until the thread's end frees them
            await asyncio.sleep(0.001)
        return held

    try:
        assert asyncio.run(asyncio.wait_for(cancel_while_computing(), 30)) == (1, 10)
    finally:
        gate.set()
    assert limit.status()["in_flight"] == limit.status()["instances_in_flight"] == 0
