"""Response compression decides by the weights in Accept-Encoding, not by a substring."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

EXPLAINED_BATCH = {"instances": [{"x": float(i), "color": "red"} for i in range(8)]}


@pytest.mark.parametrize("header", ["gzip;q=0", "identity", "br"])
def test_a_client_that_refuses_gzip_gets_the_body_as_it_is(toy_client: TestClient, header: str) -> None:
    response = toy_client.post(
        "/predict/batch?explain=true", json=EXPLAINED_BATCH, headers={"accept-encoding": header}
    )
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert len(response.content) >= 1024  # large enough that gzip would have applied
    assert int(response.headers["content-length"]) == len(response.content)
    # The representation depends on Accept-Encoding either way, so caches must know.
    assert "accept-encoding" in response.headers["vary"].lower()


def test_a_wildcard_gets_gzip(toy_client: TestClient) -> None:
    response = toy_client.post(
        "/predict/batch?explain=true", json=EXPLAINED_BATCH, headers={"accept-encoding": "br;q=0.5, *"}
    )
    assert response.headers["content-encoding"] == "gzip"
