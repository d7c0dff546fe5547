"""Moving ``champion`` in a registry on a SQLite file, by ``mlp train`` and ``mlp promote``: an ended
canary goes with it, a running one stays; what cannot be served or compared is refused in one line."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from toy import TOY

from servekit import cli
from servekit.routing import SHARE_TAG
from servekit.testing import new_tracking_database
from servekit.training import splitting, trainer, training_rows
from servekit.training.aliases import promote


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A registry holding three versions of ``toy``: v1 fitted on 60 rows, v2 and v3 on 10,000."""
    directory = tmp_path_factory.mktemp("registry")
    uri = new_tracking_database(directory / "mlflow.db")
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    client.create_experiment("toy", artifact_location=str(directory / "artifacts"))
    weak = directory / "weak.csv"
    TOY.recipe.generate(60, seed=5).to_csv(weak, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
        for data, seed in ((weak, 1), (None, 2), (None, 3)):
            trainer.train(TOY, uri, data, seed=seed)
    yield uri, weak
    mlflow.set_tracking_uri(None)


@pytest.fixture
def mlp(
    store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``mlp ARGS --tracking-uri <the store>`` of the toy service: its status, output and errors."""
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = cli.main([*args, "--tracking-uri", store[0]])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


@pytest.fixture
def client(store: tuple[str, Path]) -> Any:
    return mlflow.MlflowClient(store[0], registry_uri=store[0])


def aliases(client: Any) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model("toy").aliases.items()}


def share(client: Any) -> str | None:
    tags: dict[str, str] = client.get_registered_model("toy").tags or {}
    return tags.get(SHARE_TAG)


def decision(client: Any, version: str) -> str:
    return str(client.get_model_version("toy", version).tags["promotion.decision"])


def test_an_ended_canary_moves_with_the_champion_promoted_by_hand(
    client: Any, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    client.set_registered_model_alias("toy", "champion", "2")
    assert mlp("canary", "toy", "--end")[0] == 0
    assert aliases(client)["canary"] == "2"
    status, out, _ = mlp("promote", "toy", "3")
    assert status == 0
    # Left on v2, the canary would send the pods' share of the requests to the demoted version.
    assert aliases(client)["champion"] == aliases(client)["canary"] == "3"
    lines = out.splitlines()
    assert lines[0].startswith("toy: champion is now v3 (was v2)")
    assert lines[1] == (
        "toy: canary (ended on v2) moves with it to v3: services with TOY_CANARY_MODEL_URI answer "
        "every request with the champion"
    )
    assert lines[2].startswith("toy: v3 on live traffic: ")


def test_an_ended_canary_moves_with_the_champion_a_training_run_promotes(
    client: Any, tmp_path: Path, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    client.set_registered_model_alias("toy", "champion", "1")  # the weak one: a full run beats it
    client.set_registered_model_alias("toy", "canary", "1")
    full = tmp_path / "full.csv"  # real data, as v1's: a run on the synthetic data would not replace it
    TOY.recipe.generate(TOY.recipe.synthetic_rows, seed=4).to_csv(full, index=False)
    status, out, _ = mlp("train", "toy", "--data", str(full))
    assert status == 0
    new = aliases(client)["challenger"]
    assert "toy: promoted to champion: mae" in out
    assert aliases(client)["champion"] == aliases(client)["canary"] == new
    assert out.splitlines()[-1] == (
        f"toy: canary (ended on v1) moves with it to v{new}: services with TOY_CANARY_MODEL_URI "
        "answer every request with the champion"
    )


def test_a_running_canary_of_a_third_version_stays_with_its_share(
    client: Any, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    client.set_registered_model_alias("toy", "champion", "2")
    assert mlp("canary", "toy", "1", "--percent", "25")[0] == 0
    status, out, _ = mlp("promote", "toy", "3")
    assert status == 0
    assert (aliases(client)["champion"], aliases(client)["canary"], share(client)) == ("3", "1", "25")
    assert out.splitlines()[1] == (
        "toy: canary v1 still answers its share of the requests of services with "
        "TOY_CANARY_MODEL_URI; `mlp canary toy --end` ends it on v3"
    )
    # Promoting the canary's version completes its rollout: the next canary starts at the pods' share.
    assert mlp("promote", "toy", "1")[0] == 0
    assert (aliases(client)["champion"], aliases(client)["canary"], share(client)) == ("1", "1", None)


def test_promoting_the_champion_changes_nothing(
    client: Any, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    client.set_registered_model_alias("toy", "champion", "2")
    assert mlp("canary", "toy", "3", "--percent", "30")[0] == 0
    recorded = decision(client, "2")
    assert mlp("promote", "toy", "2") == (0, "toy: v2 is already champion; nothing changed\n", "")
    assert share(client) == "30"  # the running canary's share, which the pods follow
    assert decision(client, "2") == recorded  # not "promoted by hand"
    assert aliases(client)["canary"] == "3"


def test_a_promotion_records_the_reason_its_caller_gives(client: Any, store: tuple[str, Path]) -> None:
    client.set_registered_model_alias("toy", "champion", "2")
    promote(TOY, store[0], "3", decision="promoted by mlp rollout")
    assert decision(client, "3") == "promoted by mlp rollout"
    promote(TOY, store[0], "2")
    assert decision(client, "2") == "promoted by hand"


def test_a_canary_share_of_the_champions_version_is_refused(
    client: Any, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    client.set_registered_model_alias("toy", "champion", "2")
    client.set_registered_model_alias("toy", "canary", "2")
    status, _, err = mlp("canary", "toy", "2", "--percent", "30")
    assert status == 2
    assert err == (
        "mlp: toy v2 is the champion: as the canary it gets no share of its own, so --percent 30 "
        "would do nothing; name another version, or drop --percent\n"
    )
    assert share(client) is None


def test_a_negative_zero_share_is_shown_as_zero(
    client: Any, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    client.set_registered_model_alias("toy", "champion", "2")
    status, out, _ = mlp("canary", "toy", "3", "--percent", "-0")
    assert status == 0
    assert "send 0 % of their requests" in out
    assert share(client) == "0"


def other_services_version(client: Any, directory: Path) -> str:
    """A version of ``toy`` whose model was fitted for another service's requests."""
    model = directory / "other-model"
    model.mkdir(exist_ok=True)
    (model / "MLmodel").write_text("flavors: {}\nmetadata:\n  feature_schema:\n    title: Customer\n")
    experiment = client.get_experiment_by_name("toy").experiment_id
    run = client.create_run(experiment)
    return str(client.create_model_version("toy", str(model), run_id=run.info.run_id).version)


def test_a_version_of_another_services_model_is_not_promoted(
    client: Any, tmp_path: Path, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    client.set_registered_model_alias("toy", "champion", "2")
    other = other_services_version(client, tmp_path)
    status, out, err = mlp("promote", "toy", other)
    assert (status, out) == (2, "")
    assert err == (
        f"mlp: toy v{other} holds a model of 'Customer' requests, not of toy's 'ToyRequest' "
        "(another service's model?): toy's services could not serve it\n"
    )
    assert aliases(client)["champion"] == "2"


def test_a_canary_the_pods_could_not_load_is_refused_as_a_promotion_is(
    client: Any, tmp_path: Path, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    """Pods told to send a share to it kept sending it to the canary they had, while the command
    said the canary was now the version they could not load."""
    client.set_registered_model_alias("toy", "champion", "2")
    client.set_registered_model_alias("toy", "canary", "3")
    unreadable = str(client.create_model_version("toy", str(tmp_path / "deleted")).version)
    before = share(client)
    for version in (other_services_version(client, tmp_path), unreadable):
        status, out, err = mlp("canary", "toy", version, "--percent", "20")
        assert (status, out) == (2, ""), err
        assert err.startswith(f"mlp: toy v{version}"), err
        assert "could not" in err, err
        assert aliases(client)["canary"] == "3"
        assert share(client) == before  # nothing moved, the share neither
    assert mlp("canary", "toy", "--end")[0] == 0  # ending it on the champion needs no check
    assert aliases(client)["canary"] == "2"


def test_a_version_whose_run_is_gone_is_not_promoted_and_is_listed_without_it(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    client.set_registered_model_alias("toy", "champion", "2")
    other = other_services_version(client, tmp_path)
    run_id = client.get_model_version("toy", other).run_id
    real_get_run = client.get_run

    def get_run(self: Any, wanted: str) -> Any:  # as after ``mlflow gc``
        if wanted == run_id:
            raise MlflowException(f"Run with id={wanted} not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return real_get_run(wanted)

    monkeypatch.setattr(mlflow.MlflowClient, "get_run", get_run)
    status, _, err = mlp("promote", "toy", other)
    assert status == 2
    assert err.startswith(f"mlp: toy v{other}: its run {run_id} is gone (deleted and garbage-collected?)")
    status, out, _ = mlp("versions", "toy")
    assert status == 0
    row = next(line for line in out.splitlines() if line.startswith(f"{other} "))
    assert f"run {run_id} missing" in row


def test_a_champion_that_cannot_be_loaded_leaves_the_new_version_challenger_in_one_line(
    client: Any, tmp_path: Path, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    broken = str(client.create_model_version("toy", str(tmp_path / "deleted")).version)
    client.set_registered_model_alias("toy", "champion", broken)
    status, out, err = mlp("train", "toy")
    assert (status, out) == (2, "")
    new = aliases(client)["challenger"]
    assert aliases(client)["champion"] == broken
    # The one line mlp writes; MLflow's INFO log lines, written to stderr too, precede it.
    [line] = [line for line in err.splitlines() if line.startswith("mlp:")]
    assert line == err.splitlines()[-1]
    assert line.startswith(
        f"mlp: toy: registered v{new} as challenger, not compared: champion v{broken} cannot be loaded ("
    )
    assert line.endswith(f"so it stays champion; `mlp promote toy {new}` makes v{new} champion by hand")
    assert decision(client, new).startswith(f"not compared: champion v{broken} cannot be loaded (")


def test_a_version_over_what_a_registry_holds_is_no_version_of_it(store: tuple[str, Path]) -> None:
    """MLflow stores a version as a 64-bit integer: a larger one was SQLite's "Python int too large"
    (a server's 500, retried until the client gave up), a traceback and exit 1."""
    from servekit.errors import ServekitError
    from servekit.training import aliases as moving

    for number in ("9223372036854775808", "99999999999999999999"):
        for move in (moving.promote, moving.set_canary):
            with pytest.raises(ServekitError) as refused:
                move(TOY, store[0], number)
            assert (refused.value.status_code, refused.value.message) == (
                404,
                f"toy has no version {number!r}",
            )
    # One that fits is asked, and is not there either.
    with pytest.raises(ServekitError, match="toy has no version '9223372036854775807'"):
        moving.promote(TOY, store[0], "9223372036854775807")


def test_a_registry_failing_to_read_a_version_is_one_line_worth_retrying(
    monkeypatch: pytest.MonkeyPatch, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    """Any error but RESOURCE_DOES_NOT_EXIST left mlp promote and mlp canary as a traceback."""

    def failing(self: Any, name: str, version: str) -> Any:
        raise MlflowException("API request failed: too many 500 error responses")

    monkeypatch.setattr(mlflow.MlflowClient, "get_model_version", failing)
    for command in (["promote", "toy", "2"], ["canary", "toy", "2"]):
        status, out, err = mlp(*command)
        assert (status, out) == (1, "")
        assert err == (
            "mlp: reading toy v2 from the registry failed: MlflowException: API request failed: too "
            "many 500 error responses\n"
        )


NEVER_LOADING = [
    "models:/toy@",  # an empty alias
    "models:/toy/abc",
    "models:/toy/-1",
    "models:/toy/99999999999999999999",
    "runs:/abc/model",  # no such run
    "runs:/RUN/nope",  # a real run, no such artifact
    "TMP/nothing",  # no such local path
    "TMP",  # a local directory, not a model's
    "file://TMP",
]


@pytest.mark.parametrize("uri", NEVER_LOADING)
def test_a_model_uri_that_can_never_load_is_exit_2_for_mlp_score(
    uri: str, client: Any, tmp_path: Path, mlp: Callable[..., tuple[int, str, str]]
) -> None:
    """Each was exit 1, "worth retrying": a scheduler following the README retried it for ever."""
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n")
    uri = uri.replace("RUN", client.get_model_version("toy", "2").run_id).replace("TMP", str(tmp_path))
    output = tmp_path / "out.csv"
    status, out, err = mlp("score", "toy", str(rows), "--output", str(output), "--model-uri", uri)
    [line] = [line for line in err.splitlines() if line.startswith("mlp:")]
    assert (status, out) == (2, ""), err
    assert line.startswith(f"mlp: score: {uri}: ")
    assert not output.exists()


@pytest.mark.parametrize("uri", ["foo://bar", "STORE/newstore"])
@pytest.mark.parametrize("command", [["versions", "toy"], ["promote", "toy", "2"], ["train", "toy"]])
def test_a_tracking_uri_mlflow_cannot_use_is_one_line(
    uri: str,
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = uri.replace("STORE", str(tmp_path))
    assert cli.main([*command, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mlp: MLflow cannot use the tracking URI {uri!r} (")
    assert err.endswith("pass --tracking-uri http://HOST:PORT (an MLflow server) or sqlite:///PATH\n")
    assert len(err.splitlines()) == 1


def test_a_promotion_reads_the_registry_it_is_named_and_no_other(
    store: tuple[str, Path], tmp_path: Path
) -> None:
    """As a user runs it: a fresh process, no MLFLOW_TRACKING_URI, another working directory. The
    model's file was looked up through MLflow's default registry, a new mlflow.db there."""
    script = (
        "import sys; from toy import TOY; from servekit import cli; from servekit.training import trainer; "
        "cli.registry.get_service = lambda name: TOY; "
        "trainer.model_requirements = lambda service: ['servekit']; "
        "sys.exit(cli.main(sys.argv[1:]))"
    )
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    environment["PYTHONPATH"] = str(Path(__file__).parent)
    client = mlflow.MlflowClient(store[0], registry_uri=store[0])
    other = "2" if aliases(client)["champion"] != "2" else "3"
    done = subprocess.run(
        [sys.executable, "-c", script, "promote", "toy", other, "--tracking-uri", store[0]],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert aliases(client)["champion"] == other
    assert not list(tmp_path.iterdir())  # no registry of its own made there


def test_a_retrain_on_a_grown_file_is_compared_on_rows_the_champion_did_not_train_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v1 trained on 700 rows, v2 on those and 300 more: v2's held-out rows include rows v1 learnt,
    where v1 scores as on its training rows. It was kept over a better v2 so ("beyond the noise")."""
    uri = new_tracking_database(tmp_path / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment(
        "toy", artifact_location=str(tmp_path / "artifacts")
    )
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    grown, first = tmp_path / "grown.csv", tmp_path / "first.csv"
    TOY.recipe.generate(1000, seed=5).to_csv(grown, index=False)
    TOY.recipe.generate(1000, seed=5).head(700).to_csv(first, index=False)
    trainer.train(TOY, uri, first, seed=1)
    second = trainer.train(TOY, uri, grown, seed=1)
    # The rows of v2's held-out split that v1 trained on, as the trainer hashes them.
    v1 = splitting.split(TOY, TOY.recipe.load(first, 1)[0], 1)
    v2 = splitting.split(TOY, TOY.recipe.load(grown, 1)[0], 1)
    learnt = np.isin(
        training_rows.row_hashes(v2.x_test, v2.y_test), training_rows.row_hashes(v1.x_train, v1.y_train)
    )
    assert 0 < learnt.sum() < len(learnt)
    said = decision(mlflow.MlflowClient(uri, registry_uri=uri), second.version)
    assert (
        f"on the {(~learnt).sum():,} held-out rows v1 did not train on "
        f"({learnt.sum():,} of the {len(learnt):,} were among its training rows)"
    ) in said, said
    mlflow.set_tracking_uri(None)


def old_release_registry(tmp_path: Path) -> str:
    uri = new_tracking_database(tmp_path / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment(
        "toy", artifact_location=str(tmp_path / "artifacts")
    )
    return uri


def as_before_training_rows(tmp_path: Path) -> None:
    """The versions trained so far as a release before 2026-12-05 left them: no training_rows.npy,
    and no data.held_out_copies, which every run logging the hashes records with them."""
    logged = list((tmp_path / "artifacts").rglob(training_rows.TRAINING_ROWS))
    assert logged
    for path in logged:
        path.unlink()
    with sqlite3.connect(tmp_path / "mlflow.db") as database:
        assert database.execute("DELETE FROM params WHERE key = 'data.held_out_copies'").rowcount


def noisy_rows(tmp_path: Path, n_rows: int = 1000) -> tuple[pd.DataFrame, Path]:
    """Rows with a noise a model partly learns, so it scores better on its own training rows."""
    rows = TOY.recipe.generate(n_rows, seed=5)
    rows["y"] += np.random.default_rng(9).normal(0, 5, len(rows))
    path = tmp_path / "noisy.csv"
    rows.to_csv(path, index=False)
    return rows, path


def test_a_champion_that_logged_no_training_rows_is_not_kept_on_rows_it_may_have_learnt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A champion of a release that logged no training-row hashes was compared on the whole new
    split, "the same held-out split", and kept "beyond the noise" when a grown file held out rows it
    had learnt: its figure there is that of its training rows. It stays champion (nothing moves it)
    but the decision says its figure may be inflated and how to decide by hand, and `mlp versions`
    marks it: `kept champion v1` alone is a keep the comparison decided."""
    uri = old_release_registry(tmp_path)
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    rows, path = noisy_rows(tmp_path)
    grown = tmp_path / "grown.csv"
    pd.concat([rows, rows.tail(1).assign(x=5.0)]).to_csv(grown, index=False)
    trainer.train(TOY, uri, path, seed=1)
    as_before_training_rows(tmp_path)
    try:
        capsys.readouterr()
        assert cli.main(["train", "toy", "--data", str(grown), "--seed", "1", "--tracking-uri", uri]) == 0
        said = capsys.readouterr().out.splitlines()[-1]
        client = mlflow.MlflowClient(uri, registry_uri=uri)
        assert aliases(client) == {"champion": "1", "challenger": "2"}
        assert said.startswith("toy: kept champion v1: mae "), said
        assert " vs champion v1 " in said
        assert " on this version's 201 held-out rows; difference " in said, said
        assert "same held-out split" not in said
        doubt = (
            "v1 logged no training rows (trained before mlp train logged them) and was trained on other "
            "data (frame_sha256 "
        )
        assert f"; not decided by this comparison: {doubt}" in said, said
        assert said.endswith(
            ", 1,001 rows), so some of these held-out rows may be rows it learnt, which would inflate its "
            "mae; `mlp promote toy 2` makes it champion by hand if it is the better model"
        ), said
        assert decision(client, "2") == said.removeprefix("toy: ")
        runs = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
        assert {run.data.tags["promotion.decision"] for run in runs} >= {said.removeprefix("toy: ")}
        capsys.readouterr()
        assert cli.main(["versions", "toy", "--tracking-uri", uri]) == 0
        shown = capsys.readouterr().out.splitlines()
        listed = [line for line in shown if line.startswith("2 ")]
        assert len(listed) == 1, listed
        assert "kept champion v1 (not decided)" in listed[0], listed
        assert f"v2 not decided: {doubt}" in shown[-1], shown
        assert shown[-1].endswith("`mlp promote toy 2` makes it champion by hand if it is the better model")
    finally:
        mlflow.set_tracking_uri(None)


def test_a_lead_over_a_champion_that_logged_no_training_rows_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v1 of the first 100 rows of a file, before the hashes were logged; v2 of all 1,000 holds out
    rows v1 may have learnt. Those could only raise v1's figure, so v2's lead over it stands."""
    uri = old_release_registry(tmp_path)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    rows, grown = noisy_rows(tmp_path)
    first = tmp_path / "first.csv"
    rows.head(100).to_csv(first, index=False)
    trainer.train(TOY, uri, first, seed=1)
    as_before_training_rows(tmp_path)
    second = trainer.train(TOY, uri, grown, seed=1)
    assert second.promoted, second.decision
    said = second.decision
    assert said.startswith("promoted to champion: mae "), said
    assert " on this version's 200 held-out rows; " in said, said
    assert (
        "; v1 logged no training rows (trained before mlp train logged them) and was trained on "
        "other data (frame_sha256 "
    ) in said, said
    assert ", 100 rows; this version's " in said
    assert said.endswith(
        ", 1,000 rows), so some of these held-out rows may be rows it learnt, which can only have "
        "raised its mae: the lead stands"
    ), said
    mlflow.set_tracking_uri(None)


def test_a_champion_that_logged_no_training_rows_of_this_very_split_is_compared_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file, seed and test size split the rows alike: the champion's training rows are
    this version's, known without its hashes, and the comparison decides as it does with them; held-out
    copies of training rows (a file repeating rows) are left out as they are then."""
    uri = old_release_registry(tmp_path)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    rows, _ = noisy_rows(tmp_path)
    repeated = tmp_path / "repeated.csv"
    pd.concat([rows, rows.head(200)]).to_csv(repeated, index=False)
    trainer.train(TOY, uri, repeated, seed=1)
    as_before_training_rows(tmp_path)
    again = trainer.train(TOY, uri, repeated, seed=1)
    data = splitting.split(TOY, TOY.recipe.load(repeated, 1)[0], 1)
    learnt = np.isin(
        training_rows.row_hashes(data.x_test, data.y_test),
        training_rows.row_hashes(data.x_train, data.y_train),
    )
    assert 0 < learnt.sum() < len(learnt)
    assert (
        f" on the {(~learnt).sum():,} held-out rows v1 did not "
        f"train on ({learnt.sum():,} of the {len(learnt):,} were among its training rows) (v1 logged no "
        "training rows, but was trained on the same data, split seed and test size, so on the training "
        "rows of this version); difference "
    ) in again.decision, again.decision
    assert "may be rows it learnt" not in again.decision
    mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("generator", ["as recorded", "changed since"])
def test_a_synthetic_champion_that_logged_no_training_rows_learnt_no_row_of_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, generator: str
) -> None:
    """The README's way: the synthetic data first, then a file. A champion of generated rows has its
    rows generated again from its record, none of them the file's; where its generator no longer
    gives them (another release's), it learnt no row of a file all the same."""
    uri = old_release_registry(tmp_path)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    _, path = noisy_rows(tmp_path)
    trainer.train(TOY, uri, None, seed=1)
    as_before_training_rows(tmp_path)
    if generator == "changed since":
        generate = type(TOY.recipe).generate
        monkeypatch.setattr(type(TOY.recipe), "generate", lambda self, n, seed: generate(self, n, seed + 1))
    result = trainer.train(TOY, uri, path, seed=1)
    if generator == "changed since":
        how = "but learnt synthetic rows only"
    else:
        how = (
            "but was trained on synthetic(rows=10000, seed=1), generated again (frame_sha256 "
            f"{v1_record(uri)['data.frame_sha256'][:12]} as recorded), which its split seed 1 and test "
            "size 0.2 split into its training rows"
        )
    assert f" on the same held-out split (v1 logged no training rows, {how}); difference " in (
        result.decision
    ), result.decision
    mlflow.set_tracking_uri(None)


def v1_record(uri: str) -> dict[str, str]:
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    return dict(client.get_run(client.get_model_version("toy", "1").run_id).data.params)


def test_a_synthetic_champion_that_logged_no_training_rows_is_judged_on_rows_it_did_not_generate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synthetic data is its generator seed's: v1's (seed 1) generated again and split with its seed
    give its very training rows, which another seed's held-out rows are not, unless the generator
    repeats a row. They were said to "may be rows it learnt", and a loss decided nothing."""
    uri = old_release_registry(tmp_path)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    generate = type(TOY.recipe).generate

    def repeating(self: Any, n_rows: int, seed: int) -> pd.DataFrame:
        # Every generator seed's first 50 rows are seed 0's, as a small vocabulary repeats rows.
        rows = generate(self, n_rows, seed)
        return pd.concat([generate(self, 50, 0), rows.iloc[50:]], ignore_index=True)

    monkeypatch.setattr(type(TOY.recipe), "generate", repeating)
    trainer.train(TOY, uri, None, seed=1)
    as_before_training_rows(tmp_path)
    result = trainer.train(TOY, uri, None, seed=7)
    v1 = splitting.split(TOY, repeating(TOY.recipe, 10_000, 1), 1)
    v2 = splitting.split(TOY, repeating(TOY.recipe, 10_000, 7), 7)
    learnt = np.isin(
        training_rows.row_hashes(v2.x_test, v2.y_test), training_rows.row_hashes(v1.x_train, v1.y_train)
    )
    assert 0 < learnt.sum() < 50, learnt.sum()
    assert (
        f" on the {(~learnt).sum():,} held-out rows v1 did not train on ({learnt.sum():,} of the "
        f"{len(learnt):,} were among its training rows) (v1 logged no training rows, but was trained on "
        "synthetic(rows=10000, seed=1), generated again (frame_sha256 "
    ) in result.decision, result.decision
    assert "may be rows it learnt" not in result.decision
    assert "not decided" not in result.decision
    mlflow.set_tracking_uri(None)


class HeldOutQuarter(type(TOY.recipe)):  # type: ignore[misc]
    test_size = 0.25


@pytest.mark.parametrize("held_out", [0.2, 0.25])
def test_a_champion_that_logged_no_training_rows_of_the_same_data_split_otherwise_is_split_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held_out: float
) -> None:
    """The same rows (frame_sha256) split with another seed, or test size, than the champion's: the
    trainer has the very rows, and the champion's seed and test size split them as they split its
    own, so its training rows are known exactly. It gave up ("may be rows it learnt"), and a loss of
    the new version on the rows the champion had learnt decided nothing."""
    uri = old_release_registry(tmp_path)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    _, path = noisy_rows(tmp_path)
    rows = TOY.recipe.load(path, 1)[0]
    first = TOY if held_out == 0.2 else dataclasses.replace(TOY, recipe=HeldOutQuarter())
    trainer.train(first, uri, path, seed=1)
    as_before_training_rows(tmp_path)
    result = trainer.train(TOY, uri, path, seed=7)
    v1 = splitting.split(first, rows, 1)
    v2 = splitting.split(TOY, rows, 7)
    assert len(v1.y_test) == round(len(rows) * held_out)
    learnt = np.isin(
        training_rows.row_hashes(v2.x_test, v2.y_test), training_rows.row_hashes(v1.x_train, v1.y_train)
    )
    assert 0 < learnt.sum() < len(learnt)
    assert (
        f" on the {(~learnt).sum():,} held-out rows v1 did not train on ({learnt.sum():,} of the "
        f"{len(learnt):,} were among its training rows) (v1 logged no training rows, but was trained on "
        f"the same data (frame_sha256 {v1_record(uri)['data.frame_sha256'][:12]}), which its split seed 1 "
        f"and test size {held_out:g} split into its training rows); difference "
    ) in result.decision, result.decision
    assert "may be rows it learnt" not in result.decision
    mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("lost", ["gone", "garbled"])
def test_training_rows_the_current_champion_logged_and_the_store_cannot_give_are_said_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """A champion that logged its training rows, and whose file the store has lost or garbled, was
    said to have been "trained before mlp train logged them": the operator would look for an old
    release, not at the store. Its comparison on other data decides nothing, as with unknown rows."""
    uri = old_release_registry(tmp_path)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    rows, path = noisy_rows(tmp_path)
    grown = tmp_path / "grown.csv"
    pd.concat([rows, rows.tail(1).assign(x=5.0)]).to_csv(grown, index=False)
    trainer.train(TOY, uri, path, seed=1)
    (logged,) = (tmp_path / "artifacts").rglob(training_rows.TRAINING_ROWS)
    if lost == "gone":
        logged.rename(logged.with_suffix(".moved"))
        why = "its run logged them, and training_rows.npy is no longer among its artifacts"
    else:
        logged.write_bytes(b"not an array")
        why = "training_rows.npy: "
    result = trainer.train(TOY, uri, grown, seed=1)
    assert f"v1's training rows could not be read ({why}" in result.decision, result.decision
    assert "), and v1 was trained on other data (frame_sha256 " in result.decision
    assert "so some of these held-out rows may be rows it learnt" in result.decision
    assert "trained before mlp train logged them" not in result.decision
    mlflow.set_tracking_uri(None)


def test_what_a_champions_run_records_tells_whether_its_training_rows_can_be_found_again() -> None:
    """Its rows are this version's when the hashes match (frame_sha256, or before it, the file's
    sha256 and rows); its seed and test size split them. Each gap in its record is said."""
    rows = TOY.recipe.generate(500, seed=5)
    mine = {"sha256": "f" * 64, "frame_sha256": "a" * 64, "rows": 500, "seed": 42}
    same = {"seed": "42", "test_size": "0.2", "data.frame_sha256": "a" * 64, "data.rows": "500"}
    mine_split = splitting.split(TOY, rows, 42)
    hashes, how, differs = training_rows.rebuilt_training_rows(TOY, same, mine, rows)
    assert hashes is not None
    assert not differs
    assert set(hashes) == set(training_rows.row_hashes(mine_split.x_train, mine_split.y_train))
    assert how == (
        "was trained on the same data, split seed and test size, so on the training rows of this version"
    )
    older = {"seed": "42", "test_size": "0.2", "data.sha256": "f" * 64, "data.rows": "500"}
    assert training_rows.rebuilt_training_rows(TOY, older, mine, rows)[0] is not None
    assert training_rows.rebuilt_training_rows(TOY, {**older, "data.rows": "400"}, mine, rows)[2] == [
        f"was trained on other data (sha256 {'f' * 12}, 400 rows; this version's {'f' * 12}, 500 rows)"
    ]
    assert training_rows.rebuilt_training_rows(TOY, {}, mine, rows)[2] == [
        "recorded no hash of its data",
        "recorded no split seed",
        "recorded no test size",
    ]
    assert training_rows.rebuilt_training_rows(TOY, {**same, "test_size": "1.5"}, mine, rows)[2][
        0
    ].startswith("was split with seed 42 and test size 1.5, which cannot be made again (")


def test_held_out_copies_of_training_rows_are_counted_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file repeating rows puts copies of training rows among the held-out ones, where the model
    scores as on rows it learnt: nothing said so, and the figures looked better than they were."""
    uri = new_tracking_database(tmp_path / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment(
        "toy", artifact_location=str(tmp_path / "artifacts")
    )
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    rows = TOY.recipe.generate(500, seed=5)
    repeated, distinct = tmp_path / "repeated.csv", tmp_path / "distinct.csv"
    pd.concat([rows, rows.head(200)]).to_csv(repeated, index=False)
    rows.to_csv(distinct, index=False)
    assert trainer.train(TOY, uri, distinct, seed=1).held_out_note == ""
    data = splitting.split(TOY, TOY.recipe.load(repeated, 1)[0], 1)
    copies = np.isin(
        training_rows.row_hashes(data.x_test, data.y_test),
        training_rows.row_hashes(data.x_train, data.y_train),
    ).sum()
    assert copies > 0
    note = trainer.train(TOY, uri, repeated, seed=1).held_out_note
    assert note.startswith(
        f"{copies:,} of the {len(data.y_test):,} held-out rows are copies of training rows"
    )
    assert note.endswith("drop the repeated rows to measure that")
    mlflow.set_tracking_uri(None)


def test_held_out_copies_in_synthetic_data_are_put_down_to_the_generator_with_nothing_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlp train nlpinsight` on its synthetic data (as `make up` runs it) told the user, who gave
    no file, that "the file repeats rows" and to drop them: its generator repeats some headlines."""
    uri = new_tracking_database(tmp_path / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment(
        "toy", artifact_location=str(tmp_path / "artifacts")
    )
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    generate = type(TOY.recipe).generate

    def repeating(self: Any, n_rows: int, seed: int) -> pd.DataFrame:
        rows = generate(self, n_rows - 200, seed)
        return pd.concat([rows, rows.head(200)], ignore_index=True)

    monkeypatch.setattr(type(TOY.recipe), "generate", repeating)
    note = trainer.train(TOY, uri, None, seed=1).held_out_note
    assert "held-out rows are copies of training rows: the synthetic generator repeats some rows" in note
    assert "the file repeats rows" not in note
    assert "drop the repeated rows" not in note
    assert "nothing to do" in note
    mlflow.set_tracking_uri(None)


def test_a_version_of_synthetic_data_never_replaces_a_champion_of_real_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The weekly retrain, run without its data, trained on the synthetic data and replaced the
    real-data champion: on its own synthetic held-out rows, which are far easier than real ones, it
    always won, and the pods followed the alias."""
    uri = new_tracking_database(tmp_path / "mlflow.db")
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    client.create_experiment("toy", artifact_location=str(tmp_path / "artifacts"))
    monkeypatch.setattr(cli.registry, "get_service", lambda name: TOY)
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    real = tmp_path / "real.csv"  # few rows: any model of 10,000 synthetic ones scores better
    TOY.recipe.generate(60, seed=5).to_csv(real, index=False)
    assert trainer.train(TOY, uri, real, seed=1).promoted
    try:
        assert cli.main(["train", "toy", "--tracking-uri", uri]) == 0  # not promoted, as when it loses
        out = capsys.readouterr().out
        assert aliases(client) == {"champion": "1", "challenger": "2"}
        said = (
            f"kept champion v1: this version was trained on synthetic data and v1 on {real}, and "
            "synthetic data never replaces real (its held-out rows are synthetic too); "
            "`mlp train toy --data FILE` trains on real data"
        )
        assert out.splitlines()[-1] == f"toy: {said}"
        assert decision(client, "2") == said  # what mlp versions shows

        # The other way round is compared as usual, on the real held-out rows.
        client.set_registered_model_alias("toy", "champion", "2")
        full = tmp_path / "full.csv"
        TOY.recipe.generate(2000, seed=6).to_csv(full, index=False)
        result = trainer.train(TOY, uri, full, seed=1)
        assert "vs champion v2 " in result.decision
        assert " on the same held-out split; difference " in result.decision
        # As is a synthetic version with a synthetic champion.
        client.set_registered_model_alias("toy", "champion", "2")
        again = trainer.train(TOY, uri, None, seed=2)
        assert "vs champion v2 " in again.decision
    finally:
        mlflow.set_tracking_uri(None)
