"""Model files in the skops format, loaded only with types from an allow-list.

Pickle runs arbitrary code on load; skops refuses any type it is not told to
trust. MLflow would trust the list stored *inside* the model, which protects
nothing, so servekit checks every type in the file that skops does not trust
by default against module prefixes of its own, and refuses a model that needs
anything else. (skops' defaults are Python's primitives and containers,
scikit-learn's estimators, NumPy's and SciPy's ufuncs and NumPy's dtypes.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

TRUSTED_PREFIXES = (
    "builtins.",
    "collections.OrderedDict",
    "numpy.",
    "scipy.sparse.",
    "sklearn.",
    "lightgbm.",
    "servekit.",
)


class UntrustedModelError(ValueError):
    """The model file needs a type outside the allow-list."""


def trusted_types(types: Iterable[str], packages: Iterable[str] = ()) -> list[str]:
    """``types`` if every one is allowed; ``packages`` adds a service's own modules."""
    prefixes = (*TRUSTED_PREFIXES, *(f"{package}." for package in packages))
    types = sorted(set(types))
    refused = [t for t in types if not t.startswith(prefixes)]
    if refused:
        raise UntrustedModelError(f"model file needs untrusted type(s): {', '.join(refused)}")
    return types


def types_of(pipeline: Any, packages: Iterable[str] = ()) -> list[str]:
    """The checked types of ``pipeline`` once dumped (given to MLflow when logging)."""
    import skops.io

    return trusted_types(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)), packages)


def load(model_dir: Path, packages: Iterable[str] = ()) -> Any:
    """Load ``model.skops`` from an MLflow model directory, refusing untrusted types."""
    import skops.io

    files = sorted(model_dir.glob("*.skops"))
    if not files:
        raise FileNotFoundError(f"no .skops file in {model_dir}")
    types = trusted_types(skops.io.get_untrusted_types(file=files[0]), packages)
    return skops.io.load(files[0], trusted=types)
