"""Which requests the telemetry middleware counts and logs: all but Prometheus's scrapes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit import auth
from servekit.metrics import MetricNames
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import metric_sample, wait_ready
from servekit.training.trainer import Split

NAMES = MetricNames("toy")


def test_a_path_ending_in_metrics_is_counted_and_logged_only_the_scrape_is_not(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(auth.key_line("risk-dashboard", auth.new_key()) + "\n")
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
