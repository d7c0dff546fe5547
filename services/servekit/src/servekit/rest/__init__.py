"""The HTTP transport: a thin FastAPI layer over :class:`~servekit.model.ServedModel`."""

from servekit.rest.app import create_app

__all__ = ["create_app"]
