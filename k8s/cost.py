"""``make cost``: what an overlay costs to run, read from the manifests it renders.

Every Pod a rendered overlay asks for is counted by its requests, which is what a cluster reserves
and what GKE Autopilot bills: Deployments and StatefulSets at their floor (an HPA's minReplicas, or
``replicas``) and at their ceiling (maxReplicas), their claims' disks, the cluster's fee and the
Ingress's load balancer. k8s/prices.yaml turns them into dollars a month: on GKE per Pod request
(raised to Autopilot's minimums), on EKS per node of a managed node group, the Pods packed onto as
few nodes as their requests allow (first fit, largest first: a lower bound). A workload whose Pods
may run only on Spot capacity (a node selector or required node affinity on the cloud's Spot node
label, as the spot-model-pods component sets) is priced at the Spot prices: on EKS on nodes of its
own, a Spot node group's. So is one whose Pods run on a capacity class that tries Spot first (the
spot-first-model-pods component: a GKE ComputeClass or a Karpenter NodePool of its cluster/
directory), which it does while the cloud has Spot capacity; during a stockout those Pods run, and
are billed, on-demand, as without the component.

With ``--cpu`` (the JSON ``python -m servekit.bench.cpu`` writes: the CPU one prediction costs a
replica, measured) it also prices a million predictions: an HPA holds each pod at its CPU target,
so a pod answers ``target cores / CPU per prediction`` predictions a second, at the pod's price.

A CronJob's Pods are priced for the time they may run: its runs a month (its schedule) times its
Jobs' ``activeDeadlineSeconds``, an upper bound, in every bill. A pod-producing kind it does not
know (a DaemonSet, a Job) or a container without a CPU and memory request stops it, naming the
object: a cost that leaves something out is not a floor. So does, on EKS, a Pod requesting more than
a node leaves beside its DaemonSets (``unschedulable``; ``make k8s-check`` fails on it too): it
would wait Pending, and cost nothing but the failure it causes.

With ``--load SERVICE=PER_SECOND`` too, it prices a steady load: each service at the pods its HPA
settles at for it (within its floor and ceiling), the others at their floor. Where the overlay turns
the prediction capture on (``<SVC>_CAPTURE_PERCENT``, the prediction-capture component), it also
prices the log lines the capture writes, by the bytes the ``--cpu`` file measured per prediction:
at 100 % they cost more than the pods that answer. With a shadow model beside (the shadow-challenger
component), the shadow's answers to the captured requests are lines too, at its sample rate; and
the shadow's CPU is in each prediction's, so a shadowed service gets more pods under the same load:
measured where the --cpu file has ``with_shadow`` figures (``make cost`` measures them), else
estimated as an upper bound, and the output says which.

With a ``--cpu`` file of figures observed in production (``python -m servekit.bench.observed``
reads them from Prometheus), ``--load-observed`` prices each service at the rate it served, its CPU
per prediction the one its traffic mix took, and adds the access and service log lines it wrote;
then again point by point over the window's rate profile, as the HPAs follow the load.

usage: python k8s/cost.py [--overlay gke|eks] [--component NAME ...] [--cpu reports/cpu.json]
                          [--load SERVICE=PER_SECOND ... | --load-observed]
                          [--kind predict|predict+explain|...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

# costing/, this script's package, is on the path when the script runs; not when k8s/check.py or the
# tests import this file by its path.
sys.path.append(str(Path(__file__).resolve().parent))

from costing.bill import at_scale, bill, bill_line, claimed_storage
from costing.cronjobs import runs_a_month, scheduled, scheduled_month
from costing.errors import CostError
from costing.figures import OBSERVED, OPERATIONAL_BYTES, read_cpu
from costing.logs import log_lines
from costing.pricing import (
    HOURS_PER_MONTH,
    PRICES,
    autopilot_billed,
    node_room,
    nodes_needed,
    pod_hour,
    workload_hour,
)
from costing.rendering import ROOT, k8s_check, render
from costing.report import report
from costing.requests import (
    SPOT_NODE_LABELS,
    Requests,
    claim_size,
    container_requests,
    pod_requests,
    quantity,
    spot_first_classes,
)
from costing.schedulable import unschedulable
from costing.sizing import cpu_ms_of, followed, per_million, profile_points, under_load
from costing.workloads import workloads

#: What k8s/check.py, k8s/deploy_role.py and the tests use of this script, which its package holds.
__all__ = [
    "HOURS_PER_MONTH",
    "OBSERVED",
    "OPERATIONAL_BYTES",
    "OVERLAYS",
    "PRICES",
    "ROOT",
    "SPOT_NODE_LABELS",
    "CostError",
    "Requests",
    "at_scale",
    "autopilot_billed",
    "bill",
    "bill_line",
    "claim_size",
    "claimed_storage",
    "container_requests",
    "cpu_ms_of",
    "followed",
    "k8s_check",
    "log_lines",
    "main",
    "node_room",
    "nodes_needed",
    "per_million",
    "pod_hour",
    "pod_requests",
    "profile_points",
    "quantity",
    "read_cpu",
    "render",
    "report",
    "runs_a_month",
    "scheduled",
    "scheduled_month",
    "spot_first_classes",
    "under_load",
    "unschedulable",
    "workload_hour",
    "workloads",
]

OVERLAYS = ("gke", "eks")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", choices=OVERLAYS, action="append", help="default: both")
    parser.add_argument("--component", action="append", default=[], help="k8s/components/<NAME> added")
    parser.add_argument("--cpu", type=Path, help="CPU per prediction, from python -m servekit.bench.cpu")
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="SERVICE=PER_SECOND",
        help="a steady load to price (with --cpu): predictions a second of --kind",
    )
    parser.add_argument("--kind", default="predict", help="the kind of prediction --load sends")
    parser.add_argument(
        "--load-observed",
        action="store_true",
        help=f"each service of an observed --cpu file at the rate it served (--kind {OBSERVED})",
    )
    parser.add_argument("--prices", type=Path, default=PRICES)
    args = parser.parse_args(argv)
    loads = {}
    for given in args.load:
        service, _, per_second = given.partition("=")
        try:
            loads[service] = float(per_second)
        except ValueError:
            parser.error(f"--load {given}: SERVICE=PER_SECOND, e.g. bankchurn=300")
    prices = yaml.safe_load(args.prices.read_text())
    try:
        cpu = read_cpu(args.cpu) if args.cpu else None
    except CostError as error:
        print(f"cost: {error}", file=sys.stderr)
        return 2
    if args.load_observed:
        if args.load:
            parser.error("--load-observed prices the observed rates: leave --load out")
        observed = {
            service: kinds[OBSERVED]["predictions_per_second"]
            for service, kinds in (cpu or {}).get("services", {}).items()
            if OBSERVED in kinds
        }
        if not observed:
            parser.error(
                "--load-observed needs a --cpu file of observed figures: python -m servekit.bench.observed "
                "--prometheus URL writes reports/observed.json"
            )
        loads, args.kind = observed, OBSERVED
    try:
        for overlay in args.overlay or OVERLAYS:
            suffix = f" + {', '.join(args.component)}" if args.component else ""
            objects = render(overlay, args.component)
            print(
                "\n".join(
                    report(
                        overlay + suffix,
                        objects,
                        prices[overlay],
                        cpu=cpu,
                        loads=loads,
                        kind=args.kind,
                        follow_observed=args.load_observed,
                    )
                )
            )
    except CostError as error:
        print(f"cost: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
