"""The repository's scripts as modules for the tests: k8s/check.py, k8s/cost.py, k8s/deploy_role.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "monitoring"


def load_script(name: str, path: Path) -> ModuleType:
    """The script at ``path`` imported once as module ``name``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def load_k8s_check() -> ModuleType:
    return load_script("k8s_check", ROOT / "k8s" / "check.py")


def load_k8s_cost() -> ModuleType:
    return load_script("k8s_cost", ROOT / "k8s" / "cost.py")


def load_k8s_deploy_role() -> ModuleType:
    return load_script("k8s_deploy_role", ROOT / "k8s" / "deploy_role.py")
