"""Which registered model a ``models:/`` URI names, checked against the service it is loaded for.

A version of another service's model may deserialise, and then fails far from the cause (an
untrusted type, a column it lacks), or not at all: a package that says one service and holds
another's model. Named in the URI, the mismatch is a usage error before anything is downloaded.
"""

from __future__ import annotations

import re

from servekit.errors import ServekitError

#: The highest version number a registry can hold: MLflow stores it as a 64-bit signed integer, and
#: a larger one failed inside the store (SQLite's "Python int too large", a server's 500 retried
#: until the client gave up) rather than be reported as a version the registry does not hold.
MAX_REGISTRY_VERSION = 2**63 - 1


def holdable_version(version: str) -> bool:
    """Whether ``version`` (digits) is a number a registry could hold: 1 to MAX_REGISTRY_VERSION."""
    return version.isdecimal() and 1 <= int(version) <= MAX_REGISTRY_VERSION


def registered_name(model_uri: str) -> str | None:
    """The registered model a ``models:/`` URI names (``models:/name/latest`` too); None for others."""
    if not model_uri.startswith("models:/"):
        return None
    return re.split(r"[/@]", model_uri.removeprefix("models:/"), maxsplit=1)[0]


def check_service(model_uri: str, service: str, consequence: str) -> None:
    """A 400 ServekitError when ``model_uri`` names a version of a model other than ``service``'s;
    ``consequence`` says what loading it would have done."""
    named = registered_name(model_uri)
    if named is not None and named != service:
        raise ServekitError(
            400,
            "another_model",
            f"{model_uri} is a version of {named}, not of {service}: {consequence}",
        )
