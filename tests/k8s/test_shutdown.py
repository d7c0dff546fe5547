"""A stopping model pod ends its own shutdown before the kubelet kills it, however it is rendered.

After SIGTERM each server gives the requests and calls in flight its shutdown grace
(``<SVC>_SHUTDOWN_GRACE_SECONDS``), then answers those left 503 ``shutting_down``, counted and
logged. The kubelet sends SIGTERM once the preStop sleep is over and SIGKILLs the pod
``terminationGracePeriodSeconds`` after the pod began to stop: if the sleep and the grace do not fit
in it, a long request gets a reset connection, with no answer, no log line and no count (Spot's
25 s with the base's 20 s grace did so).
"""

from __future__ import annotations

import os

import pytest
from manifests import K8S_CHECK, OVERLAYS, Obj, Rendered, configmap_env, container, render
from test_manifests import model_deployments

from servekit.cli import serving
from servekit.settings import UNPREFIXED, load_settings

#: What a server does after its grace, before it has exited: cancel what is left and answer it 503,
#: end the app's lifespan, flush its logs. Seconds, not tenths: the node may be busy.
EXIT_SLACK_SECONDS = 3

#: Each overlay as it is, with each component alone, and with every component at once (once with
#: each of the two that refuse each other, as make k8s-check renders them).
RENDERINGS = [
    (overlay, components)
    for overlay in OVERLAYS
    for components in [(), *((c,) for c in K8S_CHECK.COMPONENTS), *K8S_CHECK.component_sets()]
]


def rendering_id(overlay: str, components: tuple[str, ...]) -> str:
    if len(components) > 1:
        [exclusive] = set(components) & set(K8S_CHECK.EXCLUSIVE)
        return f"{overlay}:all-with-{exclusive}"
    return f"{overlay}:{components[0] if components else 'plain'}"


def prestop_seconds(deployment: Obj) -> int:
    """How long the container's preStop hook holds SIGTERM back."""
    hook = container(deployment).get("lifecycle", {}).get("preStop")
    if hook is None:
        return 0
    assert set(hook) == {"sleep"}, f"a preStop hook other than sleep takes a time no manifest says: {hook}"
    seconds: int = hook["sleep"]["seconds"]
    return seconds


def shutdown_grace(rendered: Rendered, deployment: Obj, monkeypatch: pytest.MonkeyPatch) -> int:
    """The grace the container's server takes from the environment the pod gives it (its settings
    ConfigMap and env, else the setting's default), read by the service's own settings."""
    env = configmap_env(rendered, deployment)
    service = env[serving.SERVICE_ENV]
    prefix = f"{service.upper()}_"
    with monkeypatch.context() as pod:
        for name in list(os.environ):  # the pod's environment, not this process's
            if name.startswith(prefix) or name in UNPREFIXED:
                pod.delenv(name)
        for name, value in env.items():
            pod.setenv(name, value)
        return load_settings(service).shutdown_grace_seconds


@pytest.mark.parametrize(
    ("overlay", "components"), RENDERINGS, ids=[rendering_id(*rendering) for rendering in RENDERINGS]
)
def test_the_prestop_sleep_and_the_shutdown_grace_fit_in_the_pods_grace_period(
    overlay: str, components: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(overlay, components)
    deployments = model_deployments(rendered)
    assert deployments
    for name, deployment in deployments.items():
        pause = prestop_seconds(deployment)
        grace = shutdown_grace(rendered, deployment, monkeypatch)
        period = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        assert pause + grace + EXIT_SLACK_SECONDS <= period, (
            f"{name}: preStop sleep {pause} s + shutdown grace {grace} s + {EXIT_SLACK_SECONDS} s to exit "
            f"> terminationGracePeriodSeconds {period}: the kubelet kills the pod before its grace "
            f"ends; lower {name.upper()}_SHUTDOWN_GRACE_SECONDS or raise the period"
        )


def test_the_check_would_catch_the_spot_grace_period_with_the_default_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check reads the default where no ConfigMap sets the grace, whatever this process's
    environment holds: spot-model-pods' 25 s without its shortened grace is the case it exists for."""
    monkeypatch.setenv("BANKCHURN_SHUTDOWN_GRACE_SECONDS", "12")
    rendered = render("gke", ("spot-model-pods",))
    deployment = model_deployments(rendered)["bankchurn"]
    for source in container(deployment)["envFrom"]:
        rendered.get("ConfigMap", source["configMapRef"]["name"])["data"].pop(
            "BANKCHURN_SHUTDOWN_GRACE_SECONDS", None
        )
    grace = shutdown_grace(rendered, deployment, monkeypatch)
    assert grace == 20
    period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert prestop_seconds(deployment) + grace + EXIT_SLACK_SECONDS > period
