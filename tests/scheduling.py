"""The order pytest-xdist hands out test files: the longest recorded first, waiting files apart.

pytest-xdist's `loadfile` gives a worker one whole file at a time. Its default order, the
files with the most tests first, left the few-test files that start many servers (`make up`,
the live Prometheus, the benchmarks, the Open Inference client) for last, on one worker, while
the other sat idle. Handing out the longest first is the classic schedule that keeps that tail
short; `make test` passes `--no-loadscope-reorder` so that pytest-xdist keeps this order.

Some long files mostly wait: on Alertmanager's group intervals, on a Locust run's clock. Two of
them side by side left a core idle for a minute and a half (the Alertmanager and Locust files, the
third and fourth longest), so the record keeps each file's CPU seconds too, and a file that used
under half a core is not handed out right after another such file while a busy one is left.

Those waits still held a worker: the files that wait the most on servers of their own
(Alertmanager's, the Prometheus pair's) used 30 CPU seconds in 230 s. With three workers,
`WaitingLane` gives the last one only the files that wait and start no session server (the record
says which), beside two that run the rest: a third worker that ran everything started its own MLflow
server and trained its own models (50 CPU seconds) on a machine whose two cores were already busy,
and gained nothing.
"""

from __future__ import annotations

import json
import resource
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from xdist.scheduler import LoadFileScheduling

DURATIONS_FILE = Path(__file__).parent / "durations.json"
#: A file whose processes used less of a core than this, over its seconds, mostly waits.
WAITING_SHARE = 0.5
#: A file whose processes used less of a core than this mostly waits, and may go to the lane.
LANE_SHARE = 0.3
#: The name of a test report's user property holding the CPU seconds its phase used.
CPU_PROPERTY = "cpu_seconds"
#: The fixture every session server hangs on (tests/conftest.py): the MLflow server, the models
#: trained on it, the services serving them. The property says whether a test used it.
SESSION_SERVER = "mlflow_server"
SESSION_SERVER_PROPERTY = "session_servers"


class Record(NamedTuple):
    """What a file took in the recorded run: its seconds, and the CPU seconds of the worker and of
    the processes it started and waited for (None in a record from before they were kept)."""

    seconds: float
    cpu_seconds: float | None = None
    #: Whether its tests used the session's servers (None in a record from before it was kept).
    session_servers: bool | None = None

    @property
    def waits(self) -> bool:
        return self.cpu_seconds is not None and self.cpu_seconds < WAITING_SHARE * self.seconds

    @property
    def waits_alone(self) -> bool:
        """Mostly waits, on servers of its own: costs a third worker little CPU, and no start-up."""
        return (
            self.session_servers is False
            and self.cpu_seconds is not None
            and self.cpu_seconds < LANE_SHARE * self.seconds
        )


def file_of(nodeid: str) -> str:
    """The file part of a test id: pytest-xdist's `loadfile` unit of work."""
    return nodeid.split("::", 1)[0]


def longest_first(nodeids: list[str], records: dict[str, Record]) -> list[str]:
    """The test ids with their files in order of recorded seconds, longest first, but for a file
    that waits, which is not put right after another that waits while a busy file is left.

    A file with no record goes first: it may be slow, and a quick one costs the run only its
    own seconds there, where a slow one left to the end is the tail. A file's tests keep their
    order, and so do files of equal weight.
    """
    by_file: dict[str, list[str]] = {}
    for nodeid in nodeids:
        by_file.setdefault(file_of(nodeid), []).append(nodeid)
    unrecorded = [path for path in by_file if path not in records]
    by_length = sorted((path for path in by_file if path in records), key=lambda p: -records[p].seconds)
    busy = [path for path in by_length if not records[path].waits]
    waiting = [path for path in by_length if records[path].waits]
    order = list(unrecorded)
    while busy or waiting:
        after_waiting = bool(order) and order[-1] in records and records[order[-1]].waits
        longest_waits = bool(waiting) and (not busy or records[waiting[0]].seconds > records[busy[0]].seconds)
        take_waiting = longest_waits and not (after_waiting and busy)
        order.append((waiting if take_waiting else busy).pop(0))
    return [nodeid for path in order for nodeid in by_file[path]]


