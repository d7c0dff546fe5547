"""SIGTERM unwinds an ``mlp`` command as Ctrl-C does, so that its cleanups run, and exits 143.

Python's default for SIGTERM ends the process at once. ``kill``, a Job's pod evicted or past its
deadline, and some pipelines' cancel send it, and then ``mlp score`` left its partial output and
its workers behind, ``mlp train`` left an MLflow run RUNNING forever, and ``mlp rollout`` left a
canary answering a share of the traffic with nobody watching it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(SystemExit):
    """SIGTERM was received: every ``finally`` and ``with`` on the way out runs; the exit code is 143."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


@contextmanager
def terminated_as_exit() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread while inside.

    Elsewhere than in the main thread (``mlp`` run from another program's thread) nothing is
    installed: only the main thread may set a signal's handler, and the program owns it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
