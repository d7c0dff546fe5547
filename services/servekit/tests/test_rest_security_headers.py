"""Every response says it may not be stored, sniffed, framed or (over HTTPS) downgraded."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient
from toy import FAILING_X, TOY, FailingToy

from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == API_POLICY


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/predict?explain=true", ROW, 200),
        ("POST", "/predict/batch", {"instances": [ROW, ROW]}, 200),
        ("POST", "/predict", {**ROW, "x": "one"}, 422),
        ("GET", "/model", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/healthz", None, 200),
        ("GET", "/openapi.json", None, 200),
        ("GET", "/nope", None, 404),
        ("GET", "/predict", None, 405),
    ],
)
def test_answers_and_refusals_alike_carry_the_headers(
    toy_client: TestClient, method: str, path: str, body: object, status: int
) -> None:
    response = toy_client.request(method, path, json=body)
    assert response.status_code == status
    assert_secured(response)
    assert "strict-transport-security" not in response.headers  # plain HTTP: browsers ignore it


def test_over_https_a_browser_is_told_to_keep_to_it(toy_client: TestClient) -> None:
    # As the GKE and EKS load balancers forward a request that came to them over HTTPS.
    response = toy_client.post("/predict", json=ROW, headers={"x-forwarded-proto": "https"})
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert_secured(response)


def test_a_header_a_response_sets_itself_is_kept_and_not_doubled(toy_client: TestClient) -> None:
    page = toy_client.get("/docs")
    assert page.headers.get_list("content-security-policy") != [API_POLICY]
    assert len(page.headers.get_list("content-security-policy")) == 1
    assert page.headers["cache-control"] == "no-store"
    asset = "/docs/assets/swagger-ui-bundle.js"
    script = toy_client.get(asset)
    assert script.headers.get_list("cache-control") == ["no-cache"]  # kept, and revalidated by ETag
    again = toy_client.get(asset, headers={"if-none-match": script.headers["etag"]})
    assert (again.status_code, again.headers.get_list("cache-control")) == (304, ["no-cache"])


def test_a_model_failure_answered_outside_the_middleware_carries_them_too(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    app = create_app(replace(TOY, model=FailingToy), load_settings("toy"), source=lambda: artifact)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        failing = {**ROW, "x": FAILING_X}
        response = client.post("/predict", json=failing, headers={"x-forwarded-proto": "https"})
    assert response.status_code == 500
    assert_secured(response)
    assert response.headers["strict-transport-security"] == "max-age=31536000"