def recorded(path: Path = DURATIONS_FILE) -> dict[str, Record]:
    """Each file's record in the recorded run; none when nothing was recorded."""
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {
        str(name): Record(float(value)) if isinstance(value, int | float) else Record(**value)
        for name, value in entries.items()
    }


def cpu_seconds_used() -> float:
    """This process's CPU seconds, and those of the processes it started and has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """Puts the CPU seconds each test phase used on its report, in the process that ran it: a
    pytest-xdist worker's reports reach the recorder in the controller with their properties."""

    def __init__(self) -> None:
        self.last = cpu_seconds_used()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, None]:
        outcome = yield
        now = cpu_seconds_used()
        properties = outcome.get_result().user_properties
        properties.append((CPU_PROPERTY, now - self.last))
        properties.append((SESSION_SERVER_PROPERTY, SESSION_SERVER in getattr(item, "fixturenames", ())))
        self.last = now


class DurationRecorder:
    """Adds up each file's set-up, call and tear-down seconds and CPU seconds, and writes them when
    the run passes.

    A session fixture's start-up (the MLflow server, the trained models) counts in the first
    file that asked for it on its worker, which is also where a run pays for it. Files this run
    did not reach keep their record, so one file can be measured again on its own.
    """

    def __init__(self, path: Path = DURATIONS_FILE) -> None:
        self.path = path
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.cpu_seconds: defaultdict[str, float] = defaultdict(float)
        self.session_servers: defaultdict[str, bool] = defaultdict(bool)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = file_of(report.nodeid)
        self.seconds[path] += report.duration
        properties = report.user_properties
        self.cpu_seconds[path] += sum(value for name, value in properties if name == CPU_PROPERTY)
        self.session_servers[path] |= any(
            value for name, value in properties if name == SESSION_SERVER_PROPERTY
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        config = session.config
        # A failed run, or one that chose tests within files, measured only part of a file.
        if exitstatus != pytest.ExitCode.OK or config.getoption("keyword") or config.getoption("markexpr"):
            return
        merged = {path: record._asdict() for path, record in recorded(self.path).items()} | {
            path: {
                "seconds": round(seconds, 1),
                "cpu_seconds": round(self.cpu_seconds[path], 1),
                "session_servers": self.session_servers[path],
            }
            for path, seconds in self.seconds.items()
        }
        ordered = dict(sorted(merged.items(), key=lambda entry: (-entry[1]["seconds"], entry[0])))
        self.path.write_text(json.dumps(ordered, indent=1) + "\n")


class WaitingLane(LoadFileScheduling):
    """pytest-xdist's ``loadfile`` in the order the files were collected, with the last of three or
    more workers kept for the files that wait alone (``Record.waits_alone``).

    The other workers take the first file that is not such a file, and those too once nothing else
    is left and their own work is done (not ahead, as pytest-xdist hands out the next file before a
    worker is idle), so the lane never holds up the end. The lane stops when no such file is left.
    """

    def __init__(
        self, config: pytest.Config, log: Any = None, records: dict[str, Record] | None = None
    ) -> None:
        super().__init__(config, log)
        self.records = recorded() if records is None else records

    def waits_alone(self, scope: str) -> bool:
        record = self.records.get(scope)
        return record is not None and record.waits_alone

    def is_lane(self, node: Any) -> bool:
        count = int(node.workerinput["workercount"])
        return count >= 3 and node.workerinput["workerid"] == f"gw{count - 1}"

    def next_file(self, node: Any) -> str | None:
        if self.is_lane(node):
            return next((scope for scope in self.workqueue if self.waits_alone(scope)), None)
        busy = next((scope for scope in self.workqueue if not self.waits_alone(scope)), None)
        if busy is not None or self._pending_of(self.assigned_work.get(node, {})):
            return busy
        return next(iter(self.workqueue), None)

    def _assign_work_unit(self, node: Any) -> None:
        scope = self.next_file(node)
        if scope is None:
            if self.is_lane(node):  # nothing is left for it
                node.shutdown()
            return  # another worker asks again when its tests are done
        self.workqueue.move_to_end(scope, last=False)  # pytest-xdist's own hands out the first
        super()._assign_work_unit(node)
