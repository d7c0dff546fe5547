"""Request bodies for load and monitoring tests: real shared data when present, else synthetic.

Rows come from the service's own loader or generator (so they are in the schema of the real
data set), are made JSON-safe and are kept only when the service's request schema accepts them
(servekit.testing.valid_requests).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from servekit import registry
from servekit.datasets import SHARED
from servekit.testing import valid_requests
from servekit.training.trainer import to_records

LOG = logging.getLogger("loadtest")


def payloads(
    name: str, n: int = 300, seed: int = 11, mode: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Up to ``n`` valid request bodies for ``name`` and where they came from.

    ``mode``: ``auto`` (real data when ``../shared/datasets/<name>/*.csv`` exists), ``real`` or
    ``synthetic``; default from ``LOADTEST_DATA``.
    """
    spec = registry.get_service(name)
    recipe = spec.recipe
    mode = mode or os.environ.get("LOADTEST_DATA", "auto")
    files = sorted((SHARED / name).glob("*.csv")) if mode != "synthetic" else []
    if files:
        try:
            frame = recipe.load_csv(files[0])
            frame = frame.sample(n=min(n, len(frame)), random_state=seed)
            rows = valid_requests(spec, to_records(recipe.features(frame)))
            if rows:
                return rows, str(files[0].resolve())
            raise ValueError("no row passes the request schema")
        except Exception as exc:  # a loader problem must not stop the load test
            if mode == "real":
                raise
            LOG.warning("%s: real data unusable (%s), using synthetic rows", name, exc)
    elif mode == "real":
        raise FileNotFoundError(f"no real data set under {SHARED / name}")
    rows = valid_requests(spec, to_records(recipe.features(recipe.generate(n, seed))))
    if not rows:
        raise ValueError(f"{name}: no synthetic row passes the request schema")
    return rows, "synthetic"
