"""SIGTERM unwinds an mlp command, cleanups included, and exits 143; mlp serve leaves it to uvicorn."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

import pytest

from servekit import cli
from servekit.cli import lifecycle, serving
from servekit.termination import Terminated, terminated_as_exit


def work_terminated(cleaned: list[str]) -> None:
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted by the handler long before
    finally:
        cleaned.append("partial output removed")


def test_sigterm_inside_raises_terminated_runs_the_cleanups_and_is_undone_after() -> None:
    before = signal.getsignal(signal.SIGTERM)
    cleaned: list[str] = []
    with pytest.raises(Terminated) as raised, terminated_as_exit():
        work_terminated(cleaned)
    assert raised.value.code == 143
    assert cleaned == ["partial output removed"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_every_command_but_serve_exits_143_on_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    def terminated_while_running(args: argparse.Namespace) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    monkeypatch.setattr(lifecycle, "cmd_versions", terminated_while_running)
    with pytest.raises(SystemExit) as exited:
        cli.main(["versions", "bankchurn"])
    assert exited.value.code == 143

    handlers = []

    def serve(args: argparse.Namespace) -> int:
        handlers.append(signal.getsignal(signal.SIGTERM))
        return 0

    monkeypatch.setattr(serving, "cmd_serve", serve)
    assert cli.main(["serve", "bankchurn"]) == 0
    assert handlers == [signal.getsignal(signal.SIGTERM)]  # untouched: uvicorn installs its own


def test_outside_the_main_thread_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def in_a_thread() -> None:
        with terminated_as_exit():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == [before]


def work_hung_up(cleaned: list[str]) -> None:
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(5)
    finally:
        cleaned.append("servers stopped")


def work_terminated_twice(cleaned: list[str]) -> None:
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # make, or a supervisor, repeating it
        os.kill(os.getpid(), signal.SIGHUP)
        cleaned.append("servers stopped")


def test_sighup_unwinds_too_and_exits_129() -> None:
    before = signal.getsignal(signal.SIGHUP)
    cleaned: list[str] = []
    with pytest.raises(Terminated) as raised, terminated_as_exit():
        work_hung_up(cleaned)
    assert raised.value.code == 129
    assert cleaned == ["servers stopped"]
    assert signal.getsignal(signal.SIGHUP) is before


def test_a_second_signal_does_not_interrupt_the_cleanups_of_the_first() -> None:
    cleaned: list[str] = []
    with pytest.raises(Terminated) as raised, terminated_as_exit():
        work_terminated_twice(cleaned)
    assert raised.value.code == 143
    assert cleaned == ["servers stopped"]


def test_a_sighup_ignored_by_nohup_stays_ignored() -> None:
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with terminated_as_exit():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)  # nothing happens
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
