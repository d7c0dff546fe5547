"""Two trainings (or a training and an ``mlp promote``) at once: the champion moves only past the
version it was compared with, and a training stopped before its decision says which version it
left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from toy import TOY

from servekit.testing import new_tracking_database
from servekit.training import trainer
from servekit.training.aliases import CHAMPION, current_champion, promote


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A registry holding toy v1, fitted on a file of 60 rows, as champion; a file of 10,000 rows
    beside it (a version of synthetic rows is never compared with one of a file)."""
    uri = new_tracking_database(tmp_path / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment("toy", artifact_location=str(tmp_path / "a"))
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    weak = tmp_path / "weak.csv"
    TOY.recipe.generate(60, seed=5).to_csv(weak, index=False)
    TOY.recipe.generate(10_000, seed=6).to_csv(tmp_path / "strong.csv", index=False)
    trainer.train(TOY, uri, weak, seed=1)
    promote(TOY, uri, "1")
    yield uri
    mlflow.set_tracking_uri(None)


def registered(uri: str) -> Any:
    return mlflow.MlflowClient(uri, registry_uri=uri)


def test_a_champion_moved_during_the_comparison_is_compared_with_again(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While v2 is compared with v1, another training makes v3 champion: v2 was made champion over
    v3 untested. Now it is compared with v3 before the alias moves."""
    strong = tmp_path / "strong.csv"
    trainer.train(TOY, store, strong, seed=3)  # v2, which the other training promotes meanwhile
    promote(TOY, store, "1")
    judged: list[str] = []
    real_decide = trainer.decide

    def decide_while_another_promotes(*args: Any, **kwargs: Any) -> tuple[bool, str, str]:
        found = real_decide(*args, **kwargs)
        judged.append(found[1])
        if len(judged) == 1:
            promote(TOY, store, "2", decision="promoted by the other training")
        return found

    monkeypatch.setattr(trainer, "decide", decide_while_another_promotes)
    result = trainer.train(TOY, store, strong, seed=4)  # v3
    assert result.version == "3"
    assert judged == ["1", "2"]
    assert f"vs {CHAMPION} v2" in result.decision
    expected = "3" if result.promoted else "2"
    assert current_champion(registered(store), "toy") == result.champion_version == expected


def test_a_champion_that_keeps_moving_is_left_to_a_person(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    decided = (True, "7", "promoted to champion: roc_auc 0.9 vs champion v7 0.8")
    monkeypatch.setattr(trainer, "decide", lambda *args, **kwargs: decided)
    result = trainer.train(TOY, store, None, seed=4)
    assert not result.promoted
    assert result.decision == (
        f"kept {CHAMPION} v1: it moved {trainer.MAX_COMPARISONS} times while v2 was compared with it "
        "(other trainings or promotions at once); `mlp promote toy 2` makes it champion by hand"
    )
    assert current_champion(registered(store), "toy") == "1"


def test_a_training_stopped_before_its_decision_names_the_version_it_left(
    store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> tuple[bool, str, str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "decide", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(TOY, store, None, seed=4)
    tags = registered(store).get_model_version("toy", "2").tags
    assert (
        tags["promotion.decision"] == f"interrupted before it was compared with the {CHAMPION}: train again"
    )
    assert "toy version 2 was registered, then the training stopped" in caplog.text
    assert current_champion(registered(store), "toy") == "1"
