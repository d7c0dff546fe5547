"""MLflow's database migration before its server starts (mlflow/k8s/mlflow.yaml, db-upgrade).

An MLflow server newer than its database's schema refuses to start ("Detected out-of-date database
schema"), so a bump of MLFLOW_VERSION (mlflow/Dockerfile) crash-looped the registry until someone
ran ``mlflow db upgrade`` by hand. (It migrates by itself only when a table its models have is
missing, inside its start-up and its probes' budget; when the new migrations only alter tables, it
refuses.) The init container runs the upgrade with the server's image on the server's store: here
its rendered command runs for real, with the installed MLflow, on a SQLite store one revision behind.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner
from manifests import Obj, Rendered, container

from processes import BIN
from scripts import load_k8s_cost

COST = load_k8s_cost()
#: Where the pod's volume holds the store (the server's --backend-store-uri).
POD_STORE = "sqlite:////mlflow/mlflow.db"


def expanded(spec: Obj) -> list[str]:
    """A container's command as Kubernetes runs it: ``$(VAR)`` from the container's own env."""
    env = {e["name"]: e["value"] for e in spec.get("env", [])}
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], part) for part in spec["command"]]


def server_store(server: Obj) -> str:
    """The --backend-store-uri of the server's command, as MLflow's own CLI parses it."""
    from mlflow.cli import server as server_command

    command = expanded(server)
    assert command[:2] == ["mlflow", "server"]
    uri: str = server_command.make_context("server", command[2:]).params["backend_store_uri"]
    return uri


def upgraded_store(init: Obj) -> str:
    """The database the init container's ``mlflow db upgrade`` migrates, as MLflow's CLI parses it."""
    from mlflow.db import upgrade

    command = expanded(init)
    assert command[:3] == ["mlflow", "db", "upgrade"]
    url: str = upgrade.make_context("upgrade", command[3:]).params["url"]
    return url


def db_upgrade(deployment: Obj) -> Obj:
    [init] = deployment["spec"]["template"]["spec"].get("initContainers", [])
    assert init["name"] == "db-upgrade"
    return dict(init)


def test_the_server_starts_after_its_store_is_migrated_with_its_own_image(overlay: Rendered) -> None:
    deployment = overlay.get("Deployment", "mlflow")
    init, server = db_upgrade(deployment), container(deployment, "mlflow")
    assert upgraded_store(init) == server_store(server) == POD_STORE
    # The same MLflow (the overlay's registry and tag), and the same volumes where the file is.
    values = overlay.values()
    assert init["image"] == server["image"] == f"{values['imageRegistry']}/mlflow:{values['imageTag']}"
    assert init["imagePullPolicy"] == server["imagePullPolicy"]
    assert init["volumeMounts"] == server["volumeMounts"]
    # Of the server's environment what it needs: a writable HOME and TMPDIR on a read-only root.
    assert all(variable in server["env"] for variable in init["env"])
    assert {e["name"] for e in init["env"]} >= {"HOME", "TMPDIR"}
    assert init["securityContext"] == server["securityContext"]
    # Runs to completion before the server starts (no sidecar), and the pod asks no more for it.
    assert "restartPolicy" not in init
    resources = init["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory", "ephemeral-storage"}
    pod = deployment["spec"]["template"]["spec"]
    assert COST.pod_requests(pod, "mlflow") == COST.container_requests(server, "mlflow")


# --- The rendered command, run for real ---------------------------------------------------------


def on_store(init: Obj, url: str) -> list[str]:
    """The init container's command with the pod's store replaced by ``url``."""
    command = expanded(init)
    assert command[-1] == POD_STORE
    return [*command[:-1], url]


def one_revision_behind(url: str) -> str:
    """A SQLite store MLflow's own migrations built up to the revision before its latest (the older
    schema itself, not a newer one relabelled); that revision."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config, _get_latest_schema_revision
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    config = _get_alembic_config(url)
    previous = ScriptDirectory.from_config(config).get_revision(_get_latest_schema_revision()).down_revision
    assert isinstance(previous, str)
    engine = sqlalchemy.create_engine(url)

    @sqlalchemy.event.listens_for(engine, "connect")
    def unsynced(connection: Any, _: Any) -> None:  # a throwaway file: no fsync per migration
        connection.execute("PRAGMA synchronous=OFF")

    try:
        InitialBase.metadata.create_all(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, previous)
    finally:
        engine.dispose()
    return previous


def schema_revision(path: Path) -> str:
    with sqlite3.connect(path) as db:
        [(revision,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
    return str(revision)


def verify_schema(url: str) -> None:
    """The check by which the server refuses a store (its SqlAlchemyStore, as it starts)."""
    from mlflow.store.db.utils import _verify_schema

    engine = sqlalchemy.create_engine(url)
    try:
        _verify_schema(engine)
    finally:
        engine.dispose()


def test_the_rendered_upgrade_brings_an_older_store_to_the_servers_schema(
    gke: Rendered, tmp_path: Path
) -> None:
    from mlflow.exceptions import MlflowException

    init = db_upgrade(gke.get("Deployment", "mlflow"))
    path = tmp_path / "mlflow.db"
    url = f"sqlite:///{path}"
    previous = one_revision_behind(url)
    with pytest.raises(MlflowException, match="Detected out-of-date database schema"):
        verify_schema(url)

    # The init container's command and environment, with this environment's mlflow.
    command = on_store(init, url)
    env = {e["name"]: e["value"] for e in init["env"]} | {"HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    upgraded = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert schema_revision(path) != previous
    verify_schema(url)


def schema(path: Path) -> list[tuple[str, str]]:
    """Every table, index and trigger of a SQLite file as created, and its schema revision."""
    with sqlite3.connect(path) as db:
        created = db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    return [*created, ("alembic_version", schema_revision(path))]


def test_the_rendered_upgrade_creates_a_fresh_store_and_leaves_a_current_one(
    gke: Rendered, tmp_path: Path
) -> None:
    """Every start runs it: the first on an empty volume, most on a store already current. Here in
    this process, through the command group the ``mlflow`` executable runs."""
    from mlflow.cli import cli

    command = on_store(db_upgrade(gke.get("Deployment", "mlflow")), f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert command[0] == "mlflow"
    fresh = CliRunner().invoke(cli, command[1:], catch_exceptions=False)
    assert fresh.exit_code == 0, fresh.output
    verify_schema(command[-1])
    created = schema(tmp_path / "mlflow.db")
    current = CliRunner().invoke(cli, command[1:], catch_exceptions=False)
    assert current.exit_code == 0, current.output
    assert schema(tmp_path / "mlflow.db") == created
