"""SIGTERM to a pytest-xdist run stops the servers its fixtures started, as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from processes import wait_until
from stopping import sigterm_stops_like_ctrl_c

TESTS = Path(__file__).parent

#: A session fixture's server as tests/conftest.py starts them: in a session of its own.
CONFTEST = f"""
import os, signal, subprocess, sys
from pathlib import Path
import pytest

sys.path.insert(0, {str(TESTS)!r})
from stopping import sigterm_stops_like_ctrl_c


def pytest_configure(config):
    sigterm_stops_like_ctrl_c()


@pytest.fixture(scope="session")
def server():
    process = subprocess.Popen(["sleep", "600"], start_new_session=True)
    Path(f"server-{{process.pid}}").touch()
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait()
"""

WAITING_TEST = "import time\n\n\ndef test_it(server):\n    time.sleep(600)\n"


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_to_the_run_stops_every_workers_servers_and_ends_the_run(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for name in ("one", "two"):  # one per worker
        (tmp_path / f"test_{name}.py").write_text(WAITING_TEST)
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as `timeout` and a CI runner make one
    )

    def servers() -> list[int]:
        return [int(path.name.removeprefix("server-")) for path in tmp_path.glob("server-*")]

    try:
        wait_until(lambda: len(servers()) == 2)  # each worker's fixture has started its server
        os.killpg(run.pid, signal.SIGTERM)
        output, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    left = [pid for pid in servers() if alive(pid)]
    for pid in left:
        os.killpg(pid, signal.SIGKILL)
    assert not left, output
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output


def test_a_handler_the_process_was_given_is_left_as_it_is() -> None:
    def own(signum: int, frame: object) -> None:
        pass

    before = signal.signal(signal.SIGTERM, own)
    try:
        sigterm_stops_like_ctrl_c()
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, before)
