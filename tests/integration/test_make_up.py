"""`make up` and `make down` (scripts/up.sh and scripts/down.sh) as a user runs them.

`make up` is `uv sync` followed by scripts/up.sh; the script is started directly so the test
does not re-sync the environment it runs in. Its state is a copy of the session registry, in
which every service already has a champion, so it starts in seconds instead of training
(training when there is no champion is tested in test_registry).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from processes import ROOT, Server, as_foreground_job, free_port, predict_its_example
from servekit import registry
from servekit.local import port_is_free, port_range
from servekit.training.trainer import TrainResult

pytestmark = pytest.mark.integration

READY_LINE = "Ctrl-C stops everything"


def free_port_offset(taken: set[int]) -> int:
    """An offset that moves every service's local port onto a free one of this worker's ports, none
    of them ``taken`` (handed out, but not yet listened on: MLflow's)."""
    ports = {registry.get_service(name).local_port for name in registry.available()}
    allowed = port_range()
    for _ in range(50):
        offset = free_port() - min(ports)
        moved = [port + offset for port in ports]
        if offset > 0 and all(port in allowed and port not in taken and port_is_free(port) for port in moved):
            return offset
    raise RuntimeError("no free block of service ports")


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


EARLIER_RUN = "an answer captured by an earlier run of make up\n"


class Platform:
    """One run of scripts/up.sh in its own process group, as a terminal would start it."""

    def __init__(self, state: Path, log: Path, **env: str) -> None:
        self.state, self.log = state, log
        # Both free now and neither listened on yet: MLflow once got the port a service was moved to.
        mlflow_port = free_port()
        self.offset = free_port_offset(taken={mlflow_port})
        self.env = {
            **os.environ,
            "MLP_STATE": str(state),
            "MLFLOW_PORT": str(mlflow_port),
            "MLP_PORT_OFFSET": str(self.offset),
            **env,
        }
        with log.open("wb") as handle:
            self.process = as_foreground_job(
                ["bash", "scripts/up.sh"],
                cwd=ROOT,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, started: Callable[[], bool], seconds: float = 240) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if started():
                return self.output()
            if self.process.poll() is not None:
                raise RuntimeError(f"up.sh exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.5)
        raise TimeoutError(f"up.sh never got there:\n{self.output()}")

    def wait_until_serving(self) -> str:
        return self.wait_until(lambda: READY_LINE in self.output())

    def wait_until_failed(self, seconds: float = 240) -> str:
        try:
            returncode = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"up.sh is still running:\n{self.output()}") from None
        assert returncode != 0, self.output()
        return self.output()

    def recorded_pids(self) -> dict[str, int]:
        return {file.stem: int(file.read_text()) for file in (self.state / "pids").glob("*.pid")}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{registry.get_service(name).local_port + self.offset}"

    def kill(self) -> None:
        """Last resort, so a failed test leaves nothing running."""
        for pid in [self.process.pid, *self.recorded_pids().values()]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def start_platform(
    tmp_path: Path, mlflow_state: Path, mlflow_server: Server, registered: dict[str, TrainResult]
) -> Iterator[Callable[..., Platform]]:
    """Starts up.sh on a copy of the session registry, with extra environment variables."""
    state = tmp_path / "state"
    state.mkdir()
    # The backup API takes a consistent snapshot while the session server holds the file.
    with sqlite3.connect(mlflow_state / "mlflow.db") as source, sqlite3.connect(state / "mlflow.db") as copy:
        source.backup(copy)
    shutil.copytree(mlflow_state / "artifacts", state / "artifacts")
    # An earlier run's log: the captured answers in it are what `mlp evaluate` reads later.
    (state / "logs").mkdir()
    for name in registry.available():
        (state / "logs" / f"{name}.log").write_text(EARLIER_RUN)
    started: list[Platform] = []

    def start(**env: str) -> Platform:
        started.append(Platform(state, tmp_path / "up.log", **env))
        return started[-1]

    try:
        yield start
    finally:
        for running in started:
            running.kill()


@pytest.fixture
def platform(start_platform: Callable[..., Platform]) -> Platform:
    return start_platform()


def test_up_serves_every_service_and_ctrl_c_stops_everything(
    platform: Platform, registered: dict[str, TrainResult]
) -> None:
    output = platform.wait_until_serving()
    assert f"MLflow UI:   http://127.0.0.1:{platform.env['MLFLOW_PORT']}" in output
    # Said before `mlp train` imports every model stack: a first run's training is not silent.
    assert output.index("MLflow is up; checking each service for a champion") < output.index(": champion v")
    for name in registry.available():
        assert re.search(rf"^{name}\s+{platform.url(name)}\s+docs: {platform.url(name)}/docs", output, re.M)
        assert f"{name}: champion v{registered[name].version} exists; not training" in output
        model, response = predict_its_example(platform.url(name), explain=True)
        assert model["version"] == registered[name].version
        assert response.json()["explanation"]["contributions"]

    for name in registry.available():  # appended to, not erased
        assert (platform.state / "logs" / f"{name}.log").read_text().startswith(EARLIER_RUN)

    pids = platform.recorded_pids()
    assert set(pids) == {"mlflow", *registry.available()}
    assert all(is_alive(pid) for pid in pids.values())

    os.killpg(platform.process.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground job
    # A second signal while it stops the servers: make sends SIGTERM on to its children when
    # it gets one, and users press Ctrl-C twice. It must not cut the clean-up short.
    deadline = time.monotonic() + 30
    while "stopping:" not in platform.output() and time.monotonic() < deadline:
        time.sleep(0.02)  # the servers take about a second to stop: land in the middle of it
    with contextlib.suppress(ProcessLookupError):  # already done: nothing left to cut short
        os.kill(platform.process.pid, signal.SIGTERM)
    assert platform.process.wait(timeout=60) == 0, platform.output()
    assert "stopping: mlflow" in platform.output()
    assert [name for name, pid in pids.items() if is_alive(pid)] == []
    assert list((platform.state / "pids").glob("*.pid")) == []
    assert all(port_is_free(httpx.URL(platform.url(name)).port or 0) for name in registry.available())


def test_down_stops_what_an_interrupted_up_left_running(platform: Platform) -> None:
    every_server = {"mlflow", *registry.available()}
    platform.wait_until(lambda: set(platform.recorded_pids()) == every_server)
    pids = platform.recorded_pids()
    # The launcher dies without cleaning up (kill -9, the OOM killer) while the services
    # start: the servers live on in their own sessions, which is what `make down` is for.
    platform.process.kill()
    platform.process.wait()
    assert all(is_alive(pid) for pid in pids.values())

    down = subprocess.run(
        ["bash", "scripts/down.sh"],
        check=False,
        cwd=ROOT,
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert down.returncode == 0, down.stderr
    for name, pid in pids.items():
        assert f"stopped {name} (pid {pid})" in down.stdout
    assert [name for name, pid in pids.items() if is_alive(pid)] == []
    assert list((platform.state / "pids").glob("*.pid")) == []


def test_down_stops_a_server_recorded_before_it_made_its_own_group(tmp_path: Path) -> None:
    """up.sh records a pid as it starts the server; setsid makes the group in the child, later.

    A busy machine once ran `make down` in between: the group was not there yet, so nothing was
    stopped or said, and the server was left to the SIGKILL 10 s on.
    """
    pids = tmp_path / "pids"
    pids.mkdir()
    # In this process's group, as a server is before its setsid.
    server = subprocess.Popen(["sleep", "300"])
    # Reaped as it ends, as a server whose launcher is gone is by init: a zombie would still
    # answer down.sh's kill -0.
    reaper = threading.Thread(target=server.wait, daemon=True)
    reaper.start()
    try:
        (pids / "starting.pid").write_text(f"{server.pid}\n")
        down = subprocess.run(
            ["bash", "scripts/down.sh"],
            check=False,
            cwd=ROOT,
            env={**os.environ, "MLP_STATE": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0, down.stderr
        assert f"stopped starting (pid {server.pid})" in down.stdout
        reaper.join(timeout=5)
        assert server.returncode == -signal.SIGTERM
        assert list(pids.glob("*.pid")) == []
    finally:
        server.kill()
        server.wait()


def test_a_server_that_cannot_start_stops_up_at_once_with_its_log(
    start_platform: Callable[..., Platform],
) -> None:
    # MLflow's port is already taken, as by a forgotten server. MLflow then exits with
    # status 0; a service with 3 (the same wait_for serves both, and MLflow is faster to fail).
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # accepts connections and never answers: curl must not wait for ever
        port = taken.getsockname()[1]
        platform = start_platform(MLFLOW_PORT=str(port))
        output = platform.wait_until_failed()
    assert f"mlflow exited (status 0) before http://127.0.0.1:{port}/health answered" in output
    assert "address already in use" in output  # the tail of MLflow's log says why
    assert "timed out" not in output
    assert "stopping: mlflow" in output
    assert [pid for pid in platform.recorded_pids().values() if is_alive(pid)] == []


def test_a_bad_port_offset_stops_up_before_mlflow_is_waited_for(
    start_platform: Callable[..., Platform],
) -> None:
    platform = start_platform(MLP_PORT_OFFSET="ten")
    output = platform.wait_until_failed()
    assert "mlp: MLP_PORT_OFFSET='ten' is not an integer" in output
    assert "the service listing failed (status 2) before http://127.0.0.1:" in output
    assert "stopping: mlflow" in output
    assert [pid for pid in platform.recorded_pids().values() if is_alive(pid)] == []
