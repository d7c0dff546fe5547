"""Serving under a path prefix for ingresses that do not rewrite paths (GKE's does not).

``/bankchurn/predict`` is routed as ``/predict`` with ``root_path=/bankchurn`` (so
the OpenAPI document links correctly), while ``/healthz`` without the prefix keeps
working for kubelet probes that hit the pod directly.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class PathPrefixMiddleware:
    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.prefix:
            path: str = scope["path"]
            if path == self.prefix or path.startswith(self.prefix + "/"):
                scope = {**scope, "root_path": scope.get("root_path", "") + self.prefix}
        await self.app(scope, receive, send)
