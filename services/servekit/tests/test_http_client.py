"""servekit.http_client: httpx's calls, without a CA bundle loaded for each."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from servekit import http_client
from servekit.testing import StubHandler, http_stub


class Echo(StubHandler):
    def do_GET(self) -> None:
        self.answer(200, f"GET {self.path}".encode(), "text/plain")

    def do_POST(self) -> None:
        self.answer(200, self.body(), "text/plain")


@pytest.fixture
def url() -> Iterator[str]:
    with http_stub(Echo) as address:
        yield address


@pytest.fixture
def bundle_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each CA bundle an ``SSLContext`` loads from here on (what costs 28 ms of CPU)."""
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    http_client.tls_context.cache_clear()
    return loads


def test_requests_and_clients_share_one_context_loaded_once(url: str, bundle_loads: list[object]) -> None:
    assert http_client.get(f"{url}/model", params={"a": "1"}).text == "GET /model?a=1"
    assert http_client.post(url, json={"x": 1}).json() == {"x": 1}
    assert http_client.request("GET", f"{url}/readyz").text == "GET /readyz"
    with http_client.client(base_url=url, timeout=5) as client:
        assert client.get("/metrics").text == "GET /metrics"
    assert len(bundle_loads) == 1
    assert http_client.tls_context() is http_client.tls_context()


def test_a_callers_own_verify_wins(url: str, bundle_loads: list[object]) -> None:
    assert http_client.get(url, verify=False).status_code == 200
    with http_client.client(verify=False) as client:
        assert client.get(url).status_code == 200
    assert bundle_loads == []


def test_plain_httpx_loads_a_bundle_per_call_which_is_why_this_module_exists(
    url: str, bundle_loads: list[object]
) -> None:
    import httpx

    httpx.get(url)
    httpx.get(url)
    assert len(bundle_loads) == 2
