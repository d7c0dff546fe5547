"""Request bodies for load and monitoring tests: rows like those the served model was trained on.

Rows come from the service's own loader or generator (so they are in the schema of the real
data set), are made JSON-safe and are kept only when the service's request schema accepts them
(servekit.testing.valid_requests).

Which data: ``real`` (``../shared/datasets/<service>/*.csv``), ``synthetic`` (the service's
generator) or ``auto``: what the model served at ``host`` was trained on, as its ``GET /model``
says (``data.source``: a file, or ``synthetic(rows=..., seed=...)``). Sending real rows to a
model trained on synthetic ones (``make up``'s) is drift by construction: the input, prediction
and attribution drift alerts would fire for an hour after a load test.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

from servekit import registry
from servekit.datasets import SHARED
from servekit.testing import valid_requests
from servekit.training.trainer import to_records

LOG = logging.getLogger("loadtest")
MODES = ("auto", "real", "synthetic")
#: How ``TrainingRecipe.load`` begins the ``data.source`` of generated data.
SYNTHETIC_SOURCE = "synthetic("


class Payloads(NamedTuple):
    rows: list[dict[str, Any]]
    #: The file the rows come from, or ``synthetic``.
    source: str
    #: Why that data: the mode asked for, or what the served model was trained on.
    reason: str


def served_training_data(host: str, api_key: str = "", timeout: float = 10.0) -> tuple[str, str]:
    """``data.source`` and version of the model served at ``host`` (``GET /model``).

    Raises ``LookupError`` (or ``OSError``, ``ValueError``) when the service cannot be asked or
    its model does not say.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = urllib.request.Request(f"{host.rstrip('/')}/model", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        described = json.load(response)
    version = str(described.get("version", "?"))
    source = (described.get("data") or {}).get("source")
    if not source:
        raise LookupError(f"its model (version {version}) does not say what it was trained on")
    return str(source), version


def choose(name: str, mode: str, host: str | None, api_key: str = "") -> tuple[str, Path | None, str]:
    """``real`` or ``synthetic``, the file of real rows, and why."""
    if mode not in MODES:
        raise ValueError(f"LOADTEST_DATA={mode!r}: expected one of {', '.join(MODES)}")
    files = sorted((SHARED / name).glob("*.csv"))
    shared = files[0] if files else None
    if mode != "auto":
        return mode, shared, f"LOADTEST_DATA={mode}"
    if host is None:
        return ("real" if shared else "synthetic"), shared, "no service to ask: real data when present"
    try:
        source, version = served_training_data(host, api_key)
    except (OSError, ValueError, LookupError) as exc:
        reason = f"could not tell what {host}'s model was trained on ({exc}): real data when present"
        return ("real" if shared else "synthetic"), shared, reason
    trained = f"the served model (version {version}) was trained on {source}"
    if source.startswith(SYNTHETIC_SOURCE):
        return "synthetic", None, trained
    path = Path(source)
    if path.is_file():
        return "real", path, trained
    if shared is not None:
        return "real", shared, f"{trained}, not found here: the shared file instead"
    return (
        "synthetic",
        None,
        f"{trained}, not found here, nor a file under {SHARED / name}: expect drift alerts",
    )


def payloads(
    name: str,
    n: int = 300,
    seed: int = 11,
    mode: str | None = None,
    *,
    host: str | None = None,
    api_key: str = "",
) -> Payloads:
    """Up to ``n`` valid request bodies for ``name``, where they came from and why.

    ``mode``: ``auto`` (like the data the model served at ``host`` was trained on; without a
    host, real data when present), ``real`` or ``synthetic``; default from ``LOADTEST_DATA``.
    """
    spec = registry.get_service(name)
    recipe = spec.recipe
    asked = mode or os.environ.get("LOADTEST_DATA", "auto")
    chosen, path, reason = choose(name, asked, host, api_key)
    if chosen == "real":
        if path is None:
            raise FileNotFoundError(f"no real data set under {SHARED / name}")
        try:
            frame = recipe.load_csv(path)
            frame = frame.sample(n=min(n, len(frame)), random_state=seed)
            rows = valid_requests(spec, to_records(recipe.features(frame)))
            if rows:
                return Payloads(rows, str(path.resolve()), reason)
            raise ValueError("no row passes the request schema")
        except Exception as exc:  # a loader problem must not stop the load test
            if asked == "real":
                raise
            LOG.warning("%s: real data unusable (%s), using synthetic rows", name, exc)
            reason = f"{reason}; but {path} is unusable ({exc})"
    rows = valid_requests(spec, to_records(recipe.features(recipe.generate(n, seed))))
    if not rows:
        raise ValueError(f"{name}: no synthetic row passes the request schema")
    return Payloads(rows, "synthetic", reason)
