"""Fixtures of the monitoring tests: the generator module (monitoring/generate.py is a script)."""

from __future__ import annotations

from types import ModuleType

import pytest

from scripts import load_generator


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    return load_generator()
