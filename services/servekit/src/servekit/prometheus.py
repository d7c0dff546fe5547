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

    from servekit import http_client

    token = os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/")
    params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
    try:
        response = http_client.get(f"{base}/api/v1/query", params=params, headers=headers, timeout=timeout)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:  # no retry mends the address
        raise ServekitError(400, "prometheus_url", f"Prometheus at {base}: not a URL ({exc})") from exc
    except httpx.HTTPError as exc:
        raise ServekitError(502, "prometheus_unreachable", f"Prometheus at {base}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        page = "an HTML page" if "html" in response.headers.get("content-type", "") else "not JSON"
        raise _not_prometheus(base, response.status_code, f"{page}: is this the Prometheus URL?") from None
    if not isinstance(body, dict):
        what = f"a JSON {type(body).__name__}, not Prometheus's answer: is this the Prometheus URL?"
        raise _not_prometheus(base, response.status_code, what)
    if body.get("status") == "error" and isinstance(body.get("errorType"), str):
        # Prometheus's own error, which always names its type. bad_data: the query itself is
        # wrong (a --match that is not PromQL); the others (timeout, execution, ...) may pass.
        error_type, error = body["errorType"], body.get("error")
        status = 400 if error_type == "bad_data" else 502
        said = f"{error_type}: {error}" if isinstance(error, str) and error else error_type
        raise ServekitError(status, "prometheus_error", f"Prometheus at {base}: {said}")
    if body.get("status") != "success":
        # JSON of another server: an authenticating proxy's 401 ({"message": "Unauthorized"}),
        # another API's 404. Not Prometheus's error, and never its answer.
        what = "JSON that is not Prometheus's answer: is this the Prometheus URL?"
        raise _not_prometheus(base, response.status_code, what)
    data = body.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list) or not all(isinstance(sample, dict) for sample in result):
        raise _not_prometheus(base, response.status_code, "an answer without data (a list of samples)")
    return result


def _not_prometheus(base: str, status_code: int, what: str) -> ServekitError:
    """An answer Prometheus's API does not send. From a server that failed (5xx) or throttles (429)
    a later one may be sound; anything else is another server or a proxy's page: no retry mends it."""
    later = status_code >= 500 or status_code == 429
    token = f" (is {TOKEN_ENV} the proxy's token?)" if status_code in (401, 403) else ""
    return ServekitError(
        502 if later else 400, "prometheus_answer", f"Prometheus at {base}: HTTP {status_code}{token}, {what}"
    )


def _malformed(url: str, what: str) -> ServekitError:
    return ServekitError(502, "prometheus_answer", f"Prometheus at {url.rstrip('/')}: {what}")


def _point(url: str, point: Any) -> tuple[float, float]:
    """A sample's ``[time, value]``; the value is text ("1", "NaN", "+Inf")."""
    if not isinstance(point, list) or len(point) != 2:
        what = "without a value" if point is None else f"whose value {point!r} is not a [time, value] pair"
        raise _malformed(url, f"a sample {what}")
    try:
        return float(point[0]), float(point[1])
    except (TypeError, ValueError):
        raise _malformed(url, f"a sample whose [time, value] is not two numbers ({point!r})") from None


def query(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> float | None:
    """The first sample of ``expr`` now (or ``at``); None when there is none (or it is NaN: 0/0, no data)."""
    found = samples(url, expr, timeout, at)
    if not found:
        return None
    _, value = _point(url, found[0].get("value"))
    return None if math.isnan(value) else value


def query_by(
    url: str, expr: str, label: str, timeout: float = 10.0, at: float | None = None
) -> dict[str, float]:
    """Each sample of ``expr`` now (or ``at``), by the value of its ``label`` (NaN samples left out)."""
    values = {}
    for sample in samples(url, expr, timeout, at):
        labels = sample.get("metric", {})
        if not isinstance(labels, dict):
            raise _malformed(url, f"a sample whose labels are not an object ({labels!r})")
        values[labels.get(label, "")] = _point(url, sample.get("value"))[1]
    return {key: value for key, value in values.items() if not math.isnan(value)}


def series(url: str, expr: str, timeout: float = 10.0, at: float | None = None) -> list[tuple[float, float]]:
    """The (time, value) points of the first series a range-vector ``expr`` (a subquery, say)
    evaluates to now (or ``at``); NaN points left out, none when it has no series."""
    found = samples(url, expr, timeout, at)
    if not found:
        return []
    values = found[0].get("values")
    if not isinstance(values, list):
        raise _malformed(url, "a series without a list of [time, value] pairs")
    points = [_point(url, point) for point in values]
    return [(t, v) for t, v in points if not math.isnan(v)]
