"""The registry's aliases (``champion``, ``challenger``, ``canary``) and what moves them by hand:
``mlp promote``, ``mlp canary`` (and ``mlp rollout`` through them)."""

from __future__ import annotations

import tempfile
from typing import Any

from servekit import mlflow_registry
from servekit.errors import ServekitError
from servekit.loading import one_line, run_gone, run_gone_problem, use_registry
from servekit.model_uri import holdable_version
from servekit.routing import SHARE_TAG
from servekit.settings import ServiceSettings
from servekit.spec import ServiceSpec
from servekit.training.versions import live_evidence

CHAMPION = "champion"
CHALLENGER = "challenger"
#: The alias a canary rollout serves (``<SVC>_CANARY_MODEL_URI=models:/<svc>@canary``).
CANARY = "canary"
#: MLflow's (deprecated) stage of a version retired from use.
ARCHIVED = "Archived"


def current_champion(client: Any, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def move_champion(client: Any, name: str, version: str, previous: str | None) -> str:
    """Point ``champion`` at ``version``, taking an ended canary with it; what became of the canary.

    A canary ended by ``mlp canary --end`` is the ``canary`` alias left on the champion's version,
    which the pods then serve for every request. Left on the old champion, it would be a canary
    again: the demoted version answering the canary's share of the requests. A canary of a third
    version is running: it stays, with its share. One on ``version`` ends with its promotion.
    """
    found = client.get_registered_model(name).aliases.get(CANARY)
    canary = None if found is None else str(found)
    prefix = name.upper()
    if canary is not None and canary == previous and canary != version:
        # The canary first: a pod reading the registry between the two moves sends the canary's
        # share to the new champion a moment early, never to the version being demoted.
        client.set_registered_model_alias(name, CANARY, version)
        moved = (
            f"{name}: {CANARY} (ended on v{previous}) moves with it to v{version}: services with "
            f"{prefix}_CANARY_MODEL_URI answer every request with the {CHAMPION}"
        )
    else:
        moved = ""
    client.set_registered_model_alias(name, CHAMPION, version)
    if canary is not None and canary not in (previous, version):
        return (
            f"{name}: {CANARY} v{canary} still answers its share of the requests of services with "
            f"{prefix}_CANARY_MODEL_URI; `mlp canary {name} --end` ends it on v{version}"
        )
    # No canary runs now: the next starts at the pods' own share.
    write_canary_share(client, name, None)
    return moved


def promote(spec: ServiceSpec, tracking_uri: str, version: str, decision: str = "promoted by hand") -> str:
    """Point ``champion`` at ``version``; returns what changed.

    ``decision``: the reason recorded on the version (``mlp versions`` shows it), by hand unless
    the caller (``mlp rollout``) says otherwise.
    """
    client = mlflow_registry.registry_client(tracking_uri)
    promoted = _require_version(client, spec.name, version)
    previous = current_champion(client, spec.name)
    if previous == version:
        # Nothing to do, and nothing to undo: a running canary keeps its share, and the version
        # keeps the reason it was made champion for.
        return f"{spec.name}: v{version} is already {CHAMPION}; nothing changed"
    _require_servable(spec, client, tracking_uri, promoted)
    canary = move_champion(client, spec.name, version, previous)
    client.set_model_version_tag(spec.name, version, "promotion.decision", decision)
    was = f"v{previous}" if previous else "none"
    return "\n".join(
        [
            f"{spec.name}: {CHAMPION} is now v{version} (was {was}); services serving "
            f"models:/{spec.name}@{CHAMPION} switch to it within {_refresh_wait(spec)}",
            *([canary] if canary else []),
            f"{spec.name}: {live_evidence(version, dict(promoted.tags or {}))}",
        ]
    )


def set_canary(
    spec: ServiceSpec, tracking_uri: str, version: str | None, percent: float | None = None
) -> str:
    """Point ``canary`` at ``version``, or (None) at the champion's, which ends the canary.

    ``percent``: the share of requests the pods send it (the registered model's ``SHARE_TAG``,
    which they read at every refresh); None removes the tag, so each pod's
    ``<SVC>_CANARY_TRAFFIC_PERCENT`` holds.
    """
    client = mlflow_registry.registry_client(tracking_uri)
    champion = current_champion(client, spec.name)
    if version is None:
        if champion is None:
            raise ServekitError(404, "no_champion", f"{spec.name} has no champion to end the canary on")
        version = champion
    else:
        candidate = _require_version(client, spec.name, version)
        if version != champion:
            # As mlp promote does: pods told to send a share to a version they cannot load keep
            # sending it to the canary they have, which this command would have said it replaced.
            _require_servable(spec, client, tracking_uri, candidate)
    if version == champion and percent is not None:
        # A canary on the champion's version answers as the stable model does: a share of it
        # would be set and then never used, as if it had been.
        raise ServekitError(
            409,
            "canary_is_champion",
            f"{spec.name} v{version} is the {CHAMPION}: as the canary it gets no share of its own, "
            f"so --percent {percent:g} would do nothing; name another version, or drop --percent",
        )
    # The share before the alias: a pod that loads the new version at once reads its share then.
    write_canary_share(client, spec.name, None if version == champion else percent)
    client.set_registered_model_alias(spec.name, CANARY, version)
    prefix = spec.name.upper()
    uri = f"models:/{spec.name}@{CANARY}"
    if version == champion:
        return (
            f"{spec.name}: {CANARY} is now v{version}, the champion: services with "
            f"{prefix}_CANARY_MODEL_URI={uri} answer every request with v{version} within "
            f"{_refresh_wait(spec)}"
        )
    share = f"{percent:g} %" if percent is not None else f"{prefix}_CANARY_TRAFFIC_PERCENT"
    return (
        f"{spec.name}: {CANARY} is now v{version} (champion v{champion or '-'}); services with "
        f"{prefix}_CANARY_MODEL_URI={uri} send {share} of their requests "
        f"to it within {_refresh_wait(spec)}; `mlp promote {spec.name} {version}` completes the "
        f"rollout, `mlp canary {spec.name} --end` rolls it back"
    )


def set_canary_share(spec: ServiceSpec, tracking_uri: str, percent: float) -> str:
    """Set the share of requests the pods send the canary they serve now."""
    write_canary_share(mlflow_registry.registry_client(tracking_uri), spec.name, percent)
    return (
        f"{spec.name}: the canary's share is now {percent:g} %; services following the registry "
        f"send it that share within {_refresh_wait(spec)}"
    )


def write_canary_share(client: Any, name: str, percent: float | None) -> None:
    """Set the registry's canary share, or (None) remove it, so each pod's own setting holds."""
    if percent is not None:
        client.set_registered_model_tag(name, SHARE_TAG, f"{percent:g}")
    elif SHARE_TAG in (client.get_registered_model(name).tags or {}):
        client.delete_registered_model_tag(name, SHARE_TAG)


def _require_servable(spec: ServiceSpec, client: Any, tracking_uri: str, version: Any) -> None:
    """Refuse a version the service's pods could not load: its run gone (they read its figures from
    it), its model file unreadable, or a model of another service's requests; and one retired
    (MLflow's stage Archived) or whose training run did not finish.

    From the run and the MLmodel file alone: the model itself can be large to download.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    which = f"{spec.name} v{version.version}"
    if getattr(version, "current_stage", None) == ARCHIVED:
        raise ServekitError(
            409,
            "version_archived",
            f"{which} is in MLflow's stage {ARCHIVED}: it was retired; name another version, or move "
            f"it out of {ARCHIVED} in MLflow first",
        )
    run = None
    if version.run_id:
        try:
            run = client.get_run(version.run_id)
        except MlflowException as exc:
            if not run_gone(exc):
                raise
            raise ServekitError(
                409,
                "run_missing",
                f"{which}: {run_gone_problem(version.run_id)}, and "
                "services read the version's figures from it: they could not load it",
            ) from exc
    use_registry(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="servekit-mlmodel-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{spec.name}/{version.version}/MLmodel",
                dst_path=tmp,
                tracking_uri=tracking_uri,
            )
            schema = (Model.load(path).metadata or {}).get("feature_schema") or {}
        except Exception as exc:  # deleted files, a source that is not an MLflow model, ...
            raise ServekitError(
                409,
                "model_unreadable",
                f"{which}: its model cannot be read ({one_line(exc)}); services could not load it",
            ) from exc
    # The request schema's title, not the whole schema: a field added since keeps older versions
    # promotable, while another service's model names other requests.
    expected, trained_for = spec.request.model_json_schema().get("title"), schema.get("title")
    if trained_for is not None and trained_for != expected:
        raise ServekitError(
            409,
            "another_services_model",
            f"{which} holds a model of {trained_for!r} requests, not of {spec.name}'s {expected!r} "
            f"(another service's model?): {spec.name}'s services could not serve it",
        )
    if run is not None:
        _require_finished(which, run)


def _require_finished(which: str, run: Any) -> None:
    """Refuse a version whose training run did not finish: a training interrupted (Ctrl-C, the
    tracking server gone) after registering it, or still going, left it never compared with the
    champion. Checked after what makes it unservable, which says more."""
    status = run.info.status
    if status == "FINISHED":
        return
    ended = (
        f"has not finished ({status}: still training, or stopped while the tracking server was down)"
        if status in ("RUNNING", "SCHEDULED")
        else f"did not finish ({status})"
    )
    raise ServekitError(
        409,
        "run_unfinished",
        f"{which}'s training run {run.info.run_id} {ended}: it was never compared with the "
        f"{CHAMPION}; train again",
    )


def _require_version(client: Any, name: str, version: str) -> Any:
    """The registry's ``version`` of ``name``; a 404 error naming it when there is none.

    A number over the largest a registry holds is none, not asked: MLflow's store failed on it
    (SQLite's "Python int too large", a server's 500 retried until the client gave up), a traceback.
    Another error of the registry is one line: a 4xx it answered, else a failure worth retrying.
    """
    from mlflow.exceptions import MlflowException

    not_found = ServekitError(404, "version_not_found", f"{name} has no version {version!r}")
    if not holdable_version(version):
        raise not_found
    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise not_found from exc
        status, _ = mlflow_registry.answered_status(exc)
        raise ServekitError(
            status if status is not None and 400 <= status < 500 else 503,
            "registry_failing",
            f"reading {name} v{version} from the registry failed: {one_line(exc)}",
        ) from exc


def _refresh_wait(spec: ServiceSpec) -> str:
    refresh = ServiceSettings.model_fields["model_refresh_seconds"].default
    return f"{spec.name.upper()}_MODEL_REFRESH_SECONDS ({refresh:g} s unless set)"
