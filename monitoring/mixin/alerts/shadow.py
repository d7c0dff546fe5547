"""The shadow model: falling behind the traffic, and scoring better than the served version."""

from __future__ import annotations

from mixin.alerts.alert import Alert
from mixin.common import number, objectives, of_shadow
from servekit.metrics.names import MetricNames


def shadow_alerts(service: str) -> list[Alert]:
    """ShadowFallingBehind and ShadowBetter."""
    n, o = MetricNames(service), objectives(service)
    s = service
    return [
        Alert(
            "ShadowFallingBehind",
            f'sum(rate({n.shadow_skipped_total}{{reason="queue_full"}}[10m]))\n/\n'
            f"(sum(rate({n.shadow_predictions_total}[10m])) + sum(rate({n.shadow_skipped_total}[10m])))\n"
            f"> {number(o.shadow_queue_full_ratio)}",
            "warning",
            f"{s}'s shadow model cannot keep up with the traffic",
            f"For 15 minutes more than {o.shadow_queue_full_ratio:.0%} of the instances sampled for "
            f"{s}'s shadow model were skipped because its queue was full, so the shadow panels compare "
            "a biased sample (the quiet moments). Lower <SVC>_SHADOW_SAMPLE_RATE or give the pods "
            "more CPU.",
            "15m",
        ),
        Alert(
            "ShadowBetter",
            # Only against the version the pod serves: a comparison with the one served before a
            # promotion says nothing of the one served now (the pods drop it; this holds for pods
            # that do not, and for the scrape between the switch and their next read).
            "max by (version, against, metric) (\n"
            + of_shadow(
                f'({n.shadow_live_difference}{{bound="estimate"}}\nand on (instance, job, against)\n'
                f'label_replace({n.model_info}, "against", "$1", "version", "(.+)")\n'
                f'and on (instance, job)\n({n.shadow_live_verdict}{{verdict="better"}} == 1)\n'
                f"unless on (instance, job)\n({n.shadow_live_groups_worse} > 0))",
                n,
            )
            + "\n)",
            "info",
            f"{s}'s shadow version {{{{ $labels.version }}}} scores better than the served version "
            "{{ $labels.against }} on the same requests' truth",
            f"The latest comparison of {s}'s shadow model, version {{{{ $labels.version }}}}, with the "
            "served version {{ $labels.against }} on the answers both gave to the same captured "
            "requests, joined with their truth (mlp evaluate --log: the live-evaluation CronJob, or "
            "by hand), found the shadow's {{ $labels.metric }} better beyond the noise: "
            '{{ $value | printf "%+.4f" }}, the paired 95 % interval clear of 0. Not a fault but a '
            f"decision for the model's owner: read `mlp versions {s}` (the `as shadow` column) and "
            "the run's figures per group, then promote it, through a canary or at once, or note why "
            "not. One better on the whole but worse beyond the noise for a group (a country, an age "
            "band) on its answers alone raises nothing: its promotion needs a reviewer's reasons. It "
            "holds until a newer comparison says otherwise, or the shadow or the served model moves "
            "to another version.",
            "15m",
        ),
    ]
