"""Both overlays rendered once per session (tests/k8s/manifests.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from buckets import s3_server
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


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    """moto's S3 server (tests/k8s/buckets.py): its endpoint and a client."""
    with s3_server() as server:
        yield server
