"""The documentation pages load everything from the service, under a policy that says so."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import metric_sample, wait_ready
from servekit.training.splitting import Split

#: Each page, and how many inline scripts it runs (each allowed by its hash, nothing else inline).
PAGES = {"/docs": 1, "/docs/oauth2-redirect": 1, "/redoc": 0}


class PageParts(HTMLParser):
    """The URLs a page makes the browser fetch, and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "spec-url"):
            if found.get(name):
                self.urls.append(str(found[name]))
        self._in_inline_script = tag == "script" and "src" not in found
        if self._in_inline_script:
            self.inline_scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts[-1] += data


def parts(html: str) -> PageParts:
    parser = PageParts()
    parser.feed(html)
    # Swagger UI is handed the schema's URL in its inline script rather than an attribute.
    for script in parser.inline_scripts:
        parser.urls += re.findall(r"\burl: '([^']+)'", script)
    return parser


def policy(header: str) -> dict[str, list[str]]:
    directives = (d.split() for d in header.split(";") if d.strip())
    return {name: values for name, *values in directives}


@pytest.fixture
def prefixed(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[TestClient]:
    artifact, _ = toy_trained
    settings = load_settings("toy", root_path="/toy")
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_url_a_page_loads_is_the_services_own_and_answers(toy_client: TestClient, page: str) -> None:
    response = toy_client.get(page)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    urls = parts(response.text).urls
    assert len(urls) >= 3, urls  # a script, a favicon and the schema at least
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        assert toy_client.get(url).status_code == 200, url
    assert "/openapi.json" in urls


def test_under_a_prefix_the_pages_point_inside_it(prefixed: TestClient) -> None:
    for page in ("/toy/docs", "/toy/redoc"):
        urls = parts(prefixed.get(page).text).urls
        assert urls
        assert all(url.startswith("/toy/") for url in urls), urls
        for url in urls:
            assert prefixed.get(url).status_code == 200, url
    docs = prefixed.get("/toy/docs").text
    assert "window.location.origin + '/toy/docs/oauth2-redirect'" in docs
    assert prefixed.get("/toy/docs/oauth2-redirect").status_code == 200


def test_swagger_ui_reads_the_openapi_version_the_service_writes(toy_client: TestClient) -> None:
    bundle = toy_client.get("/docs/assets/swagger-ui-bundle.js").text
    found = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', bundle)
    assert found is not None
    assert toy_client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert int(found[1]) >= 5  # Swagger UI renders OpenAPI 3.1 from 5.0 on; 4 shows an error


def test_swagger_ui_asks_no_validator_for_a_badge(toy_client: TestClient) -> None:
    # Swagger UI's default sends the schema's URL to validator.swagger.io from every page view.
    assert '"validatorUrl": null' in toy_client.get("/docs").text


@pytest.mark.parametrize(("page", "inline"), PAGES.items())
def test_each_page_runs_its_own_inline_scripts_and_the_services_nothing_else(
    toy_client: TestClient, page: str, inline: int
) -> None:
    response = toy_client.get(page)
    directives = policy(response.headers["content-security-policy"])
    assert directives["default-src"] == ["'none'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    allowed = directives["script-src"]
    assert "'unsafe-inline'" not in allowed
    assert "'unsafe-eval'" not in allowed
    scripts = parts(response.text).inline_scripts
    assert len(scripts) == inline
    hashes = {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts}
    assert set(allowed) == {"'self'", *hashes}
    assert response.headers["x-content-type-options"] == "nosniff"


def test_only_redoc_may_start_a_worker_from_a_blob(toy_client: TestClient) -> None:
    redoc = policy(toy_client.get("/redoc").headers["content-security-policy"])
    assert redoc["worker-src"] == ["'self'", "blob:"]
    assert "worker-src" not in policy(toy_client.get("/docs").headers["content-security-policy"])


def test_a_browser_revalidates_an_asset_and_gets_no_body(toy_client: TestClient) -> None:
    first = toy_client.get("/docs/assets/swagger-ui.css")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/css")
    again = toy_client.get("/docs/assets/swagger-ui.css", headers={"if-none-match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


def test_an_unknown_asset_is_a_404_in_the_services_shape(toy_client: TestClient) -> None:
    response = toy_client.get("/docs/assets/nope.js")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert toy_client.get("/docs/assets/../../pyproject.toml").status_code == 404


def test_assets_are_counted_under_one_endpoint_label(toy_client: TestClient) -> None:
    for name in ("swagger-ui.css", "favicon.png", "nope.js"):
        toy_client.get(f"/docs/assets/{name}")

    def served(endpoint: str, status: str) -> float:
        return metric_sample(toy_client, "toy_requests_total", endpoint=endpoint, method="GET", status=status)

    assert (served("/docs/assets", "200"), served("/docs/assets", "404")) == (2, 1)
    assert served("other", "200") == 0
