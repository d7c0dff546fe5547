"""What both transports of the Open Inference Protocol (REST ``/v2`` and gRPC) decide alike.

Which model a request may name, which version is served, and what the server says of
itself: one place, so a pinned version is refused in the same words over HTTP and gRPC.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

from servekit.errors import FieldProblem, ServekitError
from servekit.routing import Route

if TYPE_CHECKING:
    from servekit.model import ServedModel
    from servekit.routing import CanaryRouter
    from servekit.runtime import ModelRuntime

#: Written next to these sources by ``mlp package-sagemaker``, which vendors servekit as source.
VERSION_FILE = "VERSION"


def _servekit_version() -> str:
    try:
        return package_version("servekit")
    except PackageNotFoundError:
        # Vendored (a SageMaker or Vertex package's code/servekit/): no distribution metadata, and
        # a managed endpoint must load all the same.
        stamp = Path(__file__).with_name(VERSION_FILE)
        return stamp.read_text().strip() if stamp.is_file() else "unknown"


#: The server's version in the server metadata: servekit's.
SERVER_VERSION = _servekit_version()
#: The protocol's extensions this server implements, by Triton's names (binary requests and
#: binary outputs when asked; over gRPC, raw tensor contents are the protocol's own).
EXTENSIONS = ["binary_tensor_data"]


class ProtocolModel:
    """The one model a service serves, as the protocol's requests name it.

    With a canary, two versions are served: a request pinning either is answered by it.
    """

    def __init__(
        self, name: str, runtime: ModelRuntime, *, canary: CanaryRouter | None = None, where: str = ""
    ) -> None:
        self.name = name
        self.runtime = runtime
        self.canary = canary
        #: Where the transport carries the names: ``path.`` for REST, none in a gRPC message.
        self.where = where

    def check_name(self, model_name: str) -> None:
        if model_name != self.name:
            problem = f"no model {model_name!r} here; this service serves {self.name!r}"
            field = FieldProblem(f"{self.where}model_name", problem)
            raise ServekitError(404, "model_not_found", problem, (field,))

    def served(self, model_name: str, model_version: str | None = None) -> ServedModel:
        """The served model, if it is the one named (404 if not; 503 before loading)."""
        self.check_name(model_name)
        model = self.runtime.require()
        if model_version and model_version != model.artifact.version:
            canary = self.canary.runtime.model if self.canary else None
            if canary is None or canary.artifact.version != model_version:
                raise self.version_not_served(model_version, model)
            return canary
        return model

    def route(self, model_version: str | None, route: Route) -> Route:
        """A pinned version goes to the variant that serves it, whatever the share."""
        if not model_version or self.canary is None:
            return route
        variant = self.canary.variant_serving(self.runtime.require(), model_version)
        return route if variant is None else Route(variant, route.key)

    def version_not_served(self, asked: str, model: ServedModel) -> ServekitError:
        canary = self.canary.runtime.model if self.canary else None
        also = f", and version {canary.artifact.version} as a canary" if canary else ""
        problem = (
            f"version {asked} of {self.name} is not served here; version {model.artifact.version} is "
            f"(from {model.artifact.uri}){also}; leave the version out to use it"
        )
        field = FieldProblem(f"{self.where}model_version", problem)
        return ServekitError(404, "model_version_not_served", problem, (field,))

    def answered_by(self, model: ServedModel, model_version: str | None) -> None:
        """A 404 if the alias moved between the check and the prediction of a pinned version."""
        if model_version and model.artifact.version != model_version:
            raise self.version_not_served(model_version, model)
