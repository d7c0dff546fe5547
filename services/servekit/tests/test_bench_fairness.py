"""The fairness benchmark: each client's own key, and the two servings it compares."""

from __future__ import annotations

import json

import pytest

from servekit.bench import fairness, load, printing


def test_each_request_carries_its_clients_key_and_its_body() -> None:
    bodies = [{"instances": [{"x": 1.0}]}, {"instances": [{"x": 2.0}]}]
    requests = load.post_requests(
        "127.0.0.1", 8123, "/predict/batch?explain=true", bodies, headers=fairness.bearer("mlp_key")
    )
    assert len(requests) == 2
    head, _, body = requests[1].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /predict/batch?explain=true HTTP/1.1"
    assert "Authorization: Bearer mlp_key" in lines
    assert "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == bodies[1]


def test_the_servings_compare_the_default_limit_with_none() -> None:
    assert fairness.SERVINGS[fairness.WITH_LIMIT] == {}
    assert fairness.SERVINGS[fairness.WITHOUT_LIMIT] == {"MAX_CONCURRENT_REQUESTS_PER_CLIENT": "0"}


def outcome(sent: int, answered: int, offered: float, shed: int = 0) -> dict[str, object]:
    latency = {"n": sent, "p50_ms": 10.0, "p99_ms": 20.0}
    return {
        "offered_per_second": offered,
        "sent": sent,
        "answered": answered,
        "shed": shed,
        "late": sent - answered - shed,
        "failed": 0,
        "failures": {},
        "goodput_per_second": round(answered / 10, 1),
        "answered_latency": latency,
    }


def measured(runaway_answered: int) -> dict[str, object]:
    """Both servings of a 10 s run: the runaway offering 56.6/s, the steady client 20/s."""
    result: dict[str, object] = {
        "steady_rate": 20.0,
        "runaway_path": "/predict/batch",
        "deadline_seconds": 1.0,
    }
    result["runaway_rate"] = 56.6
    for label in fairness.SERVINGS:
        result[label] = {
            "request_limit": 8,
            "client_limit": 4 if label == fairness.WITH_LIMIT else 0,
            fairness.STEADY: outcome(200, 200, 20.0),
            fairness.RUNAWAY: outcome(566, runaway_answered, 56.6, shed=566 - runaway_answered),
            "replica_counted": {},
        }
    result["not_meaningful"] = fairness.not_past_capacity(result)
    return result


def test_a_runaway_that_did_not_overload_the_replica_makes_no_comparison(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The probe's run: 56.6/s offered, 56.3/s answered in time with no client limit.
    not_overloaded = measured(runaway_answered=563)
    assert not_overloaded["not_meaningful"]
    printing.print_fairness("bankchurn", not_overloaded)
    out = capsys.readouterr().out
    assert (
        "not meaningful: the runaway got 563 of its 566 requests answered in time with no client limit" in out
    )
    assert "was not past its capacity" in out

    overloaded = measured(runaway_answered=290)
    assert overloaded["not_meaningful"] is None
    printing.print_fairness("bankchurn", overloaded)
    assert "not meaningful" not in capsys.readouterr().out
