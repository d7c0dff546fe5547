"""Finding services by name through the ``servekit.services`` entry point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from servekit.spec import ServiceSpec

GROUP = "servekit.services"


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def get_service(name: str) -> ServiceSpec:
    for ep in entry_points(group=GROUP, name=name):
        spec = ep.load()
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"entry point {ep.value} is not a ServiceSpec")
        return spec
    known = ", ".join(available()) or "none installed"
    raise LookupError(f"unknown service {name!r} (known: {known})")
