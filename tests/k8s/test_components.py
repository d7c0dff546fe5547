"""Kustomize components an overlay may add: each renders on both overlays and says only what it should."""

from __future__ import annotations

import pytest
from manifests import OVERLAYS, SERVICES, Rendered, configmap_env, render
from test_manifests import model_deployments

from servekit import settings


@pytest.fixture(scope="module", params=OVERLAYS)
def shadowed(request: pytest.FixtureRequest) -> tuple[Rendered, Rendered]:
    """An overlay as it is, and with the shadow-challenger component."""
    return render(request.param), render(request.param, components=["shadow-challenger"])


@pytest.mark.parametrize("service", SERVICES)
def test_shadow_challenger_scores_each_services_challenger(
    shadowed: tuple[Rendered, Rendered], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, with_shadow = shadowed
    before = configmap_env(plain, model_deployments(plain)[service])
    after = configmap_env(with_shadow, model_deployments(with_shadow)[service])
    prefix = f"{service.upper()}_"
    added = {k: v for k, v in after.items() if k not in before}
    assert set(added) == {
        f"{prefix}SHADOW_MODEL_URI",
        f"{prefix}SHADOW_SAMPLE_RATE",
        f"{prefix}SHADOW_MAX_PENDING",
    }
    assert {k: v for k, v in after.items() if k in before} == before  # nothing else changed
    for name, value in after.items():  # as the pod's environment
        monkeypatch.setenv(name, value)
    loaded = settings.load_settings(service)
    assert loaded.shadow_model_uri == f"models:/{service}@challenger"
    assert 0 < loaded.shadow_sample_rate <= 1


def test_shadow_challenger_changes_only_the_settings(shadowed: tuple[Rendered, Rendered]) -> None:
    """The Deployments roll (the ConfigMap names carry a new hash); no other object changes."""
    plain, with_shadow = shadowed

    def kinds(rendered: Rendered) -> list[tuple[str, str]]:
        return sorted((o["kind"], o["metadata"]["name"].rsplit("-", 1)[0]) for o in rendered.objects)

    assert kinds(plain) == kinds(with_shadow)
    old = {o["metadata"]["name"] for o in plain.of_kind("ConfigMap")}
    new = {o["metadata"]["name"] for o in with_shadow.of_kind("ConfigMap")}
    assert len(old - new) == len(SERVICES)  # one settings ConfigMap per service, renamed
