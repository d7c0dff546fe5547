"""Loading a model from the MLflow registry (``models:/name@alias``, ``models:/name/3``, ``runs:/...``)."""

from __future__ import annotations

import importlib
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from servekit import serialization
from servekit.model import ModelArtifact
from servekit.model_uri import MAX_REGISTRY_VERSION, holdable_version
from servekit.redaction import redact
from servekit.training.segments import in_recipe_order

if TYPE_CHECKING:
    from servekit.training.recipe import TrainingRecipe

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
#: A run's artifact (``runs:/<run_id>/model``): the run its figures are read from, as a registered
#: version's are.
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)(?:/|$)")

# The MLflow client retries an unreachable server for minutes by default; the
# runtime has its own backoff and must report each failure promptly. One retry, which
# urllib3 makes at once (it waits only before a second), is still needed: a pooled
# connection the server closes at its keep-alive timeout just as we reuse it fails
# with RemoteDisconnected, although the server is up (CI met it at uvicorn's 5 s).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


#: A pod loads its models (served, shadow, canary) and reads the registry in several threads at
#: once. Two threads importing mlflow for the first time, one through a submodule, can be handed
#: each other's half-initialised module (Python breaks the circular wait that way), and the
#: process then fails every load for good; so the first import is made by one thread at a time.
_FIRST_IMPORT = threading.Lock()


def _import_mlflow() -> None:
    with _FIRST_IMPORT:
        import mlflow.models
        import mlflow.tracking  # noqa: F401


