"""Instant queries to a Prometheus's HTTP API, for the commands that judge or price from what it
scraped (``mlp rollout``, ``python -m servekit.bench.observed``)."""

from __future__ import annotations

import math
import os
from typing import Any

from servekit.errors import ServekitError

#: A Prometheus behind an authenticating proxy takes a bearer token from here: never a command-line
#: argument, which other users of the machine can read.
TOKEN_ENV = "MLP_PROMETHEUS_TOKEN"


def samples(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> list[dict[str, Any]]:
    """The instant vector ``expr`` evaluates to now (or at the Unix time ``at``): each sample's
    ``metric`` labels and ``value``."""
    import httpx

    token = os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/")
    params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
    try:
        response = httpx.get(f"{base}/api/v1/query", params=params, headers=headers, timeout=timeout)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServekitError(502, "prometheus_unreachable", f"Prometheus at {base}: {exc}") from exc
    if body.get("status") != "success":
        raise ServekitError(502, "prometheus_error", f"Prometheus at {base}: {body.get('error')}")
    return list(body["data"]["result"])


def query(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> float | None:
    """The first sample of ``expr`` now (or ``at``); None when there is none (or it is NaN: 0/0, no data)."""
    found = samples(url, expr, timeout, at)
    if not found:
        return None
    value = float(found[0]["value"][1])
    return None if math.isnan(value) else value


def query_by(
    url: str, expr: str, label: str, timeout: float = 10.0, at: float | None = None
) -> dict[str, float]:
    """Each sample of ``expr`` now (or ``at``), by the value of its ``label`` (NaN samples left out)."""
    found = samples(url, expr, timeout, at)
    values = {sample["metric"].get(label, ""): float(sample["value"][1]) for sample in found}
    return {key: value for key, value in values.items() if not math.isnan(value)}


def series(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> list[tuple[float, float]]:
    """The (time, value) points of the first series a range-vector ``expr`` (a subquery, say)
    evaluates to now (or ``at``); NaN points left out, none when it has no series."""
    found = samples(url, expr, timeout, at)
    if not found:
        return []
    points = [(float(t), float(v)) for t, v in found[0]["values"]]
    return [(t, v) for t, v in points if not math.isnan(v)]
