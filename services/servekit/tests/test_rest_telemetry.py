"""Which requests the telemetry middleware counts and logs: all but Prometheus's scrapes."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from raw_asgi import RawRequest
from toy import TOY

from servekit.auth.key_lines import key_line, new_key
from servekit.metrics import MetricNames
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.telemetry import shutdown_begins
from servekit.settings import load_settings
from servekit.testing import metric_sample, wait_ready
from servekit.training.splitting import Split

NAMES = MetricNames("toy")


def test_a_path_ending_in_metrics_is_counted_and_logged_only_the_scrape_is_not(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(key_line("risk-dashboard", new_key()) + "\n")
    settings = load_settings("toy", api_keys_file=str(keys), root_path="/toy")
    caplog.set_level(logging.INFO, logger="servekit.access")
    with TestClient(create_app(TOY, settings, source=lambda: toy_trained[0])) as client:
        wait_ready(client)
        # Guessing keys on paths made to look like the scrape's, with the prefix and without.
        guesses = [f"/guess{i}/metrics" for i in range(3)] + ["/toy/guess/metrics", "/toy/metrics/"]
        for i, path in enumerate(guesses):
            answer = client.get(path, headers={"Authorization": f"Bearer mlp_guess{i}"})
            assert answer.status_code == 401, path
        for scrape in ("/metrics", "/toy/metrics"):
            assert client.get(scrape).status_code == 200
        refused = metric_sample(client, NAMES.requests_total, endpoint="other", method="GET", status="401")
        exposition = client.get("/metrics").text
    assert refused == len(guesses)
    assert 'endpoint="/metrics"' not in exposition
    logged = [record.getMessage() for record in caplog.records if record.name == "servekit.access"]
    assert [line.split()[1] for line in logged] == guesses


async def cancelled_mid_body(app: Any, shutdown_grace: float | None) -> tuple[RawRequest, bool]:
    """A request whose task is cancelled while the app waits for its body, as uvicorn cancels the
    requests left when its shutdown grace is spent (``shutdown_grace``: the server began to stop,
    with that grace) or another server cancels one whose client left; and whether the
    cancellation came out of the app."""
    request = RawRequest("/predict/batch", content_length=400)
    request.body(b"{", more=True)
    task = request.start(app)
    await request.waiting.wait()
    if shutdown_grace is not None:
        shutdown_begins(app.state, shutdown_grace)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return request, True
    return request, False


@pytest.mark.parametrize(
    ("shutdown_grace", "status", "code"),
    [(0.0, 503, "shutting_down"), (None, 499, "cancelled"), (30.0, 499, "cancelled")],
    ids=["grace-spent", "not-stopping", "within-the-grace"],
)
def test_a_cancelled_request_is_a_503_when_the_shutdown_cut_it_else_the_clients_499(
    toy_trained: tuple[ModelArtifact, Split],
    caplog: pytest.LogCaptureFixture,
    shutdown_grace: float | None,
    status: int,
    code: str,
) -> None:
    """Both were counted and logged as the service's 500 (and uvicorn logged a traceback)."""
    caplog.set_level(logging.INFO, logger="servekit.access")
    with TestClient(create_app(TOY, load_settings("toy"), source=lambda: toy_trained[0])) as client:
        wait_ready(client)
        request, raised = client.portal.call(cancelled_mid_body, client.app, shutdown_grace)
        labels = {"endpoint": "/predict/batch", "method": "POST"}
        assert metric_sample(client, NAMES.requests_total, **labels, status=str(status)) == 1
        assert not metric_sample(client, NAMES.requests_total, **labels, status="500")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "servekit.access"]
    assert f"/predict/batch {status} in " in line
    assert f": {code}: " in line
    if status == 503:  # answered, and the cancellation ends there: uvicorn has nothing to log
        assert not raised
        assert request.status == 503
        assert request.headers["retry-after"] == "5"
        assert json.loads(request.text)["error"] == "shutting_down"
    else:  # nobody to answer; whoever cancelled it gets its cancellation
        assert raised
        assert request.sent == []
