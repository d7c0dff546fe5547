"""The rendered overlays the count reads: their objects, as k8s/check.py renders them."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from costing.errors import CostError

ROOT = Path(__file__).resolve().parents[2]

Obj = dict[str, Any]


def render(overlay: str, components: Sequence[str]) -> list[Obj]:
    """The overlay's objects with k8s/components/<name> added, rendered as ``make k8s-check`` does."""
    result = k8s_check().kustomize(overlay, components)
    if result.returncode != 0:
        raise CostError(f"kubectl kustomize k8s/overlays/{overlay} failed:\n{result.stderr}")
    return list(k8s_check().objects(result.stdout))


def k8s_check() -> ModuleType:
    """k8s/check.py as a module (a script beside k8s/cost.py, not a package), imported once."""
    if "k8s_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("k8s_check", ROOT / "k8s" / "check.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["k8s_check"] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules["k8s_check"]
