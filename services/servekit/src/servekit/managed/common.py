"""What the managed targets share: find the service, load the model directory, predict a batch."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pydantic_core
from pydantic import TypeAdapter

from servekit.errors import invalid_field
from servekit.inference import batch_adapter, batch_body, check_batch_size, run_model, validate_batch_json
from servekit.loading import read_model_dir
from servekit.model import ModelArtifact, Record, ServedModel
from servekit.reasons import MAX_REASONS, reasons_problem
from servekit.rest.body import too_large
from servekit.runtime import warm_up
from servekit.settings import ServiceSettings, load_settings
from servekit.spec import ServiceSpec

#: Written next to the MLflow model files by ``mlp package-sagemaker``: which service and which
#: registered version the directory holds (the registry is not reachable from a managed endpoint).
MANIFEST = "servekit.json"


def service_spec(name: str) -> ServiceSpec:
    """The ServiceSpec of ``name``: the entry point when installed, else ``<name>.service.SERVICE``.

    In a SageMaker framework container the packages are vendored into ``code/`` (no entry points).
    """
    from servekit import registry

    try:
        return registry.get_service(name)
    except LookupError:
        module = importlib.import_module(f"{name}.service")
        spec = module.SERVICE
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"{name}.service.SERVICE is not a ServiceSpec") from None
        return spec


def read_manifest(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MANIFEST
    if path.is_file():
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    return {}


@dataclass(frozen=True)
class Asked:
    """What a request asks for beside the predictions, as ``?explain=`` and ``?reasons=`` do."""

    explain: bool = False
    reasons: int = 0

    #: The options a request may give, and none other: a misspelt one is refused, not ignored.
    OPTIONS: ClassVar[tuple[str, ...]] = ("explain", "reasons")

    @classmethod
    def of(cls, options: Mapping[str, Any], where: str = "") -> Asked:
        """From JSON ``options`` (``explain``: a boolean, ``reasons``: an integer 0 to
        MAX_REASONS); a 422 naming ``<where><option>`` when either is not, or for another option."""
        for name in options:
            if name not in cls.OPTIONS:
                raise invalid_field(
                    f"{where}{name}", f"not an option; the options are {', '.join(cls.OPTIONS)}"
                )
        explain, reasons = options.get("explain", False), options.get("reasons", 0)
        if not isinstance(explain, bool):
            raise invalid_field(f"{where}explain", f"{as_json(explain)} is not true or false")
        if reasons_problem(reasons):
            # reasons_problem's words, with the value as the client wrote it (true, not True).
            raise invalid_field(
                f"{where}reasons", f"{as_json(reasons)} is not an integer from 0 to {MAX_REASONS}"
            )
        return cls(explain, reasons)


def as_json(value: Any) -> str:
    """``value`` spelt as JSON spells it (``true``, ``null``, ``"yes"``): a refusal quotes what the
    client sent, and a client sent JSON (or text), not Python's ``True``, ``None`` or ``'yes'``."""
    try:
        return pydantic_core.to_json(value, inf_nan_mode="constants").decode()
    except pydantic_core.PydanticSerializationError:
        return repr(value)


@dataclass(frozen=True)
class LoadedModel:
    """A served model, the validator of its service's batch requests and its limits."""

    spec: ServiceSpec
    model: ServedModel
    batch: TypeAdapter[Any]
    #: ``<SVC>_MAX_BATCH_SIZE``, the same setting as the REST service's.
    max_batch_size: int
    #: ``<SVC>_MAX_BODY_BYTES``, the same setting as the REST service's (its default when not given).
    max_body_bytes: int = int(ServiceSettings.model_fields["max_body_bytes"].default)

    def check_body_size(self, size: int) -> None:
        """REST's 413 when a body of ``size`` bytes is over ``<SVC>_MAX_BODY_BYTES``: checked before
        it is parsed, as REST refuses it before reading it all (a bigger one costs every parse)."""
        if size > self.max_body_bytes:
            raise too_large(self.max_body_bytes)

    def validated(self, body: bytes | str) -> list[Record]:
        """Records of a ``{"instances": [...]}`` JSON body, as ``POST /predict/batch`` takes them:
        a 413 naming ``<SVC>_MAX_BATCH_SIZE`` when over the limit whatever the instances hold,
        else a 422 naming each bad field."""
        return validate_batch_json(self.batch, body, self.max_batch_size, self.spec.name)

    def limit(self, count: int) -> None:
        """A 413 naming ``<SVC>_MAX_BATCH_SIZE`` when ``count`` instances are over the limit: for
        instances read from another format (CSV rows), before any of them is checked."""
        check_batch_size(count, self.max_batch_size, self.spec.name)

    def predict(self, records: list[Record], asked: Asked) -> dict[str, Any]:
        """The body ``POST /predict/batch`` returns for the same records and options."""
        return batch_body(self.model, run_model(self.model, records, asked.explain, reasons=asked.reasons))


def served_model(spec: ServiceSpec, artifact: ModelArtifact) -> ServedModel:
    """``artifact`` as ``spec`` serves it, warmed up on its input example."""
    model = spec.model(artifact)
    warm_up(model)
    return model


def from_artifact(spec: ServiceSpec, artifact: ModelArtifact) -> LoadedModel:
    model = served_model(spec, artifact)
    settings = load_settings(spec.name)
    return LoadedModel(
        spec, model, batch_adapter(spec.request), settings.max_batch_size, settings.max_body_bytes
    )


def load_model_dir(model_dir: str | Path, service: str | None = None) -> LoadedModel:
    """Load an MLflow model directory (as packaged by ``mlp package-sagemaker``) and warm it up."""
    return from_artifact(*read_model_artifact(model_dir, service))


def read_model_artifact(
    model_dir: str | Path, service: str | None = None, uri: str | None = None
) -> tuple[ServiceSpec, ModelArtifact]:
    """The service and the model of an MLflow model directory (``servekit.json`` describes it).

    ``uri``: where the model came from, when the directory is a download of it that will be gone
    (``mlp package-sagemaker``'s check): what the model's log lines name it by.
    """
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    name = service or manifest.get("service") or os.environ.get("MLP_SERVICE")
    if not name:
        raise ValueError(f"no service named: {model_dir / MANIFEST} is missing and MLP_SERVICE is not set")
    spec = service_spec(str(name))
    pipeline, metadata = read_model_dir(spec.name, model_dir)
    artifact = ModelArtifact(
        name=spec.name,
        pipeline=pipeline,
        metadata=metadata,
        version=str(manifest.get("version", "unregistered")),
        run_id=str(manifest.get("run_id", "")),
        uri=uri or str(manifest.get("uri", str(model_dir))),
        registry_uri=str(manifest.get("registry_uri", "")),
        training_metrics=dict(manifest.get("training_metrics", {})),
    )
    return spec, artifact


def require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise invalid_field("body", 'expected a JSON object {"instances": [...]}')
    return body
