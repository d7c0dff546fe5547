"""SIGTERM stops a test run as Ctrl-C does: its fixtures are torn down, its servers stopped.

The servers the fixtures start (MLflow, ``mlp serve``, Prometheus, Alertmanager) run in sessions of
their own, so that a test can signal one without hitting the run. No terminal signal reaches them:
a run ended at once left them serving, on their ports and their share of the cores, until someone
found them. Ctrl-C unwinds pytest, which stops them on the way out; SIGTERM, by default, ended it
where it stood. ``kill``, ``timeout``, a CI job cancelled and ``docker stop`` send SIGTERM, and to
pytest-xdist's workers too when they send it to the run's process group.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def sigterm_stops_like_ctrl_c() -> None:
    """From now on SIGTERM raises KeyboardInterrupt in this process; a repeat is ignored while the
    run stops (SIGKILL still ends it).

    Only in the main thread, where Python delivers signals, and only over the default handler: a
    handler the process was given (by a harness running pytest in-process) is its owner's.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)
