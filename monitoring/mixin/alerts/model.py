"""The model each pod serves: its live quality against its held-out rows, as a whole and by group, and
whether the pod follows its alias."""

from __future__ import annotations

from mixin.alerts.alert import POD, Alert
from mixin.common import versioned
from servekit.metrics.names import MetricNames


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
            "{{ $labels.version }}. The pod log says which step failed.",
            "15m",
            opens_on=(POD,),
        ),
    ]
