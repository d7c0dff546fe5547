"""The model card: rendered from what GET /model says, served as Markdown."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from toy import TOY

from servekit.card import render
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import wait_loaded
from servekit.training.trainer import Split


def test_the_served_card_is_rendered_from_get_model(toy_client: TestClient) -> None:
    response = toy_client.get("/model/card")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    card = response.text
    assert card == render(TOY, toy_client.get("/model").json())
    assert card.startswith("# Model card: toy version ")
    metrics = toy_client.get("/model").json()["training_metrics"]
    assert f"| **mae** | {metrics['mae']:.4g} |" in card
    assert "## How a prediction is explained" in card


def test_groups_without_a_figure_say_why(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    segments = {
        "color": {
            "red": {"rows": 400, "mae": 0.5, "mae_ci_low": 0.4, "mae_ci_high": 0.6},
            "blue": {"rows": 12, "note": "fewer than 100 held-out rows"},
        }
    }
    with_groups = dataclasses.replace(artifact, metadata={**artifact.metadata, "segments": segments})
    card = render(TOY, TOY.model(with_groups).describe())
    assert "| red | 400 | 0.5 (0.4 to 0.6) |" in card
    assert "| blue | 12 | no figure: fewer than 100 held-out rows |" in card


def test_no_card_before_the_model_is_loaded() -> None:
    def never() -> ModelArtifact:
        raise OSError("registry unreachable")

    app = create_app(TOY, load_settings("toy", load_retry_initial_seconds=60), source=never)
    with TestClient(app) as client:
        response = client.get("/model/card")
    assert response.status_code == 503
    assert "model not ready" in response.json()["message"]


def test_during_a_rollout_the_canarys_card_is_served_on_request(
    toy_trained: tuple[ModelArtifact, Split], toy_client: TestClient
) -> None:
    artifact, _ = toy_trained
    candidate = dataclasses.replace(artifact, version="9", run_id="run-9")
    app = create_app(TOY, load_settings("toy"), source=lambda: artifact, canary_source=lambda: candidate)
    with TestClient(app) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        stable = client.get("/model/card").text
        canary = client.get("/model/card", params={"variant": "canary"}).text
    assert stable.startswith(f"# Model card: toy version {artifact.version}\n")
    assert canary.startswith("# Model card: toy version 9\n")
    assert "`run-9`" in canary
    # Without a canary, asking for its card names the parameter; an unknown variant is a 422.
    missing = toy_client.get("/model/card", params={"variant": "canary"})
    assert missing.status_code == 404
    assert missing.json()["fields"][0]["field"] == "query.variant"
    assert toy_client.get("/model/card", params={"variant": "blue"}).status_code == 422
