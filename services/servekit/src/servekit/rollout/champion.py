"""The champion, read again during a rollout: one moved meanwhile is not overwritten."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from servekit.errors import ServekitError
from servekit.loading import one_line
from servekit.spec import ServiceSpec

#: Seconds before the champion is read once more when the registry did not answer a reading's.
CHAMPION_RETRY_SECONDS = 2.0


class PromotedMeanwhile(Exception):  # noqa: N818 -- an outcome, not an error
    """The champion became the rollout's own version (``mlp promote``, as ``set_canary`` invites,
    while the rollout watched): there is nothing left to judge, and nothing to roll back."""


def _champion_now(tracking_uri: str, name: str) -> str | None:
    """The champion's version; None if ``name`` has no champion alias. Raises when the registry
    cannot be read: unlike ``aliases.current_champion``, a failed read is not a deleted alias."""
    from mlflow.exceptions import MlflowException

    from servekit.loading import NOT_IN_THE_REGISTRY
    from servekit.mlflow_registry import registry_client
    from servekit.training.aliases import CHAMPION

    try:
        return str(registry_client(tracking_uri).get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if exc.error_code in NOT_IN_THE_REGISTRY:
            return None
        raise


def champion_moved(
    spec: ServiceSpec,
    tracking_uri: str,
    version: str,
    champion: str,
    sleep: Callable[[float], Any] = time.sleep,
) -> str | None:
    """Why the rollout must stop because the champion is no longer ``champion`` (None: it is).

    Moved by ``mlp promote`` or a ``mlp train`` that won: the stable answers the readings weighed
    VERSION against were another version's, and promoting VERSION would replace the champion
    someone chose meanwhile without a word. The rollback then ends the canary on the new one.
    Moved to VERSION itself: ``PromotedMeanwhile``. A registry that cannot be read is asked again
    once, ``CHAMPION_RETRY_SECONDS`` later: one failed request does not end a sound rollout.
    """
    for attempt in range(2):
        try:
            now = _champion_now(tracking_uri, spec.name)
            break
        except Exception as exc:
            if attempt:
                cause = exc.message if isinstance(exc, ServekitError) else one_line(exc)
                return f"cannot read the champion (asked twice): {cause}"
            sleep(CHAMPION_RETRY_SECONDS)
    if now == champion:
        return None
    if now == version:
        raise PromotedMeanwhile
    if now is None:
        return (
            f"the champion's alias was deleted (it was v{champion} when the rollout began): v{version} "
            f"has no champion to be judged against or rolled back to; `mlp promote {spec.name} VERSION` "
            f"sets one, then `mlp rollout {spec.name} {version}` judges it anew"
        )
    return (
        f"the champion was v{champion} when the rollout began and is now v{now}: v{version} was judged "
        f"against v{champion}'s answers, and promoting it would replace the champion chosen since; "
        f"`mlp rollout {spec.name} {version}` judges it against the champion anew"
    )
