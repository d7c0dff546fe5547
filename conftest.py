"""Set-up every test process shares, whichever directory its tests are in."""

from __future__ import annotations

import os

import pytest

from servekit import local


def pytest_configure(config: pytest.Config) -> None:
    # Each pytest-xdist worker starts servers on ports of its own block: a port one worker
    # picked and has not bound yet can never be handed to the other.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and local.PORTS_VARIABLE not in os.environ:
        count = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
        os.environ[local.PORTS_VARIABLE] = local.split_ports(int(worker.removeprefix("gw")), count)
