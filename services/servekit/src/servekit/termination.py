"""SIGTERM and SIGHUP unwind a command as Ctrl-C does, so that its cleanups run, and exit 143 / 129.

Python's default for both ends the process at once. ``kill``, a Job's pod evicted or past its
deadline, and some pipelines' cancel send SIGTERM; a closed terminal or SSH session sends SIGHUP.
Then ``mlp score`` left its partial output and its workers behind, ``mlp train`` left an MLflow run
RUNNING forever, ``mlp rollout`` left a canary answering a share of the traffic with nobody watching
it, and ``make bench`` left its MLflow server and ``mlp serve`` listening (they run in sessions of
their own, which no terminal signal reaches) and its temporary directory on the disk.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that unwind: a polite request to stop, and the terminal gone.
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(SystemExit):
    """SIGTERM (or SIGHUP) was received: every ``finally`` and ``with`` on the way out runs; the
    exit code is 128 + the signal's number, as a shell reports a process the signal ended."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(128 + signum)
        self.signum = signum


@contextmanager
def terminated_as_exit() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread while inside.

    Once one has, the next ones are ignored until the context is left: ``make`` or a supervisor
    that repeats the signal would otherwise interrupt the cleanups it is waiting for (SIGKILL still
    ends it). A SIGHUP already ignored (``nohup``) stays ignored. Elsewhere than in the main thread
    (``mlp`` run from another program's thread) nothing is installed: only the main thread may set
    a signal's handler, and the program owns it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        for caught in installed:
            signal.signal(caught, signal.SIG_IGN)
        raise Terminated(signum)

    previous = {number: signal.getsignal(number) for number in SIGNALS}
    installed = [
        number for number in SIGNALS if not (number == signal.SIGHUP and previous[number] == signal.SIG_IGN)
    ]
    for number in installed:
        signal.signal(number, terminate)
    try:
        yield
    finally:
        for number in installed:
            # None: a handler set outside Python, which cannot be put back; the default stands in.
            signal.signal(number, previous[number] if previous[number] is not None else signal.SIG_DFL)


def silence_output() -> None:
    """Point file descriptor 1, and 2 if it is the same file, at /dev/null (as Python's documentation
    advises on a ``BrokenPipeError``); nothing when stdout has no descriptor (replaced in-process)."""
    try:
        out = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    silenced = [out]
    try:
        if os.path.sameopenfile(out, sys.stderr.fileno()):
            silenced.append(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        pass  # stderr elsewhere, or gone: left as it is
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in silenced:
            os.dup2(null, fd)
    finally:
        os.close(null)
