"""``mlp rollout`` interrupted after its output went away still ends the canary, and exits quietly.

The signal that stops a rollout often comes with the loss of its output: the terminal closed
(SIGHUP; every write then fails with EIO), or a cancelled ``mlp rollout | tee log`` whose ``tee``
died first (EPIPE). The rollback's message raised before the rollback, which never ran. These run
``mlp`` in a process of its own, as it runs, with the registry and the watch stubbed.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest

#: ``mlp rollout bankchurn 2``, with the registry calls recorded in the file argv[1] and a watch
#: that says, on the descriptor argv[2], that it started, then waits for the signal.
CHILD = r"""
import os, sys, time, signal
import servekit.rollout.readings as readings
import servekit.rollout.run as run
import servekit.training.trainer as trainer
from servekit.training import aliases
from servekit import mlflow_registry
from servekit.cli import main

calls, ready = sys.argv[1], int(sys.argv[2])
if sys.argv[3] == "tty":  # the session's controlling terminal: closing it sends SIGHUP
    import fcntl, termios
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever started this


def set_canary(spec, uri, version, share=None):
    with open(calls, "a") as file:
        file.write(f"canary {version}\n")
    return f"bankchurn: canary is now v{version}"


def watch(*args, **kwargs):
    os.write(ready, b"watching")
    # The signal ends it. In short sleeps: a signal the kernel hands to another of the process's
    # threads (this one has four) does not interrupt the main thread's sleep, and Python runs
    # the handler only when that sleep ends (one time.sleep(3600) hung a CI run to its timeout).
    while True:
        time.sleep(0.05)


aliases.set_canary = set_canary
aliases.current_champion = lambda client, name: "1"
mlflow_registry.registry_client = lambda uri: None
run.watch = watch  # where rollout() looks it up
readings.PrometheusReader.check = lambda self: None
sys.exit(main(["rollout", "bankchurn", "2", "--prometheus", "http://127.0.0.1:9", "--tracking-uri", "sqlite:///x"]))
"""


def start(
    tmp_path: Path, output: str, *, buffered: bool, stdout: int, stderr: int
) -> tuple[subprocess.Popen[bytes], Path]:
    """``mlp rollout`` started on ``output`` ("pipe" or "tty"), returned once its canary is watched."""
    calls = tmp_path / "calls"
    ready_read, ready_write = os.pipe()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(calls), str(ready_write), output],
        stdin=stdout if output == "tty" else subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        pass_fds=[ready_write],
        start_new_session=True,
        env=env,
    )
    os.close(ready_write)
    try:
        assert os.read(ready_read, 8) == b"watching"  # blocks until the canary is set and watched
    finally:
        os.close(ready_read)
    return child, calls


@pytest.mark.parametrize(
    ("signum", "buffered"),
    [(signal.SIGHUP, False), (signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
    # Unbuffered (PYTHONUNBUFFERED, as in CI) the message raised; buffered, the flush at exit did.
    ids=["hup", "term", "int", "term-buffered"],
)
def test_an_interrupt_after_the_pipes_reader_died_rolls_back(
    tmp_path: Path, signum: int, buffered: bool
) -> None:
    child, calls = start(tmp_path, "pipe", buffered=buffered, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.stdout, child.stderr
    assert out is not None
    assert err is not None
    out.close()  # tee killed
    os.kill(child.pid, signum)
    error = err.read().decode()
    child.wait(timeout=120)
    assert calls.read_text().splitlines() == ["canary 2", "canary None"]
    # Not promoted; not 120, Python's status for a flush at exit that failed.
    assert child.returncode == 1
    assert error == ""  # no traceback, no "Exception ignored"


def test_a_closed_terminal_rolls_back(tmp_path: Path) -> None:
    terminal, tty = pty.openpty()
    try:
        child, calls = start(tmp_path, "tty", buffered=True, stdout=tty, stderr=tty)
    finally:
        os.close(tty)
    said = os.read(terminal, 4096)
    os.close(terminal)  # the terminal goes: SIGHUP, and every later write fails with EIO
    child.wait(timeout=120)
    assert b"bankchurn: canary is now v2" in said
    assert calls.read_text().splitlines() == ["canary 2", "canary None"]
    assert child.returncode == 1
