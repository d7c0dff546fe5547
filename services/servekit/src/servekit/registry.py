"""Finding services by name through the ``servekit.services`` entry point group."""

from __future__ import annotations

import difflib
import os
from importlib.metadata import entry_points

from servekit.spec import ServiceSpec

GROUP = "servekit.services"
#: Added to every service's local port, so a second ``make up`` can run beside a first.
PORT_OFFSET_ENV = "MLP_PORT_OFFSET"


class PortOffsetError(ValueError):
    """``$MLP_PORT_OFFSET`` is not an integer, or moves a port out of range."""


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def get_service(name: str) -> ServiceSpec:
    for ep in entry_points(group=GROUP, name=name):
        spec = ep.load()
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"entry point {ep.value} is not a ServiceSpec")
        return spec
    names = available()
    known = ", ".join(names) or "none installed"
    close = difflib.get_close_matches(name.casefold(), names, n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    raise LookupError(f"unknown service {name!r} (known: {known}){suggestion}")


def local_port(spec: ServiceSpec) -> int:
    """The 127.0.0.1 port ``make up`` serves ``spec`` on: its own plus ``$MLP_PORT_OFFSET``.

    ``mlp serve``, ``mlp services``, ``make monitor`` and ``make loadtest`` all ask here,
    so the offset given to ``make up`` reaches every tool that talks to its services.
    """
    raw = os.environ.get(PORT_OFFSET_ENV, "").strip() or "0"
    try:
        offset = int(raw)
    except ValueError:
        raise PortOffsetError(f"{PORT_OFFSET_ENV}={raw!r} is not an integer") from None
    port = spec.local_port + offset
    if not 1024 <= port <= 65535:
        raise PortOffsetError(
            f"{PORT_OFFSET_ENV}={offset} puts {spec.name} on port {port}, outside 1024-65535"
        )
    return port
