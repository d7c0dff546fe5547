"""Both overlays rendered once per session (tests/k8s/manifests.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from manifests import OVERLAYS, Rendered, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, Rendered]) -> Rendered:
    return rendered[request.param]


@pytest.fixture(scope="session")
def gke(rendered: dict[str, Rendered]) -> Rendered:
    return rendered["gke"]


@pytest.fixture(scope="session")
def eks(rendered: dict[str, Rendered]) -> Rendered:
    return rendered["eks"]
