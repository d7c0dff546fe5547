"""One log line per answered request, for whoever holds a request id and asks what became of it.

Metrics count requests; they cannot say why *this* request, the one a client team quotes
by its ``X-Request-ID``, got a 422. ``<SVC>_ACCESS_LOG`` chooses which requests get a line:

* ``errors`` (the default): every 4xx and 5xx answer, with the error code and each field
  named in the error body;
* ``all``: every request, successes at INFO;
* ``off``: none.

What a line never holds: the request body or any field's value. A churn request carries a
customer's age, balance and salary, and a log pipeline is no place for them; field names
and pydantic's problem text ("Input should be less than or equal to 100") are enough to
fix a client. Probes (``/healthz``, ``/readyz``) are not logged either: the kubelet calls
them every few seconds, and the model loader already logs why a pod is not ready.

A token bucket caps the lines per second (``<SVC>_ACCESS_LOG_MAX_PER_SECOND``): a client
looping on a bad request would otherwise buy a lot of log ingestion (Cloud Logging and
CloudWatch both bill per GiB). The next line written says how many were left out.

In JSON, the line carries Cloud Logging's ``httpRequest`` (method, URL, status, sizes,
latency, user agent, remote address), which the Logs Explorer shows as a request entry and
CloudWatch Logs Insights queries as ``httpRequest.status``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Scope

from servekit.errors import ServekitError
from servekit.metrics.names import ACCESS_LOGGER, PROBE_ENDPOINTS
from servekit.settings import AccessLogMode

#: Where the error handlers leave the ServekitError a response was made from.
ERROR_KEY = "servekit.error"
PROBE_PATHS = frozenset(PROBE_ENDPOINTS)
#: Field problems a line lists; a 256-row batch can hold thousands, the body has them all.
MAX_FIELDS = 5
MAX_URL_LENGTH = 512
MAX_USER_AGENT_LENGTH = 256

logger = logging.getLogger(ACCESS_LOGGER)


def error_of(scope: Scope) -> ServekitError | None:
    error = scope.get("extensions", {}).get(ERROR_KEY)
    return error if isinstance(error, ServekitError) else None


def remember_error(scope: Scope, error: ServekitError) -> None:
    scope.setdefault("extensions", {})[ERROR_KEY] = error


def unexpected(exc: Exception) -> ServekitError:
    """The 500 an exception becomes, for the log: its type only, as its text may quote input."""
    return ServekitError(500, "internal_error", type(exc).__name__)


class LineBudget:
    """A token bucket of log lines: ``per_second`` on average, as many (and at least one) in one burst."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        # A line takes a whole token: a bucket of fewer than one never holds enough for a line.
        self.burst = max(1.0, per_second)
        self.clock = clock
        self.tokens = self.burst
        self.last = clock()
        self.left_out = 0

    def take(self) -> int | None:
        """None when over budget; else how many lines were left out since the last one taken."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens < 1:
            self.left_out += 1
            return None
        self.tokens -= 1
        left_out, self.left_out = self.left_out, 0
        return left_out


def _url(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    # The path as the client sent it: servekit's path prefix leaves it whole (see rest/prefix.py).
    url = str(scope["path"]) + (f"?{query}" if query else "")
    return url[:MAX_URL_LENGTH]


class AccessLog:
    """Decides whether a finished request gets a line, and writes it."""

    def __init__(
        self,
        mode: AccessLogMode,
        max_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        on_left_out: Callable[[], None] = lambda: None,
    ) -> None:
        self.mode = mode
        self.budget = LineBudget(max_per_second, clock)
        self.on_left_out = on_left_out

    def wanted(self, path: str, status: int) -> bool:
        if self.mode == "off" or path in PROBE_PATHS:
            return False
        return self.mode == "all" or status >= 400

    def record(self, scope: Scope, endpoint: str, status: int, seconds: float, response_bytes: int) -> None:
        level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        # A line the log level drops spends none of the budget.
        if not self.wanted(endpoint, status) or not logger.isEnabledFor(level):
            return
        left_out = self.budget.take()
        if left_out is None:
            self.on_left_out()
            return
        method = scope["method"]
        url = _url(scope)
        fields: dict[str, Any] = {
            "httpRequest": self._http_request(
                scope, method, url, status, seconds=seconds, response_bytes=response_bytes
            )
        }
        message = f"{method} {url} {status} in {seconds * 1e3:.2f} ms"
        error = error_of(scope)
        if error is not None:
            problems = [problem.as_dict() for problem in error.fields[:MAX_FIELDS]]
            fields["error"] = {"code": error.error, "fields": problems, "field_count": len(error.fields)}
            # The message a client got: it names fields and problems, never a value.
            message += f": {error.error}: {error.message}"
        if left_out:
            fields["access_lines_left_out"] = left_out
            message += f" ({left_out} earlier lines left out, over {self.budget.per_second:g} per second)"
        logger.log(level, message, extra={"json_fields": fields})

    @staticmethod
    def _http_request(
        scope: Scope, method: str, url: str, status: int, *, seconds: float, response_bytes: int
    ) -> dict[str, Any]:
        # Cloud Logging's HttpRequest names and formats (sizes as strings, latency as "0.001234s").
        entry: dict[str, Any] = {
            "requestMethod": method,
            "requestUrl": url,
            "status": status,
            "latency": f"{seconds:.6f}s",
            "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
            "responseSize": str(response_bytes),
        }
        headers = Headers(scope=scope)
        request_size = headers.get("content-length", "")
        if request_size.isdigit():
            entry["requestSize"] = request_size
        user_agent = headers.get("user-agent", "")
        if user_agent:
            entry["userAgent"] = user_agent[:MAX_USER_AGENT_LENGTH]
        client = scope.get("client")
        if client:
            entry["remoteIp"] = client[0]
        return entry
