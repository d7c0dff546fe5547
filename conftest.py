"""Set-up every test process shares, whichever directory its tests are in."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "tests"))

from scheduling import CpuMeter, DurationRecorder, WaitingLane, longest_first, recorded
from servekit import local
from stopping import sigterm_stops_like_ctrl_c


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations",
        action="store_true",
        help="write each test file's seconds and CPU seconds to tests/durations.json (orders later runs)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # kill, timeout or a cancelled job: the fixtures' servers are stopped as on Ctrl-C.
    sigterm_stops_like_ctrl_c()
    # Each pytest-xdist worker starts servers on ports of its own block: a port one worker
    # picked and has not bound yet can never be handed to the other.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and local.PORTS_VARIABLE not in os.environ:
        count = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
        os.environ[local.PORTS_VARIABLE] = local.split_ports(int(worker.removeprefix("gw")), count)
    # The controller sees every worker's reports; a worker sees only its own. CPU is measured in
    # the process that runs the tests (a worker, or the one process without pytest-xdist).
    if config.getoption("record_durations"):
        config.pluginmanager.register(CpuMeter(), "cpu-meter")
        if worker is None:
            config.pluginmanager.register(DurationRecorder(), "duration-recorder")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every worker sorts its collection the same way, as pytest-xdist requires.
    records = recorded()
    if records:
        by_id = {item.nodeid: item for item in items}
        items[:] = [by_id[nodeid] for nodeid in longest_first(list(by_id), records)]


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> WaitingLane | None:
    # Before pytest-xdist's own: with three workers, the third runs only the files that wait alone.
    return WaitingLane(config, log) if config.getvalue("dist") == "loadfile" else None