def unchecked_client(tracking_uri: str) -> Any:
    """An MLflow client of the registry at ``tracking_uri``, not asked first whether it answers.

    For the serving path, whose every call is retried and whose failures are reported as the step
    that failed (:class:`ModelLoadError`): a check would cost a round trip per load. A command
    takes ``servekit.mlflow_registry.registry_client``, checked, so an unreachable server is one
    line before any work.
    """
    _import_mlflow()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says which step failed and why.

    ``missing``: the registry answered that the name, version or alias is not there, or the run
    of the version is gone, which no retry mends (a batch job fails for good on it); any other
    failure may pass. Of a URI that follows no alias, also what no retry mends either: a URI
    MLflow cannot read, a run or an artifact path the store does not hold, a local path that is
    not a model's directory. Not of a version an alias names that fails to download: a serving
    runtime reads ``missing`` only of a URI following an alias, as the alias naming no version
    (``ModelRuntime._names_no_version``), and a version that does not load must still be a
    failure there.

    The message is shown (the logs, ``GET /model``'s canary and shadow, a command's output; not
    ``/readyz``, which gives the kind of failure to anyone), so the credentials of the
    tracking URI it names, or of a URI its cause quotes, are masked in it.
    """

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(redact(message))
        self.missing = missing


#: The registry's error codes for a name, version or alias it does not hold (an alias: the
#: second, from get_model_version_by_alias).
NOT_IN_THE_REGISTRY = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def run_gone(exc: BaseException) -> bool:
    """Whether reading a run failed because the tracking server does not hold it (deleted, then
    garbage-collected by ``mlflow gc``): no retry brings it back, unlike a server that did not
    answer. A deleted run not yet collected still reads."""
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def run_gone_problem(run_id: str) -> str:
    """How a command names a run ``run_gone`` found missing."""
    return f"its run {run_id} is gone (deleted and garbage-collected?)"


@dataclass(frozen=True)
class RegistryRef:
    name: str
    version: str
    run_id: str
    download_uri: str


def resolve(model_uri: str, tracking_uri: str) -> RegistryRef | None:
    """The registered version a ``models:/`` URI points at, or None for other URIs."""
    match = _REGISTRY_URI.match(model_uri)
    if match is None:
        return None
    name = match["name"]
    if match["version"] and not holdable_version(match["version"]):
        # Never asked: MLflow's store fails on a number it cannot hold (a server's 500, retried).
        raise ModelLoadError(
            f"resolving {model_uri} at {tracking_uri}: {name} has no version {match['version']} "
            f"(a registry numbers its versions up to {MAX_REGISTRY_VERSION})",
            missing=True,
        )
    client = unchecked_client(tracking_uri)
    try:
        if match["alias"]:
            mv = client.get_model_version_by_alias(name, match["alias"])
        else:
            mv = client.get_model_version(name, match["version"])
    except Exception as exc:
        missing = getattr(exc, "error_code", None) in NOT_IN_THE_REGISTRY
        raise ModelLoadError(
            f"resolving {model_uri} at {tracking_uri}: {one_line(exc)}", missing=missing
        ) from exc
    return RegistryRef(name, str(mv.version), mv.run_id or "", f"models:/{name}/{mv.version}")


def follows_an_alias(model_uri: str) -> bool:
    """Whether the URI names an alias (which may move) rather than a fixed version or run."""
    match = _REGISTRY_URI.match(model_uri)
    return match is not None and match["alias"] is not None


def registry_version(model_uri: str, tracking_uri: str) -> str:
    """The version a ``models:/`` URI points at now (one registry call, nothing downloaded)."""
    ref = resolve(model_uri, tracking_uri)
    if ref is None:
        raise ValueError(f"{model_uri} is not a models:/ URI")
    return ref.version


def registry_model_tag(model_uri: str, key: str, tracking_uri: str) -> str | None:
    """The tag ``key`` of the registered model a ``models:/`` URI names (None: no such tag)."""
    match = _REGISTRY_URI.match(model_uri)
    if match is None:
        raise ValueError(f"{model_uri} is not a models:/ URI")
    tags: dict[str, str] = unchecked_client(tracking_uri).get_registered_model(match["name"]).tags or {}
    return tags.get(key)


def registry_source(
    name: str, model_uri: str, tracking_uri: str
) -> tuple[Callable[[], ModelArtifact], Callable[[], str] | None]:
    """What loads ``model_uri`` and, when it names an alias, what asks which version it names now."""

    def source() -> ModelArtifact:
        return load_artifact(name, model_uri, tracking_uri)

    if not follows_an_alias(model_uri):
        return source, None

    def probe() -> str:
        return registry_version(model_uri, tracking_uri)

    return source, probe


def use_registry(tracking_uri: str) -> None:
    """Point MLflow's process-wide tracking and registry URIs at ``tracking_uri``.

    ``mlflow.artifacts.download_artifacts`` resolves a ``models:/`` URI through the registry URI,
    whatever store the caller was given: left unset it looks in a new ``mlflow.db`` in the working
    directory, and set by an earlier call it looks in that call's registry.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def load_artifact(name: str, model_uri: str, tracking_uri: str) -> ModelArtifact:
    """Download, unpickle and describe the model at ``model_uri``."""
    _import_mlflow()
    import mlflow

    use_registry(tracking_uri)
    refuse_local_non_model(model_uri)
    ref = resolve(model_uri, tracking_uri)
    download_uri = ref.download_uri if ref else model_uri
    with tempfile.TemporaryDirectory(prefix="servekit-model-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=download_uri, dst_path=tmp)
        except Exception as exc:
            missing = never_there(exc) and not follows_an_alias(model_uri)
            raise ModelLoadError(f"downloading {download_uri}: {one_line(exc)}", missing=missing) from exc
        try:
            pipeline, metadata = read_model_dir(name, Path(local))
        except Exception as exc:
            raise ModelLoadError(f"deserialising {download_uri}: {one_line(exc)}") from exc
    run_id = ref.run_id if ref else run_of(model_uri)
    metrics = run_figures(run_id, tracking_uri, ref or model_uri) if run_id else {}
    return ModelArtifact(
        name=name,
        pipeline=pipeline,
        metadata=metadata,
        version=ref.version if ref else "unregistered",
        run_id=run_id,
        uri=model_uri,
        registry_uri=tracking_uri,
        training_metrics=metrics,
    )


#: How MLflow words a ``models:/`` URI it cannot parse (``models:/bankchurn@``, an empty alias);
#: it raises it as an INTERNAL_ERROR, although nothing was asked of a server.
_IMPROPER_MODEL_URI = "Not a proper models:/ URI"


def never_there(exc: BaseException) -> bool:
    """Whether a download failed for what no retry mends: the store answered that the run, the
    version or the artifact path is not there (``runs:/abc/model``, ``runs:/<run>/nope``, a local
    path), or the URI is not one MLflow reads (``models:/bankchurn/abc``, ``models:/bankchurn@``).
    Not a connection error, a timeout or a 5xx: those may pass."""
    if getattr(exc, "error_code", None) in NOT_IN_THE_REGISTRY:
        return True
    return str(getattr(exc, "message", "")).startswith(_IMPROPER_MODEL_URI)


def local_path(model_uri: str) -> Path | None:
    """The file or directory a model URI names on this machine (a path, or ``file://``); None for
    a registry's, a run's or a bucket's."""
    parts = urlsplit(model_uri)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return Path(url2pathname(parts.path))
    if parts.scheme == "":
        return Path(model_uri)
    return None


def refuse_local_non_model(model_uri: str) -> None:
    """Refuse a local path that is not an MLflow model's directory, before MLflow copies it: a
    directory without an MLmodel file (``--model-uri /tmp`` copied all of /tmp, to fail on a
    socket in it), a file, or nothing at all."""
    path = local_path(model_uri)
    if path is None:
        return
    if not path.exists():
        problem = "no such file or directory"
    elif not path.is_dir():
        problem = "a file, not an MLflow model's directory"
    elif not (path / "MLmodel").is_file():
        problem = "a directory without an MLmodel file, not an MLflow model's"
    else:
        return
    raise ModelLoadError(
        f"reading {model_uri}: {problem}; name the directory an MLflow model was saved in",
        missing=True,
    )


def run_figures(run_id: str, tracking_uri: str, of: RegistryRef | str) -> dict[str, float]:
    """The metrics of ``run_id``, the run of ``of`` (a registered version, or a ``runs:/`` URI).

    A ModelLoadError when they cannot be read; ``missing`` when the run is gone, as ``mlp
    promote`` refuses such a version: a retry would find it gone again.
    """
    import mlflow

    try:
        return dict(mlflow.MlflowClient(tracking_uri).get_run(run_id).data.metrics)
    except Exception as exc:
        if run_gone(exc):
            which = f"{of.name} v{of.version}" if isinstance(of, RegistryRef) else of
            raise ModelLoadError(
                f"{which}: {run_gone_problem(run_id)}, and the version's figures are read from it: "
                "name another version, or register the model again from a run that is kept",
                missing=True,
            ) from exc
        raise ModelLoadError(f"reading run {run_id}: {one_line(exc)}") from exc


def run_of(model_uri: str) -> str:
    """The run a ``runs:/<run_id>/...`` URI names; "" for any other URI.

    A canary or shadow served from its run (``runs:/``) has that run's figures, as a version
    served from the registry has its run's: without it ``GET /model`` and the card had none.
    """
    match = _RUN_URI.match(model_uri)
    return match["run_id"] if match else ""


def read_model_dir(name: str, model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The pipeline (skops, allow-listed types) and the metadata of a local MLflow model directory.

    Shared by the registry loader and the managed targets (SageMaker, Vertex AI), which get
    the same directory unpacked from ``model.tar.gz`` or a bucket. The MLmodel file sorts the
    metadata's keys: the groups of rows are put back in the order training reported them.
    """
    from mlflow.models import Model

    pipeline = serialization.load(model_dir, packages=(name,))
    recipe = service_recipe(name)
    if recipe is not None:
        recipe.loaded(pipeline)
    metadata = Model.load(str(model_dir)).metadata or {}
    return pipeline, in_recipe_order(dict(metadata))


def service_recipe(name: str) -> TrainingRecipe | None:
    """The recipe of service ``name``, whose ``loaded`` settles its pipelines; None for a name no
    service has (a test's model).

    Its entry point, else ``<name>.service.SERVICE``: a SageMaker framework container vendors the
    packages without their entry points (as ``servekit.managed.common.service_spec`` finds them).
    """
    from servekit import registry
    from servekit.spec import ServiceSpec

    try:
        return registry.get_service(name).recipe
    except LookupError:
        pass
    try:
        module = importlib.import_module(f"{name}.service")
    except ModuleNotFoundError as exc:
        if exc.name in (name, f"{name}.service"):
            return None
        raise  # the service's module is there but cannot import: as loud as a failed load
    spec = getattr(module, "SERVICE", None)
    return spec.recipe if isinstance(spec, ServiceSpec) else None


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, so one failure is one log line, credentials masked.

    A long message keeps its start and its end: urllib3 and MLflow put the cause last. MLflow
    quotes the tracking URI, user info and all, and a presigned URL's signature in its messages.
    """
    text = redact(" ".join(str(exc).split()))
    if len(text) > 500:
        text = f"{text[:247]} ... {text[-248:]}"
    return f"{type(exc).__name__}: {text}"
