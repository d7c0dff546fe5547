"""monitoring/generate.py as a module (it is a script): the monitoring and k8s tests check against it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

MONITORING = Path(__file__).resolve().parents[1] / "monitoring"


def load_generator() -> ModuleType:
    name = "monitoring_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, MONITORING / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module
