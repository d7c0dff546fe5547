"""Resident memory of a process, or of it and its workers, sampled while a benchmark runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path


def resident_bytes(pid: int) -> int:
    """The process's resident set size, as the kubelet's memory accounting sees most of it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"process {pid} reports no VmRSS")


def descendants(pid: int) -> list[int]:
    """The process's children, theirs, and so on (Linux's ``/proc/<pid>/task/*/children``)."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = [int(child) for child in task.read_text().split()]
            except FileNotFoundError:  # the thread ended while listed
                continue
            found.extend(children)
            pending.extend(children)
    return found


def tree_resident_bytes(pid: int) -> int:
    """The resident memory of the process and its descendants, summed: an upper bound of what
    their container holds, since pages they share (the libraries' code) count once there."""
    total = 0
    for member in (pid, *descendants(pid)):
        try:
            total += resident_bytes(member)
        except (FileNotFoundError, ProcessLookupError, RuntimeError):  # ended, or a zombie
            continue
    return total


class MemorySampler:
    """Reads a process's resident memory (``measure``) every ``interval`` seconds in a thread, until
    stopped."""

    def __init__(
        self, pid: int, interval: float = 1.0, measure: Callable[[int], int] = resident_bytes
    ) -> None:
        self.pid = pid
        self.interval = interval
        self.measure = measure
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()

        def sample() -> None:
            self.samples.append((time.monotonic() - start, self.measure(self.pid)))

        sample()
        while not self._stop.wait(self.interval):
            sample()
        sample()  # once stopped, so the run's end is in the figures however short it was
