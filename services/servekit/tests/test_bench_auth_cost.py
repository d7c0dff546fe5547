"""The bench's API key figure times the check of a valid key, never a refusal."""

from __future__ import annotations

from contextvars import ContextVar
from types import SimpleNamespace

import pytest

from servekit.auth.api_keys import ApiKeys
from servekit.auth.credentials import credential, unauthenticated
from servekit.auth.key_lines import new_key
from servekit.auth.scopes import Key
from servekit.bench import auth_cost
from servekit.errors import ServekitError
from servekit.metrics import collectors


def test_both_rows_are_measured_and_every_checked_request_reached_the_app() -> None:
    measured = auth_cost.key_check(0.05)
    assert set(measured) == {"bare app", "with the key check"}
    assert all(latency.n > 0 for latency in measured.values())


def test_a_check_that_refuses_the_key_stops_the_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ApiKeys, headers: dict[str, str], where: str = "header.") -> tuple[Key, str, str]:
        raise unauthenticated("header.Authorization", "not a key of this service")

    monkeypatch.setattr(ApiKeys, "find", refuse)  # what every check of a key goes through
    with pytest.raises(RuntimeError, match="refused a valid key"):
        auth_cost.key_check(0.02)


def test_the_request_carries_a_key_the_file_holds() -> None:
    key = new_key()
    headers = {name.decode(): value.decode() for name, value in auth_cost.request_scope(key)["headers"]}
    assert credential(headers) == (key, "header.Authorization")
    with pytest.raises(ServekitError):
        credential({k: v for k, v in headers.items() if k != "authorization"})


def test_the_client_count_is_timed_with_the_client_counted_each_time() -> None:
    measured = auth_cost.client_count(0.05)
    assert set(measured) == {"count a request", "count it for its client too"}
    assert all(latency.n > 0 for latency in measured.values())


def test_a_count_that_misses_the_client_stops_the_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    # The metrics read another client variable than the one the bench sets: nothing is counted.
    monkeypatch.setattr(collectors, "logs", SimpleNamespace(client=ContextVar("unset", default="")))
    with pytest.raises(RuntimeError, match="counted None times"):
        auth_cost.client_count(0.02)
