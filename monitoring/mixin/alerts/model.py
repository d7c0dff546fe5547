"""The model each pod serves: its live quality against its held-out rows, as a whole and by group, and
whether the pod follows its alias."""

from __future__ import annotations

from mixin.alerts.alert import POD, Alert
from mixin.common import versioned
from servekit.metrics.names import REFRESH_ASKING_THE_REGISTRY, REFRESH_LOADING_THE_VERSION, MetricNames

#: ModelRefreshFailing's wait, over which its description counts the failures by step.
REFRESH_WINDOW = "15m"


def failures_at_step(n: MetricNames, step: str, window: str) -> str:
    """A template action: how many refreshes of the alert's pod failed at ``step`` over ``window``.

    A registry outage and a version that does not load both hold ``model_refresh_failing`` at 1;
    the counter's ``step`` tells them apart, and the remedies differ."""
    query = f'sum(increase({n.model_refresh_failures_total}{{instance="%s",step="{step}"}}[{window}]))'
    return (
        f"{{{{ with printf `{query}` $labels.instance | query }}}}"
        '{{ . | first | value | printf "%.0f" }}{{ else }}no{{ end }}'
    )


def model_alerts(service: str) -> list[Alert]:
    """LiveQualityWorse, LiveGroupWorse and ModelRefreshFailing."""
    n = MetricNames(service)
    s = service
    worse_verdict = f'({n.model_live_verdict}{{verdict="worse"}} == 1)'
    return [
        Alert(
            "LiveQualityWorse",
            f"max by (version) ({versioned(worse_verdict, n)})",
            "warning",
            f"{s} version {{{{ $labels.version }}}} scores worse on its live answers than held out",
            f"The latest live evaluation of {s} version {{{{ $labels.version }}}} (mlp evaluate --log: the "
            "live-evaluation CronJob, or by hand) scored it worse on the answers whose truth is known than "
            "on its training run's held-out rows, beyond the noise of both samples. The pods serving it "
            "read the verdict from the registry; it holds until a newer evaluation of the version says "
            "otherwise, or another version is served.",
            "5m",
        ),
        Alert(
            "LiveGroupWorse",
            # The whole figure worse is LiveQualityWorse's to tell; its groups would say it twice.
            f"max by (version) ({versioned(f'({n.model_live_groups_worse} > 0)', n)})\n"
            f"unless on (version)\nmax by (version) ({versioned(worse_verdict, n)})",
            "warning",
            f"{s} version {{{{ $labels.version }}}} scores worse for {{{{ $value }}}} group(s) than the "
            "same groups held out",
            f"The latest live evaluation of {s} version {{{{ $labels.version }}}} scored it worse on the "
            "live answers of {{ $value }} group(s) (a country, an age band, a kind of text) than on the "
            "same groups' held-out rows, beyond the noise of both samples, the groups' intervals held "
            "together at 95 %, while its whole figure is not worse: the customers of those groups are "
            "served worse than the version was shown to serve them. The version's tag live.groups_worse "
            "names them (mlp versions, mlp promote); its run holds each group's difference.",
            "5m",
        ),
        Alert(
            "ModelRefreshFailing",
            versioned(f"({n.model_refresh_failing} == 1)", n),
            "warning",
            f"{s} at {{{{ $labels.instance }}}} cannot follow its model alias",
            f"For 15 minutes {s} at {{{{ $labels.instance }}}} has failed to check which version its "
            "model alias points at, or to load that version; it still serves version "
            "{{ $labels.version }}. Over those 15 minutes, "
            f"{failures_at_step(n, REFRESH_ASKING_THE_REGISTRY, REFRESH_WINDOW)} attempts could not ask the "
            "registry which version the alias names (the registry unreachable from the pod: MLflow "
            "down, its NetworkPolicy, DNS; the pod retries by itself, and when every service's pods "
            "say so, it is the registry, not the models) and "
            f"{failures_at_step(n, REFRESH_LOADING_THE_VERSION, REFRESH_WINDOW)} could not load the "
            f"version it names (that version itself: `mlp promote {s} {{{{ $labels.version }}}}` "
            "points the alias back). The pod log names each failure.",
            REFRESH_WINDOW,
            opens_on=(POD,),
        ),
    ]
