"""The order pytest-xdist hands out test files: the longest recorded first.

pytest-xdist's `loadfile` gives a worker one whole file at a time. Its default order, the
files with the most tests first, left the few-test files that start many servers (`make up`,
the live Prometheus, the benchmarks, the Open Inference client) for last, on one worker, while
the other sat idle. Handing out the longest first is the classic schedule that keeps that tail
short; `make test` passes `--no-loadscope-reorder` so that pytest-xdist keeps this order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS_FILE = Path(__file__).parent / "durations.json"


def file_of(nodeid: str) -> str:
    """The file part of a test id: pytest-xdist's `loadfile` unit of work."""
    return nodeid.split("::", 1)[0]


def longest_first(nodeids: list[str], seconds: dict[str, float]) -> list[str]:
    """The test ids with their files in order of recorded seconds, longest first.

    A file with no record goes first: it may be slow, and a quick one costs the run only its
    own seconds there, where a slow one left to the end is the tail. A file's tests keep their
    order, and so do files of equal weight.
    """
    first_seen: dict[str, int] = {}
    for index, nodeid in enumerate(nodeids):
        first_seen.setdefault(file_of(nodeid), index)

    def weight(nodeid: str) -> tuple[float, int]:
        path = file_of(nodeid)
        return (-seconds.get(path, float("inf")), first_seen[path])

    return sorted(nodeids, key=weight)


def recorded_seconds(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """The seconds per file of the recorded run; none when nothing was recorded."""
    try:
        recorded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {str(name): float(value) for name, value in recorded.items()}


class DurationRecorder:
    """Adds up each file's set-up, call and tear-down seconds and writes them when the run passes.

    A session fixture's start-up (the MLflow server, the trained models) counts in the first
    file that asked for it on its worker, which is also where a run pays for it. Files this run
    did not reach keep their recorded seconds, so one file can be measured again on its own.
    """

    def __init__(self, path: Path = DURATIONS_FILE) -> None:
        self.path = path
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[file_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        config = session.config
        # A failed run, or one that chose tests within files, measured only part of a file.
        if exitstatus != pytest.ExitCode.OK or config.getoption("keyword") or config.getoption("markexpr"):
            return
        merged = recorded_seconds(self.path) | {path: round(value, 1) for path, value in self.seconds.items()}
        ordered = dict(sorted(merged.items(), key=lambda entry: (-entry[1], entry[0])))
        self.path.write_text(json.dumps(ordered, indent=1) + "\n")
