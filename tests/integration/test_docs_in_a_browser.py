"""The API's documentation in a real browser, on a machine without internet access.

BankChurn is served as behind the ingresses (under ``/bankchurn``) and asks for API keys. The
browser resolves no host but 127.0.0.1, so a page that reached for a CDN would render nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser import Page, browser
from processes import KeyedService, Server, metric_value, serving, start_keyed_service
from servekit.training.trainer import TrainResult

pytestmark = pytest.mark.integration

PREFIX = "/bankchurn"
PREDICT = "#operations-default-predict"
#: The paths of the operations Swagger UI rendered.
OPERATION_PATHS = "[...document.querySelectorAll('.opblock-summary-path')].map(p => p.dataset.path)"


def text_of(selector: str) -> str:
    """A script for the text of the first element ``selector`` finds (undefined if none)."""
    return f"document.querySelector('{selector}')?.textContent"


@pytest.fixture(scope="module")
def docs_service(
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    logs_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KeyedService]:
    keyed = start_keyed_service(
        "bankchurn",
        logs_dir,
        tmp_path_factory.mktemp("docs-keys") / "keys",
        {"MLFLOW_TRACKING_URI": mlflow_server.url, "BANKCHURN_ROOT_PATH": PREFIX},
        {"docs-reader": None},
        label="bankchurn-docs",
    )
    with serving(keyed):
        yield keyed


def only_the_service(page: Page, server: Server) -> list[str]:
    """What the page fetched from anywhere but the service (data: and blob: are the page's own)."""
    return [u for u in page.requests if not u.startswith((server.url + "/", "data:", "blob:"))]


def test_swagger_ui_renders_and_try_it_out_answers_with_the_users_key(
    docs_service: KeyedService, tmp_path: Path
) -> None:
    server = docs_service.server
    with browser(tmp_path / "profile") as page:
        page.open(f"{server.url}{PREFIX}/docs")
        paths = page.wait_for(OPERATION_PATHS)
        # The user pastes a key into Authorize; the page then sends it with every request.
        key = json.dumps(docs_service.keys["docs-reader"])
        page.evaluate(f"ui.preauthorizeApiKey('apiKeyHeader', {key})")
        page.evaluate(f"document.querySelector('{PREDICT} .opblock-summary-control').click()")
        page.wait_for(f"!!document.querySelector('{PREDICT} .try-out__btn')")
        page.evaluate(f"document.querySelector('{PREDICT} .try-out__btn').click()")
        page.wait_for(f"!!document.querySelector('{PREDICT} .execute')")
        page.evaluate(f"document.querySelector('{PREDICT} .execute').click()")
        answered = f"{PREDICT} .live-responses-table tbody"
        status = page.wait_for(text_of(f"{answered} .response-col_status"))
        body = page.evaluate(text_of(f"{answered} .response-col_description pre"))
    assert {"/predict", "/predict/batch", "/model", "/v2/models/{model_name}/infer"} <= set(paths)
    assert status.strip() == "200", body
    answer = json.loads(body)
    assert 0 <= answer["churn_probability"] <= 1
    assert answer["model"]["name"] == "bankchurn"
    # The schema's example was sent, under the prefix, with the key the user gave.
    assert f"{server.url}{PREFIX}/predict?explain=false&reasons=0" in page.requests
    sent = {"client": "docs-reader", "endpoint": "/predict", "status": "200"}
    assert metric_value(server, "bankchurn_client_requests_total", **sent) == 1
    assert only_the_service(page, server) == []
    assert page.problems == []


def test_redoc_renders_every_operation(docs_service: KeyedService, tmp_path: Path) -> None:
    server = docs_service.server
    with browser(tmp_path / "profile") as page:
        page.open(f"{server.url}{PREFIX}/redoc")
        # ReDoc links each operation as #operation/<operationId> once it has read the schema.
        linked = page.wait_for(
            "[...new Set([...document.querySelectorAll('[href^=\"#operation/\"]')].map(a => a.hash))]"
        )
    assert {"#operation/predict", "#operation/predict_batch"} <= set(linked)
    assert only_the_service(page, server) == []
    assert page.problems == []


def test_a_script_injected_into_the_page_does_not_run(docs_service: KeyedService, tmp_path: Path) -> None:
    server = docs_service.server
    with browser(tmp_path / "profile") as page:
        page.open(f"{server.url}{PREFIX}/docs")
        page.wait_for("!!document.querySelector('.opblock-summary-path')")
        # What a cross-site scripting flaw would add: an inline script the policy has no hash for.
        page.evaluate(
            "document.head.appendChild(Object.assign(document.createElement('script'), "
            "{textContent: 'window.injected = true'}))"
        )
        page.evaluate("new Promise(done => setTimeout(done, 200))")  # the violation's report arrives
        ran = page.evaluate("window.injected === true")
    assert ran is False
    assert any("Content Security Policy" in problem for problem in page.problems), page.problems
