"""What a key opens: every endpoint, or with ``scope=read`` the metadata only; and what needs none.

A :class:`Key` is what a line of the keys file grants, and :meth:`Key.opens` is the one rule
every request's key is checked by (over HTTP and gRPC alike), so it lives beside the endpoint
lists it reads. Endpoints are named by their labels (``servekit.metrics.names``), the names
the metrics count them by, so a path and a gRPC method are checked alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from servekit.metrics.names import (
    DOCS_ASSETS,
    GRPC_METHOD,
    GRPC_METHODS,
    NO_ENDPOINT,
    OPEN_INFERENCE_ENDPOINTS,
    grpc_endpoint,
)

#: A key that may read metadata, and nothing that runs the model (a line's ``scope=read``). A line
#: without a scope opens everything: the lines written before scopes existed mean that.
READ_SCOPE = "read"
SCOPES = (READ_SCOPE,)
#: What a read-only key opens, by endpoint label (``servekit.metrics.names``): a pod's metadata,
#: as on-call reads it (``/model``'s refresh, canary, live evaluation and baselines), and the
#: Open Inference Protocol's metadata (``/v2/models/{model}/versions/{v}`` has its model's label).
READ_ENDPOINTS = frozenset(
    {
        "/model",
        "/model/card",
        *(path for path in OPEN_INFERENCE_ENDPOINTS if not path.endswith(("/live", "/ready"))),
        *(grpc_endpoint(method) for method in GRPC_METHODS if method.endswith("Metadata")),
    }
)
#: ... called with a method that changes nothing (a gRPC call's method label is GRPC: the
#: endpoints above are its metadata calls only).
READ_METHODS = frozenset({"GET", "HEAD", GRPC_METHOD})
#: A read key GETs a path no endpoint has (``NO_ENDPOINT``) as a full key does, and gets the
#: router's 404 (``/model/`` too: trailing slashes are not redirected). Safe because nothing that runs the
#: model answers GET or HEAD (each is a POST route): whatever such a path reaches, the model is
#: not run. Over HTTP only: a gRPC call to no method is not metadata.
HTTP_READ_METHODS = frozenset({"GET", "HEAD"})
#: What a refusal of a read-only key says it may do.
READABLE = (
    "GET /model, /model/card, /v2 and /v2/models/<model>[/versions/<version>] "
    "(gRPC ServerMetadata and ModelMetadata)"
)
#: What answers without a key: probes (the kubelet's, the load balancer's, the Open Inference
#: Protocol's), Prometheus's scrape, and the API's documentation. Everything else needs one,
#: an unknown path included, so a client without a key learns nothing from a 404.
OPEN_ENDPOINTS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/docs/oauth2-redirect",
        DOCS_ASSETS,
        "/redoc",
        "/openapi.json",
        *(path for path in OPEN_INFERENCE_ENDPOINTS if path.endswith(("/live", "/ready"))),
        *(grpc_endpoint(method) for method in GRPC_METHODS if method.endswith(("Live", "Ready"))),
    }
)


@dataclass(frozen=True)
class Key:
    """Whose a key is, when it stops working (None: never), and what it opens (None: everything)."""

    client: str
    expires: datetime | None = None
    scope: str | None = None

    def opens(self, endpoint: str, method: str) -> bool:
        """Whether a request to ``endpoint`` (its label) with ``method`` may go ahead with this key."""
        return (
            self.scope is None
            or (endpoint in READ_ENDPOINTS and method in READ_METHODS)
            or (endpoint == NO_ENDPOINT and method in HTTP_READ_METHODS)
        )


def not_a_scope(scope: str) -> str:
    return (
        f"scope={scope!r} is not a scope: write scope={READ_SCOPE} (metadata only), or leave it out "
        "for a key that opens everything"
    )
